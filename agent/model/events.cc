#include "agent/model/events.h"

#include "agent/base/duration.h"
#include "agent/base/log.h"

namespace poolkeeper {

const char* event_kind_name(EventKind k) {
  switch (k) {
    case EventKind::kCheck: return "check";
    case EventKind::kService: return "service";
    case EventKind::kIntent: return "intent";
    case EventKind::kLifecycle: return "lifecycle";
    case EventKind::kConfig: return "config";
    case EventKind::kUnit: return "unit";
    case EventKind::kConftool: return "conftool";
  }
  return "?";
}

std::string event_logfmt(const Event& e) {
  std::string s = "ts=" + format_wall(e.when) + " level=info event=" + logfmt_value(event_kind_name(e.kind));
  if (!e.name.empty()) s += " name=" + logfmt_value(e.name);
  s += " from=" + logfmt_value(e.from) + " to=" + logfmt_value(e.to);
  if (!e.reason.empty()) s += " reason=" + logfmt_value(e.reason);
  return s;
}

nlohmann::json event_json(const Event& e) {
  return {{"time", format_wall(e.when)}, {"kind", event_kind_name(e.kind)}, {"name", e.name},
          {"from", e.from},              {"to", e.to},     {"reason", e.reason}};
}

}  // namespace poolkeeper
