// The agent's configuration (TOML; the README's configuration reference). load_config() validates all
// of it up front and throws ConfigError("FILE:LINE: key: what") on the first problem,
// so a bad file never half-applies.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/clock.h"
#include "checks/check.h"
#include "pybal-compat/conftool_config.h"

namespace poolkeeper {

struct CheckConfig {
  std::string name;
  std::string kind;
  Duration interval = std::chrono::seconds(1);
  Duration timeout = std::chrono::milliseconds(500);
  Duration fast_interval = std::chrono::milliseconds(200);
  int rise = 3;
  int fall = 2;
  bool critical = true;
  // The table's text without its timing keys (interval, timeout, fast_interval, rise,
  // fall, critical): equal fingerprints = same probe target, state kept on reload.
  std::string fingerprint;
  std::shared_ptr<Check> check;
};

struct ServiceConfig {
  std::string name;
  std::vector<std::string> checks;
  int port = 0;                     // where clients connect (drain counts); 0 = unknown
  std::vector<std::string> peers;   // other hosts' agents, "http://host:9473"
  int min_pooled = 1;
  bool hold_on_reboot = false;      // on_reboot = "hold": keep the conftool key "yes" through a reboot
};

struct AgentConfig {
  std::string listen = "127.0.0.1:9473";
  std::string admin_socket = "/run/poolkeeper/admin.sock";
  std::string admin_group;
  std::string state_dir = "/var/lib/poolkeeper";
  int drain_seconds = 10;
  std::string hostname;  // empty in the file: the daemon uses host_fqdn() at start
  std::string boot_id_file = "/proc/sys/kernel/random/boot_id";
  // What SIGTERM means: "auto" (systemd says whether the host is going down: drain on a
  // shutdown/reboot, keep on a restart of the agent alone), "drain" or "keep".
  std::string stop_action = "auto";
};

// A check's timeout is capped well under the unit's TimeoutStopSec (60 s), so that no
// probe can come near what systemd allows a stop.
constexpr Duration kMaxCheckTimeout = std::chrono::seconds(30);

struct Config {
  std::string file;
  AgentConfig agent;
  std::map<std::string, ServiceConfig> services;
  std::map<std::string, CheckConfig> checks;
  std::optional<ConftoolConfig> conftool;
  std::optional<HaproxyAgentConfig> haproxy_agent;
};

// kSkip: secrets (conftool.password_file) are checked for form but not read, for the
// tools that need none (poolctl lvs-config, check, status) and users who may not read them.
Config load_config(const std::string& path, Secrets secrets = Secrets::kRead);
Config parse_config(std::string_view text, const std::string& path, Secrets secrets = Secrets::kRead);

// gethostname(), made fully qualified through the resolver's canonical name when it
// has no dot (as `hostname -f` does).
std::string host_fqdn();

// "127.0.0.1:9473", "[::1]:9473", "localhost:9473" → host and port; false if malformed.
bool split_host_port(const std::string& s, std::string* host, int* port);

}  // namespace poolkeeper
