#include "agent/runtime/runtime.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <future>
#include <random>
#include <set>
#include <tuple>

#include "agent/base/duration.h"
#include "agent/base/log.h"
#include "agent/base/net.h"
#include "agent/base/utf8.h"
#include "agent/runtime/carryover.h"
#include "agent/runtime/prober.h"
#include "checks/child_reaper.h"
#include "pybal-compat/conftool_wants.h"

namespace poolkeeper {

std::string read_boot_id(const std::string& path) {
  std::ifstream in(path);
  std::string id;
  std::getline(in, id);
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

namespace {
// Probes due close together start together: a due probe may wait up to this share of its
// interval (at most kStartWindowMax) for others, so that with many checks the owner and
// the probe loop wake once for several probes instead of once for each. The wait is
// half of the 10% jitter (scheduler.h): 50 ms at 1 s, 10 ms at the default fast_interval.
constexpr double kStartWindowShare = 0.05;
constexpr Duration kStartWindowMax = std::chrono::milliseconds(50);
// How long a probe result may wait for the owner's next turn: while results are
// expected the owner turns at least this often and takes them all at once (the next
// probe counts from when the result came, not from when the owner took it).
constexpr Duration kResultDelay = std::chrono::milliseconds(50);

// The event log: one logfmt line per transition.
struct EventLog final : Observer {
  void on_event(const Event& e) override { log_raw(event_logfmt(e)); }
};

// Persists an intent the model changed by itself (an expiry, a return after reboot)
// as it happens; intents set by an operator or conftool are persisted by their path,
// which must know the outcome before it answers.
class IntentSaver final : public Observer {
 public:
  explicit IntentSaver(std::function<void()> save) : save_(std::move(save)) {}
  void on_event(const Event& e) override {
    if (e.kind == EventKind::kIntent && e.automatic) save_();
  }

 private:
  std::function<void()> save_;
};

// Feeds the conftool writer what it should write, from each snapshot that changed
// something it reads (the services, the peers, the lifecycle, the host).
class ConftoolFeed final : public Observer {
 public:
  explicit ConftoolFeed(std::function<void(const Snapshot&)> update) : update_(std::move(update)) {}
  void on_snapshot(const Snapshot& s) override {
    if (fed_ && s.services.shared() == services_.shared() && s.peers.shared() == peers_.shared() &&
        s.lifecycle == lifecycle_ &&
        s.host == host_)
      return;
    fed_ = true;
    services_ = s.services;
    peers_ = s.peers;
    lifecycle_ = s.lifecycle;
    host_ = s.host;
    update_(s);
  }

 private:
  std::function<void(const Snapshot&)> update_;
  bool fed_ = false;
  // Kept alive, so that an equal pointer is never a new list at a reused address.
  SharedList<ServiceView> services_;
  SharedList<PeerView> peers_;
  Lifecycle lifecycle_ = Lifecycle::kStarting;
  std::string host_;
};

std::vector<std::string> all_peer_urls(const Config& c) {
  std::set<std::string> urls;
  for (const auto& [name, s] : c.services) urls.insert(s.peers.begin(), s.peers.end());
  return {urls.begin(), urls.end()};
}

// systemd socket activation (deploy/systemd/poolkeeper.socket): the first passed fd
// that is a listening TCP socket serves HTTP. systemd keeps it open across a restart
// of the agent, so the load balancer's checks wait in its queue instead of being
// refused. -1 when none was passed.
int inherited_listen_socket(const std::string& listen) {
  int n = sd_listen_fds(1);
  for (int i = 0; i < n; ++i) {
    int fd = SD_LISTEN_FDS_START + i;
    if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) continue;
    int port = std::max(0, local_port(fd));
    std::string host;
    int want = 0;
    if (split_host_port(listen, &host, &want) && want != port)
      log_warn("serving HTTP on the socket systemd passed, not on agent.listen",
               {{"listen", listen}, {"socket_port", std::to_string(port)}});
    else
      log_info("serving HTTP on the socket systemd passed", {{"port", std::to_string(port)}});
    return fd;
  }
  if (n > 0) log_warn("systemd passed sockets but none is a listening TCP socket; binding agent.listen");
  return -1;
}
}  // namespace

Runtime::Runtime(Config config, const Clock& clock)
    : config_(std::move(config)), clock_(clock), store_(config_.agent.state_dir), results_(kResultDelay) {
  auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
  model_ = std::make_unique<HealthModel>(
      config_, clock_,
      [rng] { return std::uniform_real_distribution<double>(0.0, 1.0)(*rng); },
      read_boot_id(config_.agent.boot_id_file));
  // One stream of transitions and snapshots, every publisher subscribed to it.
  model_->set_probe_start_window(kStartWindowShare, kStartWindowMax);
  model_->add_observer(&metrics_);
  feeds_.push_back(std::make_unique<EventLog>());
  feeds_.push_back(std::make_unique<IntentSaver>([this] {
    std::string err = persist(*model_);
    if (!err.empty()) log_error("cannot save state", {{"error", err}});
  }));
  feeds_.push_back(std::make_unique<ConftoolFeed>([this](const Snapshot& s) {
    if (conftool_) conftool_->update(conftool_wants(s, model_->config()), conftool_peers(s, model_->config()));
  }));
  for (auto& f : feeds_) model_->add_observer(f.get());
  snapshot_.store(model_->snapshot());
}

Runtime::~Runtime() { shutdown(); }

std::string Runtime::persist(HealthModel& e) { return store_.save(e.intents()); }

void Runtime::refresh_probes() {
  // Called on the owner thread (or before it starts), at start and after a reload: the
  // Check object behind each configured check. Every probe runs on one Prober (see
  // prober.h). A probe of a replaced generation finishes on its own; the model drops
  // its result.
  if (!prober_) {
    prober_ = std::make_unique<Prober>([this](const std::string& n, uint64_t g, uint64_t seq, Result r) {
      post_result(n, g, seq, std::move(r));
    }, clock_);
  }
  probes_.clear();
  for (const auto& [name, cc] : model_->config().checks) probes_[name] = cc.check;
}

// Starting: the state as it was (persisted intents, checks carried over), what
// publishes it (HTTP, conftool), what answers requests (the admin socket, HAProxy's
// agent check), then the loops that keep it current (probes, peers, units, the floor
// and the owner).
void Runtime::start() {
  restore_state();
  start_publishers();
  start_responders();
  start_loops();
}

void Runtime::restore_state() {
  // Every process an exec probe leaves behind becomes ours, to be found and killed.
  if (!become_child_subreaper()) log_warn("cannot become a child subreaper: exec probes' escaped processes go to init");
  LoadedState st = store_.load();
  if (st.status == LoadedState::Status::kUnreadable) {
    log_error("STATE FILE UNREADABLE: every service starts depooled until an operator pools it",
              {{"error", st.error}});
  }
  model_->load_state(st);
  metrics_.state_file(st.status != LoadedState::Status::kUnreadable);

  // A restart of the agent alone in this boot (a "keep" stop) carries the checks'
  // state over, so the services answer as before from the first request on.
  std::string why;
  if (auto carry = take_carryover(config_.agent.state_dir, model_->boot_id(), boottime_ms(), &why)) {
    int seeded = 0;
    for (const auto& [name, c] : carry->checks) {
      auto it = config_.checks.find(name);
      if (it == config_.checks.end() || it->second.fingerprint != c.fingerprint) continue;  // changed: starts over
      if (c.health == CheckHealth::kUnknown) continue;
      model_->seed_check(name, c.health);
      ++seeded;
    }
    model_->set_lifecycle(Lifecycle::kRunning);
    auto snap = model_->snapshot();
    std::string services;
    for (const auto& s : snap->services) {
      auto was = carry->services.find(s.name);
      services += (services.empty() ? "" : ",") + s.name + "=" + effective_name(s.effective.state);
      if (was != carry->services.end() && was->second != effective_name(s.effective.state)) services += "(was " + was->second + ")";
    }
    log_info("restart in the same boot: state carried over", {{"checks_seeded", std::to_string(seeded)},
                                                              {"services", services}});
  } else {
    log_info("cold start: checks rise from unknown", {{"why", why}});
  }
  snapshot_.store(model_->snapshot());  // what HTTP answers from its first request on
}

void Runtime::start_publishers() {
  HttpServerOptions opts;
  opts.listen = config_.agent.listen;
  opts.listen_fd = inherited_listen_socket(config_.agent.listen);
  http_ = std::make_unique<HttpServer>(opts, [this] { return snapshot_.load(); }, &metrics_);
  http_->start();
  if (config_.conftool) {
    model_->set_conftool_enabled(true);
    std::string host = config_.conftool->hostname.empty() ? config_.agent.hostname : config_.conftool->hostname;
    ConftoolWriter::Callbacks cb;
    cb.adopt = [this](const std::string& svc, ConftoolPooled pooled) {
      post([this, svc, pooled](HealthModel& e) {
        AdminIntent i;
        i.intent = pooled == ConftoolPooled::kYes        ? Intent::kPooled
                   : pooled == ConftoolPooled::kInactive ? Intent::kInactive
                                                         : Intent::kDepooled;
        i.reason = "set via conftool";
        i.who = "conftool";
        i.when = clock_.wall();
        e.set_intent(svc, i);
        std::string err = persist(e);
        if (!err.empty()) log_error("cannot save state", {{"error", err}});
      });
    };
    cb.verdict = [this](const std::string& svc, FloorVerdict v) {
      post([svc, v](HealthModel& e) { e.set_floor_verdict(svc, v); });
    };
    cb.status = [this](bool up, const std::string& error, const nlohmann::json& keys, const nlohmann::json& live) {
      // etcd's texts and other writers' values reach /status: repaired here.
      nlohmann::json k = keys, l = live, ep = conftool_->endpoints();
      make_valid_utf8(k);
      make_valid_utf8(l);
      make_valid_utf8(ep);
      post([up, error = valid_utf8(error), k = std::move(k), l = std::move(l), ep = std::move(ep)](HealthModel& e) {
        e.set_conftool_status(up, error, k, l, ep);
      });
    };
    conftool_ = std::make_unique<ConftoolWriter>(*config_.conftool, host, config_.agent.state_dir + "/conftool.json", cb,
                                                 clock_);
    conftool_->set_boot_id(read_boot_id(config_.agent.boot_id_file));
  }
}

void Runtime::start_responders() {
  AdminHandler::Deps deps;
  deps.clock = &clock_;
  deps.snapshot = [this] { return snapshot_.load(); };
  deps.config = [this] {
    std::lock_guard<std::mutex> lk(config_mu_);
    return static_cast<const ModelConfig&>(config_);
  };
  deps.run_on_owner = [this](const std::function<void(HealthModel&)>& fn) { return run_on_owner(fn); };
  deps.post = [this](std::function<void(HealthModel&)> fn) { post(std::move(fn)); };
  deps.persist = [this](HealthModel& e) { return persist(e); };
  deps.publish = [this] { publish(); };
  deps.poll_peers = [this] { return peers_ ? peers_->poll_now() : std::vector<PeerState>{}; };
  deps.stopping = [this] { return stopping_.load(); };
  deps.conftool = conftool_.get();
  admin_handler_ = std::make_unique<AdminHandler>(std::move(deps));
  admin_ = std::make_unique<AdminServer>(config_.agent.admin_socket,
                                         [this](const std::string& line, const PeerCred& cred) {
                                           return admin_handler_->handle(line, cred);
                                         },
                                         [this](const PeerCred& cred) {
                                           std::string who, error;
                                           return admin_handler_->authorised(cred, &who, &error);
                                         });
  admin_->start();
  if (config_.haproxy_agent) {
    agent_check_ = std::make_unique<AgentCheckResponder>(config_.haproxy_agent->listen, [this] {
      std::vector<AgentCheckService> out;
      for (const auto& s : snapshot_.load()->services)
        out.push_back({s.name, effective_name(s.effective.state), intent_name(s.intent.intent), s.effective.reason});
      return out;
    });
    agent_check_->start();
  }
}

void Runtime::start_loops() {
  refresh_probes();
  auto urls = all_peer_urls(config_);
  peers_ = std::make_unique<PeerWatcher>(urls, kPeerPollInterval, kPeerPollTimeout,
                                         [this](std::vector<PeerState> p) {
                                           post([p = std::move(p)](HealthModel& e) mutable { e.set_peers(std::move(p)); });
                                         },
                                         clock_);
  if (!urls.empty()) peers_->start();
  unit_watcher_ = std::make_unique<UnitWatcher>(
      UnitWatcher::Options{},
      UnitWatcher::Callbacks{
          [this](const UnitState& s, bool resync) { post([s, resync](HealthModel& e) { e.on_unit(s, resync); }); },
          [this](const std::string& unit, const std::string& error) {
            post([unit, error](HealthModel& e) { e.set_unit_unwatched(unit, error); });
          }});
  unit_watcher_->set_units(configured_units(config_));
  snapshot_.store(model_->snapshot());
  floor_thread_ = std::thread([this] { floor_loop(); });
  owner_ = std::thread([this] { owner_loop(); });
  post([](HealthModel& e) { e.set_lifecycle(Lifecycle::kRunning); });
  if (conftool_) conftool_->start();
}

void Runtime::begin_stop(StopAction action) {
  stopping_ = true;  // from now on admin changes are refused
  std::map<std::string, ServiceConfig> configured;
  {
    std::lock_guard<std::mutex> lk(config_mu_);
    configured = config_.services;
  }
  if (action != StopAction::kDrain) {
    // A restart: the pool state stays exactly as it is; the next process in this boot
    // starts from the checks' state as it is now.
    CarryOver carry;
    carry.boottime_ms = boottime_ms();
    run_on_owner([&](HealthModel& e) {
      e.set_lifecycle(Lifecycle::kStopping);
      publish();
      carry.boot_id = e.boot_id();
      for (const auto& [name, cc] : e.config().checks)
        if (const CheckState* st = e.check_state(name)) carry.checks[name] = {st->health(), cc.fingerprint};
      for (const auto& s : e.snapshot()->services) carry.services[s.name] = effective_name(s.effective.state);
    });
    std::string err = carry.boot_id.empty() ? "no boot id" : save_carryover(config_.agent.state_dir, carry);
    if (!err.empty()) log_warn("cannot save the checks' state for the restart; it starts cold", {{"error", err}});
    log_info("restart: pool state left as it is (no drain, no conftool write)");
    return;
  }

  // A shutdown drain. Services with nothing to take out leave at once; the others one by
  // one through the floor, staying pooled until it agrees (and for good if it refuses).
  auto snap = snapshot_.load();
  std::vector<std::string> now, floor;
  for (const auto& sv : snap->services) {
    auto it = configured.find(sv.name);
    if (it == configured.end()) continue;
    if (it->second.hold_on_reboot) {
      log_info("shutdown drain: held (on_reboot = \"hold\"): stays pooled", {{"service", sv.name}});
      continue;
    }
    bool needs_floor = sv.intent.intent != Intent::kInactive &&
                       (conftool_ || (!it->second.peers.empty() && sv.effective.state == Effective::kPooled));
    (needs_floor ? floor : now).push_back(sv.name);
  }
  run_on_owner([&](HealthModel& e) {
    e.set_lifecycle(Lifecycle::kStopping);
    for (const auto& name : now) e.release_for_stop(name);
    publish();
  });
  admin_handler_->drain_through_floor(floor, *snap);
}

bool Runtime::wait_conftool_written(Duration limit) {
  if (!conftool_) return true;
  SteadyTime end = clock_.now() + limit;
  // A failed sync returns at once; the next waits out the writer's backoff, which etcd
  // answering its liveness thread again cuts short.
  for (Duration left = limit; left > Duration::zero(); left = end - clock_.now())
    if (conftool_->wait_synced(left)) return true;
  return false;
}

void Runtime::shutdown() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (shut_down_) return;
    shut_down_ = true;
    stop_ = true;
    stopping_ = true;
    if (!owner_.joinable()) {
      // Never started: nothing will run the inbox; waiters see their promise broken.
      owner_done_ = true;
      inbox_.clear();
    }
  }
  cv_.notify_all();
  // In parallel: each is bounded by its own timeouts (a peer poll 1 s, an etcd request
  // 2 s), and admin workers still waiting on the owner get "agent is stopping".
  std::vector<std::thread> stoppers;
  if (peers_) stoppers.emplace_back([this] { peers_->stop(); });
  stoppers.emplace_back([this] {
    {
      std::lock_guard<std::mutex> lk(floor_mu_);
      floor_stop_ = true;
    }
    floor_cv_.notify_all();
    if (floor_thread_.joinable()) floor_thread_.join();
  });
  if (conftool_) stoppers.emplace_back([this] { conftool_->stop(); });
  if (agent_check_) stoppers.emplace_back([this] { agent_check_->stop(); });
  if (admin_) stoppers.emplace_back([this] { admin_->stop(); });
  if (unit_watcher_) stoppers.emplace_back([this] { unit_watcher_->stop(); });
  for (auto& t : stoppers) t.join();
  if (owner_.joinable()) owner_.join();
  if (http_) http_->stop();
  // Probes: transfers in flight are dropped; a blocking probe still running after a
  // short grace (an exec check with a 30 s timeout, a hung mount) is left to the process
  // exit, which the caller then makes with _exit().
  if (prober_ && !prober_->stop(std::chrono::milliseconds(200))) {
    abandoned_ = true;
    log_warn("a probe is still running: not waiting for it");
  }
  probes_.clear();
  http_.reset();
  sweep_leftover_children(/*everything=*/true);  // nothing a probe started outlives the agent
}

bool Runtime::post(std::function<void(HealthModel&)> fn) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (owner_done_) return false;
    inbox_.push_back(std::move(fn));
  }
  cv_.notify_all();
  return true;
}

void Runtime::post_result(const std::string& check, uint64_t gen, uint64_t seq, Result r) {
  bool wake;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (owner_done_) return;
    SteadyTime now = clock_.now();
    auto a = awaited_.find(check);
    bool awaited = a != awaited_.end() && a->second == seq;
    if (awaited) awaited_.erase(a);
    wake = results_.push({check, gen, seq, std::move(r), now, awaited}, now);
  }
  if (wake) cv_.notify_all();
}

bool Runtime::run_on_owner(const std::function<void(HealthModel&)>& fn) {
  auto done = std::make_shared<std::promise<bool>>();
  auto fut = done->get_future();
  if (!post([&fn, done](HealthModel& e) {
        fn(e);
        done->set_value(true);
      }))
    return false;
  // Once queued, the owner runs it (its last turn takes the whole inbox); a broken
  // promise means it never will.
  try {
    return fut.get();
  } catch (const std::future_error&) {
    return false;
  }
}

void Runtime::queue_leave_polls(std::vector<HealthModel::LeavePoll> polls) {
  if (polls.empty()) return;
  {
    std::lock_guard<std::mutex> lk(floor_mu_);
    for (auto& p : polls) floor_pending_.push_back(std::move(p));
  }
  floor_cv_.notify_all();
}

void Runtime::floor_loop() {
  std::unique_lock<std::mutex> lk(floor_mu_);
  while (!floor_stop_) {
    if (floor_pending_.empty()) {
      floor_cv_.wait(lk);
      continue;
    }
    // Every attempt announced so far shares one poll; those told to wait poll again.
    std::vector<HealthModel::LeavePoll> batch = std::exchange(floor_pending_, {});
    lk.unlock();
    for (int round = 1; !batch.empty(); ++round) {
      std::vector<PeerState> states = peers_->poll_now();
      std::vector<HealthModel::LeavePoll> again;
      bool last = round >= kLeaveMaxPolls;
      bool ran = run_on_owner([&](HealthModel& e) {
        e.set_peers(states);
        for (const auto& p : batch)
          if (e.floor_leave_poll(p.service, p.attempt, last) == LeaveDecision::kWait) again.push_back(p);
        publish();
      });
      batch = ran ? std::move(again) : std::vector<HealthModel::LeavePoll>{};
      if (batch.empty()) break;
      lk.lock();
      bool stop = floor_cv_.wait_for(lk, kLeaveRepollDelay, [this] { return floor_stop_; });
      lk.unlock();
      if (stop) break;
    }
    lk.lock();
  }
}

void Runtime::publish() {
  auto s = model_->snapshot();
  if (s != snapshot_.load()) snapshot_.store(std::move(s));
}

void Runtime::owner_loop() {
  uint64_t watchdog_usec = 0;
  bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0;
  auto watchdog_every = std::chrono::microseconds(watchdog_usec / 2);
  SteadyTime next_ping = clock_.now();
  std::vector<ProbeResult> results;
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    std::deque<std::function<void(HealthModel&)>> work;
    work.swap(inbox_);
    results_.take(results);
    lk.unlock();
    for (const auto& r : results) model_->on_result(r.check, r.gen, r.seq, r.result, r.at);
    for (auto& fn : work) fn(*model_);
    model_->tick();
    publish();  // before probes start: a state change is visible at once
    queue_leave_polls(model_->take_leave_polls());  // their announcements are published now
    auto due = model_->take_due();
    if (!due.empty()) {
      std::lock_guard<std::mutex> g(mu_);
      for (const auto& d : due) {
        if (d.fast) awaited_[d.name] = d.seq;  // the latest fast probe per check
        else awaited_.erase(d.name);
      }
    }
    for (const auto& d : due) {
      auto it = probes_.find(d.name);
      if (it != probes_.end()) prober_->trigger(d.name, d.gen, it->second, d.seq, d.timeout);
    }
    // Leftovers that did not die at once (uninterruptible sleep) are reaped here.
    LeftoverStats left = leftover_stats();
    if (left.alive > 0) left = sweep_leftover_children();
    model_->set_leftover_processes(left.alive, left.killed_total);
    SteadyTime now = clock_.now();
    if (watchdog && now >= next_ping) {
      sd_notify(0, "WATCHDOG=1");  // only while this loop turns: a stuck owner gets restarted
      next_ping = now + watchdog_every;
    }
    SteadyTime wake = std::min(model_->next_due(), now + std::chrono::seconds(1));
    // Results on their way are taken together at the next turn (result_batch.h).
    if (model_->probes_awaiting() > 0) wake = std::min(wake, now + kResultDelay);
    if (watchdog) wake = std::min(wake, next_ping);
    lk.lock();
    if (inbox_.empty() && results_.empty() && !stop_) {
      results_.waiting_until(wake);
      cv_.wait_until(lk, wake);
    }
  }
  std::deque<std::function<void(HealthModel&)>> work;
  work.swap(inbox_);
  results_.take(results);
  owner_done_ = true;  // nothing queued after this would ever run: post() refuses
  lk.unlock();
  for (const auto& r : results) model_->on_result(r.check, r.gen, r.seq, r.result, r.at);
  for (auto& fn : work) fn(*model_);
  publish();
}

std::string Runtime::reload(const std::string& file) {
  Config next;
  try {
    next = load_config(file);
  } catch (const ConfigError& e) {
    metrics_.config_reload(false);
    log_error("config reload refused; the running config stays", {{"error", e.what()}});
    return e.what();
  }
  if (next.agent.hostname.empty()) next.agent.hostname = config_.agent.hostname;
  // Sockets and the state directory stay as they are until a restart.
  for (auto [key, now, want] : {std::tuple{"listen", &config_.agent.listen, &next.agent.listen},
                                std::tuple{"admin_socket", &config_.agent.admin_socket, &next.agent.admin_socket},
                                std::tuple{"state_dir", &config_.agent.state_dir, &next.agent.state_dir}}) {
    if (*want != *now) log_warn(std::string("agent.") + key + " changed: takes effect at the next restart");
    *want = *now;
  }
  bool ran = run_on_owner([&](HealthModel& e) {
    e.reconfigure(next);
    refresh_probes();
    publish();  // visible before reload() returns and the metric says so
  });
  if (!ran) {
    log_warn("config reload skipped: the agent is stopping");
    return "agent is stopping";
  }
  if (peers_) {
    auto urls = all_peer_urls(next);
    peers_->set_urls(urls);
    if (!urls.empty()) peers_->start();
  }
  if (unit_watcher_) unit_watcher_->set_units(configured_units(next));
  {
    std::lock_guard<std::mutex> lk(config_mu_);
    config_ = next;
  }
  metrics_.config_reload(true);
  log_info("config reloaded", {{"file", file}, {"services", std::to_string(next.services.size())},
                               {"checks", std::to_string(next.checks.size())}});
  return "";
}

}  // namespace poolkeeper
