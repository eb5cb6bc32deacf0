// Fuzzes the HAProxy agent-check responder's pure parts: whatever a client sends, the
// service it names is empty, a plain name, or the "unknown" marker, and the reply is
// exactly one printable line of agent-check words.
#include <fuzzer/FuzzedDataProvider.h>

#include "pybal-compat/agent_check.h"
#include "tests/fuzz/fuzz_check.h"

using namespace poolkeeper;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::vector<AgentCheckService> services;
  size_t n = in.ConsumeIntegralInRange<size_t>(0, 4);
  static const char* kEffective[] = {"pooled", "drained", "not_pooled", "bogus"};
  static const char* kIntent[] = {"pooled", "depooled", "drained", "inactive"};
  for (size_t i = 0; i < n; ++i) {
    AgentCheckService s;
    // Names come from a validated config: letters, digits, - _ .
    static const char* kNames[] = {"nfs", "http", "rsync", "a-b_c.d"};
    s.name = kNames[in.ConsumeIntegralInRange<int>(0, 3)];
    s.effective = kEffective[in.ConsumeIntegralInRange<int>(0, 3)];
    s.intent = kIntent[in.ConsumeIntegralInRange<int>(0, 3)];
    s.reason = in.ConsumeRandomLengthString(300);
    services.push_back(s);
  }
  std::string request = in.ConsumeRemainingBytesAsString();
  std::string service = agent_check_service(request);
  if (service != "\x01") {
    FUZZ_ASSERT(service.size() <= 64);
    for (char c : service) FUZZ_ASSERT(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
  }
  std::string reply = agent_check_reply(services, service);
  FUZZ_ASSERT(!reply.empty() && reply.back() == '\n');
  FUZZ_ASSERT(reply.find('\n') == reply.size() - 1);
  for (size_t i = 0; i + 1 < reply.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(reply[i]);
    FUZZ_ASSERT(c >= ' ' && c < 0x7f);
  }
  std::string first = reply.substr(0, reply.find_first_of(" \n"));
  FUZZ_ASSERT(first == "up" || first == "drain" || first == "maint" || first == "down");
  // "up" for the whole host only when every service is pooled.
  if (service.empty() && first == "up")
    for (const auto& s : services) FUZZ_ASSERT(s.effective == "pooled");
  return 0;
}
