#include "agent/cli/conn_count.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/idiag/idiagnl.h>
#include <netlink/idiag/msg.h>
#include <netlink/netlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace poolkeeper {

namespace {

// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address for our purpose.
std::string fold_mapped(std::string raw) {
  static const unsigned char kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (raw.size() == 16 && std::memcmp(raw.data(), kPrefix, 12) == 0) return raw.substr(12);
  return raw;
}

}  // namespace

std::vector<std::string> own_addresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr) continue;
    if (a->ifa_addr->sa_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
      out.emplace_back(reinterpret_cast<const char*>(&in->sin_addr), 4);
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->ifa_addr);
      out.push_back(fold_mapped(std::string(reinterpret_cast<const char*>(&in6->sin6_addr), 16)));
    }
  }
  ::freeifaddrs(list);
  return out;
}

bool is_own_address(const std::string& raw_in, const std::vector<std::string>& own) {
  std::string raw = fold_mapped(raw_in);
  if (raw.size() == 4 && static_cast<unsigned char>(raw[0]) == 127) return true;
  if (raw.size() == 16 && raw == std::string(15, '\0') + '\1') return true;
  return std::find(own.begin(), own.end(), raw) != own.end();
}

int count_established(int port, std::string* error) {
  nl_sock* sk = nl_socket_alloc();
  if (!sk) {
    *error = "cannot allocate a netlink socket";
    return -1;
  }
  int err = idiagnl_connect(sk);
  if (err < 0) {
    nl_socket_free(sk);
    *error = std::string("sock_diag: ") + nl_geterror(err);
    return -1;
  }
  std::vector<std::string> own = own_addresses();
  int count = 0;
  for (int family : {AF_INET, AF_INET6}) {
    nl_cache* cache = nullptr;
    err = idiagnl_msg_alloc_cache(sk, family, 1 << IDIAG_SS_ESTABLISHED, &cache);
    if (err < 0) {
      nl_socket_free(sk);
      *error = std::string("sock_diag: ") + nl_geterror(err);
      return -1;
    }
    for (nl_object* o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
      auto* m = reinterpret_cast<idiagnl_msg*>(o);
      // libnl hands the port over in network byte order.
      // Each dump may carry the other family too: count a socket once.
      if (idiagnl_msg_get_family(m) != family) continue;
      if (ntohs(idiagnl_msg_get_sport(m)) != port || idiagnl_msg_get_state(m) != IDIAG_SS_ESTABLISHED) continue;
      nl_addr* remote = idiagnl_msg_get_dst(m);
      if (remote) {
        // libnl may keep an IPv4 address in a 16-byte buffer (inet_diag's layout).
        size_t len = nl_addr_get_family(remote) == AF_INET ? 4 : nl_addr_get_len(remote);
        if (len > nl_addr_get_len(remote)) len = nl_addr_get_len(remote);
        std::string raw(static_cast<const char*>(nl_addr_get_binary_addr(remote)), len);
        if (is_own_address(raw, own)) continue;  // a probe or a local process, not a client
      }
      ++count;
    }
    nl_cache_free(cache);
  }
  nl_socket_free(sk);
  return count;
}

}  // namespace poolkeeper
