// The [conftool] and [haproxy_agent] config sections. They live here, with the code
// that uses them; agent/config/config.cc calls these parsers for the tables.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "agent/base/clock.h"
#include "agent/base/toml_reader.h"

namespace poolkeeper {

struct ConftoolConfig {
  std::vector<std::string> endpoints;   // etcd client URLs
  std::string prefix;                   // "/conftool/v1/pools/eqiad/dumps"
  std::string lock_prefix = "/poolkeeper/locks";
  std::string hostname;                 // default: the agent's
  std::string ca_file, cert_file, key_file;
  std::string username, password;       // password inline or from password_file
  bool create_missing = false;
  Duration peer_dead_after = std::chrono::seconds(30);
  Duration lock_ttl = std::chrono::seconds(10);
  // Each agent's liveness key <liveness_prefix>/<hostname>, kept with a TTL and
  // refreshed every liveness_ttl/3; default: lock_prefix's parent + "/alive".
  std::string liveness_prefix;
  Duration liveness_ttl = std::chrono::seconds(10);
  // Who took a dead peer's key out, and why: <depooled_prefix>/<service>/<host>; always
  // lock_prefix's parent + "/depooled" (beside the locks and liveness keys, so one etcd
  // role grant on that parent covers every key the agent keeps outside the pools tree).
  std::string depooled_prefix;
  // How long one request may wait for one endpoint before the next is tried.
  Duration timeout = std::chrono::seconds(2);
  // Secrets::kIfPresent only: "FILE:LINE: conftool.password_file: cannot read …", or "".
  std::string unread_secret;
};

struct HaproxyAgentConfig {
  std::string listen = "127.0.0.1:9474";
};

// Whether a config's secrets are read (the daemon) or only named (tools needing none).
// kIfPresent (--check-config): as kRead, but a password file that cannot be read is
// noted in ConftoolConfig::unread_secret instead of failing: secrets are deployed on
// their own, often after the config.
enum class Secrets { kRead, kSkip, kIfPresent };

// `config_file` is checked for mode when it holds a password; a password file that
// others can read is refused as well. With Secrets::kSkip the password file is not
// opened: its absence is no error and the password stays empty.
ConftoolConfig parse_conftool_config(TableReader& r, const std::string& config_file,
                                     Secrets secrets = Secrets::kRead);
HaproxyAgentConfig parse_haproxy_agent_config(TableReader& r);

}  // namespace poolkeeper
