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
// The sync loop's backoff while etcd fails: from kMinBackoff, doubling, at most kMaxBackoff.
constexpr auto kMaxBackoff = std::chrono::seconds(10);
constexpr auto kMinBackoff = std::chrono::milliseconds(250);
// With nothing changed, a sync this often (the watch wakes it sooner on a change).
constexpr auto kResync = std::chrono::seconds(2);
// While a peer looks dead (unreachable, or its liveness key gone), sync this often, so
// it is taken out within moments of peer_dead_after, not up to kResync later.
constexpr auto kSuspectResync = std::chrono::milliseconds(200);
// How long lock() tries for a held lock, pausing kLockRetry plus up to kLockJitter
// between tries, before it gives up.
constexpr auto kLockWait = std::chrono::seconds(5);
// How long an operator's change handed to the agent holds our writes of that key back
// while the agent's wants do not show it yet (the agent takes it in within a turn; this
// only bounds a change the agent never took in, e.g. while it stopped).
constexpr auto kAdoptWait = std::chrono::seconds(30);
constexpr auto kLockRetry = std::chrono::milliseconds(10);
constexpr uint32_t kLockJitterMs = 40;
// The liveness key is refreshed every liveness_ttl/3, never more often than
// kLivenessMinEvery, and after a failure again within kLivenessRetry.
constexpr auto kLivenessMinEvery = std::chrono::milliseconds(200);
constexpr auto kLivenessRetry = std::chrono::seconds(1);
// The watch's long poll, and its pause after etcd failed it.
constexpr auto kWatchPoll = std::chrono::seconds(10);
constexpr auto kWatchRetry = std::chrono::seconds(1);
}  // namespace

ConftoolWriter::ConftoolWriter(ConftoolConfig cfg, std::string hostname, std::string state_path, Callbacks cb,
                               const Clock& clock, EtcdKeys* etcd)
    : cfg_(std::move(cfg)),
      host_(std::move(hostname)),
      state_path_(std::move(state_path)),
      cb_(std::move(cb)),
      clock_(clock),
      client_(etcd ? nullptr
                   : std::make_unique<EtcdClient>(
                         EtcdOptions{cfg_.endpoints, cfg_.ca_file, cfg_.cert_file, cfg_.key_file, cfg_.username,
                                     cfg_.password, std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.timeout)},
                         clock)),
      etcd_(etcd ? *etcd : *client_),
      started_(clock.wall()) {
  if (client_) client_->set_abort_flag(&abort_);
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
    if (r.error_code != EtcdError::kKeyNotFound) {
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
                      {"written", format_wall(clock_.wall())},
                      {"ttl_seconds", ttl}};
  auto r = etcd_.put(liveness_key(), v.dump(), EtcdPut{.ttl = ttl});
  if (!r.ok()) {
    *error = r.describe();
    return false;
  }
  live_index_ = r.node.modified_index;
  return true;
}

bool ConftoolWriter::liveness_round(std::string* error) {
  bool ok = refresh_liveness(error);
  std::lock_guard<std::mutex> g(live_mu_);
  live_ok_ = ok;
  live_error_ = *error;
  if (ok) live_refreshed_ = clock_.wall();
  return ok;
}

void ConftoolWriter::liveness_loop() {
  Duration every = std::max<Duration>(cfg_.liveness_ttl / 3, kLivenessMinEvery);
  bool failing = false;
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    lk.unlock();
    std::string error;
    bool ok = liveness_round(&error);
    if (!ok && !failing) log_warn("conftool liveness key not refreshed", {{"key", liveness_key()}, {"error", error}});
    if (ok && failing) log_info("conftool liveness key refreshed again", {{"key", liveness_key()}});
    lk.lock();
    if (ok && failing) {
      etcd_back_ = true;  // cuts the sync loop's backoff short: converge as soon as etcd is back
      cv_.notify_all();
    }
    failing = !ok;
    if (!live_tried_) {
      live_tried_ = true;  // the sync loop waits for this: our key first, then our writes
      cv_.notify_all();
    }
    // After a failure, try again sooner, but never busier than every kLivenessMinEvery.
    cv_.wait_for(lk, ok ? every : std::min<Duration>(every, kLivenessRetry), [this] { return stop_; });
  }
}

std::optional<std::set<std::string>> ConftoolWriter::read_liveness(std::string* error) {
  auto r = etcd_.get(cfg_.liveness_prefix + "/", true, true);
  std::set<std::string> out;
  if (r.error_code == EtcdError::kKeyNotFound) return out;  // nobody alive yet
  if (!r.ok()) {
    *error = r.describe();
    return std::nullopt;
  }
  for (const auto& n : r.node.nodes)
    if (!n.dir) out.insert(n.key.substr(n.key.rfind('/') + 1));
  return out;
}

nlohmann::json ConftoolWriter::liveness_status(const std::set<std::string>* alive) const {
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
  WallTime wall = clock_.wall();
  SteadyTime steady = clock_.now();
  for (const auto& host : alive_) {
    if (host == host_) continue;
    peers[host] = {{"alive", true}};
  }
  for (const auto& [host, since] : liveness_.missing_since) {
    auto missing_for = std::chrono::duration_cast<WallTime::duration>(steady - since);
    peers[host] = {{"alive", false}, {"missing_since", format_wall(wall - missing_for)}};
  }
  for (const auto& [host, t] : takeovers_.items())
    if (peers.contains(host)) peers[host].update(t);
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
}

uint32_t ConftoolWriter::random_below(uint32_t bound) {
  std::lock_guard<std::mutex> lk(rng_mu_);
  return rng_() % bound;
}

bool ConftoolWriter::lock(const std::string& service, std::string* error) {
  lock_denied_ = false;
  auto deadline = clock_.now() + kLockWait;
  int64_t ttl = std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(cfg_.lock_ttl).count());
  std::string holder;
  while (clock_.now() < deadline) {
    auto r = etcd_.put(lock_key(service), host_, EtcdPut{.prev_exist = false, .ttl = ttl});
    if (r.ok()) return true;
    if (r.error_code == EtcdError::kUnauthorized) lock_denied_ = true;  // the role lacks the lock prefix
    if (!r.transport_error.empty() ||
        (r.error_code != EtcdError::kNodeExists && r.error_code != EtcdError::kCompareFailed)) {
      *error = "cannot take the etcd lock " + lock_key(service) + ": " + r.describe();
      return false;
    }
    // Held. By us, when an earlier attempt was written but its answer lost (the member
    // hung or lost its leader after committing, and the client went on to the next):
    // only this agent writes its host name there, one conversation at a time.
    auto held = etcd_.get(lock_key(service), false, true);
    if (held.ok()) holder = held.node.value;
    if (held.ok() && held.node.value == host_ &&
        etcd_.put(lock_key(service), host_, EtcdPut{.prev_value = host_, .ttl = ttl}).ok())
      return true;
    clock_.sleep_for(kLockRetry + std::chrono::milliseconds(random_below(kLockJitterMs)));
  }
  *error = "cannot take the etcd lock " + lock_key(service) + (holder.empty() ? "" : ": held by " + holder);
  return false;
}

void ConftoolWriter::unlock(const std::string& service) { etcd_.del(lock_key(service), host_); }

std::optional<std::map<std::string, EtcdNode>> ConftoolWriter::read_hosts(const std::string& service,
                                                                          std::string* error) {
  auto r = etcd_.get(cfg_.prefix + "/" + service + "/", true, true);
  std::map<std::string, EtcdNode> out;
  if (r.error_code == EtcdError::kKeyNotFound) return out;  // no such service directory
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

std::optional<ConftoolPools> ConftoolWriter::read_tree(const std::string& prefix, std::string* error) {
  // With the trailing slash: etcd's v2 auth lets a role granted "<prefix>/*" read
  // "<prefix>/" recursively, but not "<prefix>" (its grants match by string prefix).
  auto r = etcd_.get(prefix + "/", true, true);
  ConftoolPools out;
  if (r.error_code == EtcdError::kKeyNotFound) return out;  // nothing there yet
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

bool ConftoolWriter::write(const std::string& service, const std::string& host, const EtcdNode& node,
                           ConftoolPooled pooled, std::string* error, uint64_t* index) {
  std::string err;
  auto v = parse_conftool_value(node.value, &err);
  if (!v) {
    *error = "key " + node.key + ": " + err + " (left alone)";
    return false;
  }
  if (v->pooled == ConftoolPooled::kInactive) return true;  // only operators set or clear inactive
  std::string value = merge_conftool_value(v->raw, pooled);
  auto r = etcd_.put(cfg_.prefix + "/" + service + "/" + host, value,
                     EtcdPut{.prev_exist = true, .prev_index = node.modified_index});
  if (r.error_code == EtcdError::kCompareFailed) {
    // Compare failed: someone wrote meanwhile — or this very write did, on a member whose
    // answer was lost before the client tried the next one. Ours when the key now holds
    // exactly our value, one write later: counted as written, never written again.
    auto now = etcd_.get(cfg_.prefix + "/" + service + "/" + host, false, true);
    if (now.ok() && now.node.value == value && now.node.modified_index > node.modified_index) r = now;
  }
  if (!r.ok()) {
    *error = r.describe();
    return false;
  }
  if (index) *index = r.node.modified_index;
  if (host == host_) {
    seen_[service].written = r.node.modified_index;
    seen_[service].seen = r.node.modified_index;
    save_seen();
  }
  if (last_read_) {  // what the next sync's early floor steps plan from knows this write
    auto svc = last_read_->pools.find(service);
    if (svc != last_read_->pools.end() && svc->second.count(host)) {
      svc->second[host].value = value;
      svc->second[host].modified_index = r.node.modified_index;
    }
  }
  log_info("conftool write", {{"key", node.key}, {"pooled", conftool_pooled_name(pooled)},
                              {"index", std::to_string(r.node.modified_index)}});
  return true;
}

void ConftoolWriter::take_out(const std::vector<TakeOutRequest>& requests,
                              const std::function<void(const std::vector<TakeOutAnswer>&)>& apply) {
  std::lock_guard<std::mutex> op(op_mu_);  // no sync until `apply` has returned
  std::vector<TakeOutAnswer> answers;
  for (const auto& r : requests) {
    TakeOutAnswer& a = answers.emplace_back();
    a.service = r.service;
    if (!up_) a.unavailable = true;  // the caller decides from the peers' /status
    else take_out_one(r, &a);
    if (a.refusal) break;
  }
  apply(answers);
}

void ConftoolWriter::take_out_one(const TakeOutRequest& r, TakeOutAnswer* a) {
  std::string error;
  auto f = floor_under_lock(r.service, host_, r.min_pooled, &error);
  if (!f) a->unavailable = true;  // the caller decides from the peers' /status
  else if (f->outcome == ConftoolFloor::Outcome::kRefused) a->refusal = f->refusal;
  // kTakeOut: written "no"; kGone, kNotPooled: already out (or inactive): nothing to do.
}

std::optional<ConftoolFloor> ConftoolWriter::floor_under_lock(
    const std::string& service, const std::string& leaving, int min_pooled, std::string* error,
    const std::function<bool(std::string*)>& go_on, const std::function<void(const ConftoolFloor&)>& decided) {
  if (!lock(service, error)) return std::nullopt;
  std::optional<ConftoolFloor> f;
  if (auto hosts = read_hosts(service, error)) {
    std::string why;
    bool go = !go_on || go_on(&why);
    if (!why.empty()) {
      *error = why;
    } else if (!go) {
      f = ConftoolFloor{};
    } else {
      f = conftool_floor(service, leaving, min_pooled, *hosts);
      if (f->outcome == ConftoolFloor::Outcome::kTakeOut &&
          !write(service, leaving, hosts->at(leaving), ConftoolPooled::kNo, error, &f->written_index))
        f.reset();
    }
  }
  if (f && decided) decided(*f);
  unlock(service);
  return f;
}

bool ConftoolWriter::sync_once(std::string* error) {
  std::lock_guard<std::mutex> op(op_mu_);  // then read wants: never older than a depool
  ConftoolView view;
  {
    std::lock_guard<std::mutex> lk(mu_);
    view.wants = wants_;
    view.peers = peers_;
  }
  hold_adopted(&view.wants);
  std::map<std::string, FloorVerdict> early;
  if (!early_floor_steps(view, &early, error)) return false;
  // One read of the whole prefix and one of the liveness keys per sync; the floor
  // re-reads its service under the lock.
  for (auto it = pending_records_.begin(); it != pending_records_.end();) {
    auto r = etcd_.put(it->first, it->second, {});
    if (!r.ok()) {
      *error = "takeover record " + it->first + " not written: " + r.describe();
      return false;
    }
    it = pending_records_.erase(it);
  }
  auto pools = read_tree(cfg_.prefix, error);
  if (!pools) return false;
  auto record_nodes = read_tree(cfg_.depooled_prefix, error);
  if (!record_nodes) return false;
  ConftoolRecords records;  // unreadable records left out
  for (const auto& [svc, hosts] : *record_nodes)
    for (const auto& [host, n] : hosts)
      if (auto rec = parse_takeover_record(n.value)) records[svc][host] = *rec;
  auto alive = read_liveness(error);
  if (!alive) return false;
  view.steady_now = clock_.now();
  view.wall_now = clock_.wall();
  for (const auto& c : track_liveness(liveness_, *alive, view.peers, view.steady_now)) {
    if (c.back) log_info("conftool liveness key of a peer is back", {{"peer", c.peer}});
    else log_info("conftool liveness key of a peer is missing",
                  {{"peer", c.peer}, {"key", cfg_.liveness_prefix + "/" + c.peer}});
  }
  alive_ = *alive;
  peer_suspect_ = peer_suspect(liveness_, view.peers, host_);
  if (!view.wants.empty()) {  // services a reload removed leave no state behind
    auto wanted = [&](const std::string& svc) {
      return std::any_of(view.wants.begin(), view.wants.end(), [&](const ConftoolWant& w) { return w.service == svc; });
    };
    std::erase_if(seen_, [&](const auto& kv) { return !wanted(kv.first); });
    std::erase_if(missing_logged_, [&](const std::string& svc) { return !wanted(svc); });
  }
  view.self = host_;
  view.prefix = cfg_.prefix;
  view.create_missing = cfg_.create_missing;
  view.peer_dead_after = cfg_.peer_dead_after;
  view.pools = std::move(*pools);
  view.records = std::move(records);
  view.alive = *alive;
  view.seen = seen_;
  view.liveness = liveness_;
  ConftoolPlan plan = plan_sync(view);
  last_read_ = view;

  nlohmann::json keys = nlohmann::json::object();
  for (ConftoolKeyStep step : plan.keys) {
    keys[step.service] = step.key;
    auto e = early.find(step.service);
    if (step.action == ConftoolKeyStep::Action::kFloor && e != early.end()) {
      step.action = ConftoolKeyStep::Action::kNone;  // the floor was asked once this sync: its answer stands
      step.verdict = e->second;
    }
    if (!execute(step, &keys[step.service], error)) return false;
  }
  std::vector<ConftoolHeld> held = plan.held;
  for (const auto& t : plan.takeovers) {
    std::optional<std::string> refused;
    if (!execute(t, &refused, error)) return false;
    if (refused) held.push_back({t.service, t.peer, *refused});
  }
  // Said once when a takeover starts waiting on the floor, once when it no longer does.
  for (const auto& c : track_waiting(liveness_, held, view.wall_now)) {
    if (c.started) {
      log_warn("takeover of " + c.peer + " held by the floor", {{"service", c.service}, {"peer", c.peer},
                                                                {"reason", c.refusal}});
    } else if (!liveness_.taken_out.count(c.service + "/" + c.peer)) {
      log_info("takeover of " + c.peer + " no longer held",
               {{"service", c.service}, {"peer", c.peer},
                {"why", alive_.count(c.peer) ? "its liveness key is back" : "its key is no longer to be taken out"}});
    }
  }
  note_takeovers(view);
  up_ = true;
  {
    std::lock_guard<std::mutex> lk(mu_);
    last_keys_ = keys;
  }
  cb_.status(true, "", keys, liveness_status(&*alive));
  return true;
}

bool ConftoolWriter::execute(const ConftoolKeyStep& step, nlohmann::json* key, std::string* error) {
  const std::string& svc = step.service;
  if (!step.missing && missing_logged_.erase(svc))
    log_info("conftool key present again", {{"service", svc}, {"key", this->key(svc)}});
  if (step.looked_at) {
    seen_[svc].seen = *step.looked_at;
    save_seen();
  }
  FloorVerdict verdict = step.verdict;
  bool created = false;
  switch (step.action) {
    case ConftoolKeyStep::Action::kNone:
      break;
    case ConftoolKeyStep::Action::kCreate: {
      std::string value = new_conftool_value(step.pooled, 10);
      auto r = etcd_.put(this->key(svc), value, EtcdPut{.prev_exist = false});
      if (r.ok()) {
        seen_[svc] = {r.node.modified_index, r.node.modified_index};
        save_seen();
        log_info("conftool key created", {{"key", this->key(svc)}, {"value", value}});
        *key = {{"key", this->key(svc)}, {"pooled", conftool_pooled_name(step.pooled)}, {"weight", 10},
                {"modified_index", r.node.modified_index}};
        created = true;
      } else if (r.error_code != EtcdError::kNodeExists) {  // someone created it meanwhile; the next sync sees it
        *error = r.describe();
        return false;
      }
      break;
    }
    case ConftoolKeyStep::Action::kAdopt:
      log_info("conftool change adopted as intent", {{"key", step.key.value("key", "")},
                                                      {"pooled", conftool_pooled_name(step.pooled)},
                                                      {"index", std::to_string(step.node.modified_index)}});
      adopting_[svc] = {step.pooled, clock_.now()};
      cb_.adopt(svc, step.pooled);  // the agent's next update reflects it
      break;
    case ConftoolKeyStep::Action::kWrite:
      if (!write(svc, host_, step.node, step.pooled, error)) return false;
      (*key)["pooled"] = conftool_pooled_name(step.pooled);
      break;
    case ConftoolKeyStep::Action::kFloor:
      if (!floor_step(step, key, &verdict, error)) return false;
      break;
  }
  if (step.drop_record) {  // done with: the key moved on from that takeover (or we wrote over it)
    auto r = etcd_.del(depooled_key(svc, host_), *step.drop_record);
    if (!r.ok() && r.error_code != EtcdError::kKeyNotFound &&
        r.error_code != EtcdError::kCompareFailed) {  // gone, or a newer one: leave it
      *error = r.describe();
      return false;
    }
    if (r.ok()) log_info("conftool takeover record removed", {{"key", depooled_key(svc, host_)}});
  }
  // Once per disappearance: PyBal does not know this host for the service.
  if (step.missing && !created && missing_logged_.insert(svc).second)
    log_warn("conftool key missing: the load balancer does not know this host for the service",
             {{"service", svc}, {"key", this->key(svc)}});
  cb_.verdict(svc, verdict);
  return true;
}

void ConftoolWriter::hold_adopted(std::vector<ConftoolWant>* wants) {
  for (auto& w : *wants) {
    auto a = adopting_.find(w.service);
    if (a == adopting_.end()) continue;
    using K = ConftoolWant::Kind;
    bool agrees = a->second.pooled == ConftoolPooled::kNo    ? w.kind == K::kNo || w.kind == K::kSkip
                  : a->second.pooled == ConftoolPooled::kYes ? w.kind != K::kNo
                                                             : true;
    if (agrees || clock_.now() - a->second.at >= kAdoptWait) {
      adopting_.erase(a);
      continue;
    }
    w.kind = K::kSkip;  // wants from before the agent took the operator's change in
  }
}

bool ConftoolWriter::floor_step(const ConftoolKeyStep& step, nlohmann::json* key, FloorVerdict* verdict,
                                std::string* error) {
  const std::string& svc = step.service;
  auto verdict_of = [&](const ConftoolFloor& f) {
    switch (f.outcome) {
      case ConftoolFloor::Outcome::kGone:
        return step.verdict;
      case ConftoolFloor::Outcome::kRefused:
        return FloorVerdict::kKeep;
      case ConftoolFloor::Outcome::kNotPooled:  // out already
      case ConftoolFloor::Outcome::kTakeOut:
        break;
    }
    return FloorVerdict::kRelease;
  };
  // The agent hears the answer before the lock's release, one round trip sooner.
  auto f = floor_under_lock(svc, host_, step.min_pooled, error, nullptr,
                            [&](const ConftoolFloor& d) { cb_.verdict(svc, verdict_of(d)); });
  if (!f && lock_denied_) {
    // Not a silent skip of the floor: stay in, and say why, until the grant is there.
    *error += "; staying pooled for " + svc + ": without the lock this host does not take itself out";
    cb_.verdict(svc, FloorVerdict::kLockDenied);
  }
  if (!f) return false;
  if (f->outcome == ConftoolFloor::Outcome::kTakeOut) (*key)["pooled"] = conftool_pooled_name(ConftoolPooled::kNo);
  *verdict = verdict_of(*f);
  return true;
}

bool ConftoolWriter::early_floor_steps(const ConftoolView& now, std::map<std::string, FloorVerdict>* given,
                                       std::string* error) {
  if (!last_read_) return true;  // the first sync: nothing read yet to plan from
  // Only a failing service's key goes through the floor in plan_sync: without one,
  // there is nothing to run early (and no copy of the last read to plan from).
  if (std::none_of(now.wants.begin(), now.wants.end(),
                   [](const ConftoolWant& w) { return w.kind == ConftoolWant::Kind::kNoUnderFloor; }))
    return true;
  ConftoolView view = *last_read_;
  view.wants = now.wants;
  view.peers = now.peers;
  view.seen = seen_;
  view.steady_now = clock_.now();
  view.wall_now = clock_.wall();
  for (const auto& step : plan_sync(view).keys) {
    if (step.action != ConftoolKeyStep::Action::kFloor) continue;
    nlohmann::json key = step.key;  // /status gets the sync's own read of it
    FloorVerdict v = step.verdict;
    if (!floor_step(step, &key, &v, error)) return false;
    (*given)[step.service] = v;
  }
  return true;
}

// A dead peer's key, under the lock and the floor; the peer's liveness key is read again
// under the lock (a host coming back writes its liveness key before any pool key). Who
// and why go to <depooled_prefix>/<service>/<peer> with the index of the write, right
// after it: the value PyBal reads holds only what confctl would write.
bool ConftoolWriter::execute(const ConftoolTakeover& t, std::optional<std::string>* refused, std::string* error) {
  auto still_dead = [&](std::string* why) {
    auto live = etcd_.get(cfg_.liveness_prefix + "/" + t.peer, false, true);
    if (live.error_code != EtcdError::kKeyNotFound && !live.ok()) *why = live.describe();
    return live.error_code == EtcdError::kKeyNotFound;  // no liveness key: still gone
  };
  auto f = floor_under_lock(t.service, t.peer, t.min_pooled, error, still_dead);
  if (!f) return false;
  if (f->outcome == ConftoolFloor::Outcome::kRefused) *refused = f->refusal;
  if (f->outcome != ConftoolFloor::Outcome::kTakeOut) return true;
  std::string key = t.service + "/" + t.peer;
  liveness_.taken_out.insert(key);
  if (liveness_.waiting.count(key))
    log_info("takeover of " + t.peer + " proceeds: the floor allows it now", {{"service", t.service}, {"peer", t.peer}});
  log_warn("took a dead peer out", {{"service", t.service}, {"peer", t.peer}, {"reason", t.why}});
  ConftoolTakeoverRecord rec{host_, t.why, format_wall(clock_.wall()), f->written_index, ""};
  std::string at = depooled_key(t.service, t.peer), value = takeover_record_value(rec);
  auto r = etcd_.put(at, value, {});
  if (!r.ok()) {
    pending_records_[at] = value;  // the key is out: the record follows on the next sync
    *error = "takeover record " + at + " not written: " + r.describe();
    return false;
  }
  return true;
}

void ConftoolWriter::note_takeovers(const ConftoolView& view) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [svc, hosts] : view.records) {
    for (const auto& [host, rec] : hosts) {
      if (host == host_) continue;
      auto pool = view.pools.find(svc);
      bool current = pool != view.pools.end() && pool->second.count(host) &&
                     pool->second.at(host).modified_index == rec.index;
      out[host]["taken_out"][svc] = {{"by", rec.by}, {"reason", rec.reason}, {"at", rec.at}, {"current", current}};
    }
  }
  for (const auto& [k, w] : liveness_.waiting) {
    size_t slash = k.find('/');
    out[k.substr(slash + 1)]["takeover_waiting"][k.substr(0, slash)] = {{"reason", w.refusal},
                                                                        {"since", format_wall(w.since)}};
  }
  takeovers_ = std::move(out);
}

void ConftoolWriter::sync_loop() {
  auto backoff = kMinBackoff;
  std::string logged;  // the cause last logged, its numbers (ms, indexes) left out
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
      if (!logged.empty()) log_info("conftool available again", {{"endpoint", etcd_.in_use()}});
      logged.clear();
      backoff = kMinBackoff;
      cv_.wait_for(lk, peer_suspect_ ? kSuspectResync : kResync, [this] { return stop_ || dirty_; });
      continue;
    }
    std::string cause = error;
    std::erase_if(cause, [](char ch) { return ch >= '0' && ch <= '9'; });
    if (up_ || backoff == kMinBackoff || cause != logged) log_warn("conftool unavailable", {{"error", error}});
    logged = cause;
    up_ = false;
    lk.unlock();
    cb_.status(false, error, nlohmann::json::object(), liveness_status(nullptr));
    lk.lock();
    // Capped exponential backoff with jitter; a state change does not cut it short, etcd
    // answering the liveness thread again does.
    auto wait = backoff + std::chrono::milliseconds(random_below(static_cast<uint32_t>(backoff.count() / 2 + 1)));
    etcd_back_ = false;
    if (cv_.wait_for(lk, wait, [this] { return stop_ || etcd_back_; }) && etcd_back_) backoff = kMinBackoff;
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
      auto r = etcd_.get(cfg_.prefix + "/", true, false);
      if (r.ok() || r.error_code == EtcdError::kKeyNotFound) index = r.etcd_index + 1;
      else failed = true;
    } else {
      auto w = etcd_.watch(cfg_.prefix + "/", true, index, kWatchPoll);
      if (w.error_code == EtcdError::kIndexCleared) {
        index = 0;  // the index was cleared: read everything again
        changed = true;
      } else if (w.ok()) {
        index = w.node.modified_index + 1;
        changed = true;
      } else if (w.error_code != EtcdError::kWatchTimedOut) {
        failed = true;
      }
    }
    lk.lock();
    if (changed) {
      dirty_ = true;
      cv_.notify_all();
    }
    if (failed) cv_.wait_for(lk, kWatchRetry, [this] { return stop_; });
  }
}

}  // namespace poolkeeper
