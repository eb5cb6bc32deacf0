#include "agent/agent.h"

#include <future>
#include <random>

#include "agent/log.h"

namespace poolkeeper {

// Runs one check's probes, one at a time, on its own thread.
class ProbeWorker {
 public:
  using Done = std::function<void(const std::string&, Result)>;
  ProbeWorker(std::string name, std::shared_ptr<Check> check, Duration timeout, Done done)
      : name_(std::move(name)), check_(std::move(check)), timeout_(timeout), done_(std::move(done)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~ProbeWorker() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void trigger() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      pending_ = true;
    }
    cv_.notify_one();
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      cv_.wait(lk, [this] { return stop_ || pending_; });
      if (stop_) return;
      pending_ = false;
      lk.unlock();
      Result r = run_probe(*check_, timeout_);
      done_(name_, std::move(r));
      lk.lock();
    }
  }

  std::string name_;
  std::shared_ptr<Check> check_;
  Duration timeout_;
  Done done_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false, stop_ = false;
  std::thread thread_;
};

Agent::Agent(Config config, const Clock& clock) : config_(std::move(config)), clock_(clock) {
  auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
  engine_ = std::make_unique<Engine>(config_, clock_, [rng] {
    return std::uniform_real_distribution<double>(0.0, 1.0)(*rng);
  });
  engine_->add_observer(&metrics_);
  struct EventLogger : Observer {
    void on_event(const Event& e) override { log_raw(event_logfmt(e)); }
  };
  static EventLogger logger;
  engine_->add_observer(&logger);
  snapshot_.store(engine_->snapshot());
}

Agent::~Agent() { shutdown(); }

void Agent::start() {
  HttpServerOptions opts;
  opts.listen = config_.agent.listen;
  http_ = std::make_unique<HttpServer>(opts, [this] { return snapshot_.load(); }, &metrics_);
  http_->start();
  for (const auto& [name, cc] : config_.checks) {
    workers_.emplace(name, std::make_unique<ProbeWorker>(
                               name, cc.check, cc.timeout, [this](const std::string& n, Result r) {
                                 post([n, r = std::move(r)](Engine& e) { e.on_result(n, r); });
                               }));
  }
  owner_ = std::thread([this] { owner_loop(); });
  post([](Engine& e) { e.set_lifecycle(Lifecycle::kRunning); });
}

void Agent::begin_stop() {
  post([](Engine& e) { e.set_lifecycle(Lifecycle::kStopping); });
}

void Agent::shutdown() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_ && !owner_.joinable() && workers_.empty() && !http_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (owner_.joinable()) owner_.join();
  if (http_) http_->stop();
  workers_.clear();  // joins each worker after its in-flight probe ends
  http_.reset();
}

void Agent::post(std::function<void(Engine&)> fn) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    inbox_.push_back(std::move(fn));
  }
  cv_.notify_all();
}

void Agent::run_on_owner(const std::function<void(Engine&)>& fn) {
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  post([&fn, done](Engine& e) {
    fn(e);
    done->set_value();
  });
  fut.wait();
}

void Agent::publish() {
  auto s = engine_->snapshot();
  if (s != snapshot_.load()) snapshot_.store(std::move(s));
}

void Agent::owner_loop() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    std::deque<std::function<void(Engine&)>> work;
    work.swap(inbox_);
    lk.unlock();
    for (auto& fn : work) fn(*engine_);
    publish();  // before probes start: a state change is visible at once
    for (const auto& name : engine_->take_due()) workers_.at(name)->trigger();
    SteadyTime wake = std::min(engine_->next_due(), SteadyClock::now() + std::chrono::seconds(1));
    lk.lock();
    if (inbox_.empty() && !stop_) cv_.wait_until(lk, wake);
  }
  // Answer anything still waiting in run_on_owner().
  std::deque<std::function<void(Engine&)>> work;
  work.swap(inbox_);
  lk.unlock();
  for (auto& fn : work) fn(*engine_);
  publish();
}

}  // namespace poolkeeper
