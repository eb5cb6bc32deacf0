// Prometheus metrics (names listed in the README), kept by subscribing to the state owner's
// results, events and snapshots, and rendered with prometheus-cpp's text serializer
// by our own HTTP server. prometheus-cpp's families are internally locked, so the
// HTTP threads may count requests and serialize while the owner updates.
#pragma once

#include <memory>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "agent/model/events.h"
#include "agent/model/snapshot.h"

namespace poolkeeper {

class Metrics final : public Observer {
 public:
  Metrics();

  void on_result(const std::string& check, const Result& r, WallTime when) override;
  void on_event(const Event& e) override;
  void on_snapshot(const Snapshot& s) override;

  void http_request(const std::string& route, int code);
  void config_reload(bool ok);
  void state_file(bool readable);
  std::string serialize() const;
  prometheus::Registry& registry() { return *registry_; }

 private:
  // A check's series that every result or view change updates, found once: a result
  // then costs a name lookup and atomic updates, not label maps built, hashed and
  // compared in the families. Kept with the series' owner, so they go with them.
  struct CheckSeries {
    prometheus::Histogram* duration = nullptr;
    prometheus::Counter* results[4] = {};  // by Outcome
    prometheus::Gauge* last_success = nullptr;
    prometheus::Gauge* data_age = nullptr;
    prometheus::Gauge* data_max_age = nullptr;
    prometheus::Gauge* up = nullptr;
    prometheus::Gauge* stuck = nullptr;
  };
  // Series are made per check, service and peer; each is remembered under its owner so
  // that a reload removing a check (or a peer, a service) removes its series too. The
  // family already holds the labels: the owner keeps only what removing needs.
  struct Made {
    void* family;
    void* metric;
    void (*remove)(void* family, void* metric);
  };
  struct Owner {
    std::vector<Made> made;  // a handful per owner: found by a scan
    CheckSeries check;       // a check's (unused for services and peers)
  };
  using Owned = std::unordered_map<std::string, Owner>;
  template <typename T, typename... Args>
  T& series(Owned& owners, const std::string& owner, prometheus::Family<T>& family,
            const prometheus::Labels& labels, Args&&... args);
  // `family`'s series of `owner` with these labels, made (and remembered) on first use.
  template <typename T, typename... Args>
  T& cached(T*& slot, const std::string& check, prometheus::Family<T>& family, const prometheus::Labels& labels,
            Args&&... args) {
    if (!slot) slot = &series(by_check_, check, family, labels, std::forward<Args>(args)...);
    return *slot;
  }
  // A family registered in registry_ (the constructor's, which makes them all).
  prometheus::Family<prometheus::Gauge>& gauge(const char* name, const char* help);
  prometheus::Family<prometheus::Counter>& counter(const char* name, const char* help);
  prometheus::Family<prometheus::Histogram>& histogram(const char* name, const char* help);
  static void prune(Owned& owners, const std::set<std::string>& keep);
  void check_series(const CheckView& c);
  void service_series(const ServiceView& sv, const nlohmann::json& conftool);
  // Updates the series of the items of `now` that are not in `seen` (all of them, and
  // removes those of names gone, when the list itself changed or `everything`).
  template <typename T, typename Update>
  void refresh(const SharedList<T>& now, SharedList<T>& seen, bool everything, Owned& owners, Update update);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Gauge>& check_up_;
  prometheus::Family<prometheus::Histogram>& check_duration_;
  prometheus::Family<prometheus::Counter>& check_results_;
  prometheus::Family<prometheus::Counter>& check_transitions_;
  prometheus::Family<prometheus::Gauge>& check_last_success_;
  prometheus::Family<prometheus::Gauge>& service_pooled_;
  prometheus::Family<prometheus::Gauge>& service_healthy_;
  prometheus::Family<prometheus::Gauge>& service_intent_;
  prometheus::Family<prometheus::Gauge>& config_reload_;
  prometheus::Family<prometheus::Counter>& http_requests_;
  // The HTTP threads' counters by "route code", found once: a request then costs a
  // shared lock and an atomic add, not a label map built and hashed in the family.
  std::shared_mutex http_mu_;
  std::unordered_map<std::string, prometheus::Counter*> http_counters_;
  prometheus::Family<prometheus::Gauge>& build_info_;
  prometheus::Family<prometheus::Gauge>& nfs_handles_match_;
  prometheus::Family<prometheus::Gauge>& state_file_;
  prometheus::Family<prometheus::Gauge>& conftool_up_;
  prometheus::Family<prometheus::Gauge>& check_stuck_;
  prometheus::Family<prometheus::Gauge>& exec_leftovers_;
  prometheus::Family<prometheus::Counter>& exec_leftovers_killed_;
  prometheus::Family<prometheus::Gauge>& service_kept_by_floor_;
  prometheus::Family<prometheus::Gauge>& peer_up_;
  prometheus::Family<prometheus::Gauge>& peer_service_pooled_;
  prometheus::Family<prometheus::Gauge>& conftool_key_pooled_;
  prometheus::Family<prometheus::Gauge>& check_data_age_;
  prometheus::Family<prometheus::Gauge>& check_data_max_age_;
  prometheus::Family<prometheus::Gauge>& liveness_up_;
  prometheus::Family<prometheus::Gauge>& takeover_waiting_;
  uint64_t leftovers_killed_seen_ = 0;
  int leftovers_seen_ = 0;
  // What the last snapshot held (kept alive, so that a pointer compared is never a new
  // object at a reused address).
  SharedList<CheckView> seen_checks_;
  SharedList<ServiceView> seen_services_;
  SharedList<PeerView> seen_peers_;
  nlohmann::json seen_conftool_;
  Owned by_check_, by_service_, by_peer_;
  Owned by_takeover_;  // "<service>/<peer>" of each takeover the floor holds
};

}  // namespace poolkeeper
