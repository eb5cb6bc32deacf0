// Parsing and printing of human durations as used in the config and on the command
// line: "500ms", "2s", "1m30s", "26h", "2d". A bare number is rejected: the unit is
// never guessed.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "agent/base/clock.h"

namespace poolkeeper {

// Returns the duration, or nullopt with `error` set to a short description.
std::optional<Duration> parse_duration(std::string_view text, std::string* error);

// "1.5s", "200ms", "26h", "3m" — the shortest exact-ish form for logs and status.
std::string format_duration(Duration d);

// ISO 8601 UTC with milliseconds: 2026-11-23T19:18:01.123Z
std::string format_wall(WallTime t);

}  // namespace poolkeeper
