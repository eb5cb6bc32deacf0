#include "agent/base/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace poolkeeper {

bool parse_address(const std::string& s, std::string* host, int* port, bool allow_port_zero) {
  std::string h, p;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    h = s.substr(1, close - 1);
    p = s.substr(close + 2);
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string::npos || s.find(':') != colon) return false;
    h = s.substr(0, colon);
    p = s.substr(colon + 1);
  }
  if (h.empty() || p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos)
    return false;
  if (p.size() > 1 && p[0] == '0') return false;  // "00000", "0873": not a port anyone means
  if (!is_numeric_host(h)) return false;
  int v = std::stoi(p);
  if (v < (allow_port_zero ? 0 : 1) || v > 65535) return false;
  *host = h;
  *port = v;
  return true;
}

bool is_numeric_host(const std::string& host) {
  if (host == "localhost") return true;
  in6_addr buf;
  return ::inet_pton(AF_INET, host.c_str(), &buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), &buf) == 1;
}

bool is_clean_url(const std::string& url) {
  if (url.empty()) return false;
  for (char c : url)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
  return true;
}

int local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (fd < 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return -1;
}

int listen_tcp(const std::string& address, int backlog, int* bound_port) {
  std::string host;
  int port = 0;
  if (!parse_address(address, &host, &port, true))
    throw std::runtime_error("cannot listen on " + address + ": not ADDRESS:PORT");
  if (host == "localhost") host = "127.0.0.1";
  sockaddr_storage ss{};
  socklen_t len;
  int family;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    family = AF_INET;
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v4;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    family = AF_INET6;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v6;
  } else {
    throw std::runtime_error("cannot listen on " + address + ": not a numeric address");
  }
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("cannot listen on " + address + ": " + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, backlog) != 0) {
    int e = errno;
    ::close(fd);
    throw std::runtime_error("cannot listen on " + address + ": " + std::strerror(e));
  }
  *bound_port = local_port(fd);
  return fd;
}

TcpConn::~TcpConn() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {
// Binds fd to a free port in 512..1023, starting at a random one; false when none is free.
bool bind_reserved(int fd, int family) {
  int start = 512 + static_cast<int>(real_clock().now().time_since_epoch().count() % 512);
  for (int i = 0; i < 512; ++i) {
    uint16_t port = static_cast<uint16_t>(512 + (start - 512 + i) % 512);
    sockaddr_storage ss{};
    socklen_t len;
    if (family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_port = htons(port);
      len = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(port);
      len = sizeof *a;
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) return true;
    if (errno != EADDRINUSE) return false;
  }
  return false;
}
}  // namespace

std::optional<Result> TcpConn::connect(const std::string& host_in, int port, Deadline deadline,
                                       bool reserved_port) {
  std::string host = host_in == "localhost" ? "127.0.0.1" : host_in;
  sockaddr_storage ss{};
  socklen_t len;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  int family;
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    family = v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v4;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    family = v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v6;
  } else {
    return Result::fail(Outcome::kFailed, "not a numeric address: " + host);
  }
  fd_ = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return Result::fail(Outcome::kNetworkError, std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (reserved_port) bind_reserved(fd_, family);  // refused (not root, no CAP_NET_BIND_SERVICE): any port
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    int e = errno;
    return Result::fail(Outcome::kNetworkError, e == ECONNREFUSED ? "connection refused" : std::strerror(e));
  }
  pollfd p{fd_, POLLOUT, 0};
  int ms = poll_ms(deadline);
  int r = ms > 0 ? ::poll(&p, 1, ms) : 0;
  if (r <= 0) return Result::fail(Outcome::kTimeout, "timed out connecting");
  int err = 0;
  socklen_t el = sizeof err;
  ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &el);
  if (err != 0)
    return Result::fail(Outcome::kNetworkError, err == ECONNREFUSED ? "connection refused" : std::strerror(err));
  return std::nullopt;
}

std::optional<Result> TcpConn::write_all(const std::string& bytes, Deadline deadline) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR)
      return Result::fail(Outcome::kNetworkError, errno == EPIPE || errno == ECONNRESET
                                                      ? "connection reset"
                                                      : std::strerror(errno));
    pollfd p{fd_, POLLOUT, 0};
    int ms = poll_ms(deadline);
    if (ms <= 0 || ::poll(&p, 1, ms) <= 0) return Result::fail(Outcome::kTimeout, "timed out");
  }
  return std::nullopt;
}

bool TcpConn::read_some(std::string* out, size_t max, Deadline deadline, bool* timeout,
                        std::string* error) {
  *timeout = false;
  for (;;) {
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, std::min(max, sizeof buf), 0);
    if (n > 0) {
      out->append(buf, static_cast<size_t>(n));
      return true;
    }
    if (n == 0) return false;
    if (errno != EAGAIN && errno != EINTR) {
      *error = errno == ECONNRESET ? "connection reset" : std::strerror(errno);
      return false;
    }
    pollfd p{fd_, POLLIN, 0};
    int ms = poll_ms(deadline);
    if (ms <= 0 || ::poll(&p, 1, ms) == 0) {
      *timeout = true;
      return false;
    }
  }
}

}  // namespace poolkeeper
