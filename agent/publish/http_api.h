// What the read-only HTTP endpoint answers, as a pure function of (method, path,
// snapshot): no I/O, so it is unit-tested and fuzzed directly. The server in
// http_server.h only moves bytes.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/model/snapshot.h"

namespace poolkeeper {

struct HttpReply {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string route;  // bounded label for metrics: "/health/nfs", "/status", "other"
};

// `metrics_text` is called only for /metrics. A path holding a control character
// (after percent-decoding: NUL, CR, LF, ...) gets 400: it never names a route.
HttpReply handle_http(std::string_view method, std::string_view path, const Snapshot& snapshot,
                      const std::function<std::string()>& metrics_text);

// A 4xx answer for a request refused before routing ("bad request: …").
HttpReply http_refusal(int status, const std::string& why);

}  // namespace poolkeeper
