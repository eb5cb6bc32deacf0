#include "agent/config/config.h"

#include <fcntl.h>
#include <netdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#include "agent/base/duration.h"
#include "agent/base/net.h"

namespace poolkeeper {

namespace {

using namespace std::chrono_literals;

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
      return false;
  return true;
}

// What systemd accepts as a unit name: NAME.TYPE, NAME of letters, digits and ":-_.\\"
// (an instance after one '@'), TYPE one of its unit types; at most 255 characters.
bool valid_unit_name(const std::string& s) {
  static const char* const kTypes[] = {".service", ".socket", ".mount", ".target", ".automount",
                                       ".swap", ".path", ".timer", ".slice", ".scope", ".device"};
  if (s.size() > 255) return false;
  size_t dot = s.rfind('.');
  if (dot == std::string::npos || dot == 0) return false;
  bool typed = false;
  for (const char* t : kTypes) typed |= s.compare(dot, std::string::npos, t) == 0;
  if (!typed) return false;
  size_t at = s.find('@');
  if (at == 0 || (at != std::string::npos && s.find('@', at + 1) != std::string::npos)) return false;
  for (size_t i = 0; i < dot; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (!(std::isalnum(c) || (c != 0 && std::strchr(":-_.\\@", c)))) return false;
  }
  return true;
}

CheckConfig parse_check(const std::string& name, const toml::table& t, const std::string& file) {
  TableReader r(t, file, "checks." + name);
  if (!valid_name(name)) r.fail("kind", "check name must be letters, digits, '-', '_' or '.'");
  CheckConfig c;
  c.name = name;
  c.kind = r.require_string("kind");
  const CheckKind* kind = find_check_kind(c.kind);
  if (!kind)
    r.fail("kind", "unknown kind \"" + c.kind + "\" (known: " + known_check_kinds() + ")");
  c.traits = kind->traits;
  c.interval = r.duration("interval", 10ms, 24h).value_or(c.interval);
  c.timeout = r.duration("timeout", 1ms, kMaxCheckTimeout).value_or(c.timeout);
  c.fast_interval = r.duration("fast_interval", 10ms, 24h).value_or(c.fast_interval);
  c.rise = static_cast<int>(r.integer("rise", 1, 1000).value_or(c.rise));
  c.fall = static_cast<int>(r.integer("fall", 1, 1000).value_or(c.fall));
  c.critical = r.boolean("critical").value_or(c.critical);
  c.unit = r.string("unit").value_or("");
  if (r.has("unit") && !valid_unit_name(c.unit))
    r.fail("unit", "\"" + c.unit + "\" is not a systemd unit name (e.g. \"nginx.service\")");
  if (c.timeout > c.interval && r.has("timeout"))
    r.fail("timeout", "must not be longer than interval (" + format_duration(c.interval) + ")");
  if (c.timeout > c.interval) c.timeout = c.interval;  // a short interval clamps the default
  c.check = std::shared_ptr<Check>(kind->make(r));
  r.finish();
  // The probe's identity: the table without the keys that only time or weigh it.
  toml::table target = t;
  for (const char* timing : {"interval", "timeout", "fast_interval", "rise", "fall", "critical", "unit"})
    target.erase(timing);
  std::ostringstream fp;
  fp << target;
  c.fingerprint = fp.str();
  return c;
}

ServiceConfig parse_service(const std::string& name, const toml::table& t, const std::string& file,
                            const std::map<std::string, CheckConfig>& checks) {
  TableReader r(t, file, "services." + name);
  if (!valid_name(name)) r.fail("checks", "service name must be letters, digits, '-', '_' or '.'");
  ServiceConfig s;
  s.name = name;
  auto names = r.strings("checks");
  if (!names) r.fail("checks", "is required (the checks this service depends on)");
  if (names->empty()) r.fail("checks", "must name at least one check");
  for (const auto& c : *names) {
    if (!checks.count(c)) r.fail("checks", "no check named \"" + c + "\" ([checks." + c + "])");
    for (const auto& prev : s.checks)
      if (prev == c) r.fail("checks", "names \"" + c + "\" twice");
    s.checks.push_back(c);
  }
  s.port = static_cast<int>(r.integer("port", 1, 65535).value_or(0));
  s.peers = r.strings("peers").value_or(std::vector<std::string>{});
  for (const auto& p : s.peers)
    if ((p.rfind("http://", 0) != 0 && p.rfind("https://", 0) != 0) || !is_clean_url(p))
      r.fail("peers", "\"" + p + "\" must be an http:// or https:// URL of a peer's agent "
                      "(no spaces or control characters)");
  s.min_pooled = static_cast<int>(r.integer("min_pooled", 0, 1000).value_or(1));
  std::string on_reboot = r.string("on_reboot").value_or("drain");
  if (on_reboot != "drain" && on_reboot != "hold") r.fail("on_reboot", "must be \"drain\" or \"hold\"");
  s.hold_on_reboot = on_reboot == "hold";
  r.finish();
  return s;
}

AgentConfig parse_agent(const toml::table* t, const std::string& file) {
  AgentConfig a;
  if (!t) return a;
  TableReader r(*t, file, "agent");
  a.listen = r.string("listen").value_or(a.listen);
  std::string host;
  int port;
  if (!split_host_port(a.listen, &host, &port))
    r.fail("listen", "\"" + a.listen + "\" must be a numeric ADDRESS:PORT, e.g. \"127.0.0.1:9473\"");
  a.admin_socket = r.string("admin_socket").value_or(a.admin_socket);
  a.admin_group = r.string("admin_group").value_or("");
  a.state_dir = r.string("state_dir").value_or(a.state_dir);
  a.drain_seconds = static_cast<int>(r.integer("drain_seconds", 0, 3600).value_or(10));
  a.hostname = r.string("hostname").value_or("");  // empty: resolved at start (host_fqdn)
  a.boot_id_file = r.string("boot_id_file").value_or(a.boot_id_file);
  a.stop_action = r.string("stop_action").value_or(a.stop_action);
  if (a.stop_action != "auto" && a.stop_action != "drain" && a.stop_action != "keep")
    r.fail("stop_action", "must be \"auto\", \"drain\" or \"keep\"");
  r.finish();
  return a;
}

}  // namespace

bool split_host_port(const std::string& s, std::string* host, int* port) {
  return parse_address(s, host, port, /*allow_port_zero=*/true);
}

std::string host_fqdn() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  std::string name = buf;
  if (name.find('.') != std::string::npos) return name;
  struct addrinfo hints {};
  hints.ai_flags = AI_CANONNAME;
  hints.ai_family = AF_UNSPEC;
  struct addrinfo* res = nullptr;
  if (::getaddrinfo(name.c_str(), nullptr, &hints, &res) == 0 && res) {
    if (res->ai_canonname && *res->ai_canonname) name = res->ai_canonname;
    ::freeaddrinfo(res);
  }
  return name;
}

Config parse_config(std::string_view text, const std::string& path, Secrets secrets) {
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    throw ConfigError(path + ":" + std::to_string(e.source().begin.line) + ": " +
                      std::string(e.description()));
  }
  Config cfg;
  cfg.file = path;
  TableReader top(root, path, "");
  cfg.agent = parse_agent(top.table("agent"), path);

  const toml::table* checks = top.table("checks");
  if (checks) {
    for (const auto& [k, v] : *checks) {
      std::string name(k.str());
      if (!v.is_table())
        throw ConfigError(path + ":" + std::to_string(v.source().begin.line) + ": checks." +
                          name + ": must be a table ([checks." + name + "])");
      cfg.checks.emplace(name, parse_check(name, *v.as_table(), path));
    }
  }
  const toml::table* services = top.table("services");
  if (!services || services->empty())
    throw ConfigError(path + ":1: services: at least one [services.NAME] table is required");
  for (const auto& [k, v] : *services) {
    std::string name(k.str());
    if (!v.is_table())
      throw ConfigError(path + ":" + std::to_string(v.source().begin.line) + ": services." + name +
                        ": must be a table ([services." + name + "])");
    cfg.services.emplace(name, parse_service(name, *v.as_table(), path, cfg.checks));
  }
  if (const toml::table* t = top.table("conftool")) {
    TableReader r(*t, path, "conftool");
    cfg.conftool = parse_conftool_config(r, path, secrets);
    r.finish();
  }
  if (const toml::table* t = top.table("haproxy_agent")) {
    TableReader r(*t, path, "haproxy_agent");
    cfg.haproxy_agent = parse_haproxy_agent_config(r);
    r.finish();
  }
  top.finish();
  return cfg;
}

Config load_config(const std::string& path, Secrets secrets) {
  // A config is a small regular file. Anything else (/dev/zero, a FIFO, a directory, a
  // log file given by mistake) is refused before reading: never read without bound,
  // never block on a FIFO without writer.
  constexpr off_t kMaxConfig = 1 << 20;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) throw ConfigError(path + ":0: cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw ConfigError(path + ":0: cannot read: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw ConfigError(path + ":0: not a regular file (" +
                      (S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)            ? "a device"
                                                                                : "a socket") +
                      ")");
  }
  if (st.st_size > kMaxConfig) {
    ::close(fd);
    throw ConfigError(path + ":0: too large for a config (" + std::to_string(st.st_size) +
                      " bytes; the limit is 1 MiB)");
  }
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      throw ConfigError(path + ":0: cannot read: " + std::strerror(e));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > static_cast<size_t>(kMaxConfig)) {  // grew while we read
      ::close(fd);
      throw ConfigError(path + ":0: too large for a config (over 1 MiB)");
    }
  }
  ::close(fd);
  return parse_config(text, path, secrets);
}

}  // namespace poolkeeper
