#include "agent/publish/status_page.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "agent/base/duration.h"
#include "agent/base/utf8.h"

namespace poolkeeper {

namespace {
// The entity a character is written as in HTML text and attribute values; null for one
// written as itself.
const char* html_entity(char c) {
  switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    case '\'': return "&#39;";
    default: return nullptr;
  }
}
}  // namespace

std::string html_escape(std::string_view text) {
  std::string in = is_valid_utf8(text) ? std::string(text) : valid_utf8(text);
  std::string out;
  out.reserve(in.size() + 16);
  for (char c : in) {
    if (const char* entity = html_entity(c)) out += entity;
    // Control characters other than tab and newline are shown as a space.
    else if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') out += ' ';
    else out += c;
  }
  return out;
}

namespace {

// The page's look: a single column on a phone, cards side by side on a laptop; wide
// tables scroll inside their box instead of widening the page.
constexpr const char* kStyle = R"CSS(
:root{--ok:#1b7f3b;--ok-bg:#e3f4e8;--bad:#b3261e;--bad-bg:#fbe4e2;--warn:#9a5b00;--warn-bg:#fff1d6;
--admin:#3b5b92;--admin-bg:#e4ebf7;--unk:#5f6368;--unk-bg:#ececec;--line:#d7d7d7;--muted:#5f6368}
*{box-sizing:border-box}
body{margin:0;padding:12px;font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f1f1f;background:#f7f7f7}
header h1{margin:0;font-size:1.3em;word-break:break-all}
header p{margin:2px 0;color:var(--muted)}
h2{font-size:1.1em;margin:18px 0 8px}
.banner{padding:8px 10px;border-radius:6px;margin:8px 0;font-weight:600}
.banner.bad{background:var(--bad-bg);color:var(--bad)} .banner.warn{background:var(--warn-bg);color:var(--warn)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:10px}
.card{background:#fff;border:1px solid var(--line);border-left:8px solid var(--unk);border-radius:6px;padding:10px 12px}
.card.ok{border-left-color:var(--ok)} .card.bad{border-left-color:var(--bad)}
.card.warn{border-left-color:var(--warn)} .card.admin{border-left-color:var(--admin)}
.card h3{margin:0 0 4px;font-size:1.15em;display:flex;flex-wrap:wrap;gap:6px;align-items:center}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.8em;font-weight:700;letter-spacing:.02em;white-space:nowrap}
.badge.ok{background:var(--ok-bg);color:var(--ok)} .badge.bad{background:var(--bad-bg);color:var(--bad)}
.badge.warn{background:var(--warn-bg);color:var(--warn)} .badge.admin{background:var(--admin-bg);color:var(--admin)}
.badge.unk{background:var(--unk-bg);color:var(--unk)}
.reason{font-weight:600;margin:4px 0 6px;overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;margin:0}
dt{color:var(--muted)} dd{margin:0;overflow-wrap:anywhere}
.scroll{overflow-x:auto;background:#fff;border:1px solid var(--line);border-radius:6px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:.9em;white-space:nowrap}
td.why{overflow-wrap:anywhere;min-width:12em}
tr:last-child td{border-bottom:0}
.muted{color:var(--muted)} .nowrap{white-space:nowrap}
svg{display:block}
footer{margin-top:16px;color:var(--muted);font-size:.9em}
a{color:var(--admin)}
@media (max-width:600px){body{padding:8px;font-size:14px}
.scroll{overflow-x:visible}thead{display:none}table,tbody,tr,td{display:block}
tr{border-bottom:1px solid var(--line);padding:6px 8px}td{border:0;padding:1px 0}td.why{min-width:0}
td.nowrap,.nowrap{white-space:normal}}
)CSS";

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// "0.42 ms", "12 ms", "1.25 s"
std::string latency_text(double secs) {
  if (secs < 0.001) return fmt("%.2f ms", secs * 1000);
  if (secs < 1) return fmt("%.0f ms", secs * 1000);
  return fmt("%.2f s", secs);
}

// "14:03:07 UTC" today, else "2024-05-01 14:03 UTC".
std::string clock_text(WallTime t, WallTime now) {
  if (t == WallTime{}) return "never";
  auto to_tm = [](WallTime w) {
    std::time_t secs = std::chrono::system_clock::to_time_t(w);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    return tm;
  };
  std::tm tm = to_tm(t), today = to_tm(now);
  char buf[64];
  if (tm.tm_yday == today.tm_yday && tm.tm_year == today.tm_year)
    std::snprintf(buf, sizeof buf, "%02d:%02d:%02d UTC", tm.tm_hour, tm.tm_min, tm.tm_sec);
  else
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d UTC", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min);
  return buf;
}

// "45s", "3m 20s", "5h 02m", "3d 4h"
std::string span_text(Duration d) {
  long long s = std::max<long long>(0, std::chrono::duration_cast<std::chrono::seconds>(d).count());
  char buf[64];
  if (s < 60) std::snprintf(buf, sizeof buf, "%llds", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%lldm %02llds", s / 60, s % 60);
  else if (s < 86400) std::snprintf(buf, sizeof buf, "%lldh %02lldm", s / 3600, (s % 3600) / 60);
  else std::snprintf(buf, sizeof buf, "%lldd %lldh", s / 86400, (s % 86400) / 3600);
  return buf;
}

// "14:03:07 UTC (3m 20s ago)"
std::string when_text(WallTime t, WallTime now) {
  if (t == WallTime{}) return "never";
  std::string out = clock_text(t, now);
  if (t <= now) out += " (" + span_text(now - t) + " ago)";
  else out += " (in " + span_text(t - now) + ")";
  return out;
}

// The card colour and the words of a service's effective state.
struct Look {
  const char* cls;
  const char* words;
};

Look service_look(const ServiceView& s) {
  switch (s.effective.state) {
    case Effective::kPooled:
      return s.kept_by_floor ? Look{"warn", "POOLED (kept by floor)"} : Look{"ok", "POOLED"};
    case Effective::kDrained:
      return {"warn", "DRAINED"};
    case Effective::kNotPooled:
      break;
  }
  if (s.intent.intent != Intent::kPooled) return {"admin", "NOT POOLED (operator)"};
  return {"bad", "NOT POOLED"};
}

Look check_look(const CheckView& c) {
  switch (c.health) {
    case CheckHealth::kHealthy: return {"ok", "healthy"};
    case CheckHealth::kUnhealthy: return {"bad", "unhealthy"};
    case CheckHealth::kUnknown: break;
  }
  return {"unk", "unknown"};
}

const char* outcome_colour(Outcome o) {
  switch (o) {
    case Outcome::kPassed: return "#1b7f3b";
    case Outcome::kTimeout: return "#d97700";
    case Outcome::kFailed:
    case Outcome::kNetworkError: break;
  }
  return "#b3261e";
}

// One bar per recent result: height is the latency (scaled to the slowest in view),
// colour the result (green passed, red failed, orange timeout). Oldest on the left.
void history_svg(std::string& out, const CheckView& c) {
  constexpr int kW = 2 * static_cast<int>(60), kH = 26;
  static const std::vector<ResultPoint> kNone;
  const auto& h = c.history ? *c.history : kNone;
  double max = 0;
  size_t passed = 0;
  for (const auto& p : h) {
    max = std::max(max, static_cast<double>(p.latency_seconds));
    if (p.outcome == Outcome::kPassed) ++passed;
  }
  out += "<svg width=\"" + std::to_string(kW) + "\" height=\"" + std::to_string(kH) +
         "\" viewBox=\"0 0 " + std::to_string(kW) + " " + std::to_string(kH) +
         "\" role=\"img\" aria-label=\"recent results\"><title>";
  out += std::to_string(h.size()) + " results, " + std::to_string(passed) + " passed; slowest " +
         latency_text(max) + "</title><rect width=\"" + std::to_string(kW) + "\" height=\"" +
         std::to_string(kH) + "\" fill=\"#f1f1f1\"/>";
  size_t offset = h.size() < 60 ? 60 - h.size() : 0;  // newest always at the right edge
  for (size_t i = 0; i < h.size() && i < 60; ++i) {
    const auto& p = h[h.size() > 60 ? h.size() - 60 + i : i];
    double frac = max > 0 ? p.latency_seconds / max : 0;
    int bar = std::max(3, static_cast<int>(frac * (kH - 2) + 0.5));
    if (p.outcome != Outcome::kPassed) bar = std::max(bar, kH / 2);  // failures stand out
    out += "<rect x=\"" + std::to_string((offset + i) * 2) + "\" y=\"" + std::to_string(kH - bar) +
           "\" width=\"1.6\" height=\"" + std::to_string(bar) + "\" fill=\"" + outcome_colour(p.outcome) + "\"/>";
  }
  out += "</svg>";
}

std::string intent_text(const ServiceView& s, WallTime now) {
  const AdminIntent& i = s.intent;
  std::string out = intent_name(i.intent);
  if (!i.who.empty()) out += " by " + html_escape(i.who);
  if (!i.reason.empty()) out += ": \u201c" + html_escape(i.reason) + "\u201d";
  if (i.when != WallTime{}) out += ", since " + when_text(i.when, now);
  if (i.expires) out += "; until " + when_text(*i.expires, now);
  if (i.until_boot) out += "; until healthy after the next boot";
  if (s.returns_after_boot) out += " (this is a later boot: returns once healthy)";
  return out;
}

std::string conftool_key_text(const nlohmann::json& conftool, const std::string& service) {
  if (conftool.is_null()) return "";
  const nlohmann::json* keys = conftool.contains("keys") ? &conftool["keys"] : nullptr;
  if (!keys || !keys->is_object() || !keys->contains(service)) return "<span class=\"muted\">not read yet</span>";
  const auto& k = (*keys)[service];
  std::string out;
  if (k.contains("pooled") && k["pooled"].is_string()) {
    std::string p = k["pooled"].get<std::string>();
    const char* cls = p == "yes" ? "ok" : p == "no" ? "bad" : "admin";
    out = "<span class=\"badge " + std::string(cls) + "\">pooled=" + html_escape(p) + "</span>";
    if (k.contains("weight") && k["weight"].is_number()) out += " weight " + k["weight"].dump();
  } else {
    out = "<span class=\"badge bad\">" + html_escape(k.value("state", std::string("unknown"))) + "</span>";
    if (k.contains("error") && k["error"].is_string()) out += " " + html_escape(k["error"].get<std::string>());
  }
  if (k.contains("key") && k["key"].is_string())
    out += " <span class=\"muted\">" + html_escape(k["key"].get<std::string>()) + "</span>";
  if (!conftool.value("up", false)) out += " <span class=\"muted\">(last seen; etcd not answering)</span>";
  return out;
}

void service_card(std::string& out, const Snapshot& s, const ServiceView& sv) {
  WallTime now = s.generated;
  Look look = service_look(sv);
  out += "<article class=\"card " + std::string(look.cls) + "\" id=\"service-" + html_escape(sv.name) + "\">";
  out += "<h3>" + html_escape(sv.name) + " <span class=\"badge " + look.cls + "\">" + look.words + "</span></h3>";
  std::string reason = sv.effective.reason;
  if (reason.empty()) reason = sv.effective.state == Effective::kPooled ? "all critical checks healthy" : effective_name(sv.effective.state);
  out += "<p class=\"reason\">" + html_escape(reason) + "</p><dl>";
  out += "<dt>since</dt><dd>" + when_text(sv.since, now) + "</dd>";
  out += "<dt>health</dt><dd>";
  // The headline above already gives the failing check when it is why: not twice.
  bool said = !sv.health_reason.empty() && reason.find(sv.health_reason) != std::string::npos;
  if (sv.healthy) out += "healthy";
  else out += "unhealthy" + (sv.health_reason.empty() || said ? std::string() : ": " + html_escape(sv.health_reason));
  for (const auto& w : sv.warnings) out += "<br><span class=\"muted\">warning: " + html_escape(w) + "</span>";
  out += "</dd><dt>intent</dt><dd>" + intent_text(sv, now) + "</dd>";
  out += "<dt>floor</dt><dd>";
  if (sv.has_peers) {
    out += "min_pooled " + std::to_string(sv.min_pooled) + ", peers pooled and healthy " +
           std::to_string(sv.peers_pooled_healthy);
    if (sv.kept_by_floor) out += " &mdash; <b>kept in by the floor</b>";
  } else {
    out += "<span class=\"muted\">no peers: leaves the pool on its own health</span>";
  }
  out += "</dd>";
  if (!s.conftool.is_null()) out += "<dt>conftool</dt><dd>" + conftool_key_text(s.conftool, sv.name) + "</dd>";
  out += "<dt>checks</dt><dd>";
  for (size_t i = 0; i < sv.checks.size(); ++i) {
    const CheckView* c = s.find_check(sv.checks[i]);
    Look cl = c ? check_look(*c) : Look{"unk", "unknown"};
    if (i) out += " ";
    out += "<span class=\"badge " + std::string(cl.cls) + "\">" + html_escape(sv.checks[i]) + ": " + cl.words + "</span>";
  }
  out += "</dd>";
  if (sv.port) out += "<dt>port</dt><dd>" + std::to_string(sv.port) + "</dd>";
  out += "</dl></article>";
}

void checks_table(std::string& out, const Snapshot& s) {
  WallTime now = s.generated;
  out += "<h2 id=\"checks\">Checks</h2><div class=\"scroll\"><table><thead><tr><th>check</th><th>state</th>"
         "<th>streak</th><th>last result</th><th>last ~60 results</th></tr></thead><tbody>";
  for (const auto& c : s.checks) {
    Look look = check_look(c);
    out += "<tr id=\"check-" + html_escape(c.name) + "\"><td><b>" + html_escape(c.name) + "</b><br><span class=\"muted\">" +
           html_escape(c.kind) + (c.critical ? "" : ", not critical") + "</span></td>";
    out += "<td><span class=\"badge " + std::string(look.cls) + "\">" + look.words + "</span><br><span class=\"muted nowrap\">" +
           span_text(now - c.since) + "</span>";
    if (c.stuck_since)
      out += "<br><span class=\"badge warn\">STUCK " + span_text(now - *c.stuck_since) + "</span>";
    // The run of equal results, then how far the check is towards changing state.
    out += "</td><td class=\"nowrap\">";
    if (c.failures > 0) out += "fail &times;" + std::to_string(c.failures);
    else if (c.successes > 0) out += "ok &times;" + std::to_string(c.successes);
    else out += "<span class=\"muted\">no results</span>";
    if (c.health == CheckHealth::kHealthy)
      out += "<br><span class=\"muted\">fall " + std::to_string(std::min(c.failures, c.fall)) + "/" + std::to_string(c.fall) + "</span>";
    else
      out += "<br><span class=\"muted\">rise " + std::to_string(std::min(c.successes, c.rise)) + "/" + std::to_string(c.rise) + "</span>";
    if (c.health == CheckHealth::kUnknown)
      out += " <span class=\"muted\">fall " + std::to_string(std::min(c.failures, c.fall)) + "/" + std::to_string(c.fall) + "</span>";
    out += "</td>";
    out += "<td class=\"why\">";
    if (c.last) {
      out += "<b>" + std::string(outcome_name(c.last->outcome)) + "</b> " + html_escape(c.last->reason) +
             "<br><span class=\"muted\">" + latency_text(seconds(c.last->latency)) + ", " +
             when_text(c.last_time, now) + "</span>";
      if (!c.last->ok() && c.last_success)
        out += "<br><span class=\"muted\">last passed " + when_text(*c.last_success, now) + "</span>";
    } else {
      out += "<span class=\"muted\">no result yet</span>";
    }
    out += "<br><span class=\"muted\">" + html_escape(c.target) + "</span></td><td>";
    history_svg(out, c);
    out += "</td></tr>";
  }
  out += "</tbody></table></div>";
}

void peers_table(std::string& out, const Snapshot& s) {
  if (s.peers.empty()) return;
  WallTime now = s.generated;
  const nlohmann::json* live = nullptr;
  if (!s.conftool.is_null() && s.conftool.contains("liveness") && s.conftool["liveness"].is_object() &&
      s.conftool["liveness"].contains("peers") && s.conftool["liveness"]["peers"].is_object())
    live = &s.conftool["liveness"]["peers"];
  out += "<h2 id=\"peers\">Peers</h2><div class=\"scroll\"><table><thead><tr><th>peer</th><th>agent</th>";
  if (live) out += "<th>liveness key</th>";
  out += "<th>services</th></tr></thead><tbody>";
  for (const auto& pv : s.peers) {
    const PeerState& p = pv.state;
    out += "<tr><td><b>" + html_escape(p.host.empty() ? "?" : p.host) + "</b><br><span class=\"muted\">" +
           html_escape(p.url) + "</span></td><td>";
    if (p.reachable) {
      out += "<span class=\"badge ok\">reachable</span> " + html_escape(p.lifecycle);
    } else {
      out += "<span class=\"badge bad\">unreachable</span>";
      if (p.unreachable_since != WallTime{}) out += " for " + span_text(now - p.unreachable_since);
      if (!p.error.empty()) out += "<br><span class=\"muted\">" + html_escape(p.error) + "</span>";
    }
    if (p.last_seen != WallTime{}) out += "<br><span class=\"muted\">seen " + when_text(p.last_seen, now) + "</span>";
    out += "</td>";
    if (live) {
      out += "<td>";
      if (!p.host.empty() && live->contains(p.host) && (*live)[p.host].is_object()) {
        const auto& l = (*live)[p.host];
        if (l.value("alive", false)) out += "<span class=\"badge ok\">present</span>";
        else out += "<span class=\"badge bad\">missing</span> since " + html_escape(l.value("missing_since", std::string("?")));
        // Who took it out and why (its record under the agent's etcd prefix), and a
        // takeover the floor holds.
        if (l.contains("taken_out") && l["taken_out"].is_object())
          for (const auto& [svc, t] : l["taken_out"].items())
            out += "<br><span class=\"badge " + std::string(t.value("current", false) ? "warn" : "admin") + "\">" +
                   html_escape(svc) + " taken out</span> by " + html_escape(t.value("by", std::string("?"))) + " at " +
                   html_escape(t.value("at", std::string("?"))) + ": " + html_escape(t.value("reason", std::string())) +
                   (t.value("current", false) ? "" : " <span class=\"muted\">(the key changed since)</span>");
        if (l.contains("takeover_waiting") && l["takeover_waiting"].is_object())
          for (const auto& [svc, w] : l["takeover_waiting"].items())
            out += "<br><span class=\"badge bad\">" + html_escape(svc) + " takeover held by the floor</span> since " +
                   html_escape(w.value("since", std::string("?"))) + ": " + html_escape(w.value("reason", std::string()));
      } else {
        out += "<span class=\"muted\">not seen</span>";
      }
      out += "</td>";
    }
    out += "<td>";
    for (const auto& [name, ps] : p.services) {
      const char* cls = ps.effective == "pooled" ? (ps.healthy ? "ok" : "warn")
                        : ps.effective == "drained" ? "warn" : ps.failing ? "bad" : "admin";
      out += "<span class=\"badge " + std::string(cls) + "\">" + html_escape(name) + ": " + html_escape(ps.effective) +
             (ps.healthy ? "" : ", unhealthy") + "</span> ";
    }
    for (const auto& [check, m] : pv.handles_match)
      if (m) out += "<br><span class=\"muted\">handles (" + html_escape(check) + "): " + (*m ? "match" : "<b>differ</b>") + "</span>";
    out += "</td></tr>";
  }
  out += "</tbody></table></div>";
}

void events_table(std::string& out, const Snapshot& s) {
  constexpr size_t kShown = 20;
  WallTime now = s.generated;
  out += "<h2 id=\"events\">Last events</h2><div class=\"scroll\"><table><thead><tr><th>when</th><th>what</th>"
         "<th>change</th><th>reason</th></tr></thead><tbody>";
  size_t n = 0;
  for (auto it = s.events.rbegin(); it != s.events.rend() && n < kShown; ++it, ++n) {
    const Event& e = *it;
    out += "<tr><td class=\"nowrap\">" + when_text(e.when, now) + "</td><td>" + html_escape(event_kind_name(e.kind)) +
           (e.name.empty() ? "" : " <b>" + html_escape(e.name) + "</b>") + "</td><td class=\"nowrap\">" +
           html_escape(e.from) + " &rarr; " + html_escape(e.to) + "</td><td class=\"why\">" + html_escape(e.reason) +
           "</td></tr>";
  }
  if (n == 0) out += "<tr><td colspan=\"4\" class=\"muted\">none yet</td></tr>";
  out += "</tbody></table></div>";
}

}  // namespace

std::string render_status_page(const Snapshot& s) {
  std::string out;
  out.reserve(8192 + 1500 * s.checks.size() + 600 * s.services.size() + 200 * std::min<size_t>(s.events.size(), 20));
  size_t pooled = 0, by_floor = 0;
  for (const auto& sv : s.services) {
    if (sv.effective.state == Effective::kPooled) ++pooled;
    if (sv.effective.state == Effective::kPooled && sv.kept_by_floor) ++by_floor;
  }
  // A host kept in only by the floor is pooled but failing: the header and the tab say so.
  std::string floor_note = by_floor ? " (" + std::to_string(by_floor) + " kept by floor)" : "";
  std::string host = html_escape(s.host);
  out += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
         "<meta http-equiv=\"refresh\" content=\"" + std::to_string(kStatusPageRefreshSeconds) + "\">"
         "<title>" + std::to_string(pooled) + "/" + std::to_string(s.services.size()) + " pooled" + floor_note + " \u00b7 " + host +
         " \u00b7 poolkeeper</title><style>" + kStyle + "</style></head><body>";
  out += "<header><h1>" + host + "</h1><p>" + std::to_string(pooled) + " of " + std::to_string(s.services.size()) +
         " services pooled" + floor_note + " &middot; agent <b>" + lifecycle_name(s.lifecycle) + "</b> since " +
         when_text(s.lifecycle_since, s.generated) + "</p><p>as of " + clock_text(s.generated, s.generated) +
         " &middot; poolkeeper " + html_escape(POOLKEEPER_VERSION) + "</p></header>";
  if (s.lifecycle == Lifecycle::kStopping)
    out += "<div class=\"banner warn\">The agent is stopping: services the floor lets go report not pooled.</div>";
  if (!s.state_file_ok)
    out += "<div class=\"banner bad\">State file unreadable: every service was depooled. " +
           html_escape(s.state_file_error) + "</div>";
  if (!s.conftool.is_null()) {
    if (!s.conftool.value("up", false)) {
      std::string err = s.conftool.contains("last_error") && s.conftool["last_error"].is_string()
                            ? s.conftool["last_error"].get<std::string>() : "";
      out += "<div class=\"banner bad\">conftool (etcd) not answering: " + html_escape(err) + "</div>";
    }
    const auto& l = s.conftool.contains("liveness") ? s.conftool["liveness"] : nlohmann::json();
    if (l.is_object() && l.contains("self_seen") && l["self_seen"].is_boolean() && !l["self_seen"].get<bool>())
      out += "<div class=\"banner warn\">This host's liveness key is not in etcd: peers may take it out.</div>";
    if (l.is_object() && l.contains("peers") && l["peers"].is_object())
      for (const auto& [peer, p] : l["peers"].items())
        if (p.is_object() && p.contains("takeover_waiting") && p["takeover_waiting"].is_object())
          for (const auto& [svc, w] : p["takeover_waiting"].items())
            out += "<div class=\"banner bad\">Takeover of " + html_escape(peer) + " (" + html_escape(svc) +
                   ") held by the floor: " + html_escape(w.value("reason", std::string())) +
                   " &mdash; the dead host stays pooled.</div>";
  }
  if (s.leftover_processes > 0)
    out += "<div class=\"banner warn\">" + std::to_string(s.leftover_processes) +
           " process(es) left behind by exec probes are not gone yet.</div>";
  out += "<h2 id=\"services\">Services</h2><section class=\"cards\">";
  for (const auto& sv : s.services) service_card(out, s, sv);
  out += "</section>";
  checks_table(out, s);
  peers_table(out, s);
  events_table(out, s);
  out += "<footer>Refreshes every " + std::to_string(kStatusPageRefreshSeconds) +
         " s. Machine-readable: <a href=\"/status\">/status</a> &middot; <a href=\"/events\">/events</a> &middot; "
         "<a href=\"/metrics\">/metrics</a> &middot; <a href=\"/health\">/health</a></footer></body></html>\n";
  return out;
}

std::shared_ptr<const std::string> cached_status_page(const Snapshot& s) {
  std::lock_guard<std::mutex> lk(s.render_cache.mu);
  if (!s.render_cache.page) s.render_cache.page = std::make_shared<const std::string>(render_status_page(s));
  return s.render_cache.page;
}

}  // namespace poolkeeper
