// The agent's configuration (TOML; the README's configuration reference). load_config() validates all
// of it up front and throws ConfigError("FILE:LINE: key: what") on the first problem,
// so a bad file never half-applies.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/model/model_config.h"
#include "checks/check.h"
#include "pybal-compat/conftool_config.h"

namespace poolkeeper {

// The whole file: what the model runs on, plus the load-balancer side.
struct Config : ModelConfig {
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
