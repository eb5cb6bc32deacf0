// The peers-only floor across several hosts (tests/harness/floor_sim.h): the input
// chooses the hosts (2 or 3), min_pooled, how often a peer's answer is lost, and every
// step — failures, recoveries, depools, announcements, stale or partial background
// views, fresh reads, decisions — in any order. Invariant: after every step at least
// min_pooled hosts answer 200 (are pooled), and once the schedule settles every healthy
// host is pooled and exactly the lowest-named failing hosts the floor needs are kept.
#include <cstddef>
#include <cstdint>
#include <limits>

#include "agent/model/floor.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/harness/floor_sim.h"

namespace {

// The input as a UniformRandomBitGenerator: each draw is the next 8 bytes. Once the
// input is used up (which ends the schedule: see exhausted()) draws still vary, since
// uniform_int_distribution rejects and draws again on some values and a constant one
// would never end.
class InputChoices {
 public:
  using result_type = uint64_t;
  InputChoices(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }
  result_type operator()() {
    if (pos_ >= size_) return ++after_ * 0x9e3779b97f4a7c15ull;
    result_type v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | (pos_ < size_ ? data_[pos_++] : 0);
    return v;
  }
  bool exhausted() const { return pos_ >= size_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  result_type after_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using poolkeeper::floor_leave;
  using poolkeeper::testing::FloorSim;
  if (size < 3) return 0;
  int n = 2 + data[0] % 2;
  int min_pooled = 1 + data[1] % n;
  int drop_percent = data[2] % 51;  // up to half the answers lost
  FloorSim<InputChoices> sim(n, min_pooled, InputChoices(data + 3, size - 3), floor_leave, drop_percent);
  for (int k = 0; k < 2000 && !sim.choices().exhausted(); ++k) {
    if (!sim.step()) break;
    FUZZ_ASSERT(sim.pooled() >= min_pooled);
  }
  sim.settle();
  FUZZ_ASSERT(sim.pooled() >= min_pooled);
  FUZZ_ASSERT(poolkeeper::testing::settled_error(sim, min_pooled).empty());
  return 0;
}
