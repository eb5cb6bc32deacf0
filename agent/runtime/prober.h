// Runs the agent's probes on few threads, whatever the number of checks: one loop thread
// drives every network transfer (libcurl's socket interface on epoll) and cuts each off
// at its deadline; a pool runs the kinds that block (exec, and any kind that only
// implements Check::run()). A hung server costs a socket and a timer, not a thread.
//
// Pool threads are started when work arrives and no thread is idle, and end after a while
// without work: as many as blocking probes are in flight together (a few, unless servers
// hang), so a stuck one never makes another wait. Results go to `done` from the loop
// thread or a pool thread, with latency filled in and text made valid UTF-8; after
// stop() none is delivered any more.
//
// Time: a probe's start and latency, the time of day its check reads (Check::run) and
// when spare memory is handed back are on the clock it is given (the agent's); the
// deadlines of transfers and libcurl's timers are on real_clock(), as the kernel waits
// they bound are real.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/base/probe.h"

namespace poolkeeper {

class Prober final : public ProbeLoop {
 public:
  using Done = std::function<void(const std::string& name, uint64_t gen, uint64_t seq, Result)>;
  // `clock` must outlive every probe started, those stop() abandons included (the
  // agent's lives as long as the process).
  explicit Prober(Done done, const Clock& clock = real_clock());
  ~Prober() override;
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  // Starts one probe of `check` (any thread). If the same Check object still has a
  // probe running, this one starts when that one ends: a Check never runs two at once.
  void trigger(const std::string& name, uint64_t gen, std::shared_ptr<Check> check, uint64_t seq,
               Duration timeout);

  // Ends the loop (transfers in flight are abandoned, their results dropped) and waits
  // up to `grace` for blocking probes to return. False when one was still running: its
  // thread is left to the process's end (which must then be an _exit()).
  bool stop(Duration grace);

  // ProbeLoop (loop thread only for add_transfer).
  void add_transfer(void* easy, Deadline deadline, std::function<void(int curl_code)> done) override;
  void run_blocking(std::function<void()> fn) override;
  void* take_easy() override;
  void release_easy(void* easy) override;
  const Clock& clock() const override { return *st_->clock; }

 private:
  struct Request {
    std::string name;
    uint64_t gen = 0;
    uint64_t seq = 0;
    Duration timeout{};
    std::shared_ptr<Check> check;
  };
  struct Transfer {
    Deadline deadline;
    std::function<void(int)> done;
  };
  // What the loop, the pool threads and the probes' callbacks share. Pool threads and
  // callbacks hold it, so an abandoned probe may outlive the Prober safely.
  struct State {
    Done done;
    const Clock* clock = nullptr;

    std::mutex mu;  // guards the fields up to `multi`
    std::deque<Request> queue;  // triggered, for the loop to begin
    std::map<const Check*, std::optional<Request>> running;  // → a trigger waiting for it
    bool stopped = false;
    void* multi = nullptr;  // CURLM*, null once the loop has ended

    std::mutex done_mu;  // held while a result is delivered, so stop() can cut them off
    bool delivering = true;

    std::mutex pool_mu;              // guards the pool fields below
    std::condition_variable work_cv;  // a task arrived, or stop
    std::condition_variable idle_cv;  // a task ended or a thread exited
    std::deque<std::function<void()>> tasks;
    size_t threads = 0, idle = 0;
    bool pool_stop = false;

    int wake_fd = -1;  // eventfd in the loop's epoll set: wake() makes it turn
    void wake();
    ~State();
  };

  void loop();
  void begin(Request req);              // loop thread
  void complete(void* easy, int code);  // loop thread
  static void finish(const std::shared_ptr<State>& st, const Request& req, Result r, SteadyTime started);
  static void pool_thread(std::shared_ptr<State> st);

  std::shared_ptr<State> st_;
  std::map<void*, Transfer> transfers_;  // loop thread only
  // Easy handles given back (loop thread only), and the fewest there were since the
  // last trim: that many were not needed all along, and are freed at the next.
  std::vector<void*> spare_easy_;
  size_t spare_low_ = 0;
  std::thread thread_;
};

}  // namespace poolkeeper
