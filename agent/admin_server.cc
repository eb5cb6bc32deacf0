#include "agent/admin_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "agent/admin_protocol.h"
#include "agent/log.h"

namespace poolkeeper {

namespace {
constexpr int kMaxConnections = 16;
constexpr auto kRequestTimeout = std::chrono::seconds(2);

void send_all(int fd, const std::string& s) {
  size_t off = 0;
  auto end = std::chrono::steady_clock::now() + kRequestTimeout;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    pollfd p{fd, POLLOUT, 0};
    ::poll(&p, 1, static_cast<int>(left.count()));
  }
}
}  // namespace

AdminServer::AdminServer(std::string path, Handler handler)
    : path_(std::move(path)), handler_(std::move(handler)) {}

AdminServer::~AdminServer() { stop(); }

void AdminServer::start() {
  sockaddr_un addr{};
  if (path_.size() >= sizeof addr.sun_path)
    throw std::runtime_error("admin socket path too long: " + path_);
  // The directory (e.g. /run/poolkeeper) may not exist yet outside systemd.
  std::string dir = path_.substr(0, path_.rfind('/'));
  if (!dir.empty()) ::mkdir(dir.c_str(), 0755);
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("admin socket: " + std::string(std::strerror(errno)));
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
  ::unlink(path_.c_str());  // a stale socket from a previous run
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    int e = errno;
    ::close(listen_fd_);
    listen_fd_ = -1;
    throw std::runtime_error("cannot listen on admin socket " + path_ + ": " + std::strerror(e));
  }
  ::chmod(path_.c_str(), 0666);
  if (::pipe2(wake_, O_CLOEXEC) != 0) throw std::runtime_error("pipe: " + std::string(std::strerror(errno)));
  thread_ = std::thread([this] { accept_loop(); });
}

void AdminServer::stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  char c = 0;
  ssize_t ignored = ::write(wake_[1], &c, 1);
  (void)ignored;
  thread_.join();
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& t : workers_)
      if (t.joinable()) t.join();
    workers_.clear();
  }
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
  ::unlink(path_.c_str());
  listen_fd_ = -1;
}

void AdminServer::accept_loop() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(fds, 2, 1000) <= 0) continue;
    if (fds[1].revents) break;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;
    if (active_ >= kMaxConnections) {
      send_all(fd, admin_error("busy: too many admin connections"));
      ::close(fd);
      continue;
    }
    ++active_;
    std::lock_guard<std::mutex> lk(mu_);
    // Reap finished workers now and then so the list stays short.
    if (workers_.size() > 4 * kMaxConnections) {
      for (auto& t : workers_)
        if (t.joinable()) t.join();
      workers_.clear();
    }
    workers_.emplace_back([this, fd] {
      serve(fd);
      ::close(fd);
      --active_;
    });
  }
}

void AdminServer::serve(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    send_all(fd, admin_error("cannot read peer credentials"));
    return;
  }
  std::string line;
  auto end = std::chrono::steady_clock::now() + kRequestTimeout;
  for (;;) {
    size_t nl = line.find('\n');
    if (nl != std::string::npos) {
      line.resize(nl);
      break;
    }
    if (line.size() > kMaxAdminRequest) {
      send_all(fd, admin_error("request too large (limit 16 KiB)"));
      return;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0 || stopping_) {
      send_all(fd, admin_error("request incomplete after 2 s"));
      return;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 200))) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) {
      if (line.empty()) return;  // connected and left
      break;                     // a last line without newline is still a request
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return;
    }
    line.append(buf, static_cast<size_t>(n));
  }
  std::string reply;
  try {
    reply = handler_(line, PeerCred{cred.pid, cred.uid, cred.gid});
  } catch (const std::exception& e) {
    log_error("admin request failed", {{"error", e.what()}});
    reply = admin_error(std::string("internal error: ") + e.what());
  }
  send_all(fd, reply);
}

}  // namespace poolkeeper
