// Probe results on their way from the probe threads to the owner, and when one should
// wake the owner. The owner folds in every result queued at the start of each of its
// turns; a result wakes it only when it is waiting and its next turn (a probe falling
// due, a timer) is more than `max_delay` away, and no wake-up is on its way already.
// With many checks the owner turns every few milliseconds anyway, so results ride along
// and cost no wake-up of their own; with few, each result still wakes it at once. A
// result its check awaits (falling, rising, or hurried by its unit's event) wakes it at
// once whatever: a crash must not wait up to `max_delay` per probe on its way out.
// Results are handed over in the order they came, so in order per check.
//
// Not locked: the caller holds the lock that also guards the owner's other queue.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/base/clock.h"
#include "agent/base/probe.h"

namespace poolkeeper {

struct ProbeResult {
  std::string check;
  uint64_t gen = 0;
  uint64_t seq = 0;
  Result result;
  SteadyTime at{};  // when it came: the check's next probe counts from then
  bool awaited = false;  // its check is at fast_interval (changing or hurried): no riding along
};

class ResultBatch {
 public:
  explicit ResultBatch(Duration max_delay) : max_delay_(max_delay) {}

  // A result came at `now`. True when the caller must wake the owner for it.
  bool push(ProbeResult r, SteadyTime now);
  // The owner's turn begins: it is busy (nothing wakes it until it waits again) and
  // takes every result queued, in order, into `out` (emptied first).
  void take(std::vector<ProbeResult>& out);
  // The owner, having seen no result queued, waits until `wake` unless woken.
  void waiting_until(SteadyTime wake);
  bool empty() const { return queued_.empty(); }

 private:
  Duration max_delay_;
  std::vector<ProbeResult> queued_;
  bool busy_ = true;    // in a turn: it looks at the queue before it waits
  bool woken_ = false;  // a wake-up is on its way
  SteadyTime wake_{};   // when the waiting owner turns by itself
};

}  // namespace poolkeeper
