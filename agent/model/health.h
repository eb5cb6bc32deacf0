// The pure parts of the state model: a check's rise/fall state, admin intent,
// lifecycle and the effective-state rule. No I/O, no threads, no clock reads: callers
// pass time in. Tested exhaustively in tests/agent/model/health_test.cc.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/base/clock.h"

namespace poolkeeper {

enum class CheckHealth { kUnknown, kHealthy, kUnhealthy };
const char* check_health_name(CheckHealth h);

// What a submitted result did to the state.
enum class Change { kUnchanged, kPending, kChanged };

// Rise/fall thresholds. Contract:
//  - starts kUnknown, which counts as unhealthy for pooling;
//  - the first result does NOT bypass the thresholds: kUnknown becomes kHealthy after
//    `rise` consecutive successes and kUnhealthy after `fall` consecutive failures;
//  - a result that disagrees with the current state starts (or continues) a streak and
//    reports kPending; one result of the other kind resets the streak.
class CheckState {
 public:
  CheckState(int rise, int fall) : rise_(rise), fall_(fall) {}
  Change submit(bool ok);

  CheckHealth health() const { return health_; }
  int successes() const { return successes_; }  // consecutive
  int failures() const { return failures_; }    // consecutive
  int rise() const { return rise_; }
  int fall() const { return fall_; }
  // True while a transition is under way (the scheduler then uses fast_interval).
  bool changing() const;
  // Keeps the current state and streaks but adopts new thresholds (config reload).
  void set_thresholds(int rise, int fall);
  // Starts in a known state with empty streaks (carried over from a restart of the
  // agent within the same boot): a healthy check still needs `fall` failures to fall.
  void seed(CheckHealth h) {
    health_ = h;
    successes_ = failures_ = 0;
  }

 private:
  int rise_, fall_;
  CheckHealth health_ = CheckHealth::kUnknown;
  int successes_ = 0, failures_ = 0;
};

enum class Intent { kPooled, kDepooled, kDrained, kInactive };
const char* intent_name(Intent i);
std::optional<Intent> parse_intent(const std::string& s);

// The operator's wish for one service (persisted). Times are wall times because they
// must survive restarts and reboots.
struct AdminIntent {
  Intent intent = Intent::kPooled;
  std::string reason{};
  std::string who{};
  WallTime when{};
  std::optional<WallTime> expires{};  // back to pooled at this time
  bool until_boot = false;            // back to pooled once healthy after the next boot
  std::string boot_id{};              // the boot during which until_boot was set
  bool operator==(const AdminIntent&) const = default;
};

enum class Lifecycle { kStarting, kRunning, kStopping };
const char* lifecycle_name(Lifecycle l);

enum class Effective { kPooled, kDrained, kNotPooled };
const char* effective_name(Effective e);

struct EffectiveState {
  Effective state = Effective::kNotPooled;
  std::string reason;  // empty when pooled for the plain reason (all good)
  bool operator==(const EffectiveState&) const = default;
};

// The rule: pooled only if lifecycle is running, intent is pooled and the service is
// healthy; otherwise the reason names which of them said no (in that order).
// `unhealthy_reason` describes the first failing critical check ("check web unhealthy:
// status 500"); empty means healthy. `floor_keeps` (issue: safety floor) turns an
// unhealthy-but-required host into pooled with reason "kept by floor: …".
EffectiveState decide_effective(Lifecycle lifecycle, const AdminIntent& intent,
                                const std::string& unhealthy_reason, bool floor_keeps);

// The persisted intents as read at start (agent/runtime/state_store.h reads them).
struct LoadedState {
  enum class Status { kMissing, kOk, kUnreadable } status = Status::kMissing;
  std::string error;  // for kUnreadable: what was wrong, one line
  std::map<std::string, AdminIntent> intents;
};

}  // namespace poolkeeper
