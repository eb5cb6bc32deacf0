#include "checks/vip_check.h"

#include <arpa/inet.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>

#include <cstring>
#include <fstream>

namespace poolkeeper {

namespace {

struct Parsed {
  int family;
  unsigned char bytes[16];
  int prefix;
};

bool parse_ip(const std::string& s, Parsed* out) {
  std::memset(out, 0, sizeof *out);
  if (::inet_pton(AF_INET, s.c_str(), out->bytes) == 1) {
    out->family = AF_INET;
    out->prefix = 32;
    return true;
  }
  if (::inet_pton(AF_INET6, s.c_str(), out->bytes) == 1) {
    out->family = AF_INET6;
    out->prefix = 128;
    return true;
  }
  return false;
}

std::optional<int> read_sysctl(const std::string& path) {
  std::ifstream in(path);
  int v;
  if (!(in >> v)) return std::nullopt;
  return v;
}

}  // namespace

std::string VipCheck::target() const {
  std::string s;
  for (const auto& a : o_.addresses) s += (s.empty() ? "" : ",") + a;
  return s + " on " + o_.interface;
}

Result VipCheck::run(Deadline /*deadline: netlink dumps of the local kernel are bounded*/,
                     const Clock& /*clock*/) {
  nl_sock* sock = nl_socket_alloc();
  if (!sock) return Result::fail(Outcome::kFailed, "cannot allocate a netlink socket");
  struct Cleanup {
    nl_sock* sock;
    nl_cache* links = nullptr;
    nl_cache* addrs = nullptr;
    ~Cleanup() {
      if (addrs) nl_cache_free(addrs);
      if (links) nl_cache_free(links);
      nl_socket_free(sock);
    }
  } cl{sock};
  int err = nl_connect(sock, NETLINK_ROUTE);
  if (err < 0) return Result::fail(Outcome::kFailed, std::string("netlink: ") + nl_geterror(err));
  if ((err = rtnl_link_alloc_cache(sock, AF_UNSPEC, &cl.links)) < 0)
    return Result::fail(Outcome::kFailed, std::string("netlink links: ") + nl_geterror(err));
  int ifindex = rtnl_link_name2i(cl.links, o_.interface.c_str());
  if (ifindex <= 0) return Result::fail(Outcome::kFailed, "no interface " + o_.interface);
  if ((err = rtnl_addr_alloc_cache(sock, &cl.addrs)) < 0)
    return Result::fail(Outcome::kFailed, std::string("netlink addresses: ") + nl_geterror(err));

  bool any_v4 = false;
  nlohmann::json present = nlohmann::json::array();
  for (const auto& want : o_.addresses) {
    Parsed p;
    parse_ip(want, &p);  // validated at config load
    any_v4 |= p.family == AF_INET;
    bool found = false, wrong_prefix = false, elsewhere = false;
    for (nl_object* obj = nl_cache_get_first(cl.addrs); obj; obj = nl_cache_get_next(obj)) {
      auto* a = reinterpret_cast<rtnl_addr*>(obj);
      if (rtnl_addr_get_family(a) != p.family) continue;
      nl_addr* local = rtnl_addr_get_local(a);
      if (!local || nl_addr_get_len(local) != (p.family == AF_INET ? 4u : 16u)) continue;
      if (std::memcmp(nl_addr_get_binary_addr(local), p.bytes, nl_addr_get_len(local)) != 0) continue;
      if (rtnl_addr_get_ifindex(a) != ifindex) {
        elsewhere = true;
        continue;
      }
      if (rtnl_addr_get_prefixlen(a) != p.prefix) {
        wrong_prefix = true;
        continue;
      }
      found = true;
    }
    if (!found) {
      std::string why = want + " not on " + o_.interface;
      if (wrong_prefix) why = want + " on " + o_.interface + " has the wrong prefix (want /" + std::to_string(p.prefix) + ")";
      else if (elsewhere) why += " (it is on another interface)";
      Result r = Result::fail(Outcome::kFailed, why);
      r.details["present"] = present;
      return r;
    }
    present.push_back(want);
  }
  Result r = Result::pass(std::to_string(o_.addresses.size()) + " address(es) on " + o_.interface);
  r.details["present"] = present;
  if (any_v4) {
    auto ignore = read_sysctl(o_.sysctl_root + "/arp_ignore");
    auto announce = read_sysctl(o_.sysctl_root + "/arp_announce");
    r.details["arp_ignore"] = ignore ? nlohmann::json(*ignore) : nlohmann::json(nullptr);
    r.details["arp_announce"] = announce ? nlohmann::json(*announce) : nlohmann::json(nullptr);
    if (!ignore || *ignore != 1) {
      r.outcome = Outcome::kFailed;
      r.reason = "net.ipv4.conf.all.arp_ignore is " + (ignore ? std::to_string(*ignore) : "unreadable") + ", want 1";
    } else if (!announce || *announce != 2) {
      r.outcome = Outcome::kFailed;
      r.reason = "net.ipv4.conf.all.arp_announce is " + (announce ? std::to_string(*announce) : "unreadable") + ", want 2";
    }
  }
  return r;
}

std::unique_ptr<Check> make_vip_check(TableReader& reader) {
  VipCheckOptions o;
  auto addrs = reader.strings("addresses");
  if (!addrs || addrs->empty()) reader.fail("addresses", "is required (the service IPs)");
  for (const auto& a : *addrs) {
    Parsed p;
    if (!parse_ip(a, &p)) reader.fail("addresses", "\"" + a + "\" is not an IPv4 or IPv6 address");
  }
  o.addresses = *addrs;
  o.interface = reader.string("interface").value_or("lo");
  if (o.interface.empty() || o.interface.size() > 15 || o.interface.find('/') != std::string::npos)
    reader.fail("interface", "\"" + o.interface + "\" is not an interface name");
  return std::make_unique<VipCheck>(std::move(o));
}

}  // namespace poolkeeper
