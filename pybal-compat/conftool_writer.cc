#include "pybal-compat/conftool_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cmath>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "agent/base/duration.h"
#include "agent/base/log.h"
#include "agent/base/utf8.h"

namespace poolkeeper {

namespace {
constexpr const char* kMarkBy = "poolkeeper_depooled_by";
constexpr const char* kMarkReason = "poolkeeper_reason";
constexpr auto kMaxBackoff = std::chrono::seconds(10);
constexpr auto kMinBackoff = std::chrono::milliseconds(250);
constexpr auto kResync = std::chrono::seconds(2);
// While a peer looks dead (unreachable, or its liveness key gone), sync this often, so
// it is taken out within moments of peer_dead_after, not up to kResync later.
constexpr auto kSuspectResync = std::chrono::milliseconds(200);
}  // namespace

std::optional<ConftoolValue> parse_conftool_value(const std::string& value, std::string* error) {
  auto j = nlohmann::json::parse(value, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    *error = "value is not a JSON object";
    return std::nullopt;
  }
  if (!j.contains("pooled") || !j["pooled"].is_string()) {
    *error = "value has no \"pooled\" string";
    return std::nullopt;
  }
  ConftoolValue v;
  v.pooled = j["pooled"].get<std::string>();
  if (v.pooled != "yes" && v.pooled != "no" && v.pooled != "inactive") {
    *error = "unknown pooled \"" + cut_utf8(v.pooled, 20) + "\"";
    return std::nullopt;
  }
  if (j.contains("weight") && !j["weight"].is_number_integer()) {
    *error = "weight is not an integer";
    return std::nullopt;
  }
  v.raw = std::move(j);
  return v;
}

std::string merge_conftool_value(const nlohmann::json& raw, const std::string& pooled,
                                 const std::optional<std::pair<std::string, std::string>>& depooled_by) {
  nlohmann::json j = raw.is_object() ? raw : nlohmann::json::object();
  j["pooled"] = pooled;
  if (depooled_by) {
    j[kMarkBy] = depooled_by->first;
    j[kMarkReason] = depooled_by->second;
  } else {
    j.erase(kMarkBy);
    j.erase(kMarkReason);
  }
  return json_text(j);
}

ConftoolWriter::ConftoolWriter(ConftoolConfig cfg, std::string hostname, std::string state_path, Callbacks cb)
    : cfg_(std::move(cfg)),
      host_(std::move(hostname)),
      state_path_(std::move(state_path)),
      cb_(std::move(cb)),
      etcd_(EtcdOptions{cfg_.endpoints, cfg_.ca_file, cfg_.cert_file, cfg_.key_file, cfg_.username,
                        cfg_.password, std::chrono::milliseconds(2000)}) {
  etcd_.set_abort_flag(&abort_);
  load_seen();
}

ConftoolWriter::~ConftoolWriter() { stop(); }

void ConftoolWriter::start() {
  live_ = std::thread([this] { liveness_loop(); });
  sync_ = std::thread([this] { sync_loop(); });
  watch_ = std::thread([this] { watch_loop(); });
}

void ConftoolWriter::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  abort_ = true;  // cuts a long poll short
  cv_.notify_all();
  if (sync_.joinable()) sync_.join();
  if (watch_.joinable()) watch_.join();
  if (live_.joinable()) live_.join();
}

bool ConftoolWriter::wait_synced(Duration limit) {
  std::unique_lock<std::mutex> lk(mu_);
  uint64_t want = syncs_started_ + 1;
  dirty_ = true;
  cv_.notify_all();
  if (!cv_.wait_for(lk, limit, [&] { return stop_ || syncs_done_ >= want; })) return false;
  return !stop_ && last_sync_ok_;
}

nlohmann::json ConftoolWriter::keys() const {
  std::lock_guard<std::mutex> lk(mu_);
  return last_keys_;
}

std::string ConftoolWriter::last_error() const {
  std::lock_guard<std::mutex> lk(mu_);
  return last_error_;
}

// The liveness key: written whole (what an operator wants to know about the agent
// holding it) when missing, otherwise only its TTL is refreshed (refresh=true does not
// change the value or wake watchers). No delete on stop: a restart is quicker than the
// TTL, and a host going down lets it expire.
bool ConftoolWriter::refresh_liveness(std::string* error) {
  int64_t ttl = std::max<int64_t>(
      1, static_cast<int64_t>(std::ceil(std::chrono::duration<double>(cfg_.liveness_ttl).count())));
  if (live_index_ != 0) {
    auto r = etcd_.put(liveness_key(), "", EtcdPut{.prev_exist = true, .ttl = ttl, .refresh = true});
    if (r.ok()) return true;
    if (r.error_code != 100) {
      *error = r.describe();
      return false;
    }
    log_warn("conftool liveness key had expired; writing it again", {{"key", liveness_key()}});
  }
  nlohmann::json v = {{"host", host_},
                      {"pid", static_cast<int64_t>(::getpid())},
                      {"boot_id", boot_id_},
                      {"version", POOLKEEPER_VERSION},
                      {"started", format_wall(started_)},
                      {"written", format_wall(std::chrono::system_clock::now())},
                      {"ttl_seconds", ttl}};
  auto r = etcd_.put(liveness_key(), v.dump(), EtcdPut{.ttl = ttl});
  if (!r.ok()) {
    *error = r.describe();
    return false;
  }
  live_index_ = r.node.modified_index;
  return true;
}

void ConftoolWriter::liveness_loop() {
  Duration every = std::max<Duration>(cfg_.liveness_ttl / 3, std::chrono::milliseconds(200));
  bool failing = false;
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    lk.unlock();
    std::string error;
    bool ok = refresh_liveness(&error);
    {
      std::lock_guard<std::mutex> g(live_mu_);
      live_ok_ = ok;
      live_error_ = error;
      if (ok) live_refreshed_ = std::chrono::system_clock::now();
    }
    if (!ok && !failing) log_warn("conftool liveness key not refreshed", {{"key", liveness_key()}, {"error", error}});
    if (ok && failing) log_info("conftool liveness key refreshed again", {{"key", liveness_key()}});
    failing = !ok;
    lk.lock();
    if (!live_tried_) {
      live_tried_ = true;  // the sync loop waits for this: our key first, then our writes
      cv_.notify_all();
    }
    // After a failure, try again sooner, but never busier than every 200 ms.
    cv_.wait_for(lk, ok ? every : std::min<Duration>(every, std::chrono::seconds(1)), [this] { return stop_; });
  }
}

std::optional<std::map<std::string, EtcdNode>> ConftoolWriter::read_liveness(std::string* error) {
  auto r = etcd_.get(cfg_.liveness_prefix, true, true);
  std::map<std::string, EtcdNode> out;
  if (r.error_code == 100) return out;  // nobody alive yet
  if (!r.ok()) {
    *error = r.describe();
    return std::nullopt;
  }
  for (const auto& n : r.node.nodes)
    if (!n.dir) out[n.key.substr(n.key.rfind('/') + 1)] = n;
  return out;
}

void ConftoolWriter::track_liveness(const std::map<std::string, EtcdNode>& alive,
                                    const std::vector<ConftoolPeer>& peers) {
  SteadyTime now = SteadyClock::now();
  std::set<std::string> known;
  for (const auto& p : peers) {
    if (p.host.empty()) continue;
    known.insert(p.host);
    if (alive.count(p.host)) {
      if (peer_missing_since_.erase(p.host))
        log_info("conftool liveness key of a peer is back", {{"peer", p.host}});
      for (auto it = taken_out_.begin(); it != taken_out_.end();)  // alive again: a new death counts anew
        it = it->substr(it->find('/') + 1) == p.host ? taken_out_.erase(it) : std::next(it);
    } else if (peer_missing_since_.emplace(p.host, now).second) {
      log_info("conftool liveness key of a peer is missing",
               {{"peer", p.host}, {"key", cfg_.liveness_prefix + "/" + p.host}});
    }
  }
  // Peers a reload removed leave no state behind.
  for (auto it = peer_missing_since_.begin(); it != peer_missing_since_.end();)
    it = known.count(it->first) ? std::next(it) : peer_missing_since_.erase(it);
  std::erase_if(taken_out_, [&](const std::string& k) { return !known.count(k.substr(k.find('/') + 1)); });
  peer_alive_ = alive;
}

nlohmann::json ConftoolWriter::liveness_status(const std::map<std::string, EtcdNode>* alive) const {
  nlohmann::json j;
  {
    std::lock_guard<std::mutex> g(live_mu_);
    j = {{"key", liveness_key()},
         {"ttl", format_duration(cfg_.liveness_ttl)},
         {"ok", live_ok_},
         {"refreshed", live_refreshed_ == WallTime{} ? nlohmann::json(nullptr) : nlohmann::json(format_wall(live_refreshed_))},
         {"error", live_error_}};
  }
  if (alive) j["self_seen"] = alive->count(host_) > 0;
  nlohmann::json peers = nlohmann::json::object();
  WallTime wall = std::chrono::system_clock::now();
  SteadyTime steady = SteadyClock::now();
  for (const auto& [host, node] : peer_alive_) {
    if (host == host_) continue;
    peers[host] = {{"alive", true}};
  }
  for (const auto& [host, since] : peer_missing_since_) {
    auto missing_for = std::chrono::duration_cast<WallTime::duration>(steady - since);
    peers[host] = {{"alive", false}, {"missing_since", format_wall(wall - missing_for)}};
  }
  j["peers"] = peers;
  return j;
}


void ConftoolWriter::update(std::vector<ConftoolWant> wants, std::vector<ConftoolPeer> peers) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (wants == wants_ && peers == peers_) return;  // probe results alone change nothing here
    wants_ = std::move(wants);
    peers_ = std::move(peers);
    dirty_ = true;
  }
  cv_.notify_all();
}

void ConftoolWriter::load_seen() {
  std::ifstream in(state_path_);
  if (!in) return;
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (!j.is_object()) return;
  have_seen_file_ = true;
  for (const auto& [svc, v] : j.items())
    if (v.is_object()) seen_[svc] = {v.value("written", uint64_t{0}), v.value("seen", uint64_t{0})};
}

void ConftoolWriter::save_seen() {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [svc, s] : seen_) j[svc] = {{"written", s.written}, {"seen", s.seen}};
  std::string tmp = state_path_ + ".tmp", text = json_text(j) + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (ok) ::rename(tmp.c_str(), state_path_.c_str());
  else ::unlink(tmp.c_str());
  have_seen_file_ = true;
}

uint32_t ConftoolWriter::random_below(uint32_t bound) {
  std::lock_guard<std::mutex> lk(rng_mu_);
  return rng_() % bound;
}

bool ConftoolWriter::lock(const std::string& service) {
  auto deadline = SteadyClock::now() + std::chrono::seconds(5);
  int64_t ttl = std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(cfg_.lock_ttl).count());
  while (SteadyClock::now() < deadline) {
    auto r = etcd_.put(lock_key(service), host_, EtcdPut{.prev_exist = false, .ttl = ttl});
    if (r.ok()) return true;
    if (!r.transport_error.empty() || (r.error_code != 105 && r.error_code != 101)) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10 + random_below(40)));
  }
  return false;
}

void ConftoolWriter::unlock(const std::string& service) { etcd_.del(lock_key(service), host_); }

std::optional<std::map<std::string, EtcdNode>> ConftoolWriter::read_hosts(const std::string& service,
                                                                          std::string* error) {
  auto r = etcd_.get(cfg_.prefix + "/" + service, true, true);
  std::map<std::string, EtcdNode> out;
  if (r.error_code == 100) return out;  // no such service directory
  if (!r.ok()) {
    *error = r.describe();
    return std::nullopt;
  }
  for (const auto& n : r.node.nodes) {
    if (n.dir) continue;
    out[n.key.substr(n.key.rfind('/') + 1)] = n;
  }
  return out;
}

std::optional<std::map<std::string, std::map<std::string, EtcdNode>>> ConftoolWriter::read_pools(std::string* error) {
  auto r = etcd_.get(cfg_.prefix, true, true);
  std::map<std::string, std::map<std::string, EtcdNode>> out;
  if (r.error_code == 100) return out;  // no pools yet
  if (!r.ok()) {
    *error = r.describe();
    return std::nullopt;
  }
  for (const auto& svc : r.node.nodes) {
    if (!svc.dir) continue;
    auto& hosts = out[svc.key.substr(svc.key.rfind('/') + 1)];
    for (const auto& n : svc.nodes)
      if (!n.dir) hosts[n.key.substr(n.key.rfind('/') + 1)] = n;
  }
  return out;
}

int ConftoolWriter::others_yes(const std::map<std::string, EtcdNode>& hosts, const std::string& except1,
                               const std::string& except2) const {
  int n = 0;
  for (const auto& [host, node] : hosts) {
    if (host == except1 || host == except2) continue;
    std::string err;
    auto v = parse_conftool_value(node.value, &err);
    if (v && v->pooled == "yes") ++n;
  }
  return n;
}

bool ConftoolWriter::write(const std::string& service, const std::string& host, const EtcdNode& node,
                           const std::string& pooled,
                           const std::optional<std::pair<std::string, std::string>>& depooled_by,
                           std::string* error) {
  std::string err;
  auto v = parse_conftool_value(node.value, &err);
  if (!v) {
    *error = "key " + node.key + ": " + err + " (left alone)";
    return false;
  }
  if (v->pooled == "inactive") return true;  // only operators set or clear inactive
  std::string value = merge_conftool_value(v->raw, pooled, depooled_by);
  auto r = etcd_.put(cfg_.prefix + "/" + service + "/" + host, value,
                     EtcdPut{.prev_exist = true, .prev_index = node.modified_index});
  if (!r.ok()) {
    *error = r.describe();
    return false;
  }
  if (host == host_) {
    seen_[service].written = r.node.modified_index;
    seen_[service].seen = r.node.modified_index;
    save_seen();
  }
  log_info("conftool write", {{"key", node.key}, {"pooled", pooled},
                              {"index", std::to_string(r.node.modified_index)}});
  return true;
}

std::optional<std::string> ConftoolWriter::take_out(const std::string& service, int min_pooled, bool* unavailable) {
  *unavailable = false;
  if (!lock(service)) {
    *unavailable = true;
    return std::nullopt;
  }
  std::string error;
  std::optional<std::string> refusal;
  auto hosts = read_hosts(service, &error);
  if (!hosts) {
    *unavailable = true;
  } else if (hosts->count(host_)) {
    std::string e;
    auto mine = parse_conftool_value(hosts->at(host_).value, &e);
    int others = others_yes(*hosts, host_, "");
    if (!mine || mine->pooled != "yes") {
      // Already out (or inactive, or not ours to judge): nothing to refuse or write.
    } else if (others < min_pooled) {
      std::string list;
      for (const auto& [h, n] : *hosts) {
        if (h == host_) continue;
        std::string e;
        auto v = parse_conftool_value(n.value, &e);
        list += (list.empty() ? ": " : "; ") + h + " pooled=" + (v ? v->pooled : "?");
      }
      refusal = "refused: depooling " + service + " would leave " + std::to_string(others) +
                " other host" + (others == 1 ? "" : "s") + " pooled=yes in conftool (min_pooled " +
                std::to_string(min_pooled) + ")" + list + " — use --force to depool anyway";
    } else if (!write(service, host_, hosts->at(host_), "no", std::nullopt, &error)) {
      *unavailable = true;
    }
  }
  unlock(service);
  return refusal;
}

bool ConftoolWriter::sync_once(std::string* error) {
  std::lock_guard<std::mutex> op(op_mu_);  // then read wants: never older than a depool
  std::vector<ConftoolWant> wants;
  std::vector<ConftoolPeer> peers;
  {
    std::lock_guard<std::mutex> lk(mu_);
    wants = wants_;
    peers = peers_;
  }
  nlohmann::json keys = nlohmann::json::object();
  // One read of the whole prefix and one of the liveness keys per sync; the floor
  // re-reads its service under the lock.
  auto pools = read_pools(error);
  if (!pools) return false;
  auto alive = read_liveness(error);
  if (!alive) return false;
  track_liveness(*alive, peers);
  peer_suspect_ = std::any_of(peers.begin(), peers.end(), [&](const ConftoolPeer& p) {
    if (p.host.empty() || p.host == host_ || (p.reachable && !peer_missing_since_.count(p.host))) return false;
    return std::none_of(taken_out_.begin(), taken_out_.end(),  // already out: nothing left to decide
                        [&](const std::string& k) { return k.substr(k.find('/') + 1) == p.host; });
  });
  if (!wants.empty()) {  // services a reload removed leave no state behind
    auto wanted = [&](const std::string& svc) {
      return std::any_of(wants.begin(), wants.end(), [&](const ConftoolWant& w) { return w.service == svc; });
    };
    std::erase_if(seen_, [&](const auto& kv) { return !wanted(kv.first); });
    std::erase_if(missing_logged_, [&](const std::string& svc) { return !wanted(svc); });
  }
  std::map<std::string, std::map<std::string, EtcdNode>>& seen_hosts = *pools;  // service → host → key
  for (const auto& w : wants) {
    const std::map<std::string, EtcdNode>* hosts = &seen_hosts[w.service];
    FloorVerdict verdict = FloorVerdict::kNone;
    auto it = hosts->find(host_);
    if (it == hosts->end()) {
      keys[w.service] = {{"key", key(w.service)}, {"state", "missing"}};
      bool created = false;
      if (cfg_.create_missing && (w.kind == ConftoolWant::Kind::kYes || w.kind == ConftoolWant::Kind::kNo)) {
        std::string pooled = w.kind == ConftoolWant::Kind::kYes ? "yes" : "no";
        std::string value = nlohmann::json{{"pooled", pooled}, {"weight", 10}}.dump();
        auto r = etcd_.put(key(w.service), value, EtcdPut{.prev_exist = false});
        if (r.ok()) {
          seen_[w.service] = {r.node.modified_index, r.node.modified_index};
          save_seen();
          log_info("conftool key created", {{"key", key(w.service)}, {"value", value}});
          keys[w.service] = {{"key", key(w.service)}, {"pooled", pooled}, {"weight", 10},
                             {"modified_index", r.node.modified_index}};
          created = true;
        } else if (r.error_code != 105) {
          *error = r.describe();
          return false;
        }
      }
      // Once per disappearance: PyBal does not know this host for the service.
      if (!created && missing_logged_.insert(w.service).second)
        log_warn("conftool key missing: the load balancer does not know this host for the service",
                 {{"service", w.service}, {"key", key(w.service)}});
      cb_.verdict(w.service, verdict);
      continue;
    }
    if (missing_logged_.erase(w.service))
      log_info("conftool key present again", {{"service", w.service}, {"key", key(w.service)}});
    const EtcdNode& node = it->second;
    std::string perr;
    auto v = parse_conftool_value(node.value, &perr);
    if (!v) {
      keys[w.service] = {{"key", node.key}, {"state", "unparseable"}, {"error", perr}};
      cb_.verdict(w.service, verdict);
      continue;
    }
    keys[w.service] = {{"key", node.key}, {"pooled", v->pooled}, {"weight", v->raw.value("weight", nlohmann::json(nullptr))},
                       {"modified_index", node.modified_index}};
    Seen& seen = seen_[w.service];
    bool ours = node.modified_index == seen.written;
    bool looked = node.modified_index == seen.seen;
    if (!ours && !looked) {
      seen.seen = node.modified_index;
      save_seen();
      if (!v->raw.contains(kMarkBy)) {
        // Someone else (confctl) changed our key: that is the operator's intent now.
        log_info("conftool change adopted as intent", {{"key", node.key}, {"pooled", v->pooled},
                                                        {"index", std::to_string(node.modified_index)}});
        cb_.adopt(w.service, v->pooled);
        cb_.verdict(w.service, verdict);
        continue;  // the agent's next update reflects it
      }
    }
    if (v->pooled == "inactive") {
      cb_.verdict(w.service, verdict);
      continue;
    }
    bool marked = v->raw.contains(kMarkBy);
    switch (w.kind) {
      case ConftoolWant::Kind::kSkip:
        break;
      case ConftoolWant::Kind::kYes:
        if (v->pooled != "yes" || marked) {
          if (!write(w.service, host_, node, "yes", std::nullopt, error)) return false;
          keys[w.service]["pooled"] = "yes";
        }
        break;
      case ConftoolWant::Kind::kNo:
        if (v->pooled != "no") {
          if (!write(w.service, host_, node, "no", std::nullopt, error)) return false;
          keys[w.service]["pooled"] = "no";
        }
        break;
      case ConftoolWant::Kind::kNoUnderFloor:
        if (v->pooled != "yes") {
          verdict = FloorVerdict::kRelease;
          break;
        }
        if (!lock(w.service)) {
          *error = "cannot take the etcd lock " + lock_key(w.service);
          return false;
        }
        {
          auto fresh = read_hosts(w.service, error);
          bool ok = fresh.has_value();
          if (ok && fresh->count(host_)) {
            if (others_yes(*fresh, host_, "") >= w.min_pooled) {
              ok = write(w.service, host_, fresh->at(host_), "no", std::nullopt, error);
              if (ok) keys[w.service]["pooled"] = "no";
              verdict = FloorVerdict::kRelease;
            } else {
              verdict = FloorVerdict::kKeep;
            }
          }
          unlock(w.service);
          if (!ok) return false;
        }
        break;
    }
    cb_.verdict(w.service, verdict);
  }

  bool ok = true;
  take_out_dead_peers(seen_hosts, *alive, wants, peers, error, &ok);
  if (!ok) return false;
  up_ = true;
  {
    std::lock_guard<std::mutex> lk(mu_);
    last_keys_ = keys;
  }
  cb_.status(true, "", keys, liveness_status(&*alive));
  return true;
}

// A peer is dead only when both signals agree for peer_dead_after: its liveness key is
// gone (etcd, the system of record, which every agent sees alike) and its agent does
// not answer HTTP. Unreachability alone is a cut link, not a death; a missing key alone
// is an etcd problem on that host. The lowest-named live agent acts, itself seen alive
// in etcd, under the lock and the floor, and re-reads the liveness key under the lock
// (a host coming back writes its liveness key before any pool key). Each service's key
// is taken out once per death: if someone sets it "yes" while the host stays dead, that
// is an operator's choice, not fought.
void ConftoolWriter::take_out_dead_peers(const std::map<std::string, std::map<std::string, EtcdNode>>& pools,
                                         const std::map<std::string, EtcdNode>& alive,
                                         const std::vector<ConftoolWant>& wants,
                                         const std::vector<ConftoolPeer>& peers, std::string* error, bool* ok) {
  WallTime now = std::chrono::system_clock::now();
  SteadyTime snow = SteadyClock::now();
  if (!alive.count(host_)) return;  // our own key is not there: we are in no position to judge
  for (const auto& p : peers) {
    if (p.host.empty() || p.host == host_) continue;
    auto missing = peer_missing_since_.find(p.host);
    if (missing == peer_missing_since_.end() || snow - missing->second < cfg_.peer_dead_after) continue;
    if (p.reachable || p.unreachable_since == WallTime{} || now - p.unreachable_since < cfg_.peer_dead_after) continue;
    for (const auto& svc : p.services) {
      auto hosts_it = pools.find(svc);
      if (hosts_it == pools.end()) continue;
      auto it = hosts_it->second.find(p.host);
      if (it == hosts_it->second.end() || taken_out_.count(svc + "/" + p.host)) continue;
      std::string e;
      auto v = parse_conftool_value(it->second.value, &e);
      if (!v || v->pooled != "yes") continue;
      bool lowest = true;
      for (const auto& q : peers)
        if (q.host < host_ && q.host != p.host && (q.reachable || alive.count(q.host)) &&
            std::find(q.services.begin(), q.services.end(), svc) != q.services.end())
          lowest = false;
      if (!lowest) continue;
      int min_pooled = 1;
      for (const auto& w : wants)
        if (w.service == svc) min_pooled = w.min_pooled;
      if (!lock(svc)) {
        *error = "cannot take the etcd lock " + lock_key(svc);
        *ok = false;
        return;
      }
      auto fresh = read_hosts(svc, error);
      bool good = fresh.has_value();
      auto live = good ? etcd_.get(cfg_.liveness_prefix + "/" + p.host, false, true) : EtcdResult{};
      if (good && live.error_code != 100 && !live.ok()) {
        *error = live.describe();
        good = false;
      }
      if (good && live.error_code == 100 && fresh->count(p.host)) {
        auto fv = parse_conftool_value(fresh->at(p.host).value, &e);
        if (fv && fv->pooled == "yes" && others_yes(*fresh, p.host, "") >= min_pooled) {
          std::string why = "peer dead: liveness key gone since " +
                            format_wall(now - std::chrono::duration_cast<WallTime::duration>(snow - missing->second)) +
                            ", agent unreachable since " + format_wall(p.unreachable_since);
          good = write(svc, p.host, fresh->at(p.host), "no", std::make_pair(host_, why), error);
          if (good) {
            taken_out_.insert(svc + "/" + p.host);
            log_warn("took a dead peer out", {{"service", svc}, {"peer", p.host}, {"reason", why}});
          }
        }
      }
      unlock(svc);
      if (!good) {
        *ok = false;
        return;
      }
    }
  }
}

void ConftoolWriter::sync_loop() {
  auto backoff = kMinBackoff;
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [this] { return stop_ || live_tried_; });  // our liveness key before any write
  while (!stop_) {
    dirty_ = false;
    uint64_t round = ++syncs_started_;
    lk.unlock();
    std::string error;
    bool ok = sync_once(&error);
    lk.lock();
    syncs_done_ = round;
    last_sync_ok_ = ok;
    last_error_ = error;
    cv_.notify_all();
    if (ok) {
      backoff = kMinBackoff;
      cv_.wait_for(lk, peer_suspect_ ? kSuspectResync : kResync, [this] { return stop_ || dirty_; });
      continue;
    }
    if (up_ || backoff == kMinBackoff) log_warn("conftool unavailable", {{"error", error}});
    up_ = false;
    lk.unlock();
    cb_.status(false, error, nlohmann::json::object(), liveness_status(nullptr));
    lk.lock();
    // Capped exponential backoff with jitter; a state change does not cut it short.
    auto wait = backoff + std::chrono::milliseconds(random_below(static_cast<uint32_t>(backoff.count() / 2 + 1)));
    cv_.wait_for(lk, wait, [this] { return stop_; });
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
  }
}

void ConftoolWriter::watch_loop() {
  uint64_t index = 0;
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    lk.unlock();
    bool changed = false, failed = false;
    if (index == 0) {
      auto r = etcd_.get(cfg_.prefix, true, false);
      if (r.ok() || r.error_code == 100) index = r.etcd_index + 1;
      else failed = true;
    } else {
      auto w = etcd_.watch(cfg_.prefix, true, index, std::chrono::seconds(10));
      if (w.error_code == 401) {
        index = 0;  // the index was cleared: read everything again
        changed = true;
      } else if (w.ok()) {
        index = w.node.modified_index + 1;
        changed = true;
      } else if (w.error_code != -2) {
        failed = true;
      }
    }
    lk.lock();
    if (changed) {
      dirty_ = true;
      cv_.notify_all();
    }
    if (failed) cv_.wait_for(lk, std::chrono::seconds(1), [this] { return stop_; });
  }
}

}  // namespace poolkeeper
