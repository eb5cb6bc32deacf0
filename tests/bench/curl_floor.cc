// The floor under the agent's CPU per probe result: the same HTTP probes made by bare
// libcurl in one thread, with nothing else (no model, no snapshot, no metrics, no
// result delivery). bench.sh runs it beside the agent on the same servers, so the
// table shows how much of the agent's figure is the probes' own network and libcurl
// work, and how much is the agent's.
//
//   curl_floor PASS_URL HANG_URL CHECKS SECONDS
//
// CHECKS probes at 1 s, every third one at HANG_URL (timeout 500 ms), the others at
// PASS_URL; each starts at its own phase in the second, then one interval after its last
// result, rounded to the same 50 ms start windows the agent uses. Each transfer is set
// up as the http check sets up its own: CurlTransfer::setup (the agent's common options
// and body capture), the check's header list and buffer size, a pooled easy handle, the
// connections kept alive; the loop is epoll on libcurl's socket interface. After 3 s
// to settle it measures its own CPU time (getrusage) over SECONDS and prints
//   RESULT results=N cpu_us_per_result=X
#include <curl/curl.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/base/curl.h"

namespace {
using Clock = std::chrono::steady_clock;

struct Watch {
  int epfd = -1;
  long timer_ms = -1;
  Clock::time_point timer_at;
  static int on_socket(CURL*, curl_socket_t s, int what, void* userp, void*) {
    auto* w = static_cast<Watch*>(userp);
    if (what == CURL_POLL_REMOVE) {
      epoll_ctl(w->epfd, EPOLL_CTL_DEL, s, nullptr);
      return 0;
    }
    epoll_event ev{};
    ev.data.fd = s;
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, s, &ev) != 0) epoll_ctl(w->epfd, EPOLL_CTL_ADD, s, &ev);
    return 0;
  }
  static int on_timer(CURLM*, long ms, void* userp) {
    auto* w = static_cast<Watch*>(userp);
    w->timer_ms = ms;
    if (ms >= 0) w->timer_at = Clock::now() + std::chrono::milliseconds(ms + (ms > 0 ? 1 : 0));
    return 0;
  }
};

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: curl_floor PASS_URL HANG_URL CHECKS SECONDS\n");
    return 2;
  }
  std::string pass = argv[1], hang = argv[2];
  int checks = std::atoi(argv[3]), secs = std::atoi(argv[4]);
  if (checks < 1 || secs < 1) {
    std::fprintf(stderr, "curl_floor: CHECKS and SECONDS must be at least 1\n");
    return 2;
  }
  poolkeeper::curl_global_setup();
  CURLM* m = curl_multi_init();
  Watch w;
  w.epfd = epoll_create1(EPOLL_CLOEXEC);
  curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, &Watch::on_socket);
  curl_multi_setopt(m, CURLMOPT_SOCKETDATA, &w);
  curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, &Watch::on_timer);
  curl_multi_setopt(m, CURLMOPT_TIMERDATA, &w);
  curl_slist* headers = curl_slist_append(nullptr, "User-Agent: curl_floor");
  std::vector<std::string> urls;
  for (int i = 1; i <= checks; ++i) urls.push_back((checks > 1 && i % 3 == 0 ? hang : pass) + "/c" + std::to_string(i));
  // Each check's next start; phases spread over the second, in 50 ms windows.
  Clock::time_point t0 = Clock::now();
  std::multimap<Clock::time_point, int> due;
  for (int i = 0; i < checks; ++i) {
    long phase = (1000L * i / checks) / 50 * 50;
    due.emplace(t0 + std::chrono::milliseconds(phase), i);
  }
  std::vector<CURL*> spare;
  std::map<CURL*, int> running;
  // A check's buffers (one transfer at a time each), capped as the http check's.
  std::vector<std::unique_ptr<poolkeeper::CurlTransfer>> transfers;
  for (int i = 0; i < checks; ++i) transfers.push_back(std::make_unique<poolkeeper::CurlTransfer>(64 * 1024));
  long results = 0, counted = 0;
  double cpu0 = 0;
  Clock::time_point measure_from = t0 + std::chrono::seconds(3);
  Clock::time_point end = measure_from + std::chrono::seconds(secs);
  bool measuring = false;
  int still = 0;
  for (;;) {
    Clock::time_point now = Clock::now();
    if (!measuring && now >= measure_from) {
      measuring = true;
      cpu0 = cpu_seconds();
      counted = results;
    }
    if (now >= end) break;
    while (!due.empty() && due.begin()->first <= now) {
      int i = due.begin()->second;
      due.erase(due.begin());
      CURL* e = spare.empty() ? curl_easy_init() : spare.back();
      if (!spare.empty()) spare.pop_back();
      transfers[static_cast<size_t>(i)]->setup(e, urls[static_cast<size_t>(i)], now + std::chrono::milliseconds(500));
      curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
      curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 1024L);
      curl_multi_add_handle(m, e);
      running[e] = i;
    }
    if (w.timer_ms >= 0 && now >= w.timer_at) {
      w.timer_ms = -1;
      curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &still);
    }
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(m, &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* e = msg->easy_handle;
      long status = 0;
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
      curl_multi_remove_handle(m, e);
      int i = running[e];
      running.erase(e);
      spare.push_back(e);
      ++results;
      // The next probe of this check: one interval after this result, as the agent
      // counts it, at the end of the 50 ms start window it falls in.
      auto since = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() + std::chrono::seconds(1) - t0);
      due.emplace(t0 + std::chrono::milliseconds((since.count() / 50 + 1) * 50), i);
    }
    long wait = 1000;
    if (!due.empty()) wait = std::min<long>(wait, std::chrono::duration_cast<std::chrono::milliseconds>(due.begin()->first - now).count() + 1);
    if (w.timer_ms >= 0)
      wait = std::min<long>(wait, std::chrono::duration_cast<std::chrono::milliseconds>(w.timer_at - now).count() + 1);
    wait = std::max<long>(wait, 0);
    epoll_event evs[64];
    int n = epoll_wait(w.epfd, evs, 64, static_cast<int>(wait));
    for (int k = 0; k < n; ++k) {
      int mask = ((evs[k].events & EPOLLIN) ? CURL_CSELECT_IN : 0) | ((evs[k].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                 ((evs[k].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
      curl_multi_socket_action(m, evs[k].data.fd, mask, &still);
    }
  }
  double cpu = cpu_seconds() - cpu0;
  long n = results - counted;
  if (n <= 0) {
    std::fprintf(stderr, "curl_floor: no probe ended in the window\n");
    return 1;
  }
  std::printf("RESULT results=%ld cpu_us_per_result=%.1f\n", n, cpu * 1e6 / static_cast<double>(n));
  return 0;
}
