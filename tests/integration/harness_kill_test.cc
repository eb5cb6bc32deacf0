// A test binary killed with kill -9 leaves no server behind: the harness's guardian
// kills every process group it started (here nginx with its worker, and a shell whose
// background job outlives it), though no destructor ran.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <sstream>

#include "tests/harness/harness.h"

using namespace pk_test;

namespace {

// Live (not zombie) processes whose process group is `pgid`.
std::vector<std::string> live_members(pid_t pgid) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string stat = read_file(e.path().string() + "/stat");
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream f(stat.substr(close + 2));
    char state;
    long ppid, pgrp;
    if (!(f >> state >> ppid >> pgrp)) continue;
    if (pgrp == pgid && state != 'Z') out.push_back(stat.substr(0, close + 1));
  }
  return out;
}

}  // namespace

TEST(HarnessKillTest, ServersDieWithAKilledTestBinary) {
  TempDir d;
  Process helper({HARNESS_KILL_HELPER, d.file("groups")}, d.file("helper.log"));
  ASSERT_TRUE(wait_for([&] { return !read_file(d.file("groups")).empty(); }, 20000ms))
      << read_file(d.file("helper.log"));
  pid_t nginx = 0, sh = 0;
  std::string tmp;
  std::istringstream(read_file(d.file("groups"))) >> nginx >> sh >> tmp;
  ASSERT_GT(nginx, 0);
  ASSERT_GT(sh, 0);
  // The helper names the groups as soon as it has started them; under load nginx's
  // worker or the shell's job may still be on its way.
  EXPECT_TRUE(wait_for([&] { return live_members(nginx).size() >= 2; }, 10000ms, 20ms))
      << "nginx's master and worker";
  EXPECT_TRUE(wait_for([&] { return live_members(sh).size() == 2; }, 10000ms, 20ms))
      << "the shell (then sleep 1001) and its job";

  ::kill(helper.pid(), SIGKILL);  // the process only: no destructor runs
  bool gone = wait_for([&] { return live_members(nginx).empty() && live_members(sh).empty(); }, 5000ms, 20ms);
  std::string left;
  for (pid_t g : {nginx, sh})
    for (const auto& m : live_members(g)) left += m + "\n";
  EXPECT_TRUE(gone) << "left running:\n" << left;
  for (pid_t g : {nginx, sh}) ::kill(-g, SIGKILL);  // never leave them, whatever happened
  if (tmp.rfind("/tmp/poolkeeper-test-", 0) == 0) std::filesystem::remove_all(tmp);
}
