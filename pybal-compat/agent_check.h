// HAProxy's agent-check protocol: HAProxy connects to agent-port, may send a line
// (agent-send "nfs\n"), and reads one line of words. We answer from the agent's
// current state: "up ready 100%" when pooled, "drain" when drained, "maint #<reason>"
// for an operator's depool, "down #<reason>" when unhealthy, starting or stopping.
// The reply is a pure function (fuzzed); the responder never blocks the agent and
// gives any client at most 100 ms to say what it wants.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/base/listener.h"

namespace poolkeeper {

struct AgentCheckService {
  std::string name;
  std::string effective;  // pooled | drained | not_pooled
  std::string intent;     // pooled | depooled | drained | inactive
  std::string reason;
};

// The service a request names ("" for none/unusable input: the whole host).
std::string agent_check_service(std::string_view request);
// The line to send (with "\n") for `service` ("" = the whole host: up only if all are).
std::string agent_check_reply(const std::vector<AgentCheckService>& services, const std::string& service);

class AgentCheckResponder {
 public:
  using Source = std::function<std::vector<AgentCheckService>()>;
  AgentCheckResponder(std::string listen, Source source);
  ~AgentCheckResponder();
  void start();  // throws std::runtime_error naming the address
  void stop();
  int port() const { return port_; }

 private:
  void serve(int fd);
  std::string listen_;
  Source source_;
  int port_ = 0;
  Listener listener_;
};

}  // namespace poolkeeper
