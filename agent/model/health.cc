#include "agent/model/health.h"

#include "agent/base/enum_names.h"

namespace poolkeeper {

namespace {
constexpr EnumNames<CheckHealth, 3> kCheckHealthNames{
    {{CheckHealth::kUnknown, "unknown"}, {CheckHealth::kHealthy, "healthy"}, {CheckHealth::kUnhealthy, "unhealthy"}}};
constexpr EnumNames<Lifecycle, 3> kLifecycleNames{
    {{Lifecycle::kStarting, "starting"}, {Lifecycle::kRunning, "running"}, {Lifecycle::kStopping, "stopping"}}};
constexpr EnumNames<Effective, 3> kEffectiveNames{
    {{Effective::kPooled, "pooled"}, {Effective::kDrained, "drained"}, {Effective::kNotPooled, "not_pooled"}}};
}  // namespace

const char* check_health_name(CheckHealth h) { return kCheckHealthNames.name(h, "unknown"); }

Change CheckState::submit(bool ok) {
  // A result extends its own streak and ends the other; the streak moves the check to
  // its side once it reaches that side's threshold (rise for passes, fall for failures).
  int& streak = ok ? successes_ : failures_;
  (ok ? failures_ : successes_) = 0;
  ++streak;
  CheckHealth side = ok ? CheckHealth::kHealthy : CheckHealth::kUnhealthy;
  if (health_ == side) return Change::kUnchanged;
  if (streak < (ok ? rise_ : fall_)) return Change::kPending;
  health_ = side;
  return Change::kChanged;
}

bool CheckState::changing() const {
  return (health_ != CheckHealth::kHealthy && successes_ > 0) ||
         (health_ != CheckHealth::kUnhealthy && failures_ > 0);
}

void CheckState::set_thresholds(int rise, int fall) {
  rise_ = rise;
  fall_ = fall;
  // A streak that already meets a lowered threshold completes on the next result.
}

namespace {
constexpr EnumNames<Intent, 4> kIntentNames{{{Intent::kPooled, "pooled"},
                                             {Intent::kDepooled, "depooled"},
                                             {Intent::kDrained, "drained"},
                                             {Intent::kInactive, "inactive"}}};
}  // namespace

const char* intent_name(Intent i) { return kIntentNames.name(i, "pooled"); }

std::optional<Intent> parse_intent(const std::string& s) { return kIntentNames.parse(s); }

const char* lifecycle_name(Lifecycle l) { return kLifecycleNames.name(l, "starting"); }

const char* effective_name(Effective e) { return kEffectiveNames.name(e, "not_pooled"); }

EffectiveState decide_effective(Lifecycle lifecycle, const AdminIntent& intent,
                                const std::string& unhealthy_reason, bool floor_keeps) {
  if (lifecycle == Lifecycle::kStopping) return {Effective::kNotPooled, "stopping"};
  if (lifecycle == Lifecycle::kStarting) return {Effective::kNotPooled, "starting"};
  auto with_reason = [&](const char* what) {
    std::string r = what;
    if (!intent.reason.empty()) r += ": " + intent.reason;
    return r;
  };
  switch (intent.intent) {
    case Intent::kDepooled: return {Effective::kNotPooled, with_reason("depooled")};
    case Intent::kInactive: return {Effective::kNotPooled, with_reason("inactive")};
    case Intent::kDrained:
      // A drain keeps existing clients; a broken service keeps nobody.
      if (!unhealthy_reason.empty() && !floor_keeps)
        return {Effective::kNotPooled, unhealthy_reason};
      return {Effective::kDrained, with_reason("drained")};
    case Intent::kPooled: break;
  }
  if (unhealthy_reason.empty()) return {Effective::kPooled, ""};
  if (floor_keeps) return {Effective::kPooled, "kept by floor: " + unhealthy_reason};
  return {Effective::kNotPooled, unhealthy_reason};
}

}  // namespace poolkeeper
