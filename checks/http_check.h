// kind = "http": one request with libcurl. Passes when the status is in
// `expect_status` (default [200]) and the body contains `expect_body` if set. TLS is
// verified unless `tls_verify = false`; redirects are not followed unless
// `follow_redirects = true` (PyBal's ProxyFetch does not follow them either).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checks/check.h"

namespace poolkeeper {

struct HttpCheckOptions {
  std::string url;
  std::string host;  // Host header; empty: from the URL
  std::vector<long> expect_status{200};
  std::optional<std::string> expect_body;
  bool tls_verify = true;
  bool follow_redirects = false;
};

class HttpCheck final : public Check {
 public:
  explicit HttpCheck(HttpCheckOptions o);
  ~HttpCheck() override;
  Result run(Deadline deadline, const Clock& clock) override;
  // The same request as a transfer on the loop: no thread waits for the server.
  void start(ProbeLoop& loop, Deadline deadline, ProbeDone done) override;
  std::string target() const override { return "GET " + o_.url; }
  std::string health_host() const override { return o_.host; }

 private:
  struct Request;
  // Sets up the handle for one request; false when it cannot (the result is in *r).
  bool prepare(Request& req, Deadline deadline, Result* r);
  Result evaluate(Request& req, int curl_code);

  HttpCheckOptions o_;
  void* curl_ = nullptr;  // CURL* of blocking runs (poolctl), kept for keep-alive
  void* headers_ = nullptr;  // curl_slist*: Host (if set) and User-Agent
};

std::unique_ptr<Check> make_http_check(TableReader& reader);
// A web server: the load balancer watches it through its health location (kHttp).
CheckTraits http_check_traits();

}  // namespace poolkeeper
