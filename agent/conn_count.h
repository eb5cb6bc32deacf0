// Counts a service's established client connections from the kernel (sock_diag over
// netlink, libnl-idiag): TCP sockets in ESTABLISHED whose local port is the service's.
#pragma once

#include <string>

namespace poolkeeper {

// Returns the count, or -1 with *error set.
int count_established(int port, std::string* error);

}  // namespace poolkeeper
