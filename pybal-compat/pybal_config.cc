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
}  // namespace

std::string render_pybal_config(const PybalInput& in) {
  if (in.prefix.empty()) throw std::runtime_error("no [conftool] section: PyBal reads pool state from conftool");
  // /conftool/v1/pools/<dc>/<cluster>
  std::string rest = in.prefix;
  const std::string pools = "/conftool/v1/pools/";
  std::string dc = "dc", cluster = "cluster";
  if (rest.rfind(pools, 0) == 0) {
    std::string tail = rest.substr(pools.size());
    size_t slash = tail.find('/');
    if (slash != std::string::npos) {
      dc = tail.substr(0, slash);
      cluster = tail.substr(slash + 1);
    }
  }
  std::string etcd_host = in.etcd_url.substr(in.etcd_url.find("://") == std::string::npos ? 0 : in.etcd_url.find("://") + 3);
  std::string out = "# pybal.conf stanzas for the services of " + in.hostname + " (poolctl pybal-config)\n";
  out += "# Pool state comes from conftool (" + pybal_escape(in.prefix) + "), kept by poolkeeper.\n\n";
  for (const auto& s : in.services) {
    if (s.ip.empty())
      throw std::runtime_error("service " + s.name + ": no service IP (add a kind = \"vip\" check to services." + s.name + ".checks)");
    if (s.port == 0) throw std::runtime_error("service " + s.name + ": no port (set services." + s.name + ".port)");
    out += "[" + cluster + "_" + s.name + "_" + std::to_string(s.port) + "]\n";
    out += "protocol = tcp\n";
    out += "ip = " + pybal_escape(s.ip) + "\n";
    out += "port = " + std::to_string(s.port) + "\n";
    out += "config = etcd://" + pybal_escape(etcd_host) + pybal_escape(in.prefix) + "/" + pybal_escape(s.name) + "\n";
    out += "bgp = yes\n";
    out += "depool-threshold = .5\n";
    bool nfs = s.name.find("nfs") != std::string::npos || s.port == 2049;
    bool http = !nfs && (s.port == 80 || s.port == 443 || s.name.find("http") != std::string::npos);
    if (nfs) {
      out += "# NFS: clients must stay on their host (file handles are per server), and no\n";
      out += "# monitor: a TCP monitor would depool a host holding its clients through a reboot.\n";
      out += "scheduler = sh\n";
      out += "monitors = [ ]\n";
    } else if (http) {
      std::string host = s.health_host.empty() ? in.hostname : s.health_host;
      std::string scheme = s.port == 443 ? "https" : "http";
      out += "scheduler = wrr\n";
      out += "monitors = [ 'ProxyFetch' ]\n";
      out += "ProxyFetch.url = [ " + pybal_escape(py_str(scheme + "://" + host + "/pybal-health/" + s.name)) + " ]\n";
    } else {
      out += "scheduler = wrr\n";
      out += "monitors = [ 'IdleConnection' ]\n";
      out += "IdleConnection.timeout-clean-reconnect = 3\n";
      out += "IdleConnection.max-delay = 300\n";
    }
    out += "\n";
  }
  out += "# conftool-data (node definitions):\n";
  out += "# " + dc + ":\n#   " + cluster + ":\n#     " + in.hostname + ": [";
  for (size_t i = 0; i < in.services.size(); ++i) out += (i ? ", " : "") + in.services[i].name;
  out += "]\n";
  return out;
}

}  // namespace poolkeeper
