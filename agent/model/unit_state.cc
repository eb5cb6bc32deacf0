#include "agent/model/unit_state.h"

#include <cstring>

namespace poolkeeper {

namespace {

const std::string* as_string(const UnitValue& v) { return std::get_if<std::string>(&v); }

bool as_int(const UnitValue& v, int* out) {
  const int64_t* i = std::get_if<int64_t>(&v);
  if (!i) return false;
  *out = static_cast<int>(*i);
  return true;
}

std::string signal_name(int sig) {
  const char* abbrev = sig > 0 ? sigabbrev_np(sig) : nullptr;
  return abbrev ? abbrev : std::to_string(sig);
}

}  // namespace

void apply_unit_property(UnitState& s, std::string_view name, const UnitValue& v) {
  if (name == "Job") {
    const UnitJobRef* job = std::get_if<UnitJobRef>(&v);
    if (!job) return;
    if (job->id != s.job_id || job->path != s.job_path) {
      s.job_type.clear();
      s.job_trigger.clear();
    }
    s.job_id = job->id;
    s.job_path = job->id ? job->path : "";
    return;
  }
  if (name == "ActivationDetails") {
    const auto* details = std::get_if<std::vector<std::pair<std::string, std::string>>>(&v);
    if (!details) return;
    s.job_trigger.clear();
    for (const auto& [k, val] : *details)
      s.job_trigger += (s.job_trigger.empty() ? "" : ", ") + k + "=" + val;
    return;
  }
  if (name == "ExecMainCode") {
    as_int(v, &s.exec_main_code);
    return;
  }
  if (name == "ExecMainStatus") {
    as_int(v, &s.exec_main_status);
    return;
  }
  const std::string* text = as_string(v);
  if (!text) return;
  if (name == "LoadState")
    s.load_state = *text;
  else if (name == "ActiveState")
    s.active_state = *text;
  else if (name == "SubState")
    s.sub_state = *text;
  else if (name == "Result")
    s.result = *text;
  else if (name == "JobType")
    s.job_type = *text;
}

bool unit_away(const UnitState& s) {
  if (s.active_state.empty()) return false;
  if (s.active_state != "active") return true;
  return s.job_id != 0 && s.job_type != "start" && s.job_type != "verify-active";
}

bool unit_steady(const UnitState& s) {
  return s.job_id == 0 &&
         (s.active_state == "active" || s.active_state == "inactive" || s.active_state == "failed");
}

std::string unit_cause(const UnitState& s) {
  if (s.result.empty() || s.result == "success") return "";
  if (s.result == "exit-code" || s.result == "signal" || s.result == "core-dump") {
    // si_code of the main process's end (CLD_EXITED, CLD_KILLED, CLD_DUMPED).
    switch (s.exec_main_code) {
      case 1:
        return "exit status " + std::to_string(s.exec_main_status);
      case 2:
        return "signal " + signal_name(s.exec_main_status);
      case 3:
        return "core dump, signal " + signal_name(s.exec_main_status);
      default:
        break;
    }
  }
  return s.result;
}

std::string unit_text(const UnitState& s) {
  std::string out = s.unit + ": " + (s.active_state.empty() ? "state unknown" : s.active_state);
  std::string detail;
  if (!s.sub_state.empty() && s.sub_state != s.active_state &&
      !(s.active_state == "active" && s.sub_state == "running"))
    detail = s.sub_state;
  std::string cause = unit_cause(s);
  if (!cause.empty()) detail += (detail.empty() ? "" : ", ") + cause;
  if (!detail.empty()) out += " (" + detail + ")";
  if (s.job_id != 0)
    out += "; " + (s.job_type.empty() ? std::string("a") : s.job_type) + " job queued";
  return out;
}

std::string unit_job_asker(const UnitState& s) {
  if (s.job_id == 0) return "";
  if (!s.job_trigger.empty()) return "triggered by " + s.job_trigger;
  return "systemd does not say who asked";
}

}  // namespace poolkeeper
