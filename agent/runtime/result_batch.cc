#include "agent/runtime/result_batch.h"

namespace poolkeeper {

bool ResultBatch::push(ProbeResult r, SteadyTime now) {
  bool awaited = r.awaited;
  queued_.push_back(std::move(r));
  if (busy_ || woken_ || (!awaited && wake_ - now <= max_delay_)) return false;
  woken_ = true;
  return true;
}

void ResultBatch::take(std::vector<ProbeResult>& out) {
  busy_ = true;
  woken_ = false;
  out.clear();
  out.swap(queued_);  // the two vectors trade buffers: a steady state allocates nothing
}

void ResultBatch::waiting_until(SteadyTime wake) {
  busy_ = false;
  wake_ = wake;
}

}  // namespace poolkeeper
