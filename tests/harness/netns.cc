// Network namespaces for end-to-end tests (see netns.h).
#include "tests/harness/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <exception>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "tests/harness/harness.h"

namespace pk_test {

NetNs::NetNs(const std::string& base) : name_(base + "-" + std::to_string(::getpid())) {
  std::string out;
  run_command({"ip", "netns", "delete", name_}, nullptr);  // a leftover of a killed run
  if (run_command({"ip", "netns", "add", name_}, &out) != 0)
    throw std::runtime_error("ip netns add " + name_ + ": " + out);
  must({"ip", "link", "set", "lo", "up"});
}

NetNs::~NetNs() {
  // Kill until none is left (a dying parent may still fork), bounded.
  for (int i = 0; i < 50 && kill_all(SIGKILL) > 0; ++i) std::this_thread::sleep_for(20ms);
  run_command({"ip", "netns", "delete", name_}, nullptr);
}

int NetNs::exec(std::vector<std::string> argv, std::string* out) const {
  argv.insert(argv.begin(), {"ip", "netns", "exec", name_});
  std::string o;
  int rc = run_command(argv, &o);
  if (out) *out = o;
  return rc;
}

void NetNs::must(std::vector<std::string> argv) const {
  std::string out, cmd;
  for (const auto& a : argv) cmd += a + " ";
  if (exec(argv, &out) != 0) throw std::runtime_error("in netns " + name_ + ": " + cmd + "failed: " + out);
}

void NetNs::enter_this_thread() const {
  int fd = ::open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open netns " + name_ + ": " + std::strerror(errno));
  int rc = ::setns(fd, CLONE_NEWNET);
  int err = errno;
  ::close(fd);
  if (rc != 0) throw std::runtime_error("setns " + name_ + ": " + std::strerror(err));
}

void NetNs::enter(const std::function<void()>& fn) const {
  std::exception_ptr error;
  std::thread t([&] {
    try {
      enter_this_thread();
      fn();
    } catch (...) {
      error = std::current_exception();
    }
  });
  t.join();
  if (error) std::rethrow_exception(error);
}

std::vector<pid_t> NetNs::pids() const {
  std::vector<pid_t> out;
  struct stat want;
  if (::stat(("/run/netns/" + name_).c_str(), &want) != 0) return out;
  std::error_code ec;
  for (const auto& p : std::filesystem::directory_iterator("/proc", ec)) {
    std::string n = p.path().filename();
    if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::stol(n));
    if (pid == ::getpid()) continue;  // our own threads may visit; the process never lives there
    struct stat st;
    if (::stat((p.path() / "ns/net").c_str(), &st) != 0) continue;
    if (st.st_ino == want.st_ino && st.st_dev == want.st_dev) out.push_back(pid);
  }
  return out;
}

int NetNs::kill_all(int sig) const {
  int n = 0;
  for (pid_t p : pids())
    if (::kill(p, sig) == 0) ++n;
  return n;
}

}  // namespace pk_test
