#include "pybal-compat/conftool_config.h"

#include "agent/base/net.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace poolkeeper {

namespace {
bool others_can_read(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IROTH);
}

bool overlaps(const std::string& a, const std::string& b) {
  return a == b || a.rfind(b + "/", 0) == 0 || b.rfind(a + "/", 0) == 0;
}
}  // namespace

ConftoolConfig parse_conftool_config(TableReader& r, const std::string& config_file, Secrets secrets) {
  ConftoolConfig c;
  auto eps = r.strings("endpoints");
  if (!eps || eps->empty()) r.fail("endpoints", "is required (etcd client URLs, e.g. [\"https://etcd1001.example.org:2379\"])");
  for (const auto& e : *eps) {
    if ((e.rfind("http://", 0) != 0 && e.rfind("https://", 0) != 0) || !is_clean_url(e))
      r.fail("endpoints", "\"" + e + "\" must be an http:// or https:// URL (no spaces or control characters)");
    c.endpoints.push_back(e.back() == '/' ? e.substr(0, e.size() - 1) : e);
  }
  c.prefix = r.require_string("prefix");
  if (c.prefix[0] != '/' || c.prefix.back() == '/') r.fail("prefix", "must be an absolute key path without a trailing slash, like \"/conftool/v1/pools/eqiad/dumps\"");
  c.lock_prefix = r.string("lock_prefix").value_or(c.lock_prefix);
  if (c.lock_prefix.empty() || c.lock_prefix[0] != '/') r.fail("lock_prefix", "must be an absolute key path");
  // PyBal reads every child of <prefix>/<service>/ as a host: a lock there would
  // become one. Keep locks outside the pools tree.
  if (overlaps(c.lock_prefix, c.prefix))
    r.fail("lock_prefix", "must be outside the pools tree (\"" + c.prefix + "\"): PyBal would read a lock there as a host");
  // Liveness keys live beside the locks by default: /poolkeeper/locks → /poolkeeper/alive.
  std::string lock_parent = c.lock_prefix.substr(0, c.lock_prefix.rfind('/'));
  c.liveness_prefix = r.string("liveness_prefix").value_or(lock_parent + "/alive");
  if (c.liveness_prefix.size() < 2 || c.liveness_prefix[0] != '/' || c.liveness_prefix.back() == '/')
    r.fail("liveness_prefix", "must be an absolute key path without a trailing slash, like \"/poolkeeper/alive\"");
  if (overlaps(c.liveness_prefix, c.prefix))
    r.fail("liveness_prefix", "must be outside the pools tree (\"" + c.prefix + "\"): PyBal would read a liveness key there as a host");
  if (overlaps(c.liveness_prefix, c.lock_prefix))
    r.fail("liveness_prefix", "must not overlap lock_prefix (\"" + c.lock_prefix + "\")");
  c.depooled_prefix = lock_parent + "/depooled";
  if (overlaps(c.depooled_prefix, c.prefix))
    r.fail("lock_prefix", "its parent's /depooled (\"" + c.depooled_prefix + "\") must be outside the pools tree (\"" +
                              c.prefix + "\")");
  if (overlaps(c.depooled_prefix, c.lock_prefix))
    r.fail("lock_prefix", "must not be \"" + c.depooled_prefix + "\" (who took a dead peer out, and why)");
  if (overlaps(c.depooled_prefix, c.liveness_prefix))
    r.fail("liveness_prefix", "must not overlap \"" + c.depooled_prefix + "\" (who took a dead peer out, and why)");
  c.hostname = r.string("hostname").value_or("");
  c.ca_file = r.string("ca_file").value_or("");
  c.cert_file = r.string("cert_file").value_or("");
  c.key_file = r.string("key_file").value_or("");
  // An unreadable CA would fail every TLS handshake at run time; say so now, with the line.
  bool tls = std::any_of(c.endpoints.begin(), c.endpoints.end(),
                         [](const std::string& e) { return e.rfind("https://", 0) == 0; });
  for (const auto& [name, file] : {std::pair<const char*, const std::string*>{"ca_file", &c.ca_file},
                                   {"cert_file", &c.cert_file}, {"key_file", &c.key_file}}) {
    if (file->empty() || !tls || secrets != Secrets::kRead) continue;
    if (::access(file->c_str(), R_OK) != 0)
      r.fail(name, "cannot read " + *file + " (" + std::strerror(errno) + "), needed for the https:// endpoints");
  }
  c.username = r.string("username").value_or("");
  auto password = r.string("password");
  auto password_file = r.string("password_file");
  if (password && password_file) r.fail("password_file", "give password or password_file, not both");
  if (password) {
    if (others_can_read(config_file))
      r.fail("password", "the config holds a password but others can read " + config_file + " (chmod o-r)");
    c.password = *password;
  }
  if (password_file && secrets != Secrets::kSkip) {
    if (others_can_read(*password_file))
      r.fail("password_file", "others can read " + *password_file + " (chmod o-r)");
    std::ifstream in(*password_file);
    if (!in && secrets == Secrets::kIfPresent)
      c.unread_secret = r.file() + ":" + std::to_string(r.line_of("password_file")) + ": " +
                        (r.prefix().empty() ? "" : r.prefix() + ".") + "password_file: cannot read " + *password_file;
    else if (!in)
      r.fail("password_file", "cannot read " + *password_file);
    std::getline(in, c.password);
    while (!c.password.empty() && (c.password.back() == '\r' || c.password.back() == ' ')) c.password.pop_back();
  }
  if ((password || password_file) && c.username.empty()) r.fail("username", "is required with a password");
  c.create_missing = r.boolean("create_missing").value_or(false);
  c.peer_dead_after = r.duration("peer_dead_after", std::chrono::seconds(1), std::chrono::hours(24)).value_or(c.peer_dead_after);
  c.lock_ttl = r.duration("lock_ttl", std::chrono::seconds(2), std::chrono::minutes(5)).value_or(c.lock_ttl);
  c.liveness_ttl = r.duration("liveness_ttl", std::chrono::seconds(1), std::chrono::minutes(10)).value_or(c.liveness_ttl);
  c.timeout = r.duration("timeout", std::chrono::milliseconds(100), std::chrono::seconds(60)).value_or(c.timeout);
  return c;
}

HaproxyAgentConfig parse_haproxy_agent_config(TableReader& r) {
  HaproxyAgentConfig c;
  c.listen = r.string("listen").value_or(c.listen);
  std::string host;
  int port;
  if (!parse_address(c.listen, &host, &port, true))
    r.fail("listen", "\"" + c.listen + "\" must be a numeric ADDRESS:PORT, e.g. \"127.0.0.1:9474\"");
  return c;
}

}  // namespace poolkeeper
