// Fuzzes the admin socket's request parser (one line of JSON from any local user):
// it never throws, an accepted request is one the agent can act on, and the error
// line it answers with is always one line of valid JSON.
#include <nlohmann/json.hpp>

#include "agent/admin/admin_protocol.h"
#include "tests/fuzz/fuzz_check.h"

using namespace poolkeeper;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string line(reinterpret_cast<const char*>(data), size);
  std::string error;
  auto req = parse_admin_request(line, &error);
  if (!req) {
    FUZZ_ASSERT(!error.empty());
    std::string reply = admin_error(error);
    FUZZ_ASSERT(!reply.empty() && reply.back() == '\n' && reply.find('\n') == reply.size() - 1);
    auto j = nlohmann::json::parse(reply, nullptr, false);
    FUZZ_ASSERT(!j.is_discarded() && j["ok"] == false && j["error"].is_string());
    return 0;
  }
  FUZZ_ASSERT(line.size() <= kMaxAdminRequest);
  const std::string c = admin_cmd_name(req->cmd);
  FUZZ_ASSERT(c == "status" || c == "ispooled" || c == "pool" || c == "depool" || c == "drain");
  FUZZ_ASSERT(c != "ispooled" || req->services.size() == 1);
  FUZZ_ASSERT(!(req->for_seconds && req->until_boot));
  FUZZ_ASSERT(!req->for_seconds || (*req->for_seconds > 0 && *req->for_seconds <= 366LL * 86400));
  FUZZ_ASSERT(req->reason.size() <= 200 && req->reason.find('\n') == std::string::npos);
  for (const auto& s : req->services) FUZZ_ASSERT(!s.empty() && s.size() <= 64);
  return 0;
}
