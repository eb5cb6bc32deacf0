#include "checks/http_check.h"

#include "agent/base/curl.h"
#include "agent/base/net.h"
#include "agent/base/utf8.h"

namespace poolkeeper {

namespace {
constexpr size_t kMaxBody = 64 * 1024;  // what we look at for expect_body
}  // namespace

// One request's buffers; libcurl points into them until it ends. `own` is the handle
// of a probe on the loop, taken from the loop for this probe and given back when it
// ends (the loop keeps the connections for reuse and a few spare handles, so an idle
// check holds no handle or buffer).
struct HttpCheck::Request {
  CurlTransfer transfer{kMaxBody};
  ProbeLoop* loop = nullptr;
  CURL* own = nullptr;
  CURL* handle = nullptr;  // `own` or the check's handle for blocking runs
  Request() = default;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  ~Request() {
    if (own) loop->release_easy(own);
  }
};

HttpCheck::HttpCheck(HttpCheckOptions o) : o_(std::move(o)) {
  curl_global_setup();
  // The same for every request: made once (libcurl reads it during each transfer; a
  // Check never runs two probes at once).
  curl_slist* h = nullptr;
  if (!o_.host.empty()) h = curl_slist_append(h, ("Host: " + o_.host).c_str());
  if (curl_slist* with_agent = curl_slist_append(h, "User-Agent: poolkeeper/" POOLKEEPER_VERSION)) h = with_agent;
  headers_ = h;
}

HttpCheck::~HttpCheck() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
  curl_slist_free_all(static_cast<curl_slist*>(headers_));
}

bool HttpCheck::prepare(Request& req, Deadline deadline, Result* r) {
  CURL* c = req.own;
  if (!c) {
    if (!curl_) curl_ = curl_easy_init();
    c = static_cast<CURL*>(curl_);
  }
  req.handle = c;
  if (!c) {
    *r = Result::fail(Outcome::kFailed, "cannot create a curl handle");
    return false;
  }
  if (!req.transfer.setup(c, o_.url, deadline)) {
    *r = Result::fail(Outcome::kTimeout, "timed out");
    return false;
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(headers_));
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, o_.follow_redirects ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, o_.tls_verify ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, o_.tls_verify ? 2L : 0L);
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 1024L);  // libcurl's least: kept with each pooled handle
  return true;
}

Result HttpCheck::run(Deadline deadline, const Clock& /*clock*/) {
  Request req;
  Result r;
  if (!prepare(req, deadline, &r)) return r;
  CURLcode rc = curl_easy_perform(req.handle);
  return evaluate(req, rc);
}

void HttpCheck::start(ProbeLoop& loop, Deadline deadline, ProbeDone done) {
  auto req = std::make_shared<Request>();
  req->loop = &loop;
  req->own = static_cast<CURL*>(loop.take_easy());
  if (!req->own) return done(Result::fail(Outcome::kFailed, "cannot create a curl handle"));
  Result r;
  if (!prepare(*req, deadline, &r)) return done(std::move(r));
  loop.add_transfer(req->own, deadline, [this, req, done = std::move(done)](int rc) {
    done(evaluate(*req, rc));
  });
}

Result HttpCheck::evaluate(Request& req, int curl_code) {
  CURL* c = req.handle;
  auto rc = static_cast<CURLcode>(curl_code);
  if (rc != CURLE_OK) {
    return Result::fail(rc == CURLE_OPERATION_TIMEDOUT ? Outcome::kTimeout : Outcome::kNetworkError,
                        req.transfer.error_text(c, rc));
  }
  const std::string& body = req.transfer.body();
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  Result r = Result::pass("status " + std::to_string(status));
  r.details["status"] = status;
  r.details["body_bytes"] = body.size();
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
  if (o_.expect_body && body.find(*o_.expect_body) == std::string::npos) {
    r.outcome = Outcome::kFailed;
    r.reason = "body does not contain \"" + *o_.expect_body + "\"";
  }
  return r;
}

CheckTraits http_check_traits() {
  CheckTraits t;
  t.balancing = Balancing::kHttp;
  return t;
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
