#include "agent/base/probe.h"

#include "agent/base/utf8.h"

namespace poolkeeper {

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kPassed: return "passed";
    case Outcome::kFailed: return "failed";
    case Outcome::kNetworkError: return "network_error";
    case Outcome::kTimeout: return "timeout";
  }
  return "failed";
}

void finish_result(Result& r, SteadyTime started, const Clock& clock) {
  r.latency = clock.now() - started;
  r.reason = valid_utf8(r.reason);
  make_valid_utf8(r.details);
}

Result run_guarded(Check& check, Deadline deadline, const Clock& clock) noexcept {
  try {
    return check.run(deadline, clock);
  } catch (const std::exception& e) {
    return Result::fail(Outcome::kFailed, std::string("probe error: ") + e.what());
  } catch (...) {
    return Result::fail(Outcome::kFailed, "probe error");
  }
}

void Check::start(ProbeLoop& loop, Deadline deadline, ProbeDone done) {
  loop.run_blocking([this, deadline, &clock = loop.clock(), done = std::move(done)] {
    done(run_guarded(*this, deadline, clock));
  });
}

}  // namespace poolkeeper
