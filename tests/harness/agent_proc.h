// A real poolkeeper process for tests: its own temp dir (config, state, admin socket,
// log, boot id file), a free HTTP port, exec checks driven by flag files, and helpers
// to read /health and /status and to run poolctl against it.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/harness/harness.h"

namespace pk_test {

struct CommandResult {
  int rc;
  std::string out;
};

class AgentProc {
 public:
  // Services nfs and http, each with one exec check ("<svc>_ok": passes while the
  // file <dir>/<svc>.ok exists). `extra_agent` and `extra_services` are appended to
  // the [agent] table and to each service table.
  explicit AgentProc(std::string hostname, std::string extra_agent = "",
                     std::string nfs_extra = "", std::string http_extra = "");

  std::string config_text() const;
  void write_config(const std::string& text);
  void start();  // waits until /status answers
  void stop_kill9();
  void sigterm_and_wait();
  bool running() { return proc_.running(); }
  pid_t pid() const { return proc_.pid(); }
  // Waits for the agent to exit; its exit status, or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout) { return proc_.wait(timeout); }
  void signal(int sig) { proc_.signal(sig); }

  void set_ok(const std::string& service, bool ok);
  HttpResponse get(const std::string& path) const;
  nlohmann::json status() const;
  int health(const std::string& service) const { return static_cast<int>(get("/health/" + service).status); }
  std::string health_body(const std::string& service) const { return get("/health/" + service).body; }
  bool wait_health(const std::string& service, int code, std::chrono::milliseconds timeout = 5000ms) const;

  // poolctl (or one of its symlinked names) with --socket added.
  CommandResult ctl(const std::vector<std::string>& args, const std::string& as = "poolctl",
                    const std::vector<std::string>& prefix = {}) const;

  // When >= 0, start() hands the agent this listening socket (systemd socket
  // activation) instead of letting it bind its port; see listen_on_own_socket().
  int listen_fd = -1;
  // Binds and listens on the agent's port here, in the test, and sets listen_fd, so the
  // socket outlives each agent process (as systemd's does across a restart).
  void listen_on_own_socket();
  ~AgentProc();  // stops the agent, closes the own socket
  int port() const { return port_; }

  const TempDir& dir() const { return dir_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string socket() const { return dir_.file("admin.sock"); }
  std::string log() const { return read_file(dir_.file("agent.log")); }
  const std::string& hostname() const { return hostname_; }

  std::string extra_agent, nfs_extra, http_extra;
  // The exec checks' timing keys.
  std::string check_timing =
      "interval = \"250ms\"\ntimeout = \"250ms\"\nfast_interval = \"100ms\"\nrise = 2\nfall = 2\n";
  // (A generous timeout: spawning /usr/bin/test on a loaded 2-core CI machine can take
  // longer than one expects, and a spurious timeout would flap what a test watches.)

 private:
  TempDir dir_;
  std::string hostname_;
  int port_;
  Process proc_;
};

}  // namespace pk_test
