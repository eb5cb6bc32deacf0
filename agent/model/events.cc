#include "agent/model/events.h"

#include "agent/base/duration.h"
#include "agent/base/log.h"

namespace poolkeeper {

std::string event_logfmt(const Event& e) {
  std::string s = "ts=" + format_wall(e.when) + " level=info event=" + logfmt_value(e.kind);
  if (!e.name.empty()) s += " name=" + logfmt_value(e.name);
  s += " from=" + logfmt_value(e.from) + " to=" + logfmt_value(e.to);
  if (!e.reason.empty()) s += " reason=" + logfmt_value(e.reason);
  return s;
}

nlohmann::json event_json(const Event& e) {
  return {{"time", format_wall(e.when)}, {"kind", e.kind}, {"name", e.name},
          {"from", e.from},              {"to", e.to},     {"reason", e.reason}};
}

}  // namespace poolkeeper
