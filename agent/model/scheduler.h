// When each check's next probe is due, and which probe is in flight: its generation
// (a reload that changes a check's target starts a new one), its sequence number, when
// it started, and when a stuck one counts as failed again. Knows timing only — what a
// result means is the health model's (health_model.h). Every check has one place on a
// timeline (its next probe while idle, its next overdue deadline while in flight), so
// finding what is due costs the same with 1 check or 1000.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "agent/base/clock.h"
#include "agent/model/model_config.h"

namespace poolkeeper {

class ProbeScheduler {
 public:
  // A probe still in flight this long past its timeout counts as a `timeout` failure.
  static constexpr Duration kOverdueGrace = std::chrono::milliseconds(250);

  struct Due {
    std::string name;
    uint64_t gen;
    uint64_t seq;      // this probe's sequence number, handed back with its result
    Duration timeout;  // the check's timeout now (a reload may change it)
    bool fast;         // at fast_interval (changing, or hurried by its unit): its result is awaited
  };
  struct Overdue {
    std::string name;
    Duration stuck;    // how long the probe has been in flight
    Duration timeout;
  };
  // What a returning result is.
  enum class Accept {
    kDropped,  // not the probe in flight (replaced by a reload, or an older one)
    kLate,     // the probe in flight, already counted as timed out: says nothing about now
    kFresh,    // the probe in flight, in time
  };

  // `uniform01` returns values in [0, 1) for jitter and start-up spread.
  ProbeScheduler(const Clock& clock, std::function<double()> uniform01);

  // A new check (or one whose target changed): a new generation; its first probe comes
  // within [0, interval/2) from now.
  void add(const std::string& name, const CheckConfig& timing);
  // The same target with new timing; a probe in flight is judged by it from now on.
  // `changing`: the check is between states (fast_interval applies).
  void retime(const std::string& name, const CheckConfig& timing, bool changing);
  void remove(const std::string& name);

  // Lets a due probe wait up to `fraction` of its interval (at most `max`; fraction at
  // most 0.1) for others falling due, so that probes due close together start in one
  // turn (one wake-up of the owner and of the probe loop for all of them) rather than
  // one turn each. The wait comes out of the jitter: the random part is drawn from
  // what is left of the 10%, so a probe still starts between `interval` and
  // `interval` + 10% after the previous result. Default: no wait.
  void set_start_window(double fraction, Duration max);

  // Starts every idle check whose probe is due.
  std::vector<Due> take_due();
  // Earliest time a probe must start (its due time plus its window) or a stuck
  // probe's deadline falls.
  SteadyTime next_due() const;
  // Probes in flight past their deadline. The caller counts each as a failure, then
  // calls counted_overdue() to set the next deadline.
  std::vector<Overdue> take_overdue();
  void counted_overdue(const std::string& name, bool changing);

  // A result came back: frees the check for its next probe (scheduled by reschedule(),
  // for kLate and kFresh).
  Accept accept(const std::string& name, uint64_t gen, uint64_t seq);
  // After a result that came at `at` (now if not given): the next probe in `interval`
  // (or `fast_interval` while changing) from then, plus a jitter of up to 10% of it.
  void reschedule(const std::string& name, bool changing, std::optional<SteadyTime> at = std::nullopt);
  // Probes in flight whose result is still expected in time (not yet counted overdue).
  size_t awaiting() const;
  // "Probe now, then fast" (a systemd event on the check's unit): an idle check is due at
  // once (no start window); a probe in flight that started before `since_seq` (the
  // event's view of next_seq()) is followed by the next one as soon as its result comes
  // back. A probe that started at or after `since_seq` already looks at the new state,
  // so nothing is added: a burst of events makes one probe, and a probe in flight is
  // never doubled. What comes after is the caller's `changing` (fast_interval).
  void probe_now(const std::string& name, uint64_t since_seq);
  // The sequence number the next probe to start will get.
  uint64_t next_seq() const { return next_seq_; }
  // The probe in flight for `name`, starting one (as take_due would) when none is.
  std::optional<std::pair<uint64_t, uint64_t>> in_flight_or_start(const std::string& name);

  uint64_t generation(const std::string& name) const;
  // When the probe in flight started, if it has been counted as stuck.
  std::optional<SteadyTime> stuck_since(const std::string& name) const;

 private:
  struct Slot {
    Duration interval{}, timeout{}, fast_interval{};
    uint64_t gen = 0;
    SteadyTime next_due{};
    Duration base{};          // the interval next_due was set with (interval or fast_interval)
    Duration window{};        // how long the idle probe may wait past next_due
    bool in_flight = false;
    uint64_t seq = 0;         // the probe in flight (or the last one)
    SteadyTime started{};     // when the probe in flight started
    SteadyTime overdue_at{};  // next deadline at which a stuck probe counts as a failure
    int overdue_counted = 0;  // deadlines counted for the probe in flight
    bool again = false;       // probe_now() while in flight: the next one is due when this one returns
    bool fast = false;        // changing, or hurried by probe_now()
    SteadyTime at() const { return in_flight ? overdue_at : next_due + window; }
  };
  Duration jittered(Duration base);
  Duration window_for(Duration interval) const;
  void start(const std::string& name, Slot& s, SteadyTime now);
  // Moves the check's place on the timeline after `edit` changed its slot.
  template <typename F>
  void move(const std::string& name, Slot& s, F edit);

  const Clock& clock_;
  std::function<double()> uniform01_;
  std::map<std::string, Slot> slots_;
  std::set<std::pair<SteadyTime, std::string>> timeline_;
  double window_fraction_ = 0;
  Duration window_max_{};
  uint64_t next_gen_ = 1;
  uint64_t next_seq_ = 1;
};

}  // namespace poolkeeper
