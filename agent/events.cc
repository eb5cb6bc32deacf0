#include "agent/events.h"

#include "agent/duration.h"
#include "agent/utf8.h"

namespace poolkeeper {

std::string logfmt_value(const std::string& raw) {
  // Log lines are read as UTF-8 (journal, log shippers): repair what came from outside.
  std::string v = valid_utf8(raw);
  bool plain = !v.empty();
  for (char c : v)
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) >= 0x7f)
      plain = false;
  if (plain) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < ' ') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "\"";
}

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

void EventRing::push(Event e) {
  items_.push_back(std::move(e));
  while (items_.size() > capacity_) items_.pop_front();
}

}  // namespace poolkeeper
