// What a stop signal means (drain or keep) and the carry-over a "keep" stop leaves for
// the next process in the same boot.
#include "agent/runtime/stop_action.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent/runtime/carryover.h"

using namespace poolkeeper;

namespace {

std::function<std::optional<bool>(std::string*)> systemd_says(std::optional<bool> stopping, int* asked = nullptr) {
  return [stopping, asked](std::string* error) {
    if (asked) ++*asked;
    if (!stopping) *error = "not booted with systemd";
    return stopping;
  };
}

struct TmpDir {
  std::string path;
  TmpDir() {
    char t[] = "/tmp/poolkeeper-unit-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TmpDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST(StopActionTest, AutoAsksSystemd) {
  auto d = decide_stop(std::nullopt, StopAction::kAuto, systemd_says(true));
  EXPECT_EQ(d.action, StopAction::kDrain);
  EXPECT_EQ(d.why, "systemd is taking the host down");
  d = decide_stop(std::nullopt, StopAction::kAuto, systemd_says(false));
  EXPECT_EQ(d.action, StopAction::kKeep);
  // No systemd to ask: the safe old behaviour.
  d = decide_stop(std::nullopt, StopAction::kAuto, systemd_says(std::nullopt));
  EXPECT_EQ(d.action, StopAction::kDrain);
  EXPECT_EQ(d.why, "cannot tell a restart from a shutdown (not booted with systemd): draining");
}

TEST(StopActionTest, ConfigAndOverrideFileWinWithoutAskingSystemd) {
  int asked = 0;
  EXPECT_EQ(decide_stop(std::nullopt, StopAction::kKeep, systemd_says(true, &asked)).action, StopAction::kKeep);
  EXPECT_EQ(decide_stop(std::nullopt, StopAction::kDrain, systemd_says(false, &asked)).action, StopAction::kDrain);
  auto d = decide_stop(std::string("keep\n"), StopAction::kDrain, systemd_says(true, &asked));
  EXPECT_EQ(d.action, StopAction::kKeep);
  EXPECT_EQ(d.why, "stop-action file says keep");
  EXPECT_EQ(decide_stop(std::string(" drain "), StopAction::kKeep, systemd_says(false, &asked)).action,
            StopAction::kDrain);
  EXPECT_EQ(asked, 0);
  // Nonsense in the file is ignored (and said so); "auto" there defers to the config.
  d = decide_stop(std::string("reboot"), StopAction::kKeep, systemd_says(true, &asked));
  EXPECT_EQ(d.action, StopAction::kKeep);
  EXPECT_EQ(d.why, "agent.stop_action = \"keep\" (stop-action file ignored: \"reboot\" is not drain or keep)");
  EXPECT_EQ(decide_stop(std::string("auto"), StopAction::kAuto, systemd_says(false, &asked)).action,
            StopAction::kKeep);
  EXPECT_EQ(asked, 1);
}

TEST(StopActionTest, FileNextToTheAdminSocketIsReadOnce) {
  EXPECT_EQ(stop_action_file("/run/poolkeeper/admin.sock"), "/run/poolkeeper/stop-action");
  TmpDir d;
  std::string f = d.path + "/stop-action";
  EXPECT_FALSE(take_stop_action_file(f).has_value());
  std::ofstream(f) << "keep\n";
  EXPECT_EQ(take_stop_action_file(f), std::optional<std::string>("keep\n"));
  EXPECT_FALSE(take_stop_action_file(f).has_value());  // one-shot
}

TEST(CarryOverTest, SameBootRoundTripOnce) {
  TmpDir d;
  CarryOver c;
  c.boot_id = "boot-1";
  c.boottime_ms = 1'000'000;
  c.checks["export"] = {CheckHealth::kHealthy, "kind = 'nfs'"};
  c.checks["web"] = {CheckHealth::kUnhealthy, "kind = 'http'"};
  c.services["nfs"] = "pooled";
  ASSERT_EQ(save_carryover(d.path, c), "");
  std::string why;
  auto got = take_carryover(d.path, "boot-1", 1'000'000 + 2'000, &why);
  ASSERT_TRUE(got.has_value()) << why;
  EXPECT_EQ(got->checks.at("export").health, CheckHealth::kHealthy);
  EXPECT_EQ(got->checks.at("export").fingerprint, "kind = 'nfs'");
  EXPECT_EQ(got->checks.at("web").health, CheckHealth::kUnhealthy);
  EXPECT_EQ(got->services.at("nfs"), "pooled");
  // Removed once read: a later crash and restart starts cold.
  EXPECT_FALSE(take_carryover(d.path, "boot-1", 1'000'000 + 3'000, &why).has_value());
  EXPECT_EQ(why, "no carry-over file");
}

TEST(CarryOverTest, AnotherBootOldOrBrokenStartsCold) {
  TmpDir d;
  CarryOver c;
  c.boot_id = "boot-1";
  c.boottime_ms = 1'000'000;
  c.checks["export"] = {CheckHealth::kHealthy, "x"};
  std::string why;
  ASSERT_EQ(save_carryover(d.path, c), "");
  EXPECT_FALSE(take_carryover(d.path, "boot-2", 1'000'500, &why).has_value());
  EXPECT_EQ(why, "written in another boot");
  ASSERT_EQ(save_carryover(d.path, c), "");
  EXPECT_FALSE(take_carryover(d.path, "boot-1", 1'000'000 + 301'000, &why).has_value());
  EXPECT_EQ(why, "written 301 s ago (limit 300 s)");
  ASSERT_EQ(save_carryover(d.path, c), "");
  EXPECT_FALSE(take_carryover(d.path, "", 1'000'500, &why).has_value());  // no boot id: cannot tell
  std::ofstream(carryover_path(d.path)) << "{\"format\": 1, \"boot_id\": \"boot-1\"}";
  EXPECT_FALSE(take_carryover(d.path, "boot-1", 1'000'500, &why).has_value());
  EXPECT_NE(why.find("bad entry"), std::string::npos) << why;
  std::ofstream(carryover_path(d.path)) << R"({"format": 1, "boot_id": "boot-1", "boottime_ms": 1000000,
    "checks": {"export": {"health": "great", "fingerprint": "x"}}, "services": {}})";
  EXPECT_FALSE(take_carryover(d.path, "boot-1", 1'000'500, &why).has_value());
  EXPECT_NE(why.find("unknown health \"great\""), std::string::npos) << why;
  EXPECT_FALSE(std::filesystem::exists(carryover_path(d.path)));
}
