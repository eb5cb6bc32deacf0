#include "agent/log.h"

#include <unistd.h>

#include <chrono>

#include "agent/duration.h"
#include "agent/events.h"

namespace poolkeeper {

void log_raw(const std::string& line) {
  std::string l = line + "\n";
  ssize_t ignored = ::write(2, l.data(), l.size());
  (void)ignored;
}

void log_line(const char* level, const std::string& msg, LogFields fields) {
  std::string s = "ts=" + format_wall(std::chrono::system_clock::now()) + " level=" + level +
                  " msg=" + logfmt_value(msg);
  for (const auto& [k, v] : fields) s += std::string(" ") + k + "=" + logfmt_value(v);
  log_raw(s);
}

}  // namespace poolkeeper
