// A systemd unit's state as systemd reports it on the bus, and what it means for the
// checks that name the unit (`unit = "nginx.service"`): whether the unit is away from
// active/running (which brings their next probe forward), whether it has settled, and
// the words /status, the event log and a failing probe's reason use for it. Pure: the
// bus itself is agent/runtime/unit_watcher.h, which decodes the properties into
// UnitValues and folds them in with apply_unit_property().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace poolkeeper {

struct UnitState {
  std::string unit;          // "nginx.service"
  std::string load_state;    // Unit.LoadState: loaded, not-found, masked, …
  std::string active_state;  // Unit.ActiveState: active, reloading, inactive, failed, activating,
                             // deactivating
  std::string sub_state;   // Unit.SubState: running, exited, dead, auto-restart, stop-sigterm, …
  std::string result;      // Service.Result: success, exit-code, signal, core-dump, timeout, …
  int exec_main_code = 0;  // Service.ExecMainCode: 1 exited, 2 killed, 3 dumped (si_code)
  int exec_main_status = 0;  // Service.ExecMainStatus: exit status or signal number
  uint32_t job_id = 0;       // Unit.Job: 0 = no job
  std::string job_path;
  std::string job_type;  // Job.JobType of that job: stop, restart, start, …; "" not known
  // Job.ActivationDetails (systemd 252+): what triggered the job, e.g. "trigger_unit=x.timer".
  // systemd records no caller for a job asked for over the bus.
  std::string job_trigger;
  bool operator==(const UnitState&) const = default;
};

// A property's value as decoded from the bus: strings (s, o), integers (i, u, t), the
// Job pair (uo) and ActivationDetails (a(ss)).
struct UnitJobRef {
  uint32_t id = 0;
  std::string path;
};
using UnitValue = std::variant<std::string, int64_t, UnitJobRef,
                               std::vector<std::pair<std::string, std::string>>>;

// Folds one property (Unit, Service or Job interface) into `s`; names it does not use
// and values of an unexpected type are ignored. A new Job forgets the old job's type
// and trigger (the watcher then asks the job object for them).
void apply_unit_property(UnitState& s, std::string_view name, const UnitValue& v);

// Away from active/running: not active (deactivating, failed, activating — an
// auto-restart —, inactive, reloading), or a job queued that is not a start (a stop, a
// restart; a job whose type is not known yet counts). Nothing known yet is not away.
bool unit_away(const UnitState& s);
// No job, and in a state that stays until something happens (active, inactive, failed).
bool unit_steady(const UnitState& s);
// Why the main process ended, from Result and ExecMain*: "signal KILL", "exit status 1",
// "core dump, signal SEGV", "timeout"; "" when the result is success or unknown.
std::string unit_cause(const UnitState& s);
// "nginx.service: failed (signal KILL)", "nginx.service: deactivating (stop-sigterm);
// stop job queued", "nginx.service: activating (auto-restart, signal KILL)".
std::string unit_text(const UnitState& s);
// Who asked for the job, as far as systemd says: "triggered by trigger_unit=x.timer", or
// "systemd does not say who asked". "" without a job.
std::string unit_job_asker(const UnitState& s);

}  // namespace poolkeeper
