// What a "keep" stop (a restart of the agent alone) hands to the next process in the
// same boot: each check's health and each service's effective state, in
// agent.state_dir/carryover.json next to state.json. The next start seeds those checks
// (a healthy one still needs `fall` failures to go unhealthy), so /health does not turn
// 503 just because the new process has not probed yet. Read once and removed; a file
// from another boot, older than kMaxAge or unreadable means a normal cold start.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "agent/model/health.h"

namespace poolkeeper {

struct CarryOver {
  struct CheckEntry {
    CheckHealth health = CheckHealth::kUnknown;
    std::string fingerprint;  // the check's config: a changed check starts over
  };
  std::string boot_id;
  int64_t boottime_ms = 0;  // CLOCK_BOOTTIME when written (comparable within one boot)
  std::map<std::string, CheckEntry> checks;
  std::map<std::string, std::string> services;  // service → effective state name

  // A restart takes seconds; a longer gap (the agent stopped for a while) starts cold.
  static constexpr std::chrono::minutes kMaxAge{5};

  std::string serialize() const;
  static std::optional<CarryOver> parse(const std::string& text, std::string* error);
};

// Milliseconds of CLOCK_BOOTTIME (includes suspend; resets at boot).
int64_t boottime_ms();

std::string carryover_path(const std::string& state_dir);
// Atomic write; "" or the error.
std::string save_carryover(const std::string& state_dir, const CarryOver& c);
// Reads and removes the file. nullopt (with *why) when it is missing, unreadable, from
// another boot or too old.
std::optional<CarryOver> take_carryover(const std::string& state_dir, const std::string& boot_id,
                                        int64_t now_boottime_ms, std::string* why);

}  // namespace poolkeeper
