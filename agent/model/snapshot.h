// An immutable picture of the agent's state. The state owner builds a new one after
// every change and swaps it in atomically; readers (HTTP, admin socket) only ever see
// a complete snapshot and never wait on a probe or on the owner.
//
// The lists (services, checks, events, peers) are SharedLists: snapshots share the
// items that did not change between them, so one probe result costs a new view of its
// check and of the services using it, not a copy of everything (snapshot_builder.h).
#pragma once

#include <initializer_list>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/model/events.h"
#include "agent/model/floor.h"
#include "agent/model/health.h"

namespace poolkeeper {

// A list of immutable items shared between snapshots. Reading gives `const T&`, like a
// vector. Items sit in chunks of kChunk: copying the list copies one pointer, and the
// owner replacing one item copies its chunk and the chunk index (kChunk + size/kChunk
// pointers), never the other items nor what older snapshots hold. A write through the
// non-const operator[] or push_back (tests building a snapshot by hand) first copies
// what it changes if anything else shares it.
template <typename T>
class SharedList {
 public:
  static constexpr size_t kChunk = 32;
  using Chunk = std::vector<std::shared_ptr<const T>>;
  struct Items {
    std::vector<std::shared_ptr<const Chunk>> chunks;
    size_t size = 0;
  };
  class const_iterator {
   public:
    using iterator_category = std::bidirectional_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = const T*;
    using reference = const T&;
    const_iterator() = default;
    const_iterator(const SharedList* list, size_t i) : list_(list), i_(i) {}
    reference operator*() const { return (*list_)[i_]; }
    pointer operator->() const { return &(*list_)[i_]; }
    const_iterator& operator++() { ++i_; return *this; }
    const_iterator operator++(int) { auto t = *this; ++i_; return t; }
    const_iterator& operator--() { --i_; return *this; }
    const_iterator operator--(int) { auto t = *this; --i_; return t; }
    bool operator==(const const_iterator& o) const { return i_ == o.i_; }
    bool operator!=(const const_iterator& o) const { return i_ != o.i_; }

   private:
    const SharedList* list_ = nullptr;
    size_t i_ = 0;
  };
  using iterator = const_iterator;
  using const_reverse_iterator = std::reverse_iterator<const_iterator>;

  SharedList() = default;
  SharedList(std::initializer_list<T> items) { *this = items; }
  SharedList& operator=(std::initializer_list<T> items) {
    clear();
    for (const auto& t : items) push_back(t);
    return *this;
  }

  size_t size() const { return items_ ? items_->size : 0; }
  bool empty() const { return size() == 0; }
  const T& operator[](size_t i) const { return *item(i); }
  const T& front() const { return (*this)[0]; }
  const T& back() const { return (*this)[size() - 1]; }
  const_iterator begin() const { return const_iterator(this, 0); }
  const_iterator end() const { return const_iterator(this, size()); }
  const_reverse_iterator rbegin() const { return const_reverse_iterator(end()); }
  const_reverse_iterator rend() const { return const_reverse_iterator(begin()); }

  // The shared pieces: the list as a whole (equal pointers = nothing changed) and one item.
  const std::shared_ptr<const Items>& shared() const { return items_; }
  const std::shared_ptr<const T>& item(size_t i) const { return (*items_->chunks[i / kChunk])[i % kChunk]; }
  // Calls fn(i) for each position whose item is not the very object `before` holds
  // there, skipping whole chunks the two share. False (and no calls) when the lengths
  // differ.
  template <typename F>
  bool for_each_changed(const SharedList& before, F fn) const {
    if (size() != before.size()) return false;
    if (items_ == before.items_) return true;
    for (size_t c = 0; c < items_->chunks.size(); ++c) {
      const auto& mine = items_->chunks[c];
      const auto& theirs = before.items_->chunks[c];
      if (mine == theirs) continue;
      for (size_t j = 0; j < mine->size(); ++j)
        if ((*mine)[j] != (*theirs)[j]) fn(c * kChunk + j);
    }
    return true;
  }

  // Edits, copying first whatever is shared.
  T& operator[](size_t i) {
    auto& p = own_chunk(i / kChunk)[i % kChunk];
    if (p.use_count() > 1) p = std::make_shared<T>(*p);
    return const_cast<T&>(*p);  // every item is made by make_shared<T>: never const itself
  }
  void set(size_t i, std::shared_ptr<const T> item) { own_chunk(i / kChunk)[i % kChunk] = std::move(item); }
  void push_back(std::shared_ptr<const T> item) {
    Items& all = own();
    if (all.size % kChunk == 0) all.chunks.push_back(std::make_shared<Chunk>());
    own_chunk(all.chunks.size() - 1).push_back(std::move(item));
    ++all.size;
  }
  void push_back(T v) { push_back(std::shared_ptr<const T>(std::make_shared<T>(std::move(v)))); }
  void clear() { items_.reset(); }

 private:
  // Made by make_shared of the non-const type, so writing through const_cast is sound
  // once nothing else holds them.
  Items& own() {
    if (!items_) items_ = std::make_shared<Items>();
    else if (items_.use_count() > 1) items_ = std::make_shared<Items>(*items_);
    return const_cast<Items&>(*items_);
  }
  Chunk& own_chunk(size_t c) {
    auto& chunk = own().chunks[c];
    if (chunk.use_count() > 1) chunk = std::make_shared<Chunk>(*chunk);
    return const_cast<Chunk&>(*chunk);
  }

  std::shared_ptr<const Items> items_;
};

// One probe result as the status page draws it; each check keeps a bounded history.
// 16 bytes (a float is plenty to draw a bar): a check's 60 fit one small allocation.
struct ResultPoint {
  WallTime time{};
  float latency_seconds = 0;
  Outcome outcome = Outcome::kPassed;
};
static_assert(sizeof(ResultPoint) <= 16);

// The systemd unit a check names (CheckConfig::unit), as systemd last reported it.
struct UnitView {
  std::string name;
  std::string active_state, sub_state;
  std::string text;         // unit_text(): "nginx.service: failed (signal KILL)"
  bool watched = false;     // its state comes from systemd; false: `error` says why (polling only)
  std::string error;
  bool hurried = false;     // probing at fast_interval since an event, until it settles
  // The last job the agent saw systemd queue on the unit (a stop, a restart).
  struct Job {
    uint32_t id = 0;
    std::string type;       // "" when the job ended before its type could be read
    std::string asked_by;   // unit_job_asker(): as far as systemd says
    WallTime seen{};
  };
  std::optional<Job> last_job;
};

struct CheckView {
  std::string name, kind, target;
  bool critical = true;
  CheckHealth health = CheckHealth::kUnknown;
  int successes = 0, failures = 0, rise = 0, fall = 0;
  std::optional<Result> last;
  WallTime last_time{};
  WallTime since{};  // when health last changed (or start)
  std::optional<WallTime> last_success;
  std::vector<std::string> services;
  // Set while a probe is stuck (in flight past its timeout): when it started.
  std::optional<WallTime> stuck_since;
  std::optional<UnitView> unit;  // set when the check names a unit
  // The last results, oldest first (at most HealthModel::kHistoryLength); shared with the
  // model, which replaces it (never changes it) on each result. Never null in a
  // snapshot the model built.
  std::shared_ptr<const std::vector<ResultPoint>> history;
};

struct ServiceView {
  std::string name;
  EffectiveState effective;
  bool healthy = false;
  std::string health_reason;            // first failing critical check; "" when healthy
  std::vector<std::string> warnings;    // failing non-critical checks
  AdminIntent intent;
  WallTime since{};                     // when `effective` last changed
  std::vector<std::string> checks;
  int port = 0;
  bool failing = false;                 // running, intent pooled, a critical check unhealthy
  bool has_peers = false;               // the floor applies
  int min_pooled = 0;
  int peers_pooled_healthy = 0;
  bool kept_by_floor = false;
  bool leaving = false;                 // pooled, and announced a leave it is deciding (floor.h)
  bool returns_after_boot = false;      // until-boot depool of an earlier boot
  bool stop_released = false;           // stopping, and the floor let it go (shutdown drain)
};

struct PeerView {
  PeerState state;
  // Our checks whose kind has an identity (CheckTraits::identity) → is the peer's the
  // same? (unknown until both sides show one)
  std::map<std::string, std::optional<bool>> handles_match;
};

struct Snapshot {
  uint64_t version = 0;
  std::string host;
  Lifecycle lifecycle = Lifecycle::kStarting;
  WallTime lifecycle_since{};
  WallTime generated{};
  SharedList<ServiceView> services;  // by name
  SharedList<CheckView> checks;      // by name
  SharedList<Event> events;          // oldest first
  SharedList<PeerView> peers;
  nlohmann::json conftool;  // null when conftool is not configured
  bool state_file_ok = true;
  std::string state_file_error;
  int leftover_processes = 0;      // processes exec probes left behind, not yet reaped
  uint64_t leftovers_killed = 0;   // such processes killed since start

  // What a reader rendered from this snapshot once (the status page), so that repeated
  // requests cost a lookup. A copy of the snapshot starts with an empty cache.
  struct RenderCache {
    std::mutex mu;
    std::shared_ptr<const std::string> page;
    RenderCache() = default;
    RenderCache(const RenderCache&) {}
    RenderCache& operator=(const RenderCache&) { return *this; }
  };
  mutable RenderCache render_cache;

  const ServiceView* find_service(const std::string& name) const;
  const CheckView* find_check(const std::string& name) const;
};

nlohmann::json status_json(const Snapshot& s);
nlohmann::json events_json(const Snapshot& s);

}  // namespace poolkeeper
