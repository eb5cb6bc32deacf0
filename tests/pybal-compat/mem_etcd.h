// The conftool writer's etcd (EtcdKeys) held in memory, for unit tests that drive the
// writer's decisions in simulated time: keys with modifiedIndex and createdIndex,
// compare-and-swap (prevExist, prevIndex, prevValue), TTLs that run out on the test's
// FakeClock, refresh, recursive reads of directories, and the event history a watch
// replays. The answers carry etcd's error codes and HTTP statuses. The wire itself is
// tested against a real etcd (tests/integration/conftool_test.cc, etcd_test.cc).
//
// Several writers share one store, each through its own MemEtcd::Link, which the test
// can cut (every request then fails as a refused connection does).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/base/clock.h"
#include "pybal-compat/etcd_client.h"

namespace pk_test {

class MemEtcd {
 public:
  explicit MemEtcd(const poolkeeper::Clock& clock) : clock_(clock) {}

  class Link final : public poolkeeper::EtcdKeys {
   public:
    explicit Link(MemEtcd& store) : store_(store) {}
    bool cut = false;
    int requests = 0;               // answered or refused, every kind
    std::vector<std::string> ops;  // "GET key", "PUT key", "DEL key", in order
    poolkeeper::EtcdResult get(const std::string& key, bool recursive, bool quorum) override {
      ops.push_back("GET " + key);
      if (auto r = refused(key)) return *r;
      (void)quorum;  // one member: every read is a quorum read
      return store_.get(key, recursive);
    }
    poolkeeper::EtcdResult put(const std::string& key, const std::string& value,
                               const poolkeeper::EtcdPut& cond) override {
      ops.push_back("PUT " + key);
      if (auto r = refused(key)) return *r;
      return store_.put(key, value, cond);
    }
    poolkeeper::EtcdResult del(const std::string& key, const std::optional<std::string>& prev_value) override {
      ops.push_back("DEL " + key);
      if (auto r = refused(key)) return *r;
      return store_.del(key, prev_value);
    }
    // No waiting in simulated time: the first event at or after wait_index under `key`,
    // or a timed-out long poll when there is none yet.
    poolkeeper::EtcdResult watch(const std::string& key, bool recursive, uint64_t wait_index,
                                 std::chrono::milliseconds) override {
      if (auto r = refused(key)) return *r;
      return store_.watch(key, recursive, wait_index);
    }
    nlohmann::json endpoints() const override {
      return nlohmann::json::array({{{"url", kUrl}, {"in_use", !cut}, {"state", cut ? "failing" : "in use"}}});
    }
    std::string in_use() const override { return cut ? "" : kUrl; }

   private:
    std::optional<poolkeeper::EtcdResult> refused(const std::string& key) {
      ++requests;
      if (!cut) return std::nullopt;
      poolkeeper::EtcdResult r;
      r.endpoint = kUrl;
      r.key = key;
      r.transport_error = std::string("etcd at ") + kUrl + ": connection refused";
      return r;
    }
    MemEtcd& store_;
  };
  static constexpr const char* kUrl = "http://127.0.0.1:2379";

  uint64_t index() const { return index_; }
  // Events (writes, deletes, expiries) from index `from` on whose key starts with `prefix`.
  int events_since(const std::string& prefix, uint64_t from) const {
    int n = 0;
    for (const auto& e : history_)
      if (e.index >= from && e.key.rfind(prefix, 0) == 0) ++n;
    return n;
  }

  poolkeeper::EtcdResult get(std::string key, bool recursive) {
    expire();
    strip(key);
    poolkeeper::EtcdResult r = answer(key);
    auto it = keys_.find(key);
    if (it != keys_.end()) {
      r.node = node(key, it->second);
      return r;
    }
    if (!build_dir(key, recursive, &r.node)) return error(key, poolkeeper::EtcdError::kKeyNotFound, "Key not found");
    return r;
  }

  poolkeeper::EtcdResult put(std::string key, const std::string& value, const poolkeeper::EtcdPut& cond) {
    using poolkeeper::EtcdError;
    expire();
    strip(key);
    auto it = keys_.find(key);
    bool exists = it != keys_.end();
    if (cond.prev_exist == false && exists) return error(key, EtcdError::kNodeExists, "Key already exists");
    if ((cond.prev_exist == true || cond.prev_index || cond.prev_value || cond.refresh) && !exists)
      return error(key, EtcdError::kKeyNotFound, "Key not found");
    if ((cond.prev_index && it->second.modified != *cond.prev_index) ||
        (cond.prev_value && it->second.value != *cond.prev_value))
      return error(key, EtcdError::kCompareFailed, "Compare failed");
    Entry& e = keys_[key];
    if (!exists) e.created = index_ + 1;
    if (!cond.refresh) e.value = value;
    e.modified = ++index_;
    e.ttl = cond.ttl;
    e.expires = cond.ttl ? std::optional(clock_.now() + std::chrono::seconds(*cond.ttl)) : std::nullopt;
    if (!cond.refresh) history_.push_back({index_, key, exists ? "set" : "create", e});  // refresh wakes no watcher
    poolkeeper::EtcdResult r = answer(key);
    r.http = exists ? 200 : 201;
    r.action = "set";
    r.node = node(key, e);
    return r;
  }

  poolkeeper::EtcdResult del(std::string key, const std::optional<std::string>& prev_value) {
    expire();
    strip(key);
    auto it = keys_.find(key);
    if (it == keys_.end()) return error(key, poolkeeper::EtcdError::kKeyNotFound, "Key not found");
    if (prev_value && it->second.value != *prev_value)
      return error(key, poolkeeper::EtcdError::kCompareFailed, "Compare failed");
    Entry gone = it->second;
    keys_.erase(it);
    gone.modified = ++index_;
    history_.push_back({index_, key, "delete", gone});
    poolkeeper::EtcdResult r = answer(key);
    r.action = "delete";
    r.node = node(key, gone);
    r.node.value.clear();
    return r;
  }

  poolkeeper::EtcdResult watch(std::string key, bool recursive, uint64_t wait_index) {
    expire();
    strip(key);
    for (const auto& e : history_) {
      if (e.index < wait_index) continue;
      if (e.key != key && !(recursive && e.key.rfind(key + "/", 0) == 0)) continue;
      poolkeeper::EtcdResult r = answer(e.key);
      r.action = e.action;
      r.node = node(e.key, e.entry);
      return r;
    }
    poolkeeper::EtcdResult r;
    r.error_code = poolkeeper::EtcdError::kWatchTimedOut;
    r.message = "watch timed out";
    return r;
  }

 private:
  struct Entry {
    std::string value;
    uint64_t modified = 0, created = 0;
    std::optional<int64_t> ttl;
    std::optional<poolkeeper::SteadyTime> expires;
  };
  struct Event {
    uint64_t index;
    std::string key, action;
    Entry entry;
  };
  static void strip(std::string& key) {
    while (key.size() > 1 && key.back() == '/') key.pop_back();
  }
  poolkeeper::EtcdResult answer(const std::string& key) const {
    poolkeeper::EtcdResult r;
    r.endpoint = kUrl;
    r.key = key;
    r.http = 200;
    r.action = "get";
    r.etcd_index = index_;
    return r;
  }
  poolkeeper::EtcdResult error(const std::string& key, poolkeeper::EtcdError code, const std::string& message) const {
    poolkeeper::EtcdResult r = answer(key);
    r.http = code == poolkeeper::EtcdError::kKeyNotFound ? 404 : 412;
    r.action.clear();
    r.error_code = code;
    r.message = message;
    return r;
  }
  poolkeeper::EtcdNode node(const std::string& key, const Entry& e) const {
    poolkeeper::EtcdNode n;
    n.key = key;
    n.value = e.value;
    n.modified_index = e.modified;
    n.created_index = e.created;
    if (e.expires) n.ttl = std::chrono::ceil<std::chrono::seconds>(*e.expires - clock_.now()).count();
    return n;
  }
  // The directory `dir` (every key under it); one level, or all with `recursive`.
  bool build_dir(const std::string& dir, bool recursive, poolkeeper::EtcdNode* out) const {
    std::string under = dir == "/" ? "/" : dir + "/";
    auto it = keys_.lower_bound(under);
    if (it == keys_.end() || it->first.rfind(under, 0) != 0) return dir == "/";
    out->key = dir;
    out->dir = true;
    std::string last_child;
    for (; it != keys_.end() && it->first.rfind(under, 0) == 0; ++it) {
      size_t slash = it->first.find('/', under.size());
      std::string child = it->first.substr(0, slash);
      if (child == last_child) continue;
      last_child = child;
      poolkeeper::EtcdNode n;
      if (slash == std::string::npos) {
        n = node(child, it->second);
      } else {
        n.key = child;
        n.dir = true;
        if (recursive) build_dir(child, true, &n);
      }
      out->nodes.push_back(std::move(n));
    }
    return true;
  }
  // Keys whose TTL has run out go, each an "expire" event, as etcd does.
  void expire() {
    for (auto it = keys_.begin(); it != keys_.end();) {
      if (it->second.expires && *it->second.expires <= clock_.now()) {
        Entry gone = it->second;
        gone.modified = ++index_;
        history_.push_back({index_, it->first, "expire", gone});
        it = keys_.erase(it);
      } else {
        ++it;
      }
    }
  }

  const poolkeeper::Clock& clock_;
  std::map<std::string, Entry> keys_;
  std::vector<Event> history_;
  uint64_t index_ = 1;
};

}  // namespace pk_test
