// The registry of probe kinds: how each is built from its config table and what it tells
// the rest of the agent (CheckTraits; the interface every kind implements, Check, is in
// agent/base/probe.h). Each kind lives in <kind>_check.{h,cc}, parses its own config
// keys, and registers itself in check.cc (one line per kind).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/base/probe.h"
#include "agent/base/toml_reader.h"

namespace poolkeeper {

// Builds a check of one kind from its table; the common keys (kind, interval, timeout,
// rise, fall, fast_interval, critical, unit) are already consumed by the caller. A factory
// reads its own keys through `reader` (which rejects unknown ones afterwards).
using CheckFactory = std::function<std::unique_ptr<Check>(TableReader& reader)>;

// A kind as registered: how to build one, and what the rest of the agent knows of it.
struct CheckKind {
  CheckFactory make;
  CheckTraits traits;
  // It speaks a service's own protocol, as the service's clients do, so it can be the
  // service's kind (service_kind). An address or a command does not.
  bool speaks_protocol = false;
};

// Returns nullptr for an unknown kind.
const CheckKind* find_check_kind(const std::string& kind);

// A service's kind: that of the first of its checks (`check_kinds`, in the service's
// order) whose kind speaks a protocol; nullptr when none does (plain TCP, no note). Its
// traits' balancing and clients_note are the service's. Never its name or port.
const CheckKind* service_kind(const std::vector<std::string>& check_kinds);
std::string known_check_kinds();  // "exec, http, nfs, rsync, vip"

// Runs check.run() and fills in latency (on `clock`, which the check is given too);
// converts a stray exception into a failure so a bug in one probe can never take the
// agent down. The reason and details it returns are valid UTF-8 (ill-formed bytes
// replaced by U+FFFD). The deadline is `timeout` from now in real time (see Deadline).
Result run_probe(Check& check, Duration timeout, const Clock& clock = real_clock());

}  // namespace poolkeeper
