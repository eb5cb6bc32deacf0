#include "agent/base/probe.h"

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

}  // namespace poolkeeper
