#include "checks/child_reaper.h"

#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace poolkeeper {

namespace {

struct Registry {
  std::mutex mu;
  std::multiset<pid_t> probes;  // commands of running probes (not ours to touch)
  std::set<pid_t> killed;     // leftovers already sent SIGKILL
  uint64_t killed_total = 0;
  int alive = 0;
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: probes may run during exit
  return *r;
}

// The children of this process, from /proc (the kernel here may lack the
// /proc/PID/task/TID/children file): every process whose parent is us.
std::vector<pid_t> children_of(pid_t self) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    char path[300];
    std::snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE* f = std::fopen(path, "re");
    if (!f) continue;
    char buf[512];
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const char* close = std::strrchr(buf, ')');
    if (!close) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(close + 1, " %c %d", &state, &ppid) != 2) continue;
    if (ppid == self) out.push_back(static_cast<pid_t>(std::atoi(e->d_name)));
  }
  ::closedir(d);
  return out;
}

}  // namespace

bool become_child_subreaper() { return ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0; }

pid_t spawn_probe_child(const std::function<pid_t()>& spawn) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lk(r.mu);
  pid_t pid = spawn();
  if (pid > 0) r.probes.insert(pid);
  return pid;
}

void release_probe_child(pid_t pid) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lk(r.mu);
  auto it = r.probes.find(pid);  // one entry: a reused pid may be registered again meanwhile
  if (it != r.probes.end()) r.probes.erase(it);
}

LeftoverStats sweep_leftover_children(bool everything) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lk(r.mu);
  pid_t self = ::getpid();
  std::set<pid_t> alive;
  for (pid_t pid : children_of(self)) {
    if (!everything && r.probes.count(pid)) continue;
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {  // a zombie: gone now
      if (!r.killed.count(pid)) ++r.killed_total;  // it outlived its probe all the same
      r.killed.erase(pid);
      continue;
    }
    if (!r.killed.count(pid)) {
      // Its process group too, when it leads one (setsid escapees do).
      if (::getpgid(pid) == pid) ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      r.killed.insert(pid);
      ++r.killed_total;
    }
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      r.killed.erase(pid);
      continue;
    }
    alive.insert(pid);
  }
  // Forget pids that are no longer our children (reaped elsewhere, or reused).
  std::erase_if(r.killed, [&](pid_t p) { return !alive.count(p); });
  r.alive = static_cast<int>(alive.size());
  return {r.alive, r.killed_total};
}

LeftoverStats leftover_stats() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lk(r.mu);
  return {r.alive, r.killed_total};
}

}  // namespace poolkeeper
