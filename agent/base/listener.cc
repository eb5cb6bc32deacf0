#include "agent/base/listener.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace poolkeeper {

Listener::~Listener() { stop(); }

void Listener::start(int listen_fd, OnAccept on_accept) {
  listen_fd_ = listen_fd;
  on_accept_ = std::move(on_accept);
  if (::pipe2(wake_, O_CLOEXEC) != 0) {
    int e = errno;
    ::close(listen_fd_);
    listen_fd_ = -1;
    throw std::runtime_error("pipe: " + std::string(std::strerror(e)));
  }
  thread_ = std::thread([this] { loop(); });
}

void Listener::stop() {
  if (!thread_.joinable()) return;
  char c = 0;
  ssize_t ignored = ::write(wake_[1], &c, 1);
  (void)ignored;
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
  listen_fd_ = -1;
  wake_[0] = wake_[1] = -1;
}

void Listener::loop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(fds, 2, 1000) <= 0) continue;
    if (fds[1].revents) break;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;
    on_accept_(fd);
  }
}

}  // namespace poolkeeper
