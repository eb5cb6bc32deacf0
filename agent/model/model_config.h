// What the model runs on: the checks (timing, and the probe behind each through the
// Check interface), the services and the agent's own settings. The file's parser
// (agent/config/) fills it in together with the load balancer's settings.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/base/clock.h"
#include "agent/base/probe.h"

namespace poolkeeper {

struct CheckConfig {
  std::string name;
  std::string kind;
  CheckTraits traits;  // what the kind tells the rest (its registry line, checks/check.cc)
  Duration interval = std::chrono::seconds(1);
  Duration timeout = std::chrono::milliseconds(500);
  Duration fast_interval = std::chrono::milliseconds(200);
  int rise = 3;
  int fall = 2;
  bool critical = true;
  // The systemd unit of the server the check probes ("nginx.service"; "" = none): its
  // state changes bring the next probe forward (unit_state.h).
  std::string unit;
  // The table's text without its timing keys (interval, timeout, fast_interval, rise,
  // fall, critical) and `unit`: equal fingerprints = same probe target, state kept on reload.
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

struct ModelConfig {
  std::string file;
  AgentConfig agent;
  std::map<std::string, ServiceConfig> services;
  std::map<std::string, CheckConfig> checks;
};

}  // namespace poolkeeper
