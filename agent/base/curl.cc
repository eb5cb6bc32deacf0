#include "agent/base/curl.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "agent/base/utf8.h"

namespace poolkeeper {

void curl_global_setup() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// libcurl's C code calls this: nothing may throw out of it (a failed allocation aborts
// the transfer instead).
size_t CurlTransfer::on_body(char* p, size_t size, size_t n, void* self) noexcept {
  auto* t = static_cast<CurlTransfer*>(self);
  size_t len = size * n;
  try {
    size_t room = t->cap_ > t->body_.size() ? t->cap_ - t->body_.size() : 0;
    if (len > room) t->truncated_ = true;
    t->body_.append(p, std::min(len, room));
  } catch (...) {
    return 0;
  }
  return len;  // keep reading: a short count would end the transfer as an error
}

bool CurlTransfer::setup(CURL* c, const std::string& url, SteadyTime deadline,
                         std::chrono::milliseconds connect_timeout) {
  int left = ms_left(deadline);
  if (left <= 0) return false;
  curl_global_setup();
  curl_easy_reset(c);
  body_.clear();
  truncated_ = false;
  errbuf_[0] = '\0';
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(left));
  if (connect_timeout.count() > 0 && connect_timeout.count() < left)
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_PROXY, "");  // never through a proxy from the environment
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf_);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &CurlTransfer::on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, this);
  return true;
}

std::string CurlTransfer::error_text(CURL* c, CURLcode rc) const { return curl_error_text(c, rc, errbuf_); }

std::string curl_error_text(CURL* c, CURLcode rc, const char* errbuf) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT: {
      long os_errno = 0;
      if (c) curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
      if (os_errno == ECONNREFUSED) return "connection refused";
      if (os_errno == 0) return "cannot connect";
      return std::string("cannot connect: ") + std::strerror(static_cast<int>(os_errno));
    }
    case CURLE_OPERATION_TIMEDOUT: return "timed out";
    case CURLE_GOT_NOTHING: return "empty reply";
    case CURLE_RECV_ERROR: return "connection reset";
    case CURLE_SSL_CONNECT_ERROR: return "TLS handshake failed";
    case CURLE_PEER_FAILED_VERIFICATION: return "TLS certificate not trusted";
    case CURLE_COULDNT_RESOLVE_HOST: return "cannot resolve host";
    case CURLE_WEIRD_SERVER_REPLY: return "not an HTTP reply";
    default: break;
  }
  // libcurl's text may quote the server's bytes: made valid UTF-8, cut, one line.
  std::string text = errbuf && errbuf[0] ? valid_utf8(errbuf, 200) : std::string(curl_easy_strerror(rc));
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::replace(text.begin(), text.end(), '\r', ' ');
  return text;
}

}  // namespace poolkeeper
