// Network namespaces for end-to-end tests: made with a name unique to the test
// process, entered per thread (setns), and always torn down — every process left in
// one is killed before `ip netns del`. Only 127.0.0.0/8 and the documentation ranges
// are ever configured inside them.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace pk_test {

class NetNs {
 public:
  // `base` gets "-<pid>" appended. Throws when the namespace cannot be made.
  explicit NetNs(const std::string& base);
  ~NetNs();
  NetNs(const NetNs&) = delete;
  NetNs& operator=(const NetNs&) = delete;

  const std::string& name() const { return name_; }
  // Runs `argv` inside the namespace (ip netns exec), bounded; returns its exit status.
  int exec(std::vector<std::string> argv, std::string* out = nullptr) const;
  // Like exec, but throws with the output when the command fails (for setup steps).
  void must(std::vector<std::string> argv) const;
  // Runs `fn` on a fresh thread that has entered the namespace and waits for it; a
  // Process started inside `fn` runs in the namespace. Exceptions are rethrown here.
  void enter(const std::function<void()>& fn) const;
  // Moves the calling thread into the namespace for good (client threads).
  void enter_this_thread() const;
  // Every process whose network namespace this is.
  std::vector<pid_t> pids() const;
  // Sends `sig` to every process in the namespace; returns how many were signalled.
  int kill_all(int sig) const;

 private:
  std::string name_;
};

}  // namespace pk_test
