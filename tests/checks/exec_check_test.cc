// The exec kind against real processes (no mocks): exit codes, output, environment,
// and the deadline that kills the whole process group.
#include "checks/exec_check.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>

using namespace poolkeeper;
using namespace std::chrono_literals;

namespace {
Result run(std::vector<std::string> argv, Duration timeout = 2s) {
  ExecCheck c(std::move(argv));
  return run_probe(c, timeout);
}
}  // namespace

TEST(ExecCheckTest, ExitZeroPasses) {
  Result r = run({"/bin/sh", "-c", "echo all good; echo second line"});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.reason, "all good");
}

TEST(ExecCheckTest, NonZeroFailsWithFirstLine) {
  Result r = run({"/bin/sh", "-c", "echo '  DISK CRITICAL - /srv 97%  ' >&2; exit 2"});
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(r.reason, "DISK CRITICAL - /srv 97%");
  EXPECT_EQ(r.details["exit_status"], 2);
  r = run({"/bin/false"});
  EXPECT_EQ(r.reason, "exit status 1");
}

TEST(ExecCheckTest, EmptyEnvironmentAndNoShell) {
  Result r = run({"/usr/bin/env"});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.reason, "exit 0");  // no output at all: nothing inherited
  r = run({"/bin/echo", "$HOME", ";", "false"});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.reason, "$HOME ; false");
}

TEST(ExecCheckTest, MissingProgram) {
  Result r = run({"/nonexistent/check_thing"});
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.reason, "cannot run /nonexistent/check_thing: No such file or directory");
}

TEST(ExecCheckTest, DeadlineKillsTheProcessGroup) {
  char dir[] = "/tmp/pk-exec-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir));
  std::string pidfile = std::string(dir) + "/child.pid";
  // The command leaves a grandchild behind that ignores nothing; both must die.
  auto start = SteadyClock::now();
  Result r = run({"/bin/sh", "-c", "sleep 30 & echo $! > " + pidfile + "; echo working; sleep 30"},
                 300ms);
  auto took = SteadyClock::now() - start;
  EXPECT_EQ(r.outcome, Outcome::kTimeout);
  EXPECT_EQ(r.reason, "timed out");
  EXPECT_EQ(r.details["output"], "working");
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 300ms + 100ms + 200ms);  // deadline + TERM grace + scheduling slack
  std::ifstream in(pidfile);
  pid_t grandchild = 0;
  in >> grandchild;
  ASSERT_GT(grandchild, 0);
  // Dead: gone, or a zombie waiting for init to reap it.
  auto dead = [&] {
    std::ifstream stat("/proc/" + std::to_string(grandchild) + "/stat");
    std::string pid, comm, state;
    return !(stat >> pid >> comm >> state) || state == "Z";
  };
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = dead();
    if (!gone) usleep(10000);
  }
  EXPECT_TRUE(gone);
  std::remove(pidfile.c_str());
  rmdir(dir);
}

TEST(ExecCheckTest, TermIgnoredStillKilled) {
  auto start = SteadyClock::now();
  Result r = run({"/bin/sh", "-c", "trap '' TERM; sleep 30"}, 200ms);
  EXPECT_EQ(r.outcome, Outcome::kTimeout);
  EXPECT_LT(SteadyClock::now() - start, 200ms + 100ms + 200ms);
}

TEST(ExecCheckTest, ConfigNeedsCommand) {
  auto t = toml::parse("[checks.x]\nkind = \"exec\"\ncommand = []\n");
  TableReader r(*t["checks"]["x"].as_table(), "f.toml", "checks.x");
  r.string("kind");
  try {
    make_exec_check(r);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "f.toml:3: checks.x.command: must name a program to run");
  }
}
