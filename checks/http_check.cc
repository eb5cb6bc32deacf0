#include "checks/http_check.h"

#include <curl/curl.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "agent/base/utf8.h"
#include "agent/base/net.h"

namespace poolkeeper {

namespace {

constexpr size_t kMaxBody = 64 * 1024;  // what we look at for expect_body

struct Body {
  std::string data;
  bool truncated = false;
};

// libcurl's C code calls this: nothing may throw out of it (a failed allocation
// aborts the transfer instead).
size_t on_body(char* p, size_t size, size_t n, void* out) noexcept {
  auto* b = static_cast<Body*>(out);
  size_t len = size * n;
  try {
    if (b->data.size() < kMaxBody) b->data.append(p, std::min(len, kMaxBody - b->data.size()));
    else b->truncated = true;
  } catch (...) {
    return 0;
  }
  return len;  // keep reading: a short read would look like a network error
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string curl_reason(CURL* c, CURLcode rc, const char* errbuf) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT: {
      long os_errno = 0;
      curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
      if (os_errno == ECONNREFUSED) return "connection refused";
      return std::string("cannot connect: ") + std::strerror(static_cast<int>(os_errno));
    }
    case CURLE_OPERATION_TIMEDOUT: return "timed out";
    case CURLE_GOT_NOTHING: return "empty reply";
    case CURLE_RECV_ERROR: return "connection reset";
    case CURLE_SSL_CONNECT_ERROR: return "TLS handshake failed";
    case CURLE_PEER_FAILED_VERIFICATION: return "TLS certificate not trusted";
    case CURLE_COULDNT_RESOLVE_HOST: return "cannot resolve host";
    case CURLE_WEIRD_SERVER_REPLY: return "not an HTTP reply";
    default: return errbuf[0] ? valid_utf8(errbuf, 200) : curl_easy_strerror(rc);  // may quote the server
  }
}

}  // namespace

HttpCheck::HttpCheck(HttpCheckOptions o) : o_(std::move(o)) { global_init(); }

HttpCheck::~HttpCheck() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Result HttpCheck::run(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
  if (left.count() <= 0) return Result::fail(Outcome::kTimeout, "timed out");
  if (!curl_) curl_ = curl_easy_init();
  CURL* c = static_cast<CURL*>(curl_);
  if (!c) return Result::fail(Outcome::kFailed, "cannot create a curl handle");
  curl_easy_reset(c);
  Body body;
  char errbuf[CURL_ERROR_SIZE] = {0};
  struct curl_slist* headers = nullptr;
  if (!o_.host.empty()) headers = curl_slist_append(headers, ("Host: " + o_.host).c_str());
  headers = curl_slist_append(headers, "User-Agent: poolkeeper/" POOLKEEPER_VERSION);
  curl_easy_setopt(c, CURLOPT_URL, o_.url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(left.count()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, o_.follow_redirects ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, o_.tls_verify ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, o_.tls_verify ? 2L : 0L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_PROXY, "");  // never through a proxy from the environment
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    return Result::fail(rc == CURLE_OPERATION_TIMEDOUT ? Outcome::kTimeout : Outcome::kNetworkError,
                        curl_reason(c, rc, errbuf));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  Result r = Result::pass("status " + std::to_string(status));
  r.details["status"] = status;
  r.details["body_bytes"] = body.data.size();
  bool status_ok = false;
  for (long s : o_.expect_status) status_ok |= (s == status);
  if (!status_ok) {
    r.outcome = Outcome::kFailed;
    std::string loc;
    if (status >= 300 && status < 400) {
      char* where = nullptr;
      curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &where);
      if (where) {  // the server's bytes: may be anything
        std::string to = valid_utf8(where);
        loc = " (redirect to " + (to.size() > 200 ? cut_utf8(to, 197) + "..." : to) + ")";
      }
    }
    r.reason = "status " + std::to_string(status) + loc;
    return r;
  }
  if (o_.expect_body && body.data.find(*o_.expect_body) == std::string::npos) {
    r.outcome = Outcome::kFailed;
    r.reason = "body does not contain \"" + *o_.expect_body + "\"";
  }
  return r;
}

std::unique_ptr<Check> make_http_check(TableReader& reader) {
  HttpCheckOptions o;
  o.url = reader.require_string("url");
  if (o.url.rfind("http://", 0) != 0 && o.url.rfind("https://", 0) != 0)
    reader.fail("url", "must start with http:// or https://");
  if (!is_clean_url(o.url)) reader.fail("url", "must not contain spaces or control characters (encode them: %20)");
  o.host = reader.string("host").value_or("");
  for (char c : o.host)
    if (static_cast<unsigned char>(c) < ' ' || c == 0x7f) reader.fail("host", "must not contain control characters");
  if (auto st = reader.integers("expect_status", 100, 599)) {
    if (st->empty()) reader.fail("expect_status", "must list at least one status");
    o.expect_status.assign(st->begin(), st->end());
  }
  o.expect_body = reader.string("expect_body");
  o.tls_verify = reader.boolean("tls_verify").value_or(true);
  o.follow_redirects = reader.boolean("follow_redirects").value_or(false);
  return std::make_unique<HttpCheck>(std::move(o));
}

}  // namespace poolkeeper
