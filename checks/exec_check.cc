#include "checks/exec_check.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "agent/base/utf8.h"
#include "checks/child_reaper.h"

namespace poolkeeper {

namespace {

constexpr size_t kMaxOutput = 4096;
// SIGTERM comes this long before the deadline and SIGKILL at it, so the whole probe
// ends by its deadline ("hard" timeout); a quarter of a short timeout at most.
constexpr auto kKillGrace = std::chrono::milliseconds(100);
// After SIGKILL a process normally goes at once; one in uninterruptible sleep (a hung
// mount) does not. We wait this long, then leave it to the leftover sweeps.
constexpr auto kReapWait = std::chrono::milliseconds(20);

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// The first non-blank line of a command's output as valid UTF-8 (a Nagios plugin may
// print Latin-1, or be cut off mid-character), at most 200 bytes, cut on a character
// boundary.
std::string first_line(const std::string& raw) {
  std::string out = valid_utf8(raw);
  size_t start = out.find_first_not_of(" \t\r\n");
  if (start == std::string::npos) return "";
  size_t end = out.find_first_of("\r\n", start);
  std::string line = out.substr(start, end == std::string::npos ? std::string::npos : end - start);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.pop_back();
  if (line.size() > 200) line = cut_utf8(line, 197) + "...";
  return line;
}

// Waits for `pid` up to `until`; returns true and sets *status once it has been reaped.
bool wait_until(pid_t pid, int* status, SteadyTime until) {
  for (;;) {
    pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return true;  // already gone
    if (real_clock().now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// What came of the command before it exited or its time was up.
struct Ended {
  std::string output;  // at most kMaxOutput bytes of stdout and stderr
  bool exited = false, timed_out = false;
  int status = 0;  // waitpid's, once it has been reaped
};

// Starts argv in a process group of its own with stdin from /dev/null, stdout and
// stderr into `out_fd`, an empty environment and default signals. The pid, or -1 with
// *err set.
pid_t spawn(std::vector<std::string>& args, int out_fd, int* err) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 2);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {nullptr};

  pid_t pid = -1;
  spawn_probe_child([&] {
    *err = ::posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp);
    return *err == 0 ? pid : -1;
  });
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  return pid;
}

// Reads the command's output from `out_fd` until it exits or `term_at` comes; `pfd`
// (a pidfd, or -1) wakes the wait when it exits.
Ended collect(pid_t pid, int out_fd, int pfd, SteadyTime term_at) {
  Ended e;
  bool pipe_open = true;
  while (!e.exited) {
    int left = poll_ms(term_at);
    if (left == 0) {
      e.timed_out = true;
      break;
    }
    struct pollfd fds[2];
    int n = 0;
    if (pipe_open) fds[n++] = {out_fd, POLLIN, 0};
    if (pfd >= 0) fds[n++] = {pfd, POLLIN, 0};
    int wait_ms = std::min(left, pfd >= 0 ? 1 << 30 : 5);
    int r = ::poll(fds, n, wait_ms);
    if (r < 0 && errno != EINTR) break;
    if (pipe_open) {
      char buf[1024];
      ssize_t got = ::read(out_fd, buf, sizeof buf);
      if (got > 0) {
        if (e.output.size() < kMaxOutput)
          e.output.append(buf, std::min(static_cast<size_t>(got), kMaxOutput - e.output.size()));
      } else if (got == 0) {
        pipe_open = false;
      }
    }
    if (::waitpid(pid, &e.status, WNOHANG) == pid) e.exited = true;
  }
  if (e.exited) {
    char buf[1024];
    ssize_t got;
    while (e.output.size() < kMaxOutput && (got = ::read(out_fd, buf, sizeof buf)) > 0)
      e.output.append(buf, std::min(static_cast<size_t>(got), kMaxOutput - e.output.size()));
  }
  return e;
}

// Ends the command if it still runs (SIGTERM to its group, SIGKILL at the deadline),
// then whatever it left behind, in its group or reparented to us.
void end_group(pid_t pid, Deadline deadline, Ended* e) {
  if (!e->exited) {
    ::kill(-pid, SIGTERM);
    if (!wait_until(pid, &e->status, deadline)) {
      ::kill(-pid, SIGKILL);
      // Never block here: a process in uninterruptible sleep ignores SIGKILL until
      // its I/O ends. Such a one is left to the sweeps, which reap and count it.
      wait_until(pid, &e->status, real_clock().now() + kReapWait);
    }
  }
  ::kill(-pid, SIGKILL);  // whatever the command left behind in its group
  release_probe_child(pid);
  // And whatever left the group (setsid, double fork): reparented to us, the subreaper.
  sweep_leftover_children();
}

// The probe's result: exit 0 passes; the first line of output is the reason.
Result judge(const Ended& e) {
  int status = e.status;
  std::string line = first_line(e.output);
  if (e.timed_out) {
    Result r = Result::fail(Outcome::kTimeout, "timed out");
    if (!line.empty()) r.details["output"] = line;
    return r;
  }
  Result r;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    r = Result::pass(line.empty() ? "exit 0" : line);
  } else if (WIFEXITED(status)) {
    r = Result::fail(Outcome::kFailed,
                     line.empty() ? "exit status " + std::to_string(WEXITSTATUS(status)) : line);
  } else if (WIFSIGNALED(status)) {
    r = Result::fail(Outcome::kFailed, std::string("killed by signal ") +
                                           std::to_string(WTERMSIG(status)) +
                                           (line.empty() ? "" : ": " + line));
  } else {
    r = Result::fail(Outcome::kFailed, "ended abnormally");
  }
  if (WIFEXITED(status)) r.details["exit_status"] = WEXITSTATUS(status);
  return r;
}

}  // namespace

ExecCheck::ExecCheck(std::vector<std::string> argv) : argv_(std::move(argv)) {}

std::string ExecCheck::target() const {
  std::string s;
  for (const auto& a : argv_) s += (s.empty() ? "" : " ") + a;
  return s;
}

Result ExecCheck::run(Deadline deadline, const Clock& /*clock*/) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0)
    return Result::fail(Outcome::kFailed, std::string("pipe: ") + std::strerror(errno));
  ::fcntl(pipefd[0], F_SETFL, O_NONBLOCK);  // only our end; the command writes blocking

  SteadyTime start = real_clock().now();
  Duration grace = std::min<Duration>(kKillGrace, (deadline - start) / 4);
  SteadyTime term_at = deadline - grace;
  int err = 0;
  pid_t pid = spawn(argv_, pipefd[1], &err);
  ::close(pipefd[1]);
  if (err != 0) {
    ::close(pipefd[0]);
    return Result::fail(Outcome::kFailed,
                        "cannot run " + argv_[0] + ": " + std::strerror(err));
  }

  int pfd = pidfd_open(pid);
  Ended ended = collect(pid, pipefd[0], pfd, term_at);
  end_group(pid, deadline, &ended);
  ::close(pipefd[0]);
  if (pfd >= 0) ::close(pfd);
  return judge(ended);
}

std::unique_ptr<Check> make_exec_check(TableReader& reader) {
  auto argv = reader.strings("command");
  if (!argv) reader.fail("command", "is required (a list: program and its arguments)");
  if (argv->empty() || (*argv)[0].empty())
    reader.fail("command", "must name a program to run");
  return std::make_unique<ExecCheck>(std::move(*argv));
}

}  // namespace poolkeeper
