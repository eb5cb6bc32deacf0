#include "agent/runtime/peers.h"

#include <curl/curl.h>

#include <future>

#include "agent/base/utf8.h"

namespace poolkeeper {

namespace {
// Called from libcurl's C code: nothing may throw out of it (out of memory aborts the
// transfer, which reports the peer as unreachable).
size_t collect(char* p, size_t size, size_t n, void* out) noexcept {
  auto* s = static_cast<std::string*>(out);
  try {
    if (s->size() < (4u << 20)) s->append(p, size * n);
  } catch (...) {
    return 0;
  }
  return size * n;
}
}  // namespace

PeerWatcher::PeerWatcher(std::vector<std::string> urls, Duration interval, Duration timeout, Callback cb)
    : urls_(std::move(urls)), interval_(interval), timeout_(timeout), cb_(std::move(cb)) {}

PeerWatcher::~PeerWatcher() { stop(); }

void PeerWatcher::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
}

void PeerWatcher::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PeerWatcher::set_urls(std::vector<std::string> urls) {
  std::lock_guard<std::mutex> lk(mu_);
  urls_ = std::move(urls);
}

PeerState PeerWatcher::poll_one(const std::string& url, Duration timeout) {
  PeerState p;
  p.url = url;
  CURL* c = curl_easy_init();
  if (!c) {
    p.error = "cannot create a curl handle";
    return p;
  }
  std::string body, full = url + "/status";
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, full.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()));
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  long os_errno = 0;
  curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK) {
    if (rc == CURLE_COULDNT_CONNECT && os_errno == ECONNREFUSED) p.error = "connection refused";
    else if (rc == CURLE_OPERATION_TIMEDOUT) p.error = "timed out";
    else p.error = errbuf[0] ? valid_utf8(errbuf, 200) : curl_easy_strerror(rc);
    return p;
  }
  if (status != 200) {
    p.error = "HTTP " + std::to_string(status);
    return p;
  }
  std::string err;
  auto parsed = parse_peer_status(url, body, &err);
  if (!parsed) {
    p.error = err;
    return p;
  }
  parsed->last_seen = std::chrono::system_clock::now();
  return *parsed;
}

std::vector<PeerState> PeerWatcher::poll_now() const {
  std::vector<std::string> urls;
  Duration timeout;
  {
    std::lock_guard<std::mutex> lk(mu_);
    urls = urls_;
    timeout = timeout_;
  }
  std::vector<std::future<PeerState>> futures;
  for (const auto& u : urls)
    futures.push_back(std::async(std::launch::async, [u, timeout] { return poll_one(u, timeout); }));
  std::vector<PeerState> out;
  for (auto& f : futures) out.push_back(f.get());
  return out;
}

void PeerWatcher::loop() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    lk.unlock();
    auto states = poll_now();
    cb_(std::move(states));
    lk.lock();
    cv_.wait_for(lk, interval_, [this] { return stop_; });
  }
}

}  // namespace poolkeeper
