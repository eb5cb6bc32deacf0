#include "agent/base/log.h"

#include <unistd.h>

#include <chrono>

#include "agent/base/clock.h"
#include "agent/base/duration.h"
#include "agent/base/utf8.h"

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

void log_raw(const std::string& line) {
  std::string l = line + "\n";
  ssize_t ignored = ::write(2, l.data(), l.size());
  (void)ignored;
}

void log_line(const char* level, const std::string& msg, LogFields fields) {
  std::string s = "ts=" + format_wall(real_clock().wall()) + " level=" + level +
                  " msg=" + logfmt_value(msg);
  for (const auto& [k, v] : fields) s += std::string(" ") + k + "=" + logfmt_value(v);
  log_raw(s);
}

}  // namespace poolkeeper
