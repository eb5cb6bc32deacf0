// HAProxy's runtime API as the tests read it: the servers' states from
// `show servers state`, the view a load balancer has of the agents.
#pragma once

#include <map>
#include <string>

namespace pk_test {

// One server's row: srv_op_state (2 = running), srv_admin_state (0 = ready, bits set
// for maint/drain) and srv_uweight.
struct HaproxyServer {
  int op = -1, admin = -1, uweight = -1;
};
// backend → server → state.
using HaproxyServers = std::map<std::string, std::map<std::string, HaproxyServer>>;

// The rows of the output of `show servers state [backend]`; comment and blank lines,
// and rows too short to hold the states, are passed over.
HaproxyServers parse_servers_state(const std::string& text);

}  // namespace pk_test
