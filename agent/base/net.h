// Small blocking-with-deadline TCP helpers for probes that speak their own protocol.
// Addresses are numeric (IPv4, IPv6) or "localhost": a probe never depends on DNS.
#pragma once

#include <string>

#include "agent/base/probe.h"

namespace poolkeeper {

// A connected socket, closed on destruction.
class TcpConn {
 public:
  TcpConn() = default;
  ~TcpConn();
  TcpConn(const TcpConn&) = delete;
  TcpConn& operator=(const TcpConn&) = delete;

  // On failure returns a Result describing it ("connection refused", "timed out connecting").
  // reserved_port: connect from a port below 1024 when allowed (root, or
  // CAP_NET_BIND_SERVICE), as NFS clients do for servers that insist (knfsd's default
  // `secure` export); otherwise from any port.
  std::optional<Result> connect(const std::string& host, int port, Deadline deadline,
                                bool reserved_port = false);
  std::optional<Result> write_all(const std::string& bytes, Deadline deadline);
  // Reads what is available (at most `max` bytes) into `out`; returns false at EOF,
  // and sets *timeout when the deadline passed first.
  bool read_some(std::string* out, size_t max, Deadline deadline, bool* timeout,
                 std::string* error);
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// "127.0.0.1:873", "[::1]:873" → host and port (port 0 only when allowed: "any free
// port" for listening). The host must be numeric or "localhost"; the port is decimal
// without leading zeros ("00000" is refused).
bool parse_address(const std::string& s, std::string* host, int* port, bool allow_port_zero = false);

// A numeric IPv4 or IPv6 address, or "localhost": what every address key accepts.
bool is_numeric_host(const std::string& host);

// A URL fit to hand to libcurl: no control characters (CR/LF would end the request
// line), no spaces, and not empty.
bool is_clean_url(const std::string& url);

// The local port of a bound socket (IPv4 or IPv6), or -1.
int local_port(int fd);

// A bound, listening TCP socket for "host:port" (numeric IPv4/IPv6 or "localhost");
// throws std::runtime_error("cannot listen on …: why"). *bound_port gets the port.
int listen_tcp(const std::string& address, int backlog, int* bound_port);

}  // namespace poolkeeper
