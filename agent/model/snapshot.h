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
// vector. Copying the list copies one pointer; the owner replaces single items (or the
// whole list) without changing what older snapshots hold. A write through the
// non-const operator[] or push_back (tests building a snapshot by hand) first copies
// the list, and the item, if anything else shares them.
template <typename T>
class SharedList {
 public:
  using Items = std::vector<std::shared_ptr<const T>>;
  class const_iterator {
   public:
    using iterator_category = std::bidirectional_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = const T*;
    using reference = const T&;
    const_iterator() = default;
    explicit const_iterator(typename Items::const_iterator it) : it_(it) {}
    reference operator*() const { return **it_; }
    pointer operator->() const { return it_->get(); }
    const_iterator& operator++() { ++it_; return *this; }
    const_iterator operator++(int) { auto t = *this; ++it_; return t; }
    const_iterator& operator--() { --it_; return *this; }
    const_iterator operator--(int) { auto t = *this; --it_; return t; }
    bool operator==(const const_iterator& o) const { return it_ == o.it_; }
    bool operator!=(const const_iterator& o) const { return it_ != o.it_; }

   private:
    typename Items::const_iterator it_{};
  };
  using iterator = const_iterator;
  using const_reverse_iterator = std::reverse_iterator<const_iterator>;

  SharedList() = default;
  SharedList(std::initializer_list<T> items) { *this = items; }
  explicit SharedList(std::shared_ptr<const Items> items) : items_(std::move(items)) {}
  SharedList& operator=(std::initializer_list<T> items) {
    auto v = std::make_shared<Items>();
    for (const auto& t : items) v->push_back(std::make_shared<T>(t));
    items_ = std::move(v);
    return *this;
  }

  size_t size() const { return items_ ? items_->size() : 0; }
  bool empty() const { return size() == 0; }
  const T& operator[](size_t i) const { return *(*items_)[i]; }
  const T& front() const { return *items_->front(); }
  const T& back() const { return *items_->back(); }
  const_iterator begin() const { return const_iterator(items().begin()); }
  const_iterator end() const { return const_iterator(items().end()); }
  const_reverse_iterator rbegin() const { return const_reverse_iterator(end()); }
  const_reverse_iterator rend() const { return const_reverse_iterator(begin()); }

  // The shared pieces: the list as a whole (equal pointers = nothing changed) and one item.
  const std::shared_ptr<const Items>& shared() const { return items_; }
  const std::shared_ptr<const T>& item(size_t i) const { return (*items_)[i]; }

  // Copy-on-write edits.
  T& operator[](size_t i) {
    auto& p = own()[i];
    if (p.use_count() > 1) p = std::make_shared<T>(*p);
    return const_cast<T&>(*p);  // every item is made by make_shared<T>: never const itself
  }
  void push_back(T v) { own().push_back(std::make_shared<T>(std::move(v))); }
  void set(size_t i, std::shared_ptr<const T> item) { own()[i] = std::move(item); }
  void clear() { items_.reset(); }

 private:
  const Items& items() const {
    static const Items kEmpty;
    return items_ ? *items_ : kEmpty;
  }
  Items& own() {
    if (!items_) items_ = std::make_shared<Items>();
    else if (items_.use_count() > 1) items_ = std::make_shared<Items>(*items_);
    return const_cast<Items&>(*items_);  // made by make_shared<Items>: never const itself
  }

  std::shared_ptr<const Items> items_;
};

// One probe result as the status page draws it; each check keeps a bounded history.
struct ResultPoint {
  WallTime time{};
  double latency_seconds = 0;
  Outcome outcome = Outcome::kPassed;
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
  // The last results, oldest first (at most Engine::kHistoryLength); shared with the
  // engine, which replaces it (never changes it) on each result. Never null in a
  // snapshot the engine built.
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
  bool returns_after_boot = false;      // until-boot depool of an earlier boot
  bool stop_released = false;           // stopping, and the floor let it go (shutdown drain)
};

struct PeerView {
  PeerState state;
  std::map<std::string, std::optional<bool>> handles_match;  // our nfs check → match?
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
