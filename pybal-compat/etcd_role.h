// The least-privilege etcd v2 role and user for one host's agent, as etcdctl (v2)
// commands an operator runs as etcd's root: read/write on the cluster's pools subtree
// and on the parent of the agent's own prefixes (liveness, lock, and whatever else the
// agent keeps there), nothing else. Pure: from the config alone (`poolctl etcd-role`).
#pragma once

#include <string>
#include <vector>

#include "pybal-compat/conftool_config.h"

namespace poolkeeper {

struct EtcdGrant {
  std::string path;  // an etcd v2 auth pattern: "/conftool/v1/pools/eqiad/dumps/*"
  std::string why;   // one line for the operator
};

struct EtcdRole {
  std::string role, user;
  std::vector<EtcdGrant> grants;  // every one --readwrite
};

// The role for a config: named after the user (conftool's `pool-<site>-<cluster>`), or
// from the prefix's last two parts when the config names no user.
EtcdRole etcd_role(const ConftoolConfig& c);
// The commands, with a comment line before each saying what it is for.
std::string render_etcd_role(const ConftoolConfig& c);

}  // namespace poolkeeper
