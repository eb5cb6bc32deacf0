// Test harness: temp dirs, free loopback ports, child processes that are always
// cleaned up (process group killed in the destructor), a small HTTP client, and
// bounded waiting on conditions. Used by integration and end-to-end tests.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pk_test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();

void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);

// A child process in its own process group, stdout+stderr to `log`. The destructor
// kills the group (SIGKILL) and reaps it, so a failing test leaves nothing behind; a
// guardian process kills the group too when the test process dies without running
// destructors (kill -9, a ctest timeout, a crash).
class Process {
 public:
  Process() = default;
  Process(const std::vector<std::string>& argv, const std::string& log);
  // The same, handing the child a listening socket the way systemd's socket activation
  // does: as fd 3, with LISTEN_FDS=1 and LISTEN_PID set to the child's own pid.
  Process(const std::vector<std::string>& argv, const std::string& log, int listen_fd);
  ~Process();
  Process(Process&& o) noexcept;
  Process& operator=(Process&& o) noexcept;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits for exit; returns the exit status (or 128+signal), nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  void kill_and_wait();

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

struct HttpResponse {
  long status = 0;  // 0: no answer
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  double seconds = 0;
  std::string error;
};

HttpResponse http_get(const std::string& url, long timeout_ms = 2000,
                      const std::string& method = "GET");

// Sends raw bytes to 127.0.0.1:port and reads until the peer closes or `timeout`.
std::string raw_request(int port, const std::string& bytes,
                        std::chrono::milliseconds timeout = 2000ms);

// A stream socket connected to the unix socket at `path`; -1 when nothing listens there.
int connect_unix(const std::string& path);

// Sends `line` and a newline on the unix stream socket at `path` (HAProxy's runtime API,
// one command per connection) and reads until the peer closes; each read waits at most
// `timeout`. Empty when nothing listens there.
std::string unix_socket_request(const std::string& path, const std::string& line,
                                std::chrono::milliseconds timeout = 2000ms);

// Polls `cond` every `poll` until true or `timeout`; returns whether it became true.
bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds timeout,
              std::chrono::milliseconds poll = 10ms);

// The opposite: true when `cond` held at every poll for the whole `duration` (false as
// soon as it does not). For "nothing changes meanwhile" checks, instead of a sleep.
bool holds_for(const std::function<bool()>& cond, std::chrono::milliseconds duration,
               std::chrono::milliseconds poll = 20ms);

// Stops every thread of every process in a process group (SIGSTOP) and waits until
// the kernel shows them all stopped, so a "hung server" test never races the signal.
void stop_group(pid_t pgid);
void continue_group(pid_t pgid);

// Runs a command to completion (bounded), capturing output; returns exit status.
int run_command(const std::vector<std::string>& argv, std::string* output,
                std::chrono::milliseconds timeout = 30000ms);

}  // namespace pk_test
