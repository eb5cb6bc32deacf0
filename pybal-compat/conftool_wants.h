// From the agent's state to what each conftool key should say (pure; unit-tested).
// The rules: never touch an inactive service; while stopping write nothing but "no"
// for a service the shutdown drain released through the floor (never a held one, never
// on a restart of the agent alone); a depool writes "no", except that `depool --until-boot`
// of a hold service leaves the key as it is so its NFS clients stall and resume on
// this host; failing health writes "no" only through the floor under the etcd lock;
// a pooled service writes "yes"; one still rising leaves the key as it is.
#pragma once

#include <vector>

#include "agent/model/model_config.h"
#include "agent/model/snapshot.h"
#include "pybal-compat/conftool_writer.h"

namespace poolkeeper {

std::vector<ConftoolWant> conftool_wants(const Snapshot& s, const ModelConfig& cfg);
std::vector<ConftoolPeer> conftool_peers(const Snapshot& s, const ModelConfig& cfg);
// "http://clouddumps1002.example.org:9473" → "clouddumps1002.example.org"
std::string host_of_url(const std::string& url);

// What the load balancer will do for a service after `pool`, judged from its conftool
// key as the writer last saw it (`key`: one entry of ConftoolWriter::keys(), null when
// never read). `synced`: a sync after the pool succeeded (else `error` says why not).
// An inactive, missing or unreadable key means PyBal will not route to the host,
// whatever the agent decided.
struct PoolAnswer {
  bool will_pool = false;
  std::string message;
};
PoolAnswer conftool_pool_answer(const nlohmann::json& key, bool synced, const std::string& error,
                                bool agent_pooled);

}  // namespace poolkeeper
