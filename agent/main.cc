// poolkeeper: the realserver health agent daemon. Runs in the foreground and logs to
// stderr (systemd takes both). Signals: SIGTERM/SIGINT report every service not
// pooled at once, keep answering for drain_seconds, then exit 0; a second one exits
// at once.
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <cstring>
#include <iostream>
#include <string>

#include "agent/agent.h"
#include "agent/log.h"

using namespace poolkeeper;

namespace {

int usage(std::ostream& out, int code) {
  out << "usage: poolkeeper --config FILE\n"
         "       poolkeeper --check-config FILE\n"
         "       poolkeeper --version\n";
  return code;
}

int check_config(const std::string& file) {
  try {
    Config cfg = load_config(file);
    std::cout << file << ": ok (" << cfg.services.size() << " services, " << cfg.checks.size()
              << " checks)\n";
    return 0;
  } catch (const ConfigError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
}

int run(const std::string& file) {
  // Block the signals we handle before any thread exists, so only sigtimedwait() below
  // sees them; children of exec checks get a clean mask back.
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Config cfg;
  try {
    cfg = load_config(file);
  } catch (const ConfigError& e) {
    log_error("bad config", {{"error", e.what()}});
    return 2;
  }
  if (cfg.agent.hostname.empty()) cfg.agent.hostname = host_fqdn();
  SystemClock clock;
  Agent agent(cfg, clock);
  try {
    agent.start();
  } catch (const std::exception& e) {
    log_error("cannot start", {{"error", e.what()}});
    return 1;
  }
  log_info("started", {{"host", cfg.agent.hostname},
                       {"listen", cfg.agent.listen},
                       {"port", std::to_string(agent.http_port())},
                       {"services", std::to_string(cfg.services.size())},
                       {"checks", std::to_string(cfg.checks.size())}});
  sd_notify(0, "READY=1");

  bool stopping = false;
  SteadyTime drain_end{};
  for (;;) {
    timespec ts{1, 0};
    if (stopping) {
      auto left = drain_end - SteadyClock::now();
      if (left <= Duration::zero()) break;
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      ts = {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    }
    siginfo_t info;
    int sig = sigtimedwait(&set, &info, &ts);
    if (sig < 0) continue;  // timeout or EINTR
    if (sig == SIGTERM || sig == SIGINT) {
      if (stopping) {
        log_info("second stop signal: exiting now", {{"signal", strsignal(sig)}});
        break;
      }
      stopping = true;
      agent.begin_stop();
      drain_end = SteadyClock::now() + std::chrono::seconds(cfg.agent.drain_seconds);
      sd_notify(0, "STOPPING=1");
      log_info("stopping: reporting not pooled, draining",
               {{"signal", strsignal(sig)},
                {"drain_seconds", std::to_string(cfg.agent.drain_seconds)}});
    } else if (sig == SIGHUP) {
      agent.reload(file);
    }
  }
  agent.shutdown();
  log_info("exited");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config, check;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) {
        std::cerr << "poolkeeper: " << a << " needs a value\n";
        std::exit(2);
      }
      *out = argv[++i];
    };
    if (a == "--config") value(&config);
    else if (a == "--check-config") value(&check);
    else if (a == "--version") {
      std::cout << "poolkeeper " << POOLKEEPER_VERSION << "\n";
      return 0;
    } else if (a == "-h" || a == "--help") return usage(std::cout, 0);
    else {
      std::cerr << "poolkeeper: unknown argument \"" << a << "\"\n";
      return usage(std::cerr, 2);
    }
  }
  if (!check.empty()) return check_config(check);
  if (config.empty()) return usage(std::cerr, 2);
  return run(config);
}
