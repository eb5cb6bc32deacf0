#include "pybal-compat/conftool_plan.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "agent/base/duration.h"
#include "agent/base/utf8.h"

namespace poolkeeper {

namespace {
std::string host_of(const std::string& taken_out_key) { return taken_out_key.substr(taken_out_key.find('/') + 1); }
}  // namespace

const char* conftool_pooled_name(ConftoolPooled p) {
  switch (p) {
    case ConftoolPooled::kYes: return "yes";
    case ConftoolPooled::kNo: return "no";
    case ConftoolPooled::kInactive: return "inactive";
  }
  return "no";
}

std::optional<ConftoolValue> parse_conftool_value(const std::string& value, std::string* error) {
  auto j = nlohmann::ordered_json::parse(value, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    *error = "value is not a JSON object";
    return std::nullopt;
  }
  if (!j.contains("pooled") || !j["pooled"].is_string()) {
    *error = "value has no \"pooled\" string";
    return std::nullopt;
  }
  ConftoolValue v;
  std::string pooled = j["pooled"].get<std::string>();
  if (pooled == "yes") v.pooled = ConftoolPooled::kYes;
  else if (pooled == "no") v.pooled = ConftoolPooled::kNo;
  else if (pooled == "inactive") v.pooled = ConftoolPooled::kInactive;
  else {
    *error = "unknown pooled \"" + cut_utf8(pooled, 20) + "\"";
    return std::nullopt;
  }
  if (j.contains("weight") && !j["weight"].is_number_integer()) {
    *error = "weight is not an integer";
    return std::nullopt;
  }
  v.raw = std::move(j);
  return v;
}

std::string merge_conftool_value(const nlohmann::ordered_json& raw, ConftoolPooled pooled) {
  nlohmann::ordered_json j = raw.is_object() ? raw : nlohmann::ordered_json::object();
  j["pooled"] = conftool_pooled_name(pooled);  // in its place when it has one, else last (as Python's dict.update)
  j.erase(kConftoolLegacyMarkBy);
  j.erase(kConftoolLegacyMarkReason);
  return python_json_dumps(j);
}

std::string new_conftool_value(ConftoolPooled pooled, int64_t weight) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["weight"] = weight;
  j["pooled"] = conftool_pooled_name(pooled);
  return python_json_dumps(j);
}

namespace {

// Python's float repr: the shortest digits that read back the same, fixed notation for
// exponents -4 … 15 (with ".0" when integral), else d.ddde±XX.
void python_float(double d, std::string& out) {
  if (std::isnan(d)) {
    out += "NaN";
    return;
  }
  if (std::isinf(d)) {
    out += d < 0 ? "-Infinity" : "Infinity";
    return;
  }
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);  // "-1.2345e+17", "5e-324"
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t e = sci.find('e');
  int exp = std::stoi(sci.substr(e + 1));
  std::string digits;
  for (char c : sci.substr(0, e))
    if (c != '.') digits += c;
  if (neg) out += '-';
  if (exp < -4 || exp >= 16) {
    out += digits[0];
    if (digits.size() > 1) out += "." + digits.substr(1);
    char ebuf[16];
    std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += ebuf;
  } else if (exp < 0) {
    out += "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
    out += digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0') + ".0";
  } else {
    out += digits.substr(0, static_cast<size_t>(exp) + 1) + "." + digits.substr(static_cast<size_t>(exp) + 1);
  }
}

// json's ensure_ascii string: \" \\ \n \r \t \b \f, everything else outside ' '…'~' as
// \uXXXX (lowercase hex; above U+FFFF as a surrogate pair). The parser checked the UTF-8.
void python_string(const std::string& s, std::string& out) {
  out += '"';
  auto hex = [&](uint32_t u) {
    char b[16];
    std::snprintf(b, sizeof b, "\\u%04x", u);
    out += b;
  };
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    uint32_t cp = c;
    size_t len = 1;
    if (c >= 0xF0) cp = c & 0x07, len = 4;
    else if (c >= 0xE0) cp = c & 0x0F, len = 3;
    else if (c >= 0xC0) cp = c & 0x1F, len = 2;
    for (size_t k = 1; k < len && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    i += len;
    switch (cp) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    if (cp >= 0x20 && cp <= 0x7E) out += static_cast<char>(cp);
    else if (cp < 0x10000) hex(cp);
    else {
      cp -= 0x10000;
      hex(0xD800 | (cp >> 10));
      hex(0xDC00 | (cp & 0x3FF));
    }
  }
  out += '"';
}

void python_dump(const nlohmann::ordered_json& v, std::string& out) {
  switch (v.type()) {
    case nlohmann::ordered_json::value_t::object: {
      out += '{';
      const char* sep = "";
      for (const auto& [k, x] : v.items()) {
        out += sep;
        python_string(k, out);
        out += ": ";
        python_dump(x, out);
        sep = ", ";
      }
      out += '}';
      break;
    }
    case nlohmann::ordered_json::value_t::array: {
      out += '[';
      const char* sep = "";
      for (const auto& x : v) {
        out += sep;
        python_dump(x, out);
        sep = ", ";
      }
      out += ']';
      break;
    }
    case nlohmann::ordered_json::value_t::string:
      python_string(v.get_ref<const std::string&>(), out);
      break;
    case nlohmann::ordered_json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      break;
    case nlohmann::ordered_json::value_t::number_integer:
      out += std::to_string(v.get<int64_t>());
      break;
    case nlohmann::ordered_json::value_t::number_unsigned:
      out += std::to_string(v.get<uint64_t>());
      break;
    case nlohmann::ordered_json::value_t::number_float:
      python_float(v.get<double>(), out);
      break;
    default:
      out += "null";
      break;
  }
}

}  // namespace

std::string python_json_dumps(const nlohmann::ordered_json& v) {
  std::string out;
  python_dump(v, out);
  return out;
}

std::optional<ConftoolTakeoverRecord> parse_takeover_record(const std::string& value) {
  auto j = nlohmann::json::parse(value, nullptr, false);
  if (!j.is_object() || !j.contains("index") || !j["index"].is_number_unsigned()) return std::nullopt;
  ConftoolTakeoverRecord r;
  auto text = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : ""; };
  r.by = text("by");
  r.reason = text("reason");
  r.at = text("at");
  r.index = j["index"].get<uint64_t>();
  r.raw = value;
  return r;
}

std::string takeover_record_value(const ConftoolTakeoverRecord& r) {
  return json_text({{"by", r.by}, {"reason", r.reason}, {"at", r.at}, {"index", r.index}});
}

std::vector<LivenessChange> track_liveness(PeerLiveness& track, const std::set<std::string>& alive,
                                           const std::vector<ConftoolPeer>& peers, SteadyTime now) {
  std::vector<LivenessChange> changes;
  std::set<std::string> known;
  for (const auto& p : peers) {
    if (p.host.empty()) continue;
    known.insert(p.host);
    if (alive.count(p.host)) {
      if (track.missing_since.erase(p.host)) changes.push_back({p.host, true});
      std::erase_if(track.taken_out, [&](const std::string& k) { return host_of(k) == p.host; });
    } else if (track.missing_since.emplace(p.host, now).second) {
      changes.push_back({p.host, false});
    }
  }
  std::erase_if(track.missing_since, [&](const auto& kv) { return !known.count(kv.first); });
  std::erase_if(track.taken_out, [&](const std::string& k) { return !known.count(host_of(k)); });
  return changes;
}

bool peer_suspect(const PeerLiveness& track, const std::vector<ConftoolPeer>& peers, const std::string& self) {
  return std::any_of(peers.begin(), peers.end(), [&](const ConftoolPeer& p) {
    if (p.host.empty() || p.host == self || (p.reachable && !track.missing_since.count(p.host))) return false;
    bool settled = std::any_of(track.taken_out.begin(), track.taken_out.end(),  // already out: nothing left to decide
                               [&](const std::string& k) { return host_of(k) == p.host; }) ||
                   std::any_of(track.waiting.begin(), track.waiting.end(),  // held: a key change wakes the sync
                               [&](const auto& kv) { return host_of(kv.first) == p.host; });
    return !settled;
  });
}

std::vector<WaitChange> track_waiting(PeerLiveness& track, const std::vector<ConftoolHeld>& held, WallTime now) {
  std::vector<WaitChange> changes;
  std::set<std::string> still;
  for (const auto& h : held) {
    std::string k = h.service + "/" + h.peer;
    still.insert(k);
    auto [it, fresh] = track.waiting.try_emplace(k, TakeoverWait{h.refusal, now});
    if (fresh) changes.push_back({h.service, h.peer, h.refusal, true});
    else it->second.refusal = h.refusal;
  }
  for (auto it = track.waiting.begin(); it != track.waiting.end();) {
    if (still.count(it->first)) {
      ++it;
      continue;
    }
    size_t slash = it->first.find('/');
    changes.push_back({it->first.substr(0, slash), it->first.substr(slash + 1), it->second.refusal, false});
    it = track.waiting.erase(it);
  }
  return changes;
}

namespace {

ConftoolKeyStep plan_key(const ConftoolView& view, const ConftoolWant& w) {
  ConftoolKeyStep step;
  step.service = w.service;
  step.min_pooled = w.min_pooled;
  std::string key = view.prefix + "/" + w.service + "/" + view.self;
  const EtcdNode* node = nullptr;
  if (auto pool = view.pools.find(w.service); pool != view.pools.end())
    if (auto it = pool->second.find(view.self); it != pool->second.end()) node = &it->second;
  if (!node) {
    step.missing = true;
    step.key = {{"key", key}, {"state", "missing"}};
    if (view.create_missing && (w.kind == ConftoolWant::Kind::kYes || w.kind == ConftoolWant::Kind::kNo)) {
      step.action = ConftoolKeyStep::Action::kCreate;
      step.pooled = w.kind == ConftoolWant::Kind::kYes ? ConftoolPooled::kYes : ConftoolPooled::kNo;
    }
    return step;
  }
  std::string error;
  auto v = parse_conftool_value(node->value, &error);
  if (!v) {
    step.key = {{"key", node->key}, {"state", "unparseable"}, {"error", error}};
    return step;
  }
  step.node = *node;
  step.key = {{"key", node->key}, {"pooled", conftool_pooled_name(v->pooled)}, {"weight", v->raw.value("weight", nlohmann::json(nullptr))},
              {"modified_index", node->modified_index}};
  ConftoolSeen seen;
  if (auto it = view.seen.find(w.service); it != view.seen.end()) seen = it->second;
  // A peer took this key out while we were dead: its record under <depooled_prefix>
  // names the write, or (an older agent) the value carries its marker.
  const ConftoolTakeoverRecord* record = nullptr;
  if (auto svc = view.records.find(w.service); svc != view.records.end())
    if (auto it = svc->second.find(view.self); it != svc->second.end()) record = &it->second;
  bool marked = v->raw.contains(kConftoolLegacyMarkBy) || (record && record->index == node->modified_index);
  if (node->modified_index != seen.written && node->modified_index != seen.seen) {
    step.looked_at = node->modified_index;
    if (!marked) {
      // Someone else (confctl) changed our key: that is the operator's intent now. A
      // change marked by a peer's takeover is not: this agent writes over it.
      step.action = ConftoolKeyStep::Action::kAdopt;
      step.pooled = v->pooled;
      return step;
    }
  }
  if (v->pooled == ConftoolPooled::kInactive) return step;  // only operators set or clear inactive
  switch (w.kind) {
    case ConftoolWant::Kind::kSkip:
      break;
    case ConftoolWant::Kind::kYes:
      if (v->pooled != ConftoolPooled::kYes || marked) {
        step.action = ConftoolKeyStep::Action::kWrite;
        step.pooled = ConftoolPooled::kYes;
      }
      break;
    case ConftoolWant::Kind::kNo:
      if (v->pooled != ConftoolPooled::kNo) {
        step.action = ConftoolKeyStep::Action::kWrite;
        step.pooled = ConftoolPooled::kNo;
      }
      break;
    case ConftoolWant::Kind::kNoUnderFloor:
      if (v->pooled != ConftoolPooled::kYes) step.verdict = FloorVerdict::kRelease;  // already out
      else step.action = ConftoolKeyStep::Action::kFloor;
      break;
  }
  return step;
}

// A peer is dead only when both signals agree for peer_dead_after: its liveness key is
// gone (etcd, the system of record, which every agent sees alike) and its agent does
// not answer HTTP. Unreachability alone is a cut link, not a death; a missing key alone
// is an etcd problem on that host. The lowest-named live agent acts, itself seen alive
// in etcd. Each service's key is taken out once per death: if someone sets it "yes"
// while the host stays dead, that is an operator's choice, not fought.
// The floor is asked first of the keys this sync read: while it refuses, the takeover
// is held without taking the lock (nothing written), until a key of the service changes.
void plan_takeovers(const ConftoolView& view, ConftoolPlan* plan) {
  if (!view.alive.count(view.self)) return;  // our own key is not there: we are in no position to judge
  for (const auto& p : view.peers) {
    if (p.host.empty() || p.host == view.self) continue;
    auto missing = view.liveness.missing_since.find(p.host);
    if (missing == view.liveness.missing_since.end() || view.steady_now - missing->second < view.peer_dead_after)
      continue;
    if (p.reachable || p.unreachable_since == WallTime{} || view.wall_now - p.unreachable_since < view.peer_dead_after)
      continue;
    for (const auto& svc : p.services) {
      auto pool = view.pools.find(svc);
      if (pool == view.pools.end()) continue;
      auto it = pool->second.find(p.host);
      if (it == pool->second.end() || view.liveness.taken_out.count(svc + "/" + p.host)) continue;
      std::string e;
      auto v = parse_conftool_value(it->second.value, &e);
      if (!v || v->pooled != ConftoolPooled::kYes) continue;
      bool lowest = std::none_of(view.peers.begin(), view.peers.end(), [&](const ConftoolPeer& q) {
        return q.host < view.self && q.host != p.host && (q.reachable || view.alive.count(q.host)) &&
               std::find(q.services.begin(), q.services.end(), svc) != q.services.end();
      });
      if (!lowest) continue;
      ConftoolTakeover t;
      t.service = svc;
      t.peer = p.host;
      for (const auto& w : view.wants)
        if (w.service == svc) t.min_pooled = w.min_pooled;
      auto floor = conftool_floor(svc, p.host, t.min_pooled, pool->second);
      if (floor.outcome == ConftoolFloor::Outcome::kRefused) {
        plan->held.push_back({svc, p.host, floor.refusal});
        continue;
      }
      auto missing_for = std::chrono::duration_cast<WallTime::duration>(view.steady_now - missing->second);
      t.why = "peer dead: liveness key gone since " + format_wall(view.wall_now - missing_for) +
              ", agent unreachable since " + format_wall(p.unreachable_since);
      plan->takeovers.push_back(std::move(t));
    }
  }
}

}  // namespace

ConftoolPlan plan_sync(const ConftoolView& view) {
  ConftoolPlan plan;
  for (const auto& w : view.wants) {
    ConftoolKeyStep step = plan_key(view, w);
    // Our own takeover record outlives its use once the key moved on from that write
    // (an operator's change, a missing or unreadable key) or this step writes over it.
    if (auto svc = view.records.find(w.service); svc != view.records.end())
      if (auto it = svc->second.find(view.self); it != svc->second.end())
        if (step.missing || step.node.modified_index != it->second.index ||
            step.action == ConftoolKeyStep::Action::kWrite)
          step.drop_record = it->second.raw;
    plan.keys.push_back(std::move(step));
  }
  plan_takeovers(view, &plan);
  return plan;
}

ConftoolFloor conftool_floor(const std::string& service, const std::string& leaving, int min_pooled,
                             const std::map<std::string, EtcdNode>& hosts) {
  ConftoolFloor out;
  auto it = hosts.find(leaving);
  if (it == hosts.end()) return out;
  std::string e;
  auto v = parse_conftool_value(it->second.value, &e);
  if (!v || v->pooled != ConftoolPooled::kYes) {
    out.outcome = ConftoolFloor::Outcome::kNotPooled;
    return out;
  }
  std::vector<FloorHost> others;
  for (const auto& [host, node] : hosts) {
    auto hv = parse_conftool_value(node.value, &e);
    FloorHost h;
    h.name = host;
    h.known = hv.has_value();
    h.pooled = h.healthy = hv && hv->pooled == ConftoolPooled::kYes;  // the load balancer's view: "yes" carries
    h.description = host + " pooled=" + (hv ? conftool_pooled_name(hv->pooled) : "?");
    others.push_back(std::move(h));
  }
  if (auto refusal = floor_refusal(service, leaving, min_pooled, others, "pooled=yes in conftool")) {
    out.outcome = ConftoolFloor::Outcome::kRefused;
    out.refusal = *refusal;
  } else {
    out.outcome = ConftoolFloor::Outcome::kTakeOut;
  }
  return out;
}

}  // namespace poolkeeper
