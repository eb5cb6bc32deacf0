#include "agent/base/duration.h"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace poolkeeper {

std::optional<Duration> parse_duration(std::string_view text, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<Duration> {
    if (error) *error = why;
    return std::nullopt;
  };
  if (text.empty()) return fail("empty duration");
  long double total_ns = 0;
  size_t i = 0;
  bool any = false;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
    if (i == start) return fail("expected a number in \"" + std::string(text) + "\"");
    std::string num(text.substr(start, i - start));
    if (num.find('.') != num.rfind('.') || num == ".")
      return fail("bad number \"" + num + "\" in \"" + std::string(text) + "\"");
    size_t ustart = i;
    while (i < text.size() && ((text[i] >= 'a' && text[i] <= 'z') || text[i] == 'u')) ++i;
    std::string_view unit = text.substr(ustart, i - ustart);
    long double scale;
    if (unit == "ns") scale = 1;
    else if (unit == "us") scale = 1e3;
    else if (unit == "ms") scale = 1e6;
    else if (unit == "s") scale = 1e9;
    else if (unit == "m") scale = 60e9;
    else if (unit == "h") scale = 3600e9;
    else if (unit == "d") scale = 86400e9;
    else if (unit.empty())
      return fail("missing unit in \"" + std::string(text) + "\" (use ms, s, m, h or d)");
    else
      return fail("unknown unit \"" + std::string(unit) + "\" in \"" + std::string(text) + "\"");
    total_ns += std::strtold(num.c_str(), nullptr) * scale;
    any = true;
  }
  if (!any) return fail("empty duration");
  if (total_ns > 1e18L) return fail("duration \"" + std::string(text) + "\" is too long");
  return Duration(static_cast<long long>(std::llround(static_cast<double>(total_ns))));
}

std::string format_duration(Duration d) {
  long long ns = d.count();
  const char* sign = "";
  if (ns < 0) {
    sign = "-";
    ns = -ns;
  }
  char buf[64];
  if (ns == 0) return "0s";
  if (ns % 3'600'000'000'000LL == 0) {
    std::snprintf(buf, sizeof buf, "%s%lldh", sign, ns / 3'600'000'000'000LL);
  } else if (ns % 60'000'000'000LL == 0) {
    std::snprintf(buf, sizeof buf, "%s%lldm", sign, ns / 60'000'000'000LL);
  } else if (ns >= 1'000'000'000LL) {
    std::snprintf(buf, sizeof buf, "%s%.3gs", sign, ns / 1e9);
  } else if (ns >= 1'000'000LL) {
    std::snprintf(buf, sizeof buf, "%s%.3gms", sign, ns / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%s%.3gus", sign, ns / 1e3);
  }
  return buf;
}

std::string format_wall(WallTime t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

}  // namespace poolkeeper
