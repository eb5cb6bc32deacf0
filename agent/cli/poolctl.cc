// poolctl: the operator's command line, and — through the symlinks pool, depool, drain
// and ispooled — conftool's host commands. Talks to the running agent over its admin
// socket; `check` runs every configured check once, now, as a Nagios plugin (exit 0 OK,
// 1 WARNING, 2 CRITICAL, 3 UNKNOWN). Errors are one line and exit 2.
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "checks/check.h"
#include "checks/child_reaper.h"
#include "agent/config/config.h"
#include "agent/cli/conn_count.h"
#include "agent/base/duration.h"
#include "agent/base/utf8.h"
#include "pybal-compat/etcd_role.h"
#include "pybal-compat/pybal_config.h"

using namespace poolkeeper;

namespace {

constexpr const char* kDefaultSocket = "/run/poolkeeper/admin.sock";

[[noreturn]] void die(const std::string& msg, int code = 2) {
  std::cerr << "poolctl: " << msg << "\n";
  std::exit(code);
}

int usage(std::ostream& out, int code) {
  out << "usage: poolctl [--socket PATH] status [--json]\n"
         "       poolctl pool [SERVICE...] [--reason TEXT]\n"
         "       poolctl depool [SERVICE...] [--reason TEXT] [--for DURATION | --until-boot] [--force]\n"
         "                      [--wait [DURATION]]\n"
         "       poolctl drain [SERVICE...] [--reason TEXT] [--for DURATION] [--force] [--wait [DURATION]]\n"
         "       poolctl ispooled SERVICE        (exit 0 pooled, 1 not)\n"
         "       poolctl check --config FILE     (Nagios plugin: exit 0/1/2/3)\n"
         "       poolctl lvs-config --config FILE --format pybal|service-catalog|haproxy\n"
         "                      (the load balancer's config for these services; no secrets,\n"
         "                      no running agent; pybal-config = lvs-config --format pybal)\n"
         "       poolctl etcd-role --config FILE (the etcdctl v2 commands that create the\n"
         "                      least-privilege etcd role and user for [conftool])\n"
         "No SERVICE means every service. pool, depool, drain and ispooled also work as\n"
         "commands of their own (symlinks to poolctl). pool exits 1 when the load balancer\n"
         "will not pool (conftool key inactive, missing, unreadable, or etcd unavailable).\n"
         "Times are UTC.\n";
  return code;
}

// One request line to the admin socket, one reply line back.
nlohmann::json call(const std::string& socket_path, const nlohmann::json& request) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) die("socket path too long: " + socket_path);
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    if (e == ENOENT || e == ECONNREFUSED) die("agent not running (no admin socket at " + socket_path + ")");
    if (e == EACCES) die("permission denied: cannot open " + socket_path);
    die("cannot reach the agent at " + socket_path + ": " + std::strerror(e));
  }
  std::string line = json_text(request) + "\n";  // a --reason in another charset is repaired
  if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
    die("the agent closed the admin socket");
  std::string reply;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 30000) <= 0) die("the agent did not answer within 30 s");
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
    if (reply.find('\n') != std::string::npos) break;
  }
  ::close(fd);
  auto j = nlohmann::json::parse(reply, nullptr, false);
  if (j.is_discarded() || !j.is_object()) die("the agent sent a bad reply");
  if (!j.value("ok", false)) die(j.value("error", "request failed"));
  return j;
}

std::string pad(std::string s, size_t w) {
  if (s.size() < w) s.append(w - s.size(), ' ');
  return s + " ";
}

std::string when_short(const std::string& iso) {
  // 2026-11-23T19:29:19.726Z → 2026-11-23 19:29:19 UTC (the agent's times are UTC, as
  // on its status page)
  if (iso.size() < 19) return iso;
  return iso.substr(0, 10) + " " + iso.substr(11, 8) + " UTC";
}

std::string trim_right(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// A service's conftool key in a word: yes, no, inactive, missing, unreadable; "-"
// without conftool, "?" before the first read.
std::string conftool_word(const nlohmann::json& s, const std::string& service) {
  if (!s.contains("conftool") || !s["conftool"].is_object()) return "-";
  const auto& keys = s["conftool"].value("keys", nlohmann::json::object());
  if (!keys.contains(service)) return "?";
  const auto& k = keys[service];
  if (k.contains("pooled")) return k.value("pooled", "?");
  std::string state = k.value("state", "?");
  return state == "unparseable" ? "unreadable" : state;
}

void print_status(const nlohmann::json& s) {
  std::cout << "host " << s.value("host", "?") << "  lifecycle " << s.value("lifecycle", "?") << "\n";
  if (s.contains("state_file") && !s["state_file"].value("ok", true))
    std::cout << "STATE FILE UNREADABLE: " << s["state_file"].value("error", "") << "\n";
  if (s.contains("conftool") && s["conftool"].is_object()) {
    const auto& c = s["conftool"];
    std::cout << "conftool " << (c.value("up", false) ? "up" : "DOWN (" + c.value("last_error", "") + ")");
    if (c.contains("liveness") && c["liveness"].is_object()) {
      const auto& l = c["liveness"];
      std::cout << "  liveness key " << l.value("key", "") << " (ttl " << l.value("ttl", "") << ") "
                << (l.value("ok", false) ? "refreshed " + when_short(l.value("refreshed", nlohmann::json("")).is_string()
                                                                         ? l["refreshed"].get<std::string>()
                                                                         : "")
                                         : "NOT REFRESHED: " + l.value("error", ""));
    }
    std::cout << "\n";
    // Which etcd endpoint is in use, and why the others are not.
    if (c.contains("endpoints") && c["endpoints"].is_array())
      for (const auto& e : c["endpoints"]) {
        if (!e.is_object()) continue;
        std::string state = e.value("state", "");
        std::cout << "  etcd " << pad(e.value("url", ""), 28) << state;
        if (state == "failing") std::cout << ": " << e.value("error", "");
        else if (state == "standby" && e["last_ok"].is_string())
          std::cout << " (answered " << when_short(e["last_ok"].get<std::string>()) << ")";
        std::cout << "\n";
      }
  }
  std::cout << "\n"
            << pad("SERVICE", 10) << pad("EFFECTIVE", 10) << pad("HEALTH", 9) << pad("INTENT", 8)
            << pad("CONFTOOL", 10) << pad("SINCE", 23) << "REASON\n";
  for (auto& [name, sv] : s["services"].items()) {
    std::string reason = sv.value("reason", "");
    const auto& intent = sv["intent"];
    if (intent.value("intent", "pooled") != "pooled" && !intent.value("who", "").empty()) {
      reason += " [by " + intent.value("who", "");
      if (!intent["expires"].is_null()) reason += ", until " + when_short(intent["expires"].get<std::string>());
      if (intent.value("until_boot", false)) reason += ", until next boot";
      reason += "]";
    }
    std::string ct = conftool_word(s, name);
    std::cout << trim_right(pad(name, 10) + pad(sv.value("effective", ""), 10) + pad(sv.value("health", ""), 9) +
                            pad(intent.value("intent", ""), 8) + pad(ct, 10) + pad(when_short(sv.value("since", "")), 23) +
                            reason)
              << "\n";
    if (ct == "inactive" || ct == "missing" || ct == "unreadable") {
      std::string k = s["conftool"]["keys"][name].value("key", "");
      std::cout << "  warning: conftool key " << k
                << (ct == "inactive"  ? " is inactive: PyBal will not route to this host (an operator sets it with confctl)"
                    : ct == "missing" ? " does not exist: PyBal does not know this host (conftool-sync creates it)"
                                      : " cannot be read: PyBal will not route to this host")
                << "\n";
    }
    for (const auto& w : sv.value("warnings", nlohmann::json::array())) std::cout << "  warning: " << w.get<std::string>() << "\n";
    if (sv.contains("floor")) {
      const auto& f = sv["floor"];
      std::cout << "  floor: min_pooled " << f.value("min_pooled", 0) << ", " << f.value("peers_pooled_healthy", 0)
                << " peer(s) pooled and healthy" << (f.value("kept_by_floor", false) ? ", KEPT BY FLOOR" : "") << "\n";
    }
  }
  std::cout << "\n"
            << pad("CHECK", 10) << pad("STATE", 9) << pad("STREAK", 6) << pad("LATENCY", 8) << "REASON\n";
  for (auto& [name, c] : s["checks"].items()) {
    std::string streak = c.value("successes", 0) > 0 ? "+" + std::to_string(c.value("successes", 0))
                                                      : "-" + std::to_string(c.value("failures", 0));
    std::string latency = "-", reason = "no result yet";
    if (c["last"].is_object()) {
      latency = format_duration(std::chrono::nanoseconds(
          static_cast<long long>(c["last"].value("latency_seconds", 0.0) * 1e9)));
      reason = c["last"].value("reason", "");
    }
    std::cout << trim_right(pad(name, 10) + pad(c.value("state", ""), 9) + pad(streak, 6) + pad(latency, 8) + reason +
                            (c.value("critical", true) ? "" : " (warn only)"))
              << "\n";
  }
  if (s.contains("peers") && !s["peers"].empty()) {
    std::cout << "\n" << pad("PEER", 30) << "STATE\n";
    for (const auto& p : s["peers"]) {
      std::string name = p.value("host", "");
      if (name.empty()) name = p.value("url", "");
      std::string state;
      if (!p.value("reachable", false)) {
        state = "unreachable (" + p.value("error", "") + ") ";
      } else {
        for (auto& [svc, ps] : p["services"].items())
          state += svc + "=" + ps.value("effective", "") + (ps.value("healthy", false) ? "" : "(unhealthy)") + " ";
        for (auto& [check, m] : p["nfs_handles_match"].items())
          if (!m.is_null()) state += check + ":" + (m.get<bool>() ? "same-handles" : "DIFFERENT-HANDLES(ESTALE on failover)") + " ";
      }
      if (s.contains("conftool") && s["conftool"].is_object() && s["conftool"].contains("liveness") &&
          s["conftool"]["liveness"].is_object()) {
        const auto& lp = s["conftool"]["liveness"].value("peers", nlohmann::json::object());
        if (lp.contains(p.value("host", ""))) {
          const auto& l = lp[p.value("host", "")];
          state += l.value("alive", false) ? "liveness key: alive"
                                           : "liveness key: GONE since " + when_short(l.value("missing_since", ""));
          // Who took it out and why (the takeover's record), and a takeover the floor holds.
          if (l.contains("taken_out") && l["taken_out"].is_object())
            for (auto& [svc, t] : l["taken_out"].items())
              state += "\n" + pad("", 30) + svc + " taken out by " + t.value("by", "?") + " at " +
                       when_short(t.value("at", "")) + ": " + t.value("reason", "") +
                       (t.value("current", false) ? "" : " (the key changed since)");
          if (l.contains("takeover_waiting") && l["takeover_waiting"].is_object())
            for (auto& [svc, w] : l["takeover_waiting"].items())
              state += "\n" + pad("", 30) + svc + " TAKEOVER HELD BY THE FLOOR since " +
                       when_short(w.value("since", "")) + ": " + w.value("reason", "");
        }
      }
      std::cout << pad(name, 30) << trim_right(state) << "\n";
    }
  }
}

// The load balancer's side of this host's services, from the config alone: no secret
// is read and no agent needs to run.
std::string render_lvs_config(const Config& cfg, const std::string& format) {
  PybalInput in;
  in.hostname = cfg.conftool && !cfg.conftool->hostname.empty() ? cfg.conftool->hostname
                : !cfg.agent.hostname.empty()                  ? cfg.agent.hostname
                                                               : host_fqdn();
  if (cfg.conftool) {
    in.prefix = cfg.conftool->prefix;
    in.etcd_url = cfg.conftool->endpoints.front();
  }
  if (cfg.haproxy_agent) {
    std::string host;
    split_host_port(cfg.haproxy_agent->listen, &host, &in.agent_port);
  }
  for (const auto& [name, sc] : cfg.services) {
    PybalService ps{name, "", sc.port, "", sc.hold_on_reboot, {}};
    std::vector<std::string> kinds;
    for (const auto& c : sc.checks) {
      const CheckConfig& cc = cfg.checks.at(c);
      if (ps.ip.empty()) ps.ip = cc.check->service_address();
      if (ps.health_host.empty()) ps.health_host = cc.check->health_host();
      kinds.push_back(cc.kind);
    }
    if (const CheckKind* kind = service_kind(kinds)) ps.balancing = kind->traits.balancing;
    for (const auto& url : sc.peers) ps.peer_hosts.push_back(url_host(url));  // http://host:9473 → host
    in.services.push_back(ps);
  }
  if (format == "pybal") return render_pybal_config(in);
  if (format == "service-catalog") return render_service_catalog(in);
  if (format == "haproxy") return render_haproxy_config(in);
  throw std::runtime_error("unknown --format \"" + format + "\" (pybal, service-catalog or haproxy)");
}

int cmd_check(const std::string& file) {
  Config cfg;
  try {
    cfg = load_config(file, Secrets::kSkip);  // the probes need no etcd password
  } catch (const ConfigError& e) {
    std::cout << "POOLKEEPER UNKNOWN - " << e.what() << "\n";
    return 3;
  }
  std::vector<std::string> crit, warn, ok;
  std::string perf;
  for (auto& [name, cc] : cfg.checks) {
    Result r = run_probe(*cc.check, cc.timeout);
    std::string line = name + ": " + r.reason;
    if (r.ok()) ok.push_back(line);
    else if (cc.critical) crit.push_back(line);
    else warn.push_back(line);
    char buf[128];
    std::snprintf(buf, sizeof buf, " %s=%.6fs;;%.3f;0", name.c_str(), seconds(r.latency), seconds(cc.timeout));
    perf += buf;
  }
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  int code = 0;
  std::string summary;
  if (!crit.empty()) {
    code = 2;
    summary = "POOLKEEPER CRITICAL - " + join(crit) + (warn.empty() ? "" : "; " + join(warn));
  } else if (!warn.empty()) {
    code = 1;
    summary = "POOLKEEPER WARNING - " + join(warn);
  } else {
    summary = "POOLKEEPER OK - " + std::to_string(ok.size()) + " checks passed";
  }
  std::cout << summary << " |" << perf << "\n";
  for (const auto& l : ok) std::cout << "ok: " << l << "\n";
  return code;
}

// What a service's kind (service_kind) says of its clients (CheckTraits::clients_note),
// from the agent's /status; "" for none.
std::string clients_note(const nlohmann::json& status, const std::string& service) {
  auto checks = status.value("checks", nlohmann::json::object());
  auto svc = status.value("services", nlohmann::json::object()).value(service, nlohmann::json::object());
  std::vector<std::string> kinds;
  for (const auto& check : svc.value("checks", nlohmann::json::array())) {
    if (!check.is_string()) continue;
    kinds.push_back(checks.value(check.get<std::string>(), nlohmann::json::object()).value("kind", ""));
  }
  const CheckKind* kind = service_kind(kinds);
  return kind ? kind->traits.clients_note : "";
}

// Waits until the services' established client connections are gone or `limit` passes.
int wait_for_clients(const nlohmann::json& services, Duration limit, const std::string& socket_path) {
  bool tty = ::isatty(1);
  auto start = SteadyClock::now();
  std::map<std::string, int> ports;
  for (auto& [name, s] : services.items()) {
    int port = s.value("port", 0);
    if (port == 0) {
      std::cout << name << ": no port configured (services." << name << ".port): cannot count clients\n";
      continue;
    }
    ports[name] = port;
  }
  if (ports.empty()) return 0;
  nlohmann::json status = call(socket_path, {{"cmd", "status"}})["status"];  // for the notes, should it give up
  int last_total = -1;
  auto last_line = start;
  for (;;) {
    std::string line, err;
    int total = 0;
    for (const auto& [name, port] : ports) {
      int n = count_established(port, &err);
      if (n < 0) die("cannot count connections: " + err);
      total += n;
      line += (line.empty() ? "" : ", ") + name + ": " + std::to_string(n);
    }
    auto elapsed = SteadyClock::now() - start;
    std::string text = "clients left: " + line + " (" +
                       format_duration(std::chrono::duration_cast<std::chrono::seconds>(elapsed)) + " elapsed)";
    if (tty) {
      std::cout << "\r\033[K" << text << std::flush;
    } else if (total != last_total || SteadyClock::now() - last_line >= std::chrono::seconds(10)) {
      std::cout << text << "\n" << std::flush;
      last_line = SteadyClock::now();
    }
    last_total = total;
    if (total == 0) {
      if (tty) std::cout << "\n";
      std::cout << "all clients gone after "
                << format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed)) << "\n";
      return 0;
    }
    if (elapsed >= limit) {
      if (tty) std::cout << "\n";
      std::cout << "gave up after " << format_duration(limit) << ": " << total << " client connection"
                << (total == 1 ? "" : "s") << " remain (" << line << ")\n";
      for (const auto& [name, port] : ports)
        if (std::string note = clients_note(status, name); !note.empty()) std::cout << "note: " << note << "\n";
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

std::string base_name(const char* argv0) {
  std::string s = argv0;
  size_t slash = s.rfind('/');
  return slash == std::string::npos ? s : s.substr(slash + 1);
}

// What the command line asks for.
struct Options {
  std::string verb;
  std::string socket_path = kDefaultSocket, config, reason, format;
  bool json = false, force = false, until_boot = false, wait = false;
  std::optional<Duration> for_duration;
  Duration wait_limit = std::chrono::minutes(5);
  std::vector<std::string> services;
};

// Reads the options and words; an exit code when there is nothing more to do (help, a
// bad option).
std::optional<int> parse_args(const std::vector<std::string>& args, Options* o) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) die(a + " needs a value");
      return args[++i];
    };
    auto duration = [&](const std::string& text) {
      std::string err;
      auto d = parse_duration(text, &err);
      if (!d || d->count() <= 0) die(a + ": " + (d ? "must be positive" : err));
      return *d;
    };
    if (a == "--socket") o->socket_path = value();
    else if (a == "--config") o->config = value();
    else if (a == "--json") o->json = true;
    else if (a == "--format") o->format = value();
    else if (a == "--reason") o->reason = value();
    else if (a == "--for") o->for_duration = duration(value());
    else if (a == "--until-boot") o->until_boot = true;
    else if (a == "--force") o->force = true;
    else if (a == "--wait") {
      o->wait = true;
      std::string err;
      if (i + 1 < args.size() && parse_duration(args[i + 1], &err)) o->wait_limit = duration(args[++i]);
    } else if (a == "-h" || a == "--help") return usage(std::cout, 0);
    else if (!a.empty() && a[0] == '-') {
      std::cerr << "poolctl: unknown option \"" << a << "\"\n";
      return usage(std::cerr, 2);
    } else if (o->verb.empty()) o->verb = a;
    else o->services.push_back(a);
  }
  return std::nullopt;
}

// The verbs that read only the config (no agent needed); nullopt for the others.
std::optional<int> run_offline(const std::string& verb, const std::string& config, std::string format) {
  if (verb == "check") {
    if (config.empty()) {
      std::cout << "POOLKEEPER UNKNOWN - check needs --config FILE\n";
      return 3;
    }
    become_child_subreaper();  // what a probe's command leaves behind is found and killed
    int rc = cmd_check(config);
    sweep_leftover_children(/*everything=*/true);
    return rc;
  }
  if (verb == "lvs-config" || verb == "pybal-config") {
    if (config.empty()) die(verb + " needs --config FILE");
    if (verb == "pybal-config" && format.empty()) format = "pybal";
    if (format.empty()) die("lvs-config needs --format pybal|service-catalog|haproxy");
    try {
      std::cout << render_lvs_config(load_config(config, Secrets::kSkip), format);
      return 0;
    } catch (const ConfigError& e) {
      die(e.what());
    } catch (const std::exception& e) {
      die("lvs-config: " + std::string(e.what()));
    }
  }
  if (verb == "etcd-role") {
    if (config.empty()) die("etcd-role needs --config FILE");
    try {
      Config cfg = load_config(config, Secrets::kSkip);
      if (!cfg.conftool) die(config + ": no [conftool] section: the agent does not use etcd");
      std::cout << render_etcd_role(*cfg.conftool);
      return 0;
    } catch (const ConfigError& e) {
      die(e.what());
    }
  }
  return std::nullopt;
}

// pool, depool, drain: ask the agent, say what each service is now (and, after a
// pool, what the load balancer will do), then wait for the clients when asked to.
int cmd_change(const Options& o) {
  const std::string& verb = o.verb;
  if (verb == "pool" && (o.for_duration || o.until_boot || o.wait)) die("pool takes no --for, --until-boot or --wait");
  if (verb == "drain" && o.until_boot) die("--until-boot goes with depool");
  nlohmann::json req = {{"cmd", verb}, {"services", o.services}, {"reason", o.reason}, {"force", o.force}};
  if (o.for_duration)
    req["for_seconds"] = std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(*o.for_duration).count());
  if (o.until_boot) req["until_boot"] = true;
  if (const char* sudo = std::getenv("SUDO_USER")) req["sudo_user"] = sudo;
  auto j = call(o.socket_path, req);
  int rc = 0;
  for (auto& [name, s] : j["services"].items()) {
    // After pool, the load balancer's view decides: an inactive or missing conftool
    // key means PyBal will not route here, whatever the agent says (exit 1).
    if (s.contains("conftool") && !s["conftool"].value("will_pool", true)) {
      std::cout << name << ": " << s["conftool"].value("message", "") << "\n";
      rc = 1;
      continue;
    }
    // "http: drained (disk swap)", not "http: drained (drained: disk swap)".
    std::string eff = s.value("effective", ""), r = s.value("reason", "");
    if (r == eff) r.clear();
    else if (r.rfind(eff + ": ", 0) == 0) r = r.substr(eff.size() + 2);
    std::cout << name << ": " << eff;
    if (!r.empty()) std::cout << " (" << r << ")";
    std::cout << "\n";
    if (s.contains("conftool")) std::cout << "  " << s["conftool"].value("message", "") << "\n";
  }
  if (o.wait && verb != "pool") return wait_for_clients(j["services"], o.wait_limit, o.socket_path);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  Options o;
  std::string self = base_name(argv[0]);
  if (self == "pool" || self == "depool" || self == "drain" || self == "ispooled") o.verb = self;
  if (const char* env = std::getenv("POOLKEEPER_SOCKET")) o.socket_path = env;
  if (auto rc = parse_args(args, &o)) return *rc;
  const std::string& verb = o.verb;
  if (verb.empty()) return usage(std::cerr, 2);
  if (o.for_duration && o.until_boot) die("--for and --until-boot exclude each other");

  if (auto rc = run_offline(verb, o.config, o.format)) return *rc;
  if (!o.config.empty()) {
    try {
      o.socket_path = load_config(o.config, Secrets::kSkip).agent.admin_socket;
    } catch (const ConfigError& e) {
      die(e.what());
    }
  }
  if (verb == "status") {
    auto j = call(o.socket_path, {{"cmd", "status"}});
    if (o.json) std::cout << json_text(j["status"], 2) << "\n";
    else print_status(j["status"]);
    return 0;
  }
  if (verb == "ispooled") {
    if (o.services.size() != 1) die("ispooled takes exactly one SERVICE");
    auto j = call(o.socket_path, {{"cmd", "ispooled"}, {"services", o.services}});
    bool pooled = j.value("pooled", false);
    std::cout << o.services[0] << " " << (pooled ? "pooled" : "not pooled: " + j.value("reason", "")) << "\n";
    return pooled ? 0 : 1;
  }
  if (verb == "pool" || verb == "depool" || verb == "drain") return cmd_change(o);
  std::cerr << "poolctl: unknown command \"" << verb << "\"\n";
  return usage(std::cerr, 2);
}
