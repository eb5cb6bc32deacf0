#include "agent/model/scheduler.h"

#include <algorithm>

namespace poolkeeper {

ProbeScheduler::ProbeScheduler(const Clock& clock, std::function<double()> uniform01)
    : clock_(clock), uniform01_(std::move(uniform01)) {}

Duration ProbeScheduler::jittered(Duration base) {
  // The window's wait is the rest of the 10%.
  Duration spread = std::chrono::duration_cast<Duration>(base * 0.1) - window_for(base);
  return base + std::chrono::duration_cast<Duration>(spread * uniform01_());
}

Duration ProbeScheduler::window_for(Duration interval) const {
  return std::min(window_max_, std::chrono::duration_cast<Duration>(interval * window_fraction_));
}

void ProbeScheduler::set_start_window(double fraction, Duration max) {
  window_fraction_ = std::clamp(fraction, 0.0, 0.1);
  window_max_ = std::max(Duration::zero(), max);
  timeline_.clear();
  for (auto& [name, s] : slots_) {
    s.window = window_for(s.base);
    timeline_.insert({s.at(), name});
  }
}

template <typename F>
void ProbeScheduler::move(const std::string& name, Slot& s, F edit) {
  timeline_.erase({s.at(), name});
  edit(s);
  timeline_.insert({s.at(), name});
}

void ProbeScheduler::add(const std::string& name, const CheckConfig& timing) {
  remove(name);
  Slot s;
  s.interval = timing.interval;
  s.timeout = timing.timeout;
  s.fast_interval = timing.fast_interval;
  s.gen = next_gen_++;
  s.next_due = clock_.now() + std::chrono::duration_cast<Duration>(timing.interval * (uniform01_() * 0.5));
  s.base = timing.interval;
  s.window = window_for(s.base);
  timeline_.insert({s.at(), name});
  slots_.emplace(name, s);
}

void ProbeScheduler::retime(const std::string& name, const CheckConfig& timing, bool changing) {
  auto it = slots_.find(name);
  if (it == slots_.end()) return;
  SteadyTime now = clock_.now();
  move(name, it->second, [&](Slot& s) {
    s.interval = timing.interval;
    s.timeout = timing.timeout;
    s.fast_interval = timing.fast_interval;
    s.base = changing ? timing.fast_interval : timing.interval;
    s.fast = changing;
    s.window = window_for(s.base);
    if (s.in_flight)
      s.overdue_at = s.overdue_counted == 0
                         ? s.started + timing.timeout + kOverdueGrace
                         : std::min(s.overdue_at, now + (changing ? timing.fast_interval : timing.interval));
  });
}

void ProbeScheduler::remove(const std::string& name) {
  auto it = slots_.find(name);
  if (it == slots_.end()) return;
  timeline_.erase({it->second.at(), name});
  slots_.erase(it);
}

void ProbeScheduler::start(const std::string& name, Slot& slot, SteadyTime now) {
  move(name, slot, [&](Slot& s) {
    s.in_flight = true;
    s.seq = next_seq_++;
    s.started = now;
    s.overdue_at = now + s.timeout + kOverdueGrace;
    s.overdue_counted = 0;
  });
}

size_t ProbeScheduler::awaiting() const {
  return static_cast<size_t>(std::count_if(slots_.begin(), slots_.end(), [](const auto& kv) {
    return kv.second.in_flight && kv.second.overdue_counted == 0;
  }));
}

std::vector<ProbeScheduler::Due> ProbeScheduler::take_due() {
  SteadyTime now = clock_.now();
  std::vector<std::string> names;
  // An idle check sits on the timeline at next_due + window (window <= window_max_).
  for (auto it = timeline_.begin(); it != timeline_.end() && it->first <= now + window_max_; ++it) {
    const Slot& s = slots_.at(it->second);
    if (!s.in_flight && s.next_due <= now) names.push_back(it->second);
  }
  std::sort(names.begin(), names.end());  // the same order whatever their due times
  std::vector<Due> due;
  for (const auto& name : names) {
    Slot& s = slots_.at(name);
    start(name, s, now);
    due.push_back({name, s.gen, s.seq, s.timeout, s.fast});
  }
  return due;
}

SteadyTime ProbeScheduler::next_due() const {
  return timeline_.empty() ? SteadyTime::max() : timeline_.begin()->first;
}

std::vector<ProbeScheduler::Overdue> ProbeScheduler::take_overdue() {
  SteadyTime now = clock_.now();
  std::vector<Overdue> out;
  for (auto it = timeline_.begin(); it != timeline_.end() && it->first <= now; ++it) {
    const Slot& s = slots_.at(it->second);
    if (s.in_flight) out.push_back({it->second, now - s.started, s.timeout});
  }
  std::sort(out.begin(), out.end(), [](const Overdue& a, const Overdue& b) { return a.name < b.name; });
  return out;
}

void ProbeScheduler::counted_overdue(const std::string& name, bool changing) {
  auto it = slots_.find(name);
  if (it == slots_.end()) return;
  SteadyTime now = clock_.now();
  move(name, it->second, [&](Slot& s) {
    ++s.overdue_counted;
    s.overdue_at = now + (changing ? s.fast_interval : s.interval);
  });
}

ProbeScheduler::Accept ProbeScheduler::accept(const std::string& name, uint64_t gen, uint64_t seq) {
  auto it = slots_.find(name);
  if (it == slots_.end() || it->second.gen != gen) return Accept::kDropped;  // replaced by a reload
  Slot& slot = it->second;
  if (!slot.in_flight || slot.seq != seq) return Accept::kDropped;  // not the probe in flight
  bool late = slot.overdue_counted > 0;
  move(name, slot, [](Slot& s) {
    s.in_flight = false;
    s.overdue_counted = 0;
  });
  return late ? Accept::kLate : Accept::kFresh;
}

void ProbeScheduler::reschedule(const std::string& name, bool changing, std::optional<SteadyTime> at) {
  auto it = slots_.find(name);
  if (it == slots_.end()) return;
  Duration base = changing ? it->second.fast_interval : it->second.interval;
  Duration next = jittered(base);
  SteadyTime from = at ? std::min(*at, clock_.now()) : clock_.now();
  move(name, it->second, [&](Slot& s) {
    s.next_due = s.again ? from : from + next;
    s.base = base;
    s.fast = changing || s.again;
    s.window = s.again ? Duration::zero() : window_for(base);
    s.again = false;
  });
}

void ProbeScheduler::probe_now(const std::string& name, uint64_t since_seq) {
  auto it = slots_.find(name);
  if (it == slots_.end() || it->second.seq >= since_seq) return;  // already probed since
  SteadyTime now = clock_.now();
  move(name, it->second, [&](Slot& s) {
    s.fast = true;
    if (s.in_flight) {
      s.again = true;
      return;
    }
    s.next_due = std::min(s.next_due, now);
    s.window = Duration::zero();
  });
}

std::optional<std::pair<uint64_t, uint64_t>> ProbeScheduler::in_flight_or_start(const std::string& name) {
  auto it = slots_.find(name);
  if (it == slots_.end()) return std::nullopt;
  if (!it->second.in_flight) start(name, it->second, clock_.now());
  return std::make_pair(it->second.gen, it->second.seq);
}

uint64_t ProbeScheduler::generation(const std::string& name) const {
  auto it = slots_.find(name);
  return it == slots_.end() ? 0 : it->second.gen;
}

std::optional<SteadyTime> ProbeScheduler::stuck_since(const std::string& name) const {
  auto it = slots_.find(name);
  if (it == slots_.end() || !it->second.in_flight || it->second.overdue_counted == 0) return std::nullopt;
  return it->second.started;
}

}  // namespace poolkeeper
