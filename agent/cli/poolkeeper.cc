// poolkeeper: the realserver health agent daemon. Runs in the foreground and logs to
// stderr (systemd takes both). SIGTERM/SIGINT stop it: on a host shutdown or reboot it
// drains (each service leaves through the floor, keeps answering for drain_seconds,
// then exits, once the conftool keys it left are in etcd); on a restart of the agent
// alone it leaves the pool state as it is and exits at once. The whole stop is bounded
// by drain_seconds + 22 s whatever is in flight; a second signal exits at once.
#include <signal.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

#include "agent/runtime/runtime.h"
#include "agent/base/log.h"
#include "checks/child_reaper.h"
#include "agent/runtime/stop_action.h"

using namespace poolkeeper;

namespace {

// How long a shutdown drain may wait, past drain_seconds from the signal, for etcd to
// take the keys it left: until then the load balancer still sends this host the conftool services'
// traffic, and the servers stop only after the agent (the unit's ordering). Within
// the unit's TimeoutStopSec (60 s) with the default drain_seconds (10).
constexpr auto kConftoolStopGrace = std::chrono::seconds(20);

// The end of a shutdown drain with [conftool]: the keys the drain left must be in etcd
// before the agent exits and the servers stop; waits until `end` at most.
void drain_conftool(Runtime& agent, SteadyTime end) {
  auto left = [&] { return std::max<Duration>(end - SteadyClock::now(), Duration::zero()); };
  // First as long as an etcd request may take by default (2 s), and some.
  if (agent.wait_conftool_written(std::min<Duration>(std::chrono::seconds(3), left()))) return;
  log_warn("shutdown drain: the conftool keys are not in etcd yet (etcd not answering): the load balancer "
           "still sends this host traffic; waiting for etcd",
           {{"up_to_seconds", std::to_string(std::chrono::duration_cast<std::chrono::seconds>(left()).count())}});
  if (agent.wait_conftool_written(left())) {
    log_info("shutdown drain: the conftool keys are in etcd");
    return;
  }
  log_error("shutdown drain: etcd did not answer: exiting with the conftool keys as they were; the peers take "
            "this host out once its liveness key has expired and it has been silent for peer_dead_after");
}

int usage(std::ostream& out, int code) {
  out << "usage: poolkeeper --config FILE\n"
         "       poolkeeper --check-config FILE\n"
         "       poolkeeper --version\n"
         "\n"
         "Stopping (SIGTERM or SIGINT): a host shutdown or reboot drains every service\n"
         "through the safety floor (a refused one stays pooled) for agent.drain_seconds;\n"
         "a restart of the agent alone leaves the pool state exactly as it is. Which one\n"
         "it is comes from, in order: the file stop-action in the admin socket's\n"
         "directory (\"drain\" or \"keep\"; read once and removed at the signal), then\n"
         "agent.stop_action (\"drain\", \"keep\" or \"auto\"), and for \"auto\" systemd's\n"
         "SystemState (\"stopping\" = the host is going down) or a job of shutdown.target;\n"
         "without systemd, auto drains. A drain with [conftool] ends once etcd has the\n"
         "keys it left, waiting up to 20 s more for an etcd that does not answer. A stop\n"
         "takes at most drain_seconds + 22 s; a second signal exits at once.\n";
  return code;
}

std::string count(size_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

// The config must be right (exit 2 otherwise), a password file others can read
// included. A password file that is not there yet is a warning only: secrets are
// deployed on their own, often after the config (a fresh host, Puppet's validate_cmd),
// and the agent itself still refuses to start without it.
int check_config(const std::string& file) {
  Config cfg;
  try {
    cfg = load_config(file, Secrets::kIfPresent);
  } catch (const ConfigError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  if (cfg.conftool && !cfg.conftool->unread_secret.empty())
    std::cerr << "warning: " << cfg.conftool->unread_secret << " (the agent will not start without it)\n";
  std::cout << file << ": ok (" << count(cfg.services.size(), "service") << ", "
            << count(cfg.checks.size(), "check") << ")\n";
  return 0;
}

// Ends the process now: log lines are already written (one write(2) each), intent is
// persisted on every change, and a probe thread left running must not see the agent
// destroyed under it.
// Whatever exec probes started is killed first: nothing a probe started outlives us.
[[noreturn]] void exit_now(int code) {
  sweep_leftover_children(/*everything=*/true);
  ::_exit(code);
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
  // A stop-action file left from before this start was meant for an earlier stop.
  const std::string stop_file = stop_action_file(cfg.agent.admin_socket);
  if (auto stale = take_stop_action_file(stop_file))
    log_warn("removed a stop-action file left from before this start", {{"file", stop_file}});
  const StopAction configured = parse_stop_action(cfg.agent.stop_action).value_or(StopAction::kAuto);

  SystemClock clock;
  auto agent = std::make_unique<Runtime>(cfg, clock);
  try {
    agent->start();
  } catch (const std::exception& e) {
    log_error("cannot start", {{"error", e.what()}});
    return 1;
  }
  log_info("started", {{"host", cfg.agent.hostname},
                       {"listen", cfg.agent.listen},
                       {"port", std::to_string(agent->http_port())},
                       {"services", std::to_string(cfg.services.size())},
                       {"checks", std::to_string(cfg.checks.size())}});
  sd_notify(0, "READY=1");

  bool stopping = false;
  SteadyTime hard_deadline{};
  std::atomic<bool> stopped{false};
  std::thread stopper;
  for (;;) {
    // While stopping, wake often: to notice the stopper's end and the hard deadline.
    timespec ts = stopping ? timespec{0, 20'000'000} : timespec{1, 0};
    siginfo_t info;
    int sig = sigtimedwait(&set, &info, &ts);
    if (stopping && stopped) break;
    if (stopping && SteadyClock::now() >= hard_deadline) {
      log_error("stop did not finish within drain_seconds + 22 s: exiting anyway");
      exit_now(0);
    }
    if (sig < 0) continue;  // timeout or EINTR
    if (sig == SIGTERM || sig == SIGINT) {
      if (stopping) {
        log_info("second stop signal: exiting now", {{"signal", strsignal(sig)}});
        exit_now(0);
      }
      stopping = true;
      SteadyTime t0 = SteadyClock::now();
      hard_deadline = t0 + std::chrono::seconds(cfg.agent.drain_seconds) + kConftoolStopGrace + std::chrono::seconds(2);
      sd_notify(0, "STOPPING=1");
      std::string signame = strsignal(sig);
      // The decision and the floor may wait on systemd, peers and etcd (each bounded);
      // meanwhile this thread keeps listening for a second signal and the deadline.
      stopper = std::thread([&, t0, signame] {
        StopDecision d = decide_stop(take_stop_action_file(stop_file), configured, systemd_host_stopping);
        bool drain = d.action == StopAction::kDrain;
        log_info(drain ? "stopping: draining through the floor" : "stopping: restart, pool state kept",
                 {{"signal", signame}, {"why", d.why},
                  {"drain_seconds", std::to_string(drain ? cfg.agent.drain_seconds : 0)}});
        agent->begin_stop(d.action);
        if (drain) {
          std::this_thread::sleep_until(t0 + std::chrono::seconds(cfg.agent.drain_seconds));
          drain_conftool(*agent, t0 + std::chrono::seconds(cfg.agent.drain_seconds) + kConftoolStopGrace);
        }
        agent->shutdown();
        stopped = true;
      });
    } else if (sig == SIGHUP) {
      if (stopping) log_warn("SIGHUP ignored: the agent is stopping");
      else agent->reload(file);
    }
  }
  stopper.join();
  if (agent->abandoned()) {
    log_info("exited");
    exit_now(0);
  }
  agent.reset();
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
