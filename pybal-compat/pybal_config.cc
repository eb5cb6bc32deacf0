#include "pybal-compat/pybal_config.h"

#include <stdexcept>

namespace poolkeeper {

std::string pybal_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    out += c;
    if (c == '%') out += '%';
  }
  return out;
}

namespace {
// A Python string literal (single-quoted), for list literals.
std::string py_str(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

// A YAML double-quoted scalar (JSON string escapes are valid YAML).
std::string yaml_str(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;  // names and URLs: no controls
    out += c;
  }
  return out + "\"";
}

std::string proxyfetch_url(const PybalInput& in, const PybalService& s) {
  std::string host = s.health_host.empty() ? in.hostname : s.health_host;
  return std::string(s.port == 443 ? "https" : "http") + "://" + host + "/pybal-health/" + s.name;
}

// /conftool/v1/pools/<dc>/<cluster> → dc, cluster (placeholders for other shapes).
void dc_cluster(const std::string& prefix, std::string* dc, std::string* cluster) {
  const std::string pools = "/conftool/v1/pools/";
  *dc = "dc";
  *cluster = "cluster";
  if (prefix.rfind(pools, 0) != 0) return;
  std::string tail = prefix.substr(pools.size());
  size_t slash = tail.find('/');
  if (slash == std::string::npos) return;
  *dc = tail.substr(0, slash);
  *cluster = tail.substr(slash + 1);
}

void require_ip_port(const PybalService& s) {
  if (s.ip.empty())
    throw std::runtime_error("service " + s.name + ": no service IP (add a kind = \"vip\" check to services." + s.name + ".checks)");
  if (s.port == 0) throw std::runtime_error("service " + s.name + ": no port (set services." + s.name + ".port)");
}

void require_conftool(const PybalInput& in, const std::string& who) {
  if (in.prefix.empty()) throw std::runtime_error("no [conftool] section: " + who + " reads pool state from conftool");
}
}  // namespace

std::string render_pybal_config(const PybalInput& in) {
  require_conftool(in, "PyBal");
  std::string dc, cluster;
  dc_cluster(in.prefix, &dc, &cluster);
  std::string etcd_host = in.etcd_url.substr(in.etcd_url.find("://") == std::string::npos ? 0 : in.etcd_url.find("://") + 3);
  std::string out = "# pybal.conf stanzas for the services of " + in.hostname + " (poolctl lvs-config --format pybal)\n";
  out += "# Pool state comes from conftool (" + pybal_escape(in.prefix) + "), kept by poolkeeper.\n";
  out += "# On the directors, a depooled realserver is best quiesced (weight 0, with the\n";
  out += "# scheduler's fallback flag: -b sh-fallback / mh-fallback) rather than removed: IPVS\n";
  out += "# drops every packet of a removed realserver's connections, cutting transfers in flight.\n\n";
  for (const auto& s : in.services) {
    require_ip_port(s);
    out += "[" + cluster + "_" + s.name + "_" + std::to_string(s.port) + "]\n";
    out += "protocol = tcp\n";
    out += "ip = " + pybal_escape(s.ip) + "\n";
    out += "port = " + std::to_string(s.port) + "\n";
    out += "config = etcd://" + pybal_escape(etcd_host) + pybal_escape(in.prefix) + "/" + pybal_escape(s.name) + "\n";
    out += "bgp = yes\n";
    out += "depool-threshold = .5\n";
    switch (s.balancing) {
      case Balancing::kPinned:
        out += "# NFS: clients must stay on their host (file handles are per server), and no\n";
        out += "# monitor: a TCP monitor would depool a host holding its clients through a reboot.\n";
        out += "# On the directors set net.ipv4.vs.expire_nodest_conn = 1: a depooled host's NFS\n";
        out += "# connections then move at once (0.02 s) instead of stalling ~18 s.\n";
        out += "scheduler = sh\n";
        out += "monitors = [ ]\n";
        break;
      case Balancing::kHttp:
        out += "scheduler = wrr\n";
        out += "monitors = [ 'ProxyFetch' ]\n";
        out += "ProxyFetch.url = [ " + pybal_escape(py_str(proxyfetch_url(in, s))) + " ]\n";
        break;
      case Balancing::kTcp:
        out += "scheduler = wrr\n";
        out += "monitors = [ 'IdleConnection' ]\n";
        out += "IdleConnection.timeout-clean-reconnect = 3\n";
        out += "IdleConnection.max-delay = 300\n";
        break;
    }
    out += "\n";
  }
  out += "# conftool-data (node definitions):\n";
  out += "# " + dc + ":\n#   " + cluster + ":\n#     " + in.hostname + ": [";
  for (size_t i = 0; i < in.services.size(); ++i) out += (i ? ", " : "") + in.services[i].name;
  out += "]\n";
  return out;
}

std::string render_service_catalog(const PybalInput& in) {
  require_conftool(in, "the service catalog (PyBal, Liberica)");
  std::string dc, cluster;
  dc_cluster(in.prefix, &dc, &cluster);
  std::string out = "# service::catalog entries for the services of " + in.hostname +
                    " (poolctl lvs-config --format service-catalog),\n"
                    "# in the shape of operations-puppet's hieradata/common/service.yaml. Pool state\n"
                    "# comes from conftool (" + in.prefix + "), kept by poolkeeper. On the directors, a\n"
                    "# depooled realserver is best quiesced (weight 0, with the scheduler's fallback\n"
                    "# flag: -b mh-fallback) rather than removed: IPVS drops every packet of a removed\n"
                    "# realserver's connections, cutting transfers in flight.\n"
                    "service::catalog:\n";
  for (const auto& s : in.services) {
    require_ip_port(s);
    out += "  " + cluster + "-" + s.name + ":\n";
    out += "    description: " + yaml_str(cluster + " " + s.name + ", served by " + in.hostname + " and its peers") + "\n";
    out += "    encryption: " + std::string(s.port == 443 ? "true" : "false") + "\n";
    out += "    ip:\n      " + dc + ":\n        default: " + yaml_str(s.ip) + "\n";
    out += "    lvs:\n";
    out += "      class: low-traffic\n";
    out += "      conftool:\n        cluster: " + yaml_str(cluster) + "\n        service: " + yaml_str(s.name) + "\n";
    out += "      depool_threshold: \".5\"\n";
    out += "      enabled: true\n";
    switch (s.balancing) {
      case Balancing::kPinned:
        out += "      # No monitor: a TCP monitor (IdleConnection) would depool a host holding its\n"
               "      # NFS clients through a reboot; pool state comes from conftool alone.\n"
               "      monitors: {}\n"
               "      # mh (source-sticky): NFS clients must stay on their host, since file handles\n"
               "      # are per server and a moved client gets ESTALE. sh would do for PyBal, but\n"
               "      # Liberica accepts only mh. On the directors set\n"
               "      # net.ipv4.vs.expire_nodest_conn = 1: a depooled host's NFS connections then\n"
               "      # move at once (0.02 s) instead of stalling ~18 s.\n"
               "      scheduler: mh\n";
        break;
      case Balancing::kHttp:
        out += "      monitors:\n        ProxyFetch:\n          url:\n            - " + yaml_str(proxyfetch_url(in, s)) + "\n";
        out += "      scheduler: wrr\n";
        break;
      case Balancing::kTcp:
        out += "      monitors:\n        IdleConnection:\n          max-delay: 300\n          timeout-clean-reconnect: 3\n";
        out += "      scheduler: wrr\n";
        break;
    }
    out += "      protocol: tcp\n";
    out += "    port: " + std::to_string(s.port) + "\n";
    out += "    sites:\n      - " + yaml_str(dc) + "\n";
    out += "    state: production\n";
  }
  return out;
}

std::string url_host(const std::string& url) {
  size_t scheme = url.find("://");
  std::string rest = scheme == std::string::npos ? url : url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (size_t at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
  if (!rest.empty() && rest[0] == '[') return rest.substr(1, rest.find(']') - 1);
  return rest.substr(0, rest.find(':'));
}

std::string render_haproxy_config(const PybalInput& in) {
  if (in.agent_port == 0)
    throw std::runtime_error("no [haproxy_agent] section: HAProxy's agent-check needs the agent's port");
  std::string out = "# HAProxy frontends and backends for the services of " + in.hostname +
                    " and its peers (poolctl lvs-config --format haproxy).\n"
                    "# The agent answers agent-check on port " + std::to_string(in.agent_port) +
                    "; agent-send names the service. `up` counts only\n"
                    "# while HAProxy's own check passes too. init-addr lets HAProxy start while a\n"
                    "# host's name does not resolve.\n";
  for (const auto& s : in.services) {
    if (s.port == 0) throw std::runtime_error("service " + s.name + ": no port (set services." + s.name + ".port)");
    // HAProxy listens on the service IP when there is one.
    out += "\nfrontend " + s.name + "\n    mode tcp\n    timeout client 1h\n";
    out += std::string(s.ip.empty() ? "    # bind SERVICE_IP:" : "    bind " + (s.ip.find(':') != std::string::npos ? "[" + s.ip + "]" : s.ip) + ":") +
           std::to_string(s.port) + "\n";
    out += "    default_backend " + s.name + "\n";
    out += "\nbackend " + s.name + "\n";
    out += "    mode tcp\n";
    if (s.balancing == Balancing::kPinned) {
      out += "    # NFS: clients stay on their host (file handles are per server; a moved\n"
             "    # client gets ESTALE), so the source address picks the server.\n"
             "    balance source\n"
             "    hash-type consistent\n";
    } else {
      out += "    balance leastconn\n";
    }
    out += "    timeout connect 5s\n    timeout server 1h\n";
    out += "    default-server check inter 2s init-addr last,libc,none agent-check agent-port " +
           std::to_string(in.agent_port) + " agent-inter 2s agent-send \"" + s.name + "\\n\"\n";
    std::vector<std::string> hosts{in.hostname};
    for (const auto& p : s.peer_hosts) hosts.push_back(p);
    for (const auto& h : hosts) {
      bool v6 = h.find(':') != std::string::npos;
      std::string short_name = v6 ? h : h.substr(0, h.find('.'));
      for (char& c : short_name)
        if (c == ':') c = '_';
      out += "    server " + short_name + " " + (v6 ? "[" + h + "]" : h) + ":" + std::to_string(s.port) + "\n";
    }
  }
  return out;
}

}  // namespace poolkeeper
