#include "agent/conn_count.h"

#include <netinet/in.h>
#include <netlink/cache.h>
#include <netlink/idiag/idiagnl.h>
#include <netlink/idiag/msg.h>
#include <netlink/netlink.h>
#include <sys/socket.h>

namespace poolkeeper {

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
      if (ntohs(idiagnl_msg_get_sport(m)) == port && idiagnl_msg_get_state(m) == IDIAG_SS_ESTABLISHED) ++count;
    }
    nl_cache_free(cache);
  }
  nl_socket_free(sk);
  return count;
}

}  // namespace poolkeeper
