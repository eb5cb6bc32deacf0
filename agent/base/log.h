// Structured log lines (logfmt) on stderr; systemd's journal takes them from there.
// Thread-safe: one write(2) per line.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

namespace poolkeeper {

using LogFields = std::initializer_list<std::pair<const char*, std::string>>;

void log_line(const char* level, const std::string& msg, LogFields fields = {});
inline void log_info(const std::string& msg, LogFields f = {}) { log_line("info", msg, f); }
inline void log_warn(const std::string& msg, LogFields f = {}) { log_line("warn", msg, f); }
inline void log_error(const std::string& msg, LogFields f = {}) { log_line("error", msg, f); }
// logfmt value quoting: bare when safe, else "…" with \" and \\ escaped; repaired
// to valid UTF-8 first.
std::string logfmt_value(const std::string& v);
// Writes an already formatted logfmt line (events).
void log_raw(const std::string& line);

}  // namespace poolkeeper
