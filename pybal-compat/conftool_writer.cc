#include "pybal-compat/conftool_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "agent/duration.h"
#include "agent/log.h"

namespace poolkeeper {

namespace {
constexpr const char* kMarkBy = "poolkeeper_depooled_by";
constexpr const char* kMarkReason = "poolkeeper_reason";
constexpr auto kMaxBackoff = std::chrono::seconds(10);
constexpr auto kMinBackoff = std::chrono::milliseconds(250);
constexpr auto kResync = std::chrono::seconds(2);
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
    *error = "unknown pooled \"" + v.pooled.substr(0, 20) + "\"";
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
  return j.dump();
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
  std::string tmp = state_path_ + ".tmp", text = j.dump() + "\n";
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
  WallTime now = std::chrono::system_clock::now();
  // One read of the whole prefix per sync; the floor re-reads its service under the lock.
  auto pools = read_pools(error);
  if (!pools) return false;
  std::map<std::string, std::map<std::string, EtcdNode>>& seen_hosts = *pools;  // service → host → key
  for (const auto& w : wants) {
    const std::map<std::string, EtcdNode>* hosts = &seen_hosts[w.service];
    FloorVerdict verdict = FloorVerdict::kNone;
    auto it = hosts->find(host_);
    if (it == hosts->end()) {
      keys[w.service] = {{"key", key(w.service)}, {"state", "missing"}};
      if (cfg_.create_missing && (w.kind == ConftoolWant::Kind::kYes || w.kind == ConftoolWant::Kind::kNo)) {
        std::string value = nlohmann::json{{"pooled", w.kind == ConftoolWant::Kind::kYes ? "yes" : "no"}, {"weight", 10}}.dump();
        auto r = etcd_.put(key(w.service), value, EtcdPut{.prev_exist = false});
        if (r.ok()) {
          seen_[w.service] = {r.node.modified_index, r.node.modified_index};
          save_seen();
          log_info("conftool key created", {{"key", key(w.service)}, {"value", value}});
        } else if (r.error_code != 105) {
          *error = r.describe();
          return false;
        }
      }
      cb_.verdict(w.service, verdict);
      continue;
    }
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

  // Dead peers: the lowest-named live agent takes them out (floor still applies). Every
  // peer key's last change is tracked on every sync, so "stood still for
  // peer_dead_after" is measured from the last write we saw, not from the death.
  for (const auto& p : peers) {
    if (p.host.empty()) continue;
    for (const auto& svc : p.services) {
      auto hosts_it = seen_hosts.find(svc);
      if (hosts_it == seen_hosts.end()) continue;
      auto it = hosts_it->second.find(p.host);
      if (it == hosts_it->second.end()) continue;
      UnchangedSince& still = peer_keys_[svc + "/" + p.host];
      if (still.index != it->second.modified_index) still = {it->second.modified_index, SteadyClock::now()};
      if (p.reachable || p.unreachable_since == WallTime{} || now - p.unreachable_since < cfg_.peer_dead_after) continue;
      if (SteadyClock::now() - still.since < cfg_.peer_dead_after) continue;
      bool lowest = true;
      for (const auto& q : peers)
        if (q.reachable && q.host < host_ &&
            std::find(q.services.begin(), q.services.end(), svc) != q.services.end())
          lowest = false;
      if (!lowest) continue;
      std::string e;
      auto v = parse_conftool_value(it->second.value, &e);
      if (!v || v->pooled != "yes") continue;
      int min_pooled = 1;
      for (const auto& w : wants)
        if (w.service == svc) min_pooled = w.min_pooled;
      if (!lock(svc)) return false;
      auto fresh = read_hosts(svc, error);
      bool ok = fresh.has_value();
      if (ok && fresh->count(p.host) && fresh->at(p.host).modified_index == still.index &&
          others_yes(*fresh, p.host, "") >= min_pooled) {
        std::string why = "peer unreachable since " + format_wall(p.unreachable_since);
        ok = write(svc, p.host, fresh->at(p.host), "no", std::make_pair(host_, why), error);
        if (ok) log_warn("took a dead peer out", {{"service", svc}, {"peer", p.host}, {"reason", why}});
      }
      unlock(svc);
      if (!ok) return false;
    }
  }
  up_ = true;
  cb_.status(true, "", keys);
  return true;
}

void ConftoolWriter::sync_loop() {
  auto backoff = kMinBackoff;
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    dirty_ = false;
    lk.unlock();
    std::string error;
    bool ok = sync_once(&error);
    lk.lock();
    if (ok) {
      backoff = kMinBackoff;
      cv_.wait_for(lk, kResync, [this] { return stop_ || dirty_; });
      continue;
    }
    if (up_ || backoff == kMinBackoff) log_warn("conftool unavailable", {{"error", error}});
    up_ = false;
    lk.unlock();
    cb_.status(false, error, nlohmann::json::object());
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
