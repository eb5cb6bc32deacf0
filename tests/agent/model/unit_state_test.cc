// The properties systemd sends → the unit's state → what it means (away, steady) and
// how it reads, without a bus: the values are what the watcher decodes from
// PropertiesChanged and Get replies.
#include "agent/model/unit_state.h"

#include <gtest/gtest.h>

using namespace poolkeeper;

namespace {

UnitState with(std::initializer_list<std::pair<const char*, UnitValue>> props) {
  UnitState s;
  s.unit = "nginx.service";
  for (const auto& [name, v] : props) apply_unit_property(s, name, v);
  return s;
}

const UnitValue kNoJob = UnitJobRef{0, "/"};

}  // namespace

TEST(UnitStateTest, RunningIsNeitherAwayNorUnsettled) {
  UnitState s = with({{"LoadState", std::string("loaded")},
                      {"ActiveState", std::string("active")},
                      {"SubState", std::string("running")},
                      {"Job", kNoJob},
                      {"Result", std::string("success")}});
  EXPECT_FALSE(unit_away(s));
  EXPECT_TRUE(unit_steady(s));
  EXPECT_EQ(unit_text(s), "nginx.service: active");
  EXPECT_EQ(unit_cause(s), "");
  EXPECT_EQ(unit_job_asker(s), "");
}

TEST(UnitStateTest, KilledMainProcessNamesTheSignal) {
  UnitState s = with({{"ActiveState", std::string("failed")},
                      {"SubState", std::string("failed")},
                      {"Result", std::string("signal")},
                      {"ExecMainCode", int64_t{2}},
                      {"ExecMainStatus", int64_t{9}}});
  EXPECT_TRUE(unit_away(s));
  EXPECT_TRUE(unit_steady(s));  // stays failed until something happens
  EXPECT_EQ(unit_text(s), "nginx.service: failed (signal KILL)");
}

TEST(UnitStateTest, AutoRestartIsAwayAndNotSteady) {
  UnitState s = with({{"ActiveState", std::string("activating")},
                      {"SubState", std::string("auto-restart")},
                      {"Result", std::string("core-dump")},
                      {"ExecMainCode", int64_t{3}},
                      {"ExecMainStatus", int64_t{11}}});
  EXPECT_TRUE(unit_away(s));
  EXPECT_FALSE(unit_steady(s));
  EXPECT_EQ(unit_text(s), "nginx.service: activating (auto-restart, core dump, signal SEGV)");
}

TEST(UnitStateTest, CausesFromResultAndExecMain) {
  EXPECT_EQ(unit_cause(with({{"Result", std::string("exit-code")},
                             {"ExecMainCode", int64_t{1}},
                             {"ExecMainStatus", int64_t{1}}})),
            "exit status 1");
  EXPECT_EQ(unit_cause(with({{"Result", std::string("timeout")}})), "timeout");
  EXPECT_EQ(unit_cause(with({{"Result", std::string("oom-kill")}})), "oom-kill");
  // A signal without ExecMain* (not sent yet) still says what Result says.
  EXPECT_EQ(unit_cause(with({{"Result", std::string("signal")}})), "signal");
}

TEST(UnitStateTest, StopJobOnARunningUnitIsAwayAndSaysWhoAskedAsFarAsSystemdSays) {
  UnitState s = with({{"ActiveState", std::string("active")},
                      {"SubState", std::string("running")},
                      {"Job", UnitJobRef{4242, "/org/freedesktop/systemd1/job/4242"}}});
  // The type is not known until the watcher has read it from the job object: counts as away.
  EXPECT_TRUE(unit_away(s));
  EXPECT_EQ(unit_text(s), "nginx.service: active; a job queued");
  apply_unit_property(s, "JobType", std::string("stop"));
  EXPECT_TRUE(unit_away(s));
  EXPECT_FALSE(unit_steady(s));
  EXPECT_EQ(s.job_id, 4242u);
  EXPECT_EQ(unit_text(s), "nginx.service: active; stop job queued");
  EXPECT_EQ(unit_job_asker(s), "systemd does not say who asked");
  apply_unit_property(
      s, "ActivationDetails",
      std::vector<std::pair<std::string, std::string>>{{"trigger_unit", "upgrade.timer"}});
  EXPECT_EQ(unit_job_asker(s), "triggered by trigger_unit=upgrade.timer");
  // A new job forgets the old one's type and trigger; no job forgets the path.
  apply_unit_property(s, "Job", UnitJobRef{4243, "/org/freedesktop/systemd1/job/4243"});
  EXPECT_EQ(s.job_type, "");
  EXPECT_EQ(s.job_trigger, "");
  apply_unit_property(s, "Job", kNoJob);
  EXPECT_EQ(s.job_id, 0u);
  EXPECT_EQ(s.job_path, "");
  EXPECT_FALSE(unit_away(s));
}

TEST(UnitStateTest, StartJobsAndReloads) {
  UnitState s = with({{"ActiveState", std::string("active")},
                      {"SubState", std::string("running")},
                      {"Job", UnitJobRef{7, "/org/freedesktop/systemd1/job/7"}},
                      {"JobType", std::string("start")}});
  EXPECT_FALSE(unit_away(s));  // starting what runs changes nothing
  EXPECT_FALSE(unit_steady(s));
  apply_unit_property(s, "JobType", std::string("restart"));
  EXPECT_TRUE(unit_away(s));
  UnitState reloading =
      with({{"ActiveState", std::string("reloading")}, {"SubState", std::string("reload")}});
  EXPECT_TRUE(unit_away(reloading));
  EXPECT_FALSE(unit_steady(reloading));
  UnitState stopping = with(
      {{"ActiveState", std::string("deactivating")}, {"SubState", std::string("stop-sigterm")}});
  EXPECT_TRUE(unit_away(stopping));
  EXPECT_EQ(unit_text(stopping), "nginx.service: deactivating (stop-sigterm)");
  UnitState dead =
      with({{"ActiveState", std::string("inactive")}, {"SubState", std::string("dead")}});
  EXPECT_TRUE(unit_away(dead));
  EXPECT_TRUE(unit_steady(dead));
  EXPECT_EQ(unit_text(dead), "nginx.service: inactive (dead)");
}

TEST(UnitStateTest, NothingKnownIsNotAwayAndWrongTypesAreIgnored) {
  UnitState s = with({});
  EXPECT_FALSE(unit_away(s));
  EXPECT_FALSE(unit_steady(s));
  EXPECT_EQ(unit_text(s), "nginx.service: state unknown");
  apply_unit_property(s, "ActiveState", int64_t{3});
  apply_unit_property(s, "Job", std::string("/x"));
  apply_unit_property(s, "ExecMainCode", std::string("2"));
  apply_unit_property(s, "NRestarts", int64_t{3});
  EXPECT_EQ(s, with({}));
}
