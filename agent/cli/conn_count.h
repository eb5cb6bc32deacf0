// Counts a service's established client connections from the kernel (sock_diag over
// netlink, libnl-idiag): TCP sockets in ESTABLISHED whose local port is the service's
// and whose remote address is not one of this host's own addresses — the agent's own
// probes (and anything else on the host, e.g. a local proxy) are not clients.
#pragma once

#include <string>
#include <vector>

namespace poolkeeper {

// Returns the count, or -1 with *error set.
int count_established(int port, std::string* error);

// The host's own addresses (every interface's, IPv4-mapped IPv6 folded to IPv4), as
// raw bytes (4 or 16). Loopback ranges (127.0.0.0/8, ::1) count as own anyway.
std::vector<std::string> own_addresses();
bool is_own_address(const std::string& raw, const std::vector<std::string>& own);

}  // namespace poolkeeper
