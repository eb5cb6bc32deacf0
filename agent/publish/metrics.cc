#include "agent/publish/metrics.h"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <iterator>

#include "agent/model/snapshot.h"

namespace poolkeeper {

namespace {
const prometheus::Histogram::BucketBoundaries kLatencyBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10};
}

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      check_up_(gauge("poolkeeper_check_up", "1 when the check is healthy (risen), 0 when unhealthy or unknown")),
      check_duration_(histogram("poolkeeper_check_duration_seconds", "Latency of each probe")),
      check_results_(counter("poolkeeper_check_results_total", "Probe results by outcome")),
      check_transitions_(counter("poolkeeper_check_transitions_total", "Check state changes by new state")),
      check_last_success_(gauge("poolkeeper_check_last_success_timestamp_seconds",
                                "Unix time of the check's last passing probe")),
      service_pooled_(gauge("poolkeeper_service_pooled",
                            "1 when the service is effectively pooled (/health/<service> 200)")),
      service_healthy_(gauge("poolkeeper_service_healthy", "1 when every critical check of the service is healthy")),
      service_intent_(gauge("poolkeeper_service_intent",
                            "The operator's intent for the service (1 for the current one)")),
      config_reload_(gauge("poolkeeper_config_last_reload_successful", "1 when the last config (re)load succeeded")),
      http_requests_(counter("poolkeeper_http_requests_total", "HTTP requests served by path and status code")),
      build_info_(gauge("poolkeeper_build_info", "Always 1; the version label names the build")),
      nfs_handles_match_(gauge("poolkeeper_nfs_handles_match",
                               "1 when the peer's NFS root and canary file handles equal ours (a client moved there "
                               "keeps working), 0 when they differ (ESTALE)")),
      state_file_(gauge("poolkeeper_state_file_readable",
                        "0 when the persisted intent could not be read at start (every service was depooled)")),
      conftool_up_(gauge("poolkeeper_conftool_up",
                         "1 when etcd (conftool) answered the last sync, 0 when not; absent without a [conftool] "
                         "section")),
      check_stuck_(gauge("poolkeeper_check_probe_stuck",
                         "1 while the check's probe is in flight past its timeout (counted as failing until it "
                         "returns)")),
      exec_leftovers_(gauge("poolkeeper_exec_leftover_processes",
                            "Processes exec probes left behind that were killed but are not gone yet (e.g. in "
                            "uninterruptible sleep on a hung mount)")),
      exec_leftovers_killed_(counter("poolkeeper_exec_leftover_processes_killed_total",
                                     "Processes exec probes left behind (escaped their process group, or outlived "
                                     "their probe), found and killed")),
      service_kept_by_floor_(gauge("poolkeeper_service_kept_by_floor",
                                   "1 while the service is failing but kept pooled by the safety floor (too few other "
                                   "hosts pooled and healthy)")),
      peer_up_(gauge("poolkeeper_peer_up", "1 when the peer's agent answered its last /status poll")),
      peer_service_pooled_(gauge("poolkeeper_peer_service_pooled",
                                 "1 when the peer reported the service effectively pooled at its last answered poll")),
      conftool_key_pooled_(gauge("poolkeeper_conftool_key_pooled",
                                 "This host's conftool key per service: 1 for its current state (pooled = yes, no, "
                                 "inactive, missing, unreadable), 0 for the others")),
      check_data_age_(gauge("poolkeeper_check_data_age_seconds",
                            "Age of the data the check reads (a canary file's mtime), as of its last probe that saw "
                            "it")),
      check_data_max_age_(gauge("poolkeeper_check_data_max_age_seconds",
                                "The check's max_age: older data fails it; absent without max_age")),
      liveness_up_(gauge("poolkeeper_liveness_up",
                         "1 when the last conftool sync saw this host's own liveness key in etcd; absent without a "
                         "[conftool] section")),
      takeover_waiting_(gauge("poolkeeper_takeover_waiting",
                              "1 while this agent would take a dead peer's conftool key out but the floor keeps it "
                              "pooled (too few other hosts pooled=yes); absent otherwise")) {
  build_info_.Add({{"version", POOLKEEPER_VERSION}}).Set(1);
  config_reload_.Add({}).Set(1);
  exec_leftovers_.Add({}).Set(0);
  exec_leftovers_killed_.Add({});
}

prometheus::Family<prometheus::Gauge>& Metrics::gauge(const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(*registry_);
}

prometheus::Family<prometheus::Counter>& Metrics::counter(const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(*registry_);
}

prometheus::Family<prometheus::Histogram>& Metrics::histogram(const char* name, const char* help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_);
}

template <typename T, typename... Args>
T& Metrics::series(Owned& owners, const std::string& owner, prometheus::Family<T>& family,
                   const prometheus::Labels& labels, Args&&... args) {
  T& metric = family.Add(labels, std::forward<Args>(args)...);
  // The family gives the same series for the same labels: one entry per series.
  auto& made = owners[owner].made;
  if (std::none_of(made.begin(), made.end(), [&](const Made& m) { return m.metric == &metric; }))
    made.push_back({&family, &metric, [](void* f, void* m) {
                      static_cast<prometheus::Family<T>*>(f)->Remove(static_cast<T*>(m));
                    }});
  return metric;
}

void Metrics::prune(Owned& owners, const std::set<std::string>& keep) {
  for (auto it = owners.begin(); it != owners.end();) {
    if (keep.count(it->first)) {
      ++it;
      continue;
    }
    for (const Made& m : it->second.made) m.remove(m.family, m.metric);
    it = owners.erase(it);
  }
}

void Metrics::on_result(const std::string& check, const Result& r, WallTime when) {
  // (An unordered_map's elements stay in place when it grows: `cs` stays valid.)
  CheckSeries& cs = by_check_[check].check;
  cached(cs.duration, check, check_duration_, {{"check", check}}, kLatencyBuckets).Observe(seconds(r.latency));
  auto o = static_cast<size_t>(r.outcome);
  if (o < std::size(cs.results))
    cached(cs.results[o], check, check_results_, {{"check", check}, {"result", outcome_name(r.outcome)}}).Increment();
  if (r.ok()) cached(cs.last_success, check, check_last_success_, {{"check", check}}).Set(unix_seconds(when));
  // Data age as the probe saw it; a probe that could not see the data leaves the last value.
  if (auto it = r.details.find("age_seconds"); it != r.details.end() && it->is_number())
    cached(cs.data_age, check, check_data_age_, {{"check", check}}).Set(it->get<double>());
  if (auto it = r.details.find("max_age_seconds"); it != r.details.end() && it->is_number())
    cached(cs.data_max_age, check, check_data_max_age_, {{"check", check}}).Set(it->get<double>());
}

void Metrics::on_event(const Event& e) {
  if (e.kind == EventKind::kCheck) series(by_check_, e.name, check_transitions_, {{"check", e.name}, {"to", e.to}}).Increment();
}

void Metrics::check_series(const CheckView& c) {
  CheckSeries& cs = by_check_[c.name].check;
  cached(cs.up, c.name, check_up_, {{"check", c.name}}).Set(c.health == CheckHealth::kHealthy ? 1 : 0);
  cached(cs.stuck, c.name, check_stuck_, {{"check", c.name}}).Set(c.stuck_since ? 1 : 0);
  // Make the series exist from the start, so rate() and absent() behave.
  cached(cs.duration, c.name, check_duration_, {{"check", c.name}}, kLatencyBuckets);
}

void Metrics::service_series(const ServiceView& sv, const nlohmann::json& conftool) {
  series(by_service_, sv.name, service_pooled_, {{"service", sv.name}})
      .Set(sv.effective.state == Effective::kPooled ? 1 : 0);
  series(by_service_, sv.name, service_healthy_, {{"service", sv.name}}).Set(sv.healthy ? 1 : 0);
  for (Intent i : {Intent::kPooled, Intent::kDepooled, Intent::kDrained, Intent::kInactive})
    series(by_service_, sv.name, service_intent_, {{"service", sv.name}, {"intent", intent_name(i)}})
        .Set(sv.intent.intent == i ? 1 : 0);
  series(by_service_, sv.name, service_kept_by_floor_, {{"service", sv.name}}).Set(sv.kept_by_floor ? 1 : 0);
  if (conftool.is_null()) return;
  bool conftool_up = conftool.value("up", false);
  const nlohmann::json* keys = conftool.contains("keys") ? &conftool["keys"] : nullptr;
  if (keys && keys->is_object() && keys->contains(sv.name)) {
    // etcd not answering, or a value that does not parse: "unreadable".
    const auto& k = (*keys)[sv.name];
    std::string state = "unreadable";
    if (conftool_up && k.contains("pooled") && k["pooled"].is_string()) state = k["pooled"].get<std::string>();
    else if (conftool_up && k.value("state", std::string()) == "missing") state = "missing";
    for (const char* st : {"yes", "no", "inactive", "missing", "unreadable"})
      series(by_service_, sv.name, conftool_key_pooled_, {{"service", sv.name}, {"pooled", st}})
          .Set(state == st ? 1 : 0);
  }
}

template <typename T, typename Update>
void Metrics::refresh(const SharedList<T>& now, SharedList<T>& seen, bool everything, Owned& owners, Update update) {
  if (!everything && now.shared() == seen.shared()) return;
  // The same names in the same order: only the items that are new objects changed.
  bool same_names = true;
  bool same_length = !everything && now.for_each_changed(seen, [&](size_t i) {
    if (now[i].name != seen[i].name) same_names = false;
    else update(now[i]);
  });
  if (!same_length || !same_names) {
    std::set<std::string> keep;
    for (const auto& item : now) {
      keep.insert(item.name);
      update(item);
    }
    prune(owners, keep);
  }
  seen = now;
}

void Metrics::on_snapshot(const Snapshot& s) {
  // A snapshot shares every view that did not change with the one before: the series of
  // those stay as they are, so a probe result costs the same with 1 check or 1000.
  refresh(s.checks, seen_checks_, false, by_check_, [this](const CheckView& c) { check_series(c); });
  bool conftool_changed = s.conftool != seen_conftool_;
  if (conftool_changed) {
    seen_conftool_ = s.conftool;
    if (!s.conftool.is_null()) {
      conftool_up_.Add({}).Set(s.conftool.value("up", false) ? 1 : 0);
      const auto& l = s.conftool.contains("liveness") ? s.conftool["liveness"] : nlohmann::json();
      bool seen = l.is_object() && l.contains("self_seen") && l["self_seen"].is_boolean() && l["self_seen"].get<bool>();
      liveness_up_.Add({}).Set(seen ? 1 : 0);
    }
    // A series for each takeover the floor holds (liveness.peers.<peer>.takeover_waiting).
    std::set<std::string> held;
    const nlohmann::json* peers = nullptr;
    if (!s.conftool.is_null() && s.conftool.contains("liveness") && s.conftool["liveness"].is_object() &&
        s.conftool["liveness"].contains("peers") && s.conftool["liveness"]["peers"].is_object())
      peers = &s.conftool["liveness"]["peers"];
    if (peers) {
      for (const auto& [peer, p] : peers->items()) {
        if (!p.is_object() || !p.contains("takeover_waiting") || !p["takeover_waiting"].is_object()) continue;
        for (const auto& [svc, w] : p["takeover_waiting"].items()) {
          std::string owner = svc + "/" + peer;
          held.insert(owner);
          series(by_takeover_, owner, takeover_waiting_, {{"peer", peer}, {"service", svc}}).Set(1);
        }
      }
    }
    prune(by_takeover_, held);
  }
  refresh(s.services, seen_services_, conftool_changed, by_service_,
          [&](const ServiceView& sv) { service_series(sv, s.conftool); });
  if (s.peers.shared() != seen_peers_.shared()) {
    std::set<std::string> peers;
    for (const auto& pv : s.peers) {
      std::string peer = pv.state.host.empty() ? pv.state.url : pv.state.host;
      peers.insert(peer);
      series(by_peer_, peer, peer_up_, {{"peer", peer}}).Set(pv.state.reachable ? 1 : 0);
      for (const auto& [svc, ps] : pv.state.services)
        series(by_peer_, peer, peer_service_pooled_, {{"peer", peer}, {"service", svc}})
            .Set(ps.effective == "pooled" ? 1 : 0);
      for (const auto& [check, match] : pv.handles_match) {
        if (match) series(by_peer_, peer, nfs_handles_match_, {{"check", check}, {"peer", peer}}).Set(*match ? 1 : 0);
      }
    }
    prune(by_peer_, peers);
    seen_peers_ = s.peers;
  }
  if (s.leftover_processes != leftovers_seen_) {
    exec_leftovers_.Add({}).Set(s.leftover_processes);
    leftovers_seen_ = s.leftover_processes;
  }
  if (s.leftovers_killed > leftovers_killed_seen_) {
    exec_leftovers_killed_.Add({}).Increment(static_cast<double>(s.leftovers_killed - leftovers_killed_seen_));
    leftovers_killed_seen_ = s.leftovers_killed;
  }
}

void Metrics::http_request(const std::string& route, int code) {
  std::string key = route + ' ' + std::to_string(code);
  {
    std::shared_lock<std::shared_mutex> lk(http_mu_);
    auto it = http_counters_.find(key);
    if (it != http_counters_.end()) {
      it->second->Increment();
      return;
    }
  }
  // Routes are bounded (http_api.h); the family keeps every series it made.
  prometheus::Counter& c = http_requests_.Add({{"path", route}, {"code", std::to_string(code)}});
  c.Increment();
  std::unique_lock<std::shared_mutex> lk(http_mu_);
  http_counters_.emplace(std::move(key), &c);
}

void Metrics::config_reload(bool ok) { config_reload_.Add({}).Set(ok ? 1 : 0); }

void Metrics::state_file(bool readable) { state_file_.Add({}).Set(readable ? 1 : 0); }

std::string Metrics::serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace poolkeeper
