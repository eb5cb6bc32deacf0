#include "pybal-compat/agent_check.h"

#include "agent/base/clock.h"
#include "agent/base/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

namespace poolkeeper {

namespace {

std::string clean_reason(const std::string& r) {
  std::string out;
  for (char c : r) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (u >= ' ' && u < 0x7f) ? c : ' ';
    if (out.size() >= 120) break;
  }
  return out.empty() ? "no reason" : out;
}

std::string reply_for(const AgentCheckService& s) {
  if (s.effective == "pooled") return "up ready 100%\n";
  if (s.effective == "drained") return "drain\n";
  if (s.intent == "depooled" || s.intent == "inactive") return "maint #" + clean_reason(s.reason) + "\n";
  return "down #" + clean_reason(s.reason) + "\n";
}

}  // namespace

std::string agent_check_service(std::string_view request) {
  size_t end = request.find_first_of("\r\n");
  std::string_view line = request.substr(0, end);
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
  if (line.size() > 64) return "\x01";  // not a service name: answer as unknown
  for (char c : line)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return "\x01";
  return std::string(line);
}

std::string agent_check_reply(const std::vector<AgentCheckService>& services, const std::string& service) {
  if (service.empty()) {
    if (services.empty()) return "down #no services\n";
    for (const auto& s : services)
      if (s.effective != "pooled") {
        std::string r = reply_for(s);
        // Name the service that holds the host back.
        size_t hash = r.find('#');
        if (hash != std::string::npos) r.insert(hash + 1, s.name + ": ");
        return r;
      }
    return "up ready 100%\n";
  }
  for (const auto& s : services)
    if (s.name == service) return reply_for(s);
  return "down #unknown service\n";
}

AgentCheckResponder::AgentCheckResponder(std::string listen, Source source)
    : listen_(std::move(listen)), source_(std::move(source)) {}

AgentCheckResponder::~AgentCheckResponder() { stop(); }

void AgentCheckResponder::start() {
  int fd = -1;
  try {
    fd = listen_tcp(listen_, 128, &port_);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string(e.what()) + " (haproxy_agent)");
  }
  listener_.start(fd, [this](int c) {
    serve(c);
    ::close(c);
  });
}

void AgentCheckResponder::stop() { listener_.stop(); }

void AgentCheckResponder::serve(int fd) {
  // agent-send arrives right after the connect; without it HAProxy sends nothing.
  std::string request;
  auto end = real_clock().now() + std::chrono::milliseconds(100);
  while (request.find('\n') == std::string::npos && request.size() < 256) {
    int left = ms_left(end);
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) break;
    char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    request.append(buf, static_cast<size_t>(n));
  }
  std::string reply = agent_check_reply(source_(), agent_check_service(request));
  ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace poolkeeper
