#include "pybal-compat/etcd_role.h"

#include <sstream>

namespace poolkeeper {

namespace {
std::string parent(const std::string& key) { return key.substr(0, key.rfind('/')); }

bool under(const std::string& key, const std::string& dir) { return key.rfind(dir + "/", 0) == 0; }

// One of etcdctl's arguments in the shell: single-quoted unless plainly safe.
std::string sh(const std::string& s) {
  bool plain = !s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                                  "-_./:,=@") == std::string::npos;
  if (plain) return s;
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}
}  // namespace

EtcdRole etcd_role(const ConftoolConfig& c) {
  EtcdRole r;
  std::string cluster = c.prefix.substr(c.prefix.rfind('/') + 1);
  std::string site = parent(c.prefix);
  site = site.substr(site.rfind('/') + 1);
  r.user = c.username.empty() ? "pool-" + site + "-" + cluster : c.username;
  r.role = r.user;
  // etcd's v2 grants match by string prefix: "<dir>/*" covers every key below <dir> and
  // a recursive read of "<dir>/" (the agent always reads directories that way).
  r.grants.push_back({c.prefix + "/*", "this cluster's conftool keys (" + c.prefix +
                                           "/<service>/<host>): read the pool for the floor, write this host's "
                                           "\"pooled\", and a dead peer's \"no\" on a takeover"});
  std::string own = parent(c.lock_prefix);
  if (own.empty()) own = c.lock_prefix;  // a lock prefix right under the root: grant it alone
  std::string why = "the agent's own keys: the floor's lock (" + c.lock_prefix + "/<service>)";
  if (under(c.liveness_prefix, own)) why += ", liveness (" + c.liveness_prefix + "/<host>)";
  why += " and the rest the agent keeps under " + own + "/";
  r.grants.push_back({own + "/*", why});
  if (!under(c.liveness_prefix, own))
    r.grants.push_back({c.liveness_prefix + "/*", "the agents' liveness keys (" + c.liveness_prefix +
                                                      "/<host>): this host's own, and its peers' to judge them dead"});
  return r;
}

std::string render_etcd_role(const ConftoolConfig& c) {
  EtcdRole r = etcd_role(c);
  std::ostringstream out;
  std::string eps;
  for (const auto& e : c.endpoints) eps += (eps.empty() ? "" : ",") + e;
  out << "# etcd v2 auth: the role and user for " << c.prefix << ", least privilege.\n"
      << "# Run as etcd's root (etcdctl asks for root's password).\n"
      << "export ETCDCTL_API=2 ETCDCTL_ENDPOINTS=" << sh(eps);
  if (!c.ca_file.empty()) out << " ETCDCTL_CA_FILE=" << sh(c.ca_file);
  out << " ETCDCTL_USERNAME=root\n";
  out << "# a role of its own for this cluster's hosts\n"
      << "etcdctl role add " << sh(r.role) << "\n";
  for (const auto& g : r.grants)
    out << "# " << g.why << "\n"
        << "etcdctl role grant " << sh(r.role) << " --readwrite --path " << sh(g.path) << "\n";
  out << "# the user the agent logs in as (asks for its password: the one in password_file)\n"
      << "etcdctl user add " << sh(r.user) << "\n"
      << "# nothing but that role\n"
      << "etcdctl user grant " << sh(r.user) << " --roles " << sh(r.role) << "\n"
      << "# Once per etcd cluster, not per role: with auth enabled, etcd's guest role may read\n"
      << "# and write everything until revoked:\n"
      << "#   etcdctl auth enable; etcdctl role revoke guest --readwrite --path '/*'\n";
  return out.str();
}

}  // namespace poolkeeper
