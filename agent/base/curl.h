// The one place libcurl easy handles are set up: the http check, the peers poller and
// the etcd client all go through CurlTransfer, so every request the agent makes has a
// total timeout from its deadline, no signals (libcurl runs on our threads), no proxy
// from the environment, http/https only, a capped body and an error text that is valid
// UTF-8 and names the cause in a few words.
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <cstddef>
#include <string>

#include "agent/base/clock.h"

namespace poolkeeper {

// curl_global_init, once per process (safe to call from any thread, any number of times).
void curl_global_setup();

// One request's buffers: the body (up to a cap) and libcurl's error text. libcurl keeps
// pointers into it while the transfer runs, so it is neither copied nor moved: keep it
// alive (and in place) until the transfer has ended or its handle was reset.
class CurlTransfer {
 public:
  explicit CurlTransfer(size_t body_cap) : cap_(body_cap) { errbuf_[0] = '\0'; }
  CurlTransfer(const CurlTransfer&) = delete;
  CurlTransfer& operator=(const CurlTransfer&) = delete;

  // Resets `c` and applies the common options: URL, total timeout = what is left until
  // `deadline` (at least 1 ms; a time on real_clock(), as libcurl measures real time),
  // connect timeout (if nonzero and shorter), NOSIGNAL, no proxy, http/https only
  // (redirects too), the error buffer and the body callback.
  // Returns false, setting nothing, when the deadline has already passed.
  bool setup(CURL* c, const std::string& url, SteadyTime deadline,
             std::chrono::milliseconds connect_timeout = std::chrono::milliseconds(0));

  // The body as received, at most `body_cap` bytes (the rest is read and dropped, so a
  // big body does not look like a network error).
  const std::string& body() const { return body_; }
  bool truncated() const { return truncated_; }

  // A short, valid UTF-8 reason for a failed transfer ("connection refused", "timed
  // out", "empty reply", or libcurl's own text, which may quote the server).
  std::string error_text(CURL* c, CURLcode rc) const;

 private:
  static size_t on_body(char* p, size_t size, size_t n, void* self) noexcept;
  size_t cap_;
  std::string body_;
  bool truncated_ = false;
  char errbuf_[CURL_ERROR_SIZE];
};

// The same reasons, for callers that only have the code, the handle and the error
// buffer libcurl filled.
std::string curl_error_text(CURL* c, CURLcode rc, const char* errbuf);

}  // namespace poolkeeper
