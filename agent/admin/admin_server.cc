#include "agent/admin/admin_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "agent/admin/admin_protocol.h"
#include "agent/base/clock.h"
#include "agent/base/log.h"

namespace poolkeeper {

namespace {
constexpr auto kRequestTimeout = std::chrono::seconds(2);

void send_all(int fd, const std::string& s) {
  size_t off = 0;
  auto end = real_clock().now() + kRequestTimeout;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return;
    int left = ms_left(end);
    if (left <= 0) return;
    pollfd p{fd, POLLOUT, 0};
    ::poll(&p, 1, left);
  }
}
}  // namespace

AdminServer::AdminServer(std::string path, Handler handler, Privileged privileged)
    : path_(std::move(path)), handler_(std::move(handler)), privileged_(std::move(privileged)) {}

AdminServer::~AdminServer() { stop(); }

void AdminServer::start() {
  sockaddr_un addr{};
  if (path_.size() >= sizeof addr.sun_path)
    throw std::runtime_error("admin socket path too long: " + path_);
  // The directory (e.g. /run/poolkeeper) may not exist yet outside systemd.
  std::string dir = path_.substr(0, path_.rfind('/'));
  if (!dir.empty()) ::mkdir(dir.c_str(), 0755);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("admin socket: " + std::string(std::strerror(errno)));
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
  ::unlink(path_.c_str());  // a stale socket from a previous run
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
    int e = errno;
    ::close(fd);
    throw std::runtime_error("cannot listen on admin socket " + path_ + ": " + std::strerror(e));
  }
  ::chmod(path_.c_str(), 0666);
  listener_.start(fd, [this](int c) { on_connection(c); });
}

void AdminServer::stop() {
  if (!listener_.running()) return;
  stopping_ = true;
  listener_.stop();
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& t : workers_)
      if (t.joinable()) t.join();
    workers_.clear();
  }
  ::unlink(path_.c_str());
}

void AdminServer::on_connection(int fd) {
  ucred uc{};
  socklen_t len = sizeof uc;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0) {
    send_all(fd, admin_error("cannot read peer credentials"));
    ::close(fd);
    return;
  }
  PeerCred cred{uc.pid, uc.uid, uc.gid};
  bool reserved = false;
  if (!admit(cred, &reserved)) {
    send_all(fd, admin_error("busy: too many admin connections from uid " + std::to_string(cred.uid)));
    ::close(fd);
    return;
  }
  ++active_;
  std::lock_guard<std::mutex> lk(mu_);
  // Join the workers that have finished, so the list stays short (never waits).
  std::erase_if(workers_, [](Worker& w) {
    if (!w.done->load()) return false;
    w.join();
    return true;
  });
  try {
    auto done = std::make_shared<std::atomic<bool>>(false);
    workers_.reserve(workers_.size() + 1);  // push_back below cannot throw then
    workers_.push_back({std::thread([this, fd, cred, reserved, done] {
                          serve(fd, cred);
                          ::close(fd);
                          release(cred, reserved);
                          --active_;
                          *done = true;
                        }),
                        done});
  } catch (const std::exception& e) {  // no thread (resource limits): refuse, stay up
    send_all(fd, admin_error(std::string("busy: ") + e.what()));
    ::close(fd);
    release(cred, reserved);
    --active_;
  }
}

bool AdminServer::admit(const PeerCred& cred, bool* reserved) {
  {
    std::lock_guard<std::mutex> lk(slots_mu_);
    auto it = per_uid_.find(cred.uid);
    int held = it == per_uid_.end() ? 0 : it->second;
    if (cred.uid != 0 && held < kSlotsPerUser && shared_used_ < kSharedSlots) {
      ++per_uid_[cred.uid];
      ++shared_used_;
      *reserved = false;
      return true;
    }
    if (reserved_used_ >= kReservedSlots) return false;
  }
  // The open slots are full for this peer: root and the privileged use the reserved ones.
  bool privileged = cred.uid == 0;
  if (!privileged && privileged_) {
    try {
      privileged = privileged_(cred);
    } catch (const std::exception&) {
      privileged = false;
    }
  }
  if (!privileged) return false;
  std::lock_guard<std::mutex> lk(slots_mu_);
  if (reserved_used_ >= kReservedSlots) return false;
  ++reserved_used_;
  *reserved = true;
  return true;
}

void AdminServer::release(const PeerCred& cred, bool reserved) {
  std::lock_guard<std::mutex> lk(slots_mu_);
  if (reserved) {
    --reserved_used_;
    return;
  }
  --shared_used_;
  if (--per_uid_[cred.uid] <= 0) per_uid_.erase(cred.uid);
}

void AdminServer::serve(int fd, const PeerCred& cred) {
  std::string line;
  auto end = real_clock().now() + kRequestTimeout;
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
    int left = ms_left(end);
    if (left <= 0 || stopping_) {
      send_all(fd, admin_error("request incomplete after 2 s"));
      return;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, std::min(left, 200)) <= 0) continue;
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
    reply = handler_(line, cred);
  } catch (const std::exception& e) {
    log_error("admin request failed", {{"error", e.what()}});
    reply = admin_error(std::string("internal error: ") + e.what());
  }
  send_all(fd, reply);
}

}  // namespace poolkeeper
