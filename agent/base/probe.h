// The one interface every probe kind implements, and what a probe returns. A probe is
// one call with a hard deadline that returns a value; it has no side effects beyond its
// result. The kinds themselves are in checks/; the model and the runtime know them only
// through this interface.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "agent/base/clock.h"

namespace poolkeeper {

using Deadline = SteadyTime;

// Why a probe ended as it did. The operator's first question is "why is it out?".
enum class Outcome {
  kPassed,
  kFailed,        // the server answered, but wrongly (status, content, age, missing path)
  kNetworkError,  // refused, reset, unreachable, protocol garbage on the wire
  kTimeout,       // the deadline passed before an answer
};
const char* outcome_name(Outcome o);

struct Result {
  Outcome outcome = Outcome::kFailed;
  std::string reason;            // a few words: "connection refused", "status 500"
  Duration latency{0};           // wall time the probe took
  nlohmann::json details = nlohmann::json::object();  // kind-specific facts for /status
  bool ok() const { return outcome == Outcome::kPassed; }

  static Result pass(std::string reason = "ok") { return {Outcome::kPassed, std::move(reason)}; }
  static Result fail(Outcome o, std::string reason) { return {o, std::move(reason)}; }
};

// Thread-safety: the scheduler never runs two probes of one Check at once, but probes
// of different checks run concurrently on different threads.
class Check {
 public:
  virtual ~Check() = default;
  // Must return by `deadline` (plus a small, bounded grace for cleanup) whatever the
  // peer does. Never throws.
  virtual Result run(Deadline deadline) = 0;
  // A short human description of the target ("GET http://127.0.0.1/").
  virtual std::string target() const = 0;
};

}  // namespace poolkeeper
