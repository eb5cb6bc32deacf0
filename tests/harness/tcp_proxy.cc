#include "tests/harness/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/harness/harness.h"

namespace pk_test {

namespace {
// No call in the relay loop may block for long: stop() must always be quick.
void bound_blocking(int fd) {
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  // send() and connect()
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}
}  // namespace

TcpProxy::TcpProxy(int target_port) : target_(target_port), port_(free_port()) {}

TcpProxy::~TcpProxy() { stop(); }

void TcpProxy::start() {
  if (thread_.joinable()) return;
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port_));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 64) != 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    throw std::runtime_error("tcp proxy: cannot listen on 127.0.0.1:" + std::to_string(port_));
  }
  if (::pipe2(wake_, O_CLOEXEC) != 0) throw std::runtime_error("tcp proxy: pipe");
  thread_ = std::thread([this] { loop(); });
}

void TcpProxy::stop() {
  if (!thread_.joinable()) return;
  char c = 'x';
  (void)!::write(wake_[1], &c, 1);
  thread_.join();
  ::close(wake_[0]);
  ::close(wake_[1]);
  ::close(listen_fd_);
  listen_fd_ = -1;
}

// One thread relays everything: poll over the listener, the wake pipe and both ends of
// every connection; a connection pair is closed when either end closes.
void TcpProxy::loop() {
  struct Pair {
    int a, b;
  };
  std::vector<Pair> pairs;
  for (;;) {
    std::vector<pollfd> fds = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    for (const auto& p : pairs) {
      fds.push_back({p.a, POLLIN, 0});
      fds.push_back({p.b, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), 1000) < 0) continue;
    if (fds[0].revents) break;
    if (fds[1].revents & POLLIN) {
      int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        bound_blocking(c);
        int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bound_blocking(s);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(target_));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
          pairs.push_back({c, s});
        } else {
          ::close(s);
          ::close(c);
        }
      }
    }
    std::vector<Pair> keep;
    for (size_t i = 0; i < pairs.size(); ++i) {
      bool dead = false;
      for (int side = 0; side < 2 && !dead; ++side) {
        const pollfd& f = fds[2 + 2 * i + static_cast<size_t>(side)];
        if (!f.revents) continue;
        int from = side == 0 ? pairs[i].a : pairs[i].b, to = side == 0 ? pairs[i].b : pairs[i].a;
        char buf[65536];
        ssize_t n = ::recv(from, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) {
          dead = true;
          break;
        }
        for (ssize_t off = 0; off < n;) {  // blocking write: loopback buffers are large
          ssize_t w = ::send(to, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
          if (w <= 0) {
            dead = true;
            break;
          }
          off += w;
        }
      }
      if (dead) {
        ::close(pairs[i].a);
        ::close(pairs[i].b);
      } else {
        keep.push_back(pairs[i]);
      }
    }
    pairs.swap(keep);
  }
  for (const auto& p : pairs) {
    ::close(p.a);
    ::close(p.b);
  }
}

}  // namespace pk_test
