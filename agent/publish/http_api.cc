#include "agent/publish/http_api.h"

#include "agent/publish/status_page.h"
#include "agent/base/utf8.h"

namespace poolkeeper {

namespace {

// "pooled", "pooled (kept by floor: …)" — the status code stays 200, which is all
// PyBal's ProxyFetch reads, but a person reading the body sees the floor at work —
// or "not pooled: why".
std::string service_line(const ServiceView& s) {
  std::string reason = s.effective.reason;
  for (char& c : reason)
    if (c == '\n' || c == '\r') c = ' ';
  if (s.effective.state == Effective::kPooled) return reason.empty() ? "pooled\n" : "pooled (" + reason + ")\n";
  return "not pooled: " + (reason.empty() ? std::string(effective_name(s.effective.state)) : reason) + "\n";
}

}  // namespace

HttpReply http_refusal(int status, const std::string& why) {
  HttpReply r;
  r.status = status;
  r.body = why + "\n";
  r.route = "other";
  r.headers.push_back({"Cache-Control", "no-store"});
  return r;
}

HttpReply handle_http(std::string_view method, std::string_view path, const Snapshot& snapshot,
                      const std::function<std::string()>& metrics_text) {
  for (char c : path)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return http_refusal(400, "bad request: control character in the path");
  HttpReply r;
  enum { kHealthOne, kHealthAll, kStatus, kMetrics, kEvents, kPage, kNone } route = kNone;
  const ServiceView* svc = nullptr;
  if (path.rfind("/health/", 0) == 0) {
    svc = snapshot.find_service(std::string(path.substr(8)));
    if (svc) {
      route = kHealthOne;
      r.route = "/health/" + svc->name;
    }
  } else if (path == "/health") {
    route = kHealthAll;
  } else if (path == "/status") {
    route = kStatus;
  } else if (path == "/metrics") {
    route = kMetrics;
  } else if (path == "/events") {
    route = kEvents;
  } else if (path == "/") {
    route = kPage;
  }
  if (route != kHealthOne) r.route = route == kNone ? "other" : std::string(path);
  r.headers.push_back({"Cache-Control", "no-store"});

  if (route == kNone) {
    r.status = 404;
    r.body = "not found\n";
    return r;
  }
  if (method != "GET" && method != "HEAD") {
    r.status = 405;
    r.body = "method not allowed\n";
    r.headers.push_back({"Allow", "GET, HEAD"});
    return r;
  }
  switch (route) {
    case kHealthOne:
      r.body = service_line(*svc);
      r.status = svc->effective.state == Effective::kPooled ? 200 : 503;
      break;
    case kHealthAll: {
      bool all = true;
      for (const auto& s : snapshot.services) {
        r.body += s.name + " " + service_line(s);
        all = all && s.effective.state == Effective::kPooled;
      }
      r.status = all ? 200 : 503;
      break;
    }
    case kStatus:
      r.content_type = "application/json";
      r.body = json_text(status_json(snapshot), 2) + "\n";
      break;
    case kEvents:
      r.content_type = "application/json";
      r.body = json_text(events_json(snapshot), 2) + "\n";
      break;
    case kPage:  // rendered once per snapshot
      r.content_type = "text/html; charset=utf-8";
      r.body = *cached_status_page(snapshot);
      // The page needs only its own inline style and data: nothing else may load.
      r.headers.push_back({"Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"});
      r.headers.push_back({"X-Content-Type-Options", "nosniff"});
      break;
    case kMetrics:
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = metrics_text();
      break;
    case kNone:
      break;
  }
  return r;
}

}  // namespace poolkeeper
