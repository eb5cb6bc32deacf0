#include "agent/runtime/peers.h"

#include <future>

#include "agent/base/curl.h"

namespace poolkeeper {

PeerWatcher::PeerWatcher(std::vector<std::string> urls, Duration interval, Duration timeout, Callback cb,
                         const Clock& clock)
    : urls_(std::move(urls)), interval_(interval), timeout_(timeout), cb_(std::move(cb)), clock_(clock) {}

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

PeerState PeerWatcher::poll_one(const std::string& url, Duration timeout, const Clock& clock) {
  PeerState p;
  p.url = url;
  CURL* c = curl_easy_init();
  if (!c) {
    p.error = "cannot create a curl handle";
    return p;
  }
  std::string full = url + "/status";
  CurlTransfer t(4u << 20);
  if (!t.setup(c, full, real_clock().now() + timeout)) {
    curl_easy_cleanup(c);
    p.error = "timed out";
    return p;
  }
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (rc != CURLE_OK) p.error = t.error_text(c, rc);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK) return p;
  const std::string& body = t.body();
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
  parsed->last_seen = clock.wall();
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
    futures.push_back(std::async(std::launch::async, [this, u, timeout] { return poll_one(u, timeout, clock_); }));
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
