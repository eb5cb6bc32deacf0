#include "agent/runtime/prober.h"

#include <curl/curl.h>
#include <malloc.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

#include "agent/base/curl.h"
#include "agent/base/log.h"

namespace poolkeeper {

namespace {
// libcurl's own timeout (set from the same deadline) normally ends a transfer first;
// the loop cancels one that is still running this long after its deadline.
constexpr auto kDeadlineSlack = std::chrono::milliseconds(5);
// The loop turns at least this often, whatever libcurl asks for.
constexpr long kMaxPollMs = 1000;
// How often the loop hands freed heap pages back to the kernel (malloc_trim): a burst
// of transfers (every check due at once after a start or a reload) would otherwise
// keep its peak as resident memory for good.
constexpr auto kTrimEvery = std::chrono::seconds(10);
// Easy handles kept for the next transfers at most (each with its buffers: a few KiB).
constexpr size_t kMaxSpareEasy = 64;
// A pool thread without work for this long ends.
constexpr auto kPoolIdle = std::chrono::seconds(30);

// libcurl's socket interface: it says which sockets to watch (kept in an epoll set) and
// when to call it back; the loop then hands it only the sockets that are ready. Each
// turn costs in proportion to what happened, not to the transfers in flight (with
// curl_multi_perform, every turn visits every transfer: ~50 polls per result with 200
// checks, a third of them hanging).
struct CurlWatch {
  int epfd = -1;
  std::optional<SteadyTime> timer;  // when libcurl wants CURL_SOCKET_TIMEOUT

  static int on_socket(CURL* /*easy*/, curl_socket_t s, int what, void* userp, void* /*socketp*/) noexcept {
    auto* w = static_cast<CurlWatch*>(userp);
    if (what == CURL_POLL_REMOVE) {
      ::epoll_ctl(w->epfd, EPOLL_CTL_DEL, s, nullptr);  // may already be gone with the socket
      return 0;
    }
    epoll_event ev{};
    ev.data.fd = s;
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    if (::epoll_ctl(w->epfd, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT)
      ::epoll_ctl(w->epfd, EPOLL_CTL_ADD, s, &ev);
    return 0;
  }
  static int on_timer(CURLM* /*multi*/, long timeout_ms, void* userp) noexcept {
    auto* w = static_cast<CurlWatch*>(userp);
    if (timeout_ms < 0) w->timer.reset();
    // libcurl (7.x) gives the time left in whole milliseconds, rounded down: woken after
    // that many, it finds nothing expired and asks for 1 ms more, a second turn for each
    // of its timers (a hung transfer's timeout among them). Its timer falls within the
    // next millisecond: the loop wakes at the end of it, once.
    else w->timer = real_clock().now() + std::chrono::milliseconds(timeout_ms + (timeout_ms > 0 ? 1 : 0));
    return 0;
  }
};
}  // namespace

void Prober::State::wake() {
  if (wake_fd < 0) return;
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd, &one, sizeof one);  // a full counter still wakes
  (void)ignored;
}

Prober::State::~State() {
  if (wake_fd >= 0) ::close(wake_fd);
}

Prober::Prober(Done done, const Clock& clock) : st_(std::make_shared<State>()) {
  curl_global_setup();
  st_->done = std::move(done);
  st_->clock = &clock;
  st_->multi = curl_multi_init();
  if (!st_->multi) throw std::runtime_error("cannot create a curl multi handle");
  st_->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (st_->wake_fd < 0) {
    curl_multi_cleanup(static_cast<CURLM*>(st_->multi));
    throw std::runtime_error("cannot create an eventfd for the probe loop");
  }
  thread_ = std::thread([this] { loop(); });
}

Prober::~Prober() {
  stop(std::chrono::milliseconds(200));
  for (void* e : spare_easy_) curl_easy_cleanup(static_cast<CURL*>(e));  // the loop has ended
}

void Prober::trigger(const std::string& name, uint64_t gen, std::shared_ptr<Check> check, uint64_t seq,
                     Duration timeout) {
  std::lock_guard<std::mutex> lk(st_->mu);
  if (st_->stopped) return;
  // A queue with requests in it has a wake-up on its way already (the loop takes the
  // whole queue after it was woken): the owner's triggers of one turn cost one.
  if (st_->queue.empty()) st_->wake();
  st_->queue.push_back(Request{name, gen, seq, timeout, std::move(check)});
}

bool Prober::stop(Duration grace) {
  {
    std::lock_guard<std::mutex> lk(st_->mu);
    if (st_->stopped && !thread_.joinable()) return true;
    st_->stopped = true;
    st_->queue.clear();
    st_->wake();
  }
  // The loop never blocks for long (its epoll is woken above): joining is bounded.
  if (thread_.joinable()) thread_.join();
  std::deque<std::function<void()>> dropped;
  bool all_ended;
  {
    std::unique_lock<std::mutex> lk(st_->pool_mu);
    st_->pool_stop = true;
    dropped.swap(st_->tasks);
    st_->work_cv.notify_all();
    all_ended = st_->idle_cv.wait_for(lk, grace, [this] { return st_->threads == 0; });
  }
  dropped.clear();
  {
    std::lock_guard<std::mutex> lk(st_->done_mu);
    st_->delivering = false;
  }
  return all_ended;
}

void Prober::add_transfer(void* easy, Deadline deadline, std::function<void(int)> done) {
  CURLMcode mc = curl_multi_add_handle(static_cast<CURLM*>(st_->multi), static_cast<CURL*>(easy));
  if (mc != CURLM_OK) {
    done(CURLE_FAILED_INIT);
    return;
  }
  transfers_[easy] = Transfer{deadline, std::move(done)};
}

void* Prober::take_easy() {
  if (spare_easy_.empty()) return curl_easy_init();
  void* e = spare_easy_.back();
  spare_easy_.pop_back();
  spare_low_ = std::min(spare_low_, spare_easy_.size());
  return e;
}

void Prober::release_easy(void* easy) {
  if (!easy) return;
  if (spare_easy_.size() >= kMaxSpareEasy) {
    curl_easy_cleanup(static_cast<CURL*>(easy));
    return;
  }
  try {
    spare_easy_.push_back(easy);
  } catch (...) {
    curl_easy_cleanup(static_cast<CURL*>(easy));
  }
}

void Prober::run_blocking(std::function<void()> fn) {
  std::lock_guard<std::mutex> lk(st_->pool_mu);
  if (st_->pool_stop) return;
  st_->tasks.push_back(std::move(fn));
  // No cap: a blocking probe never waits behind stuck ones. One Check never runs twice at
  // once, so the pool is at most one thread per blocking check, and only while that many
  // are in flight together (each bounded by its deadline).
  if (st_->tasks.size() > st_->idle) {
    ++st_->threads;
    std::thread(pool_thread, st_).detach();
  }
  st_->work_cv.notify_one();
}

void Prober::pool_thread(std::shared_ptr<State> st) {
  std::unique_lock<std::mutex> lk(st->pool_mu);
  for (;;) {
    ++st->idle;
    bool got = st->work_cv.wait_for(lk, kPoolIdle, [&] { return st->pool_stop || !st->tasks.empty(); });
    --st->idle;
    if (!got || st->pool_stop) break;
    std::function<void()> task = std::move(st->tasks.front());
    st->tasks.pop_front();
    lk.unlock();
    task();
    task = nullptr;  // its captures (the check) go before the lock is taken again
    lk.lock();
  }
  --st->threads;
  st->idle_cv.notify_all();
}

void Prober::begin(Request req) {
  {
    std::lock_guard<std::mutex> lk(st_->mu);
    auto [it, fresh] = st_->running.try_emplace(req.check.get());
    if (!fresh) {  // still probing: this one waits for it (the latest trigger wins)
      it->second = std::move(req);
      return;
    }
  }
  SteadyTime started = clock().now();
  Deadline deadline = real_clock().now() + req.timeout;
  auto once = std::make_shared<std::atomic<bool>>(false);
  Check* check = req.check.get();
  ProbeDone done = [st = st_, req, started, once](Result r) {
    if (once->exchange(true)) return;  // a kind that answers twice: the first counts
    finish(st, req, std::move(r), started);
  };
  try {
    check->start(*this, deadline, done);
  } catch (const std::exception& e) {
    done(Result::fail(Outcome::kFailed, std::string("probe error: ") + e.what()));
  } catch (...) {
    done(Result::fail(Outcome::kFailed, "probe error"));
  }
}

void Prober::finish(const std::shared_ptr<State>& st, const Request& req, Result r, SteadyTime started) {
  try {
    // Under the lock: an abandoned probe that ends after stop() reads no clock.
    std::lock_guard<std::mutex> lk(st->done_mu);
    if (st->delivering) {
      finish_result(r, started, *st->clock);
      st->done(req.name, req.gen, req.seq, std::move(r));
    }
  } catch (const std::exception& e) {
    log_error("cannot deliver a probe result", {{"check", req.name}, {"error", e.what()}});
  }
  std::lock_guard<std::mutex> lk(st->mu);
  auto it = st->running.find(req.check.get());
  if (it == st->running.end()) return;
  std::optional<Request> next = std::move(it->second);
  st->running.erase(it);
  if (next && !st->stopped) {
    if (st->queue.empty()) st->wake();
    st->queue.push_back(std::move(*next));
  }
}

void Prober::complete(void* easy, int code) {
  auto it = transfers_.find(easy);
  if (it == transfers_.end()) return;
  curl_multi_remove_handle(static_cast<CURLM*>(st_->multi), static_cast<CURL*>(easy));
  std::function<void(int)> done = std::move(it->second.done);
  transfers_.erase(it);
  try {
    done(code);
  } catch (...) {
    // The probe's own callback failed; its ProbeDone was never called, so the
    // model's overdue logic reports it.
  }
}

void Prober::loop() {
  auto* m = static_cast<CURLM*>(st_->multi);
  CurlWatch watch;
  watch.epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (watch.epfd < 0) {
    log_error("cannot create the probe loop's epoll set: network probes will time out");
  } else {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = st_->wake_fd;
    ::epoll_ctl(watch.epfd, EPOLL_CTL_ADD, st_->wake_fd, &ev);
  }
  curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, &CurlWatch::on_socket);
  curl_multi_setopt(m, CURLMOPT_SOCKETDATA, &watch);
  curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, &CurlWatch::on_timer);
  curl_multi_setopt(m, CURLMOPT_TIMERDATA, &watch);
  SteadyTime next_trim = clock().now() + kTrimEvery / 2;
  int still = 0;
  for (;;) {
    std::deque<Request> batch;
    {
      std::lock_guard<std::mutex> lk(st_->mu);
      if (st_->stopped) break;
      batch.swap(st_->queue);
    }
    for (auto& r : batch) begin(std::move(r));
    if (watch.timer && real_clock().now() >= *watch.timer) {
      watch.timer.reset();
      curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &still);
    }
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(m, &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* e = msg->easy_handle;
      CURLcode rc = msg->data.result;  // the message is gone once the handle is removed
      complete(e, rc);
    }
    // Deadlines: a transfer libcurl has not ended by then is cut off here.
    SteadyTime now = real_clock().now();
    std::vector<void*> late;
    long wait_ms = kMaxPollMs;
    for (const auto& [e, t] : transfers_) {
      int left = ms_left(t.deadline + kDeadlineSlack, now);
      if (left <= 0) late.push_back(e);
      else wait_ms = std::min<long>(wait_ms, left);
    }
    for (void* e : late) complete(e, CURLE_OPERATION_TIMEDOUT);
    if (!late.empty()) continue;  // callbacks may have queued work
    if (SteadyTime at = clock().now(); at >= next_trim) {
      // Handles no transfer needed since the last trim go first (the last ones given
      // back are the first taken: the oldest are at the front).
      size_t unused = std::min(spare_low_, spare_easy_.size());
      for (size_t i = 0; i < unused; ++i) curl_easy_cleanup(static_cast<CURL*>(spare_easy_[i]));
      spare_easy_.erase(spare_easy_.begin(), spare_easy_.begin() + static_cast<std::ptrdiff_t>(unused));
      spare_low_ = spare_easy_.size();
      ::malloc_trim(0);
      next_trim = at + kTrimEvery;
    }
    if (watch.timer) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(*watch.timer - now).count();
      wait_ms = std::clamp<long>(left, 0, wait_ms);
    }
    if (watch.epfd < 0) {
      ::usleep(static_cast<useconds_t>(wait_ms) * 1000);
      continue;
    }
    epoll_event evs[64];
    int n = ::epoll_wait(watch.epfd, evs, 64, static_cast<int>(wait_ms));
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == st_->wake_fd) {
        uint64_t count;
        ssize_t ignored = ::read(fd, &count, sizeof count);
        (void)ignored;
        continue;
      }
      int mask = ((evs[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) | ((evs[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                 ((evs[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
      curl_multi_socket_action(m, fd, mask, &still);
    }
  }
  // Stopping: transfers in flight are dropped unanswered (their results would not be
  // delivered anyway); the handles leave the multi before their checks can go away.
  for (const auto& [e, t] : transfers_) curl_multi_remove_handle(m, static_cast<CURL*>(e));
  transfers_.clear();  // their probes give their handles back
  for (void* e : spare_easy_) curl_easy_cleanup(static_cast<CURL*>(e));
  spare_easy_.clear();
  {
    std::lock_guard<std::mutex> lk(st_->mu);
    st_->multi = nullptr;
    st_->running.clear();
  }
  curl_multi_cleanup(m);
  if (watch.epfd >= 0) ::close(watch.epfd);
}

}  // namespace poolkeeper
