// The exec kind against real processes (no mocks): exit codes, output, environment,
// and the deadline that kills the whole process group.
#include "checks/exec_check.h"

#include <unistd.h>

#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>

#include "checks/child_reaper.h"

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
  EXPECT_GE(took, 300ms * 3 / 4);  // SIGTERM a quarter of the timeout (100ms at most) early
  EXPECT_LT(took, 300ms + 100ms);  // the deadline is hard: only scheduling slack beyond it
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
  Result r = run({"/bin/sh", "-c", "trap '' TERM; sleep 30"}, 400ms);
  EXPECT_EQ(r.outcome, Outcome::kTimeout);
  auto took = SteadyClock::now() - start;
  // The kill grace is inside the timeout: SIGTERM at 300ms, SIGKILL at 400ms.
  EXPECT_GE(took, 400ms);
  EXPECT_LT(took, 400ms + 60ms) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << "ms";
}

namespace {
bool process_dead(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string p, comm, state;
  return !(stat >> p >> comm >> state) || state == "Z";
}
pid_t read_pid(const std::string& file) {
  std::ifstream in(file);
  pid_t pid = 0;
  in >> pid;
  return pid;
}
// The escapee may be reparented to us a moment after a probe's sweep; a later probe's
// sweep takes it then. Bounded: 50 probes of /bin/true.
bool dead_after_sweeps(pid_t pid) {
  bool dead = process_dead(pid);
  for (int i = 0; i < 50 && !dead; ++i) {
    ExecCheck t({"/bin/true"});
    run_probe(t, std::chrono::seconds(2));
    dead = process_dead(pid);
  }
  return dead;
}
}  // namespace

// A descendant that leaves the probe's process group (setsid) is found anyway: the
// process is a child subreaper, so the escapee becomes its child when the shell exits,
// and the sweep at the end of the probe kills and reaps it — and counts it.
TEST(ExecCheckTest, SetsidEscapeeIsKilledAtTheEndOfTheProbe) {
  ASSERT_TRUE(become_child_subreaper());
  char dir[] = "/tmp/pk-exec-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir));
  std::string pidfile = std::string(dir) + "/escapee.pid";
  uint64_t killed_before = leftover_stats().killed_total;
  Result r = run({"/bin/sh", "-c", "setsid sleep 100 & echo $! > " + pidfile + "; echo started"});
  EXPECT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.reason, "started");
  pid_t escapee = read_pid(pidfile);
  ASSERT_GT(escapee, 0);
  EXPECT_TRUE(dead_after_sweeps(escapee)) << "escapee " << escapee << " still alive";
  EXPECT_GE(leftover_stats().killed_total, killed_before + 1);
  EXPECT_EQ(leftover_stats().alive, 0);
  std::remove(pidfile.c_str());
  rmdir(dir);
}

// A double fork (the classic daemonizing escape) is found the same way.
TEST(ExecCheckTest, DoubleForkEscapeeIsKilled) {
  ASSERT_TRUE(become_child_subreaper());
  char dir[] = "/tmp/pk-exec-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir));
  std::string pidfile = std::string(dir) + "/escapee.pid";
  Result r = run({"/bin/sh", "-c", "(setsid sh -c 'sleep 100 & echo $! > " + pidfile + "' &); sleep 0.1; echo ok"});
  EXPECT_TRUE(r.ok()) << r.reason;
  pid_t escapee = 0;
  for (int i = 0; i < 100 && escapee == 0; ++i) {
    escapee = read_pid(pidfile);
    if (!escapee) usleep(10000);
  }
  ASSERT_GT(escapee, 0);
  EXPECT_TRUE(dead_after_sweeps(escapee)) << "escapee " << escapee << " still alive";
  std::remove(pidfile.c_str());
  rmdir(dir);
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
