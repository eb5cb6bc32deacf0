// A few hosts running the floor's leave without etcd (agent/model/floor.h: floor_leave,
// floor_returns), each driven by a small protocol driver that does what the agent does —
// announce, poll every peer, decide; a background view polled peer by peer that may be
// stale or missing a peer — with every step (failure, recovery, depool, pool, peer
// read, decision) chosen by `Choices`, a UniformRandomBitGenerator: a seeded engine in
// floor_leave_test, the fuzzer's bytes in fuzz_floor_peers. pooled() is what the hosts
// answer on /health; the callers check it never falls below min_pooled.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "agent/model/floor.h"

namespace poolkeeper::testing {


using Policy = std::function<LeaveDecision(const std::string&, LeaveKind, int, const std::vector<FloorHost>&)>;

struct SimHost {
  std::string name;
  bool healthy = true;
  bool depooled = false;    // an operator's depool went through
  bool released = false;    // failing, and the floor let it go
  bool announced = false;   // a leave is being decided (published as "leaving")
  LeaveKind kind = LeaveKind::kFailing;
  int polls = 0;            // polls taken in this attempt
  std::vector<std::optional<FloorHost>> fresh;  // this poll's reads, by host index
  std::vector<FloorHost> view;                  // the background view, by host index
  uint64_t view_gen = 0, attempt_gen = 0;
  int cycles = 0;  // failures and depools left in this schedule
  bool ends_failing = false;  // its last failure lasts to the end of the schedule

  bool failing() const { return !healthy && !depooled; }
  bool pooled() const { return !depooled && (healthy || !released); }
};

template <class Choices>
class FloorSim {
 public:
  FloorSim(int n, int min_pooled, Choices choices, Policy policy, int drop_percent = 10)
      : m_(min_pooled), drop_percent_(drop_percent), choices_(std::move(choices)), policy_(std::move(policy)) {
    for (int i = 0; i < n; ++i) {
      SimHost h;
      h.name = std::string(1, static_cast<char>('a' + i)) + ".example.org";
      h.fresh.resize(static_cast<size_t>(n));
      h.cycles = 2;
      h.ends_failing = choices_() % 2;
      hosts_.push_back(h);
    }
    for (auto& h : hosts_)
      for (size_t j = 0; j < hosts_.size(); ++j) h.view.push_back(read(j));  // all start pooled and healthy
  }

  int pooled() const {
    int n = 0;
    for (const auto& h : hosts_) n += h.pooled();
    return n;
  }

  // One random step among those possible. False when none is.
  bool step() {
    std::vector<std::function<void()>> can;
    for (size_t i = 0; i < hosts_.size(); ++i) {
      SimHost& h = hosts_[i];
      if (h.healthy && h.cycles > 0) can.push_back([this, i] { fail(i); });
      if (!h.healthy && (h.cycles > 0 || !h.ends_failing)) can.push_back([this, i] { recover(i); });
      if (h.pooled() && !h.announced && !h.depooled && h.cycles > 0) can.push_back([this, i] { depool(i); });
      if (h.depooled) can.push_back([this, i] { pool(i); });
      for (size_t j = 0; j < hosts_.size(); ++j) {
        if (j == i) continue;
        can.push_back([this, i, j] { background_read(i, j); });
        if (h.announced && !h.fresh[j]) can.push_back([this, i, j] { fresh_read(i, j); });
      }
      if (h.announced && polled(h)) can.push_back([this, i] { decide(i); });
    }
    if (can.empty()) return false;
    can[std::uniform_int_distribution<size_t>(0, can.size() - 1)(choices_)]();
    return true;
  }

  // No more failures, depools or lost answers: every host in turn finishes what it is
  // deciding and polls its peers, until nothing changes.
  void settle() {
    drop_percent_ = 0;
    for (auto& h : hosts_) h.cycles = 0;
    for (int round = 0; round < 20; ++round) {
      for (size_t i = 0; i < hosts_.size(); ++i) {
        while (hosts_[i].announced) {
          for (size_t j = 0; j < hosts_.size(); ++j)
            if (j != i && !hosts_[i].fresh[j]) fresh_read(i, j);
          decide(i);
        }
        for (size_t j = 0; j < hosts_.size(); ++j)
          if (j != i) background_read(i, j);
      }
    }
  }

  const std::vector<SimHost>& hosts() const { return hosts_; }
  Choices& choices() { return choices_; }
  std::string trace;  // the steps taken, for a failure's message

 private:
  // What host j's /status says now (or, lost, that it did not answer).
  FloorHost read(size_t j) {
    const SimHost& p = hosts_[j];
    FloorHost f;
    f.name = p.name;
    if (drop_percent_ > 0 && std::uniform_int_distribution<int>(0, 99)(choices_) < drop_percent_) return f;
    f.known = true;
    f.pooled = p.pooled();
    f.healthy = p.healthy;
    f.failing = p.failing();
    f.leaving = p.announced && p.pooled();
    return f;
  }
  static std::vector<FloorHost> others(const std::vector<FloorHost>& v, const std::string& self) {
    std::vector<FloorHost> out;
    for (const auto& f : v)
      if (f.name != self) out.push_back(f);
    return out;
  }
  bool polled(const SimHost& h) const {
    for (size_t j = 0; j < hosts_.size(); ++j)
      if (hosts_[j].name != h.name && !h.fresh[j]) return false;
    return true;
  }
  void start_attempt(SimHost& h, LeaveKind kind) {
    h.announced = true;
    h.kind = kind;
    h.polls = 1;
    for (auto& f : h.fresh) f.reset();
  }
  // The owner's turn after anything changed: HealthModel::peers_floor_keeps.
  void owner(SimHost& h) {
    if (!h.failing()) {
      h.released = false;
      if (h.announced && h.kind == LeaveKind::kFailing) h.announced = false;  // overtaken
      return;
    }
    auto view = others(h.view, h.name);
    if (h.released && floor_returns(h.name, m_, view)) h.released = false;
    if (!h.released && !h.announced && h.view_gen != h.attempt_gen &&
        policy_(h.name, LeaveKind::kFailing, m_, view) != LeaveDecision::kStay) {
      h.attempt_gen = h.view_gen;
      start_attempt(h, LeaveKind::kFailing);
      trace += h.name.substr(0, 1) + ":announce ";
    }
  }
  void fail(size_t i) {
    hosts_[i].healthy = false;
    --hosts_[i].cycles;
    trace += hosts_[i].name.substr(0, 1) + ":fail ";
    owner(hosts_[i]);
  }
  void recover(size_t i) {
    hosts_[i].healthy = true;
    trace += hosts_[i].name.substr(0, 1) + ":recover ";
    owner(hosts_[i]);
  }
  void depool(size_t i) {
    --hosts_[i].cycles;
    trace += hosts_[i].name.substr(0, 1) + ":depool ";
    start_attempt(hosts_[i], LeaveKind::kOperator);
  }
  void pool(size_t i) {
    hosts_[i].depooled = false;
    trace += hosts_[i].name.substr(0, 1) + ":pool ";
    owner(hosts_[i]);
  }
  void background_read(size_t i, size_t j) {
    hosts_[i].view[j] = read(j);
    ++hosts_[i].view_gen;
    owner(hosts_[i]);
  }
  void fresh_read(size_t i, size_t j) {
    hosts_[i].fresh[j] = read(j);
    trace += hosts_[i].name.substr(0, 1) + "<" + hosts_[j].name.substr(0, 1) + " ";
  }
  void decide(size_t i) {
    SimHost& h = hosts_[i];
    std::vector<FloorHost> fresh;
    for (size_t j = 0; j < hosts_.size(); ++j)
      if (j != i) fresh.push_back(*h.fresh[j]);
    LeaveDecision d = policy_(h.name, h.kind, m_, fresh);
    trace += h.name.substr(0, 1) + (d == LeaveDecision::kLeave ? ":leave " : d == LeaveDecision::kWait ? ":wait " : ":stay ");
    if (d == LeaveDecision::kWait && h.polls < kLeaveMaxPolls) {
      ++h.polls;
      for (auto& f : h.fresh) f.reset();
      return;
    }
    // The fresh poll becomes the peer view (set_peers), and the next attempt waits for
    // a newer one.
    for (size_t j = 0; j < hosts_.size(); ++j)
      if (j != i) h.view[j] = *h.fresh[j];
    ++h.view_gen;
    h.attempt_gen = h.view_gen;
    h.announced = false;
    if (d == LeaveDecision::kLeave) (h.kind == LeaveKind::kFailing ? h.released : h.depooled) = true;
    owner(h);
  }

  int m_;
  int drop_percent_;
  Choices choices_;
  Policy policy_;
  std::vector<SimHost> hosts_;
};

// After settle(): every healthy host pooled, and the floor keeps the lowest-named failing
// hosts that make up min_pooled, no more. "" when so, else what is wrong.
template <class Choices>
std::string settled_error(const FloorSim<Choices>& sim, int min_pooled) {
  int healthy = 0;
  for (const auto& h : sim.hosts()) healthy += h.healthy && !h.depooled;
  int kept_wanted = std::max(0, min_pooled - healthy), kept = 0;
  for (const auto& h : sim.hosts()) {
    if (h.healthy && !h.depooled && !h.pooled()) return "healthy host " + h.name + " out after " + sim.trace;
    if (!h.failing()) continue;
    bool should = kept < kept_wanted;
    if (h.pooled() != should) return "settled with " + h.name + (h.pooled() ? " kept" : " out") + " after " + sim.trace;
    kept += h.pooled();
  }
  return "";
}

}  // namespace poolkeeper::testing
