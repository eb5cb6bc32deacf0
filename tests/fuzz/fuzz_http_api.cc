// Fuzzes the HTTP endpoint's routing (agent/publish/http_api.h): the input is a raw request
// ("METHOD PATH VERSION", header lines, body) whose method and path are routed against
// a fixed snapshot. Every request gets one of the documented answers, /health/<svc>
// answers 200 exactly when the service is pooled, the metrics label stays bounded,
// and JSON answers parse.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "agent/publish/http_api.h"
#include "tests/harness/snapshot_builders.h"
#include "tests/fuzz/fuzz_check.h"

using namespace poolkeeper;

namespace {

// Reason texts in the snapshot come from the input too (cut to ASCII: only strings
// already made valid where they entered the agent ever reach a snapshot).
Snapshot sample(std::string_view extra) {
  std::string reason;
  for (char c : extra.substr(0, 200)) reason += static_cast<unsigned char>(c) < 0x80 ? c : '?';
  Snapshot s = pk_test::sample_snapshot(reason);
  ServiceView rsync;  // a third service, drained
  rsync.name = "rsync";
  rsync.effective = {Effective::kDrained, reason};
  s.services.push_back(rsync);
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t eol = in.find('\n');
  std::string_view line = in.substr(0, eol);
  std::string_view rest = eol == std::string_view::npos ? std::string_view{} : in.substr(eol + 1);
  size_t sp1 = line.find(' ');
  std::string_view method = line.substr(0, sp1);
  std::string_view path;
  if (sp1 != std::string_view::npos) {
    path = line.substr(sp1 + 1);
    path = path.substr(0, path.find(' '));
  }
  Snapshot s = sample(rest);
  bool metrics_called = false;
  HttpReply r = handle_http(method, path, s, [&] {
    metrics_called = true;
    return std::string("# metrics\n");
  });

  bool known = path == "/" || path == "/health" || path == "/status" || path == "/metrics" || path == "/events" ||
               path == "/health/nfs" || path == "/health/http" || path == "/health/rsync";
  bool readable = method == "GET" || method == "HEAD";
  // A control character anywhere in the path (a raw NUL or one decoded from %00) is
  // refused before routing: it must never answer for a shorter path.
  bool control = std::any_of(path.begin(), path.end(),
                             [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
  if (control) {
    FUZZ_ASSERT(r.status == 400 && r.route == "other" && !metrics_called);
    return 0;
  }
  FUZZ_ASSERT(r.status == 200 || r.status == 404 || r.status == 405 || r.status == 503);
  FUZZ_ASSERT(!r.body.empty());
  FUZZ_ASSERT((r.status == 404) == !known);
  FUZZ_ASSERT((r.status == 405) == (known && !readable));
  FUZZ_ASSERT(metrics_called == (known && readable && path == "/metrics"));
  FUZZ_ASSERT(r.route == "other" || r.route == "/" || r.route == "/health" || r.route == "/status" || r.route == "/metrics" ||
              r.route == "/events" || r.route == "/health/nfs" || r.route == "/health/http" ||
              r.route == "/health/rsync");
  FUZZ_ASSERT((r.route == "other") == !known);
  for (const auto& [k, v] : r.headers) {
    FUZZ_ASSERT(k.find_first_of("\r\n:") == std::string::npos);
    FUZZ_ASSERT(v.find_first_of("\r\n") == std::string::npos);
  }
  if (known && readable) {
    if (path == "/health/nfs") FUZZ_ASSERT(r.status == 200 && r.body == "pooled\n");
    if (path == "/health/http" || path == "/health/rsync") {
      FUZZ_ASSERT(r.status == 503 && r.body.rfind("not pooled: ", 0) == 0);
      FUZZ_ASSERT(r.body.find('\n') == r.body.size() - 1);  // one line, whatever the reason holds
    }
    if (path == "/health") FUZZ_ASSERT(r.status == 503);
    if (path == "/status" || path == "/events") {
      FUZZ_ASSERT(r.status == 200 && r.content_type == "application/json");
      FUZZ_ASSERT(!nlohmann::json::parse(r.body, nullptr, false).is_discarded());
    }
  }
  return 0;
}
