// `poolctl lvs-config`: what the load balancer needs to know about this host's services,
// in the three forms users run — pybal.conf stanzas (ConfigParser, so '%' is written
// '%%'; monitors and ProxyFetch.url as Python list literals), a service-catalog entry
// in the shape of operations-puppet's hieradata/common/service.yaml (read by PyBal's
// puppet templates and by Liberica), and HAProxy backends with agent-check.
// What a service gets follows from its service kind (the first of its checks that
// speaks its protocol: service_kind in checks/check.h), never from its name or port: a
// web server (kHttp) is watched by ProxyFetch through its health location; pinned
// clients (kPinned) get no monitor at all (a TCP monitor would depool a holding host
// mid-reboot) and a source-sticky scheduler so they stay on their host; anything else
// gets IdleConnection.
// Pure and secret-free: unit-tested, and each format parsed by its own reader in a test.
#pragma once

#include <string>
#include <vector>

#include "agent/base/probe.h"

namespace poolkeeper {

struct PybalService {
  std::string name;
  std::string ip;           // the LVS service IP (a check's service_address())
  int port = 0;
  std::string health_host;  // Host for the ProxyFetch URL (the http check's host)
  bool hold_on_reboot = false;
  std::vector<std::string> peer_hosts;  // the other hosts serving it: the hosts of `peers`' URLs
  Balancing balancing = Balancing::kTcp;  // its service kind's
};

struct PybalInput {
  std::string hostname;
  std::string etcd_url;     // first conftool endpoint
  std::string prefix;       // /conftool/v1/pools/<dc>/<cluster>
  std::vector<PybalService> services;
  int agent_port = 0;       // [haproxy_agent] listen port; 0 = none configured
};

// Each returns the text, or throws std::runtime_error naming what is missing.
std::string render_pybal_config(const PybalInput& in);
std::string render_service_catalog(const PybalInput& in);
std::string render_haproxy_config(const PybalInput& in);
// The host of a peer's agent URL ("http://clouddumps1002.example.org:9473/" →
// "clouddumps1002.example.org", "http://[2001:db8::2]:9473" → "2001:db8::2"): the
// peer serves the service on that host, at the service's port, not the agent's.
std::string url_host(const std::string& url);
// ConfigParser interpolation: every '%' becomes '%%'.
std::string pybal_escape(const std::string& s);

}  // namespace poolkeeper
