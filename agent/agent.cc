#include "agent/agent.h"

#include <grp.h>
#include <pwd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <random>
#include <set>
#include <tuple>

#include "agent/admin_protocol.h"
#include "agent/conftool_wants.h"
#include "agent/duration.h"
#include "agent/log.h"

namespace poolkeeper {

// Runs one check's probes, one at a time, on its own thread.
class ProbeWorker {
 public:
  using Done = std::function<void(const std::string&, uint64_t, Result)>;
  ProbeWorker(std::string name, uint64_t gen, std::shared_ptr<Check> check, Duration timeout, Done done)
      : name_(std::move(name)), gen_(gen), check_(std::move(check)), timeout_(timeout), done_(std::move(done)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~ProbeWorker() {
    retire();
    thread_.join();
  }
  void retire() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_one();
  }
  void trigger() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      pending_ = true;
    }
    cv_.notify_one();
  }
  uint64_t gen() const { return gen_; }

 private:
  void loop() {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      cv_.wait(lk, [this] { return stop_ || pending_; });
      if (stop_) return;
      pending_ = false;
      lk.unlock();
      Result r = run_probe(*check_, timeout_);
      done_(name_, gen_, std::move(r));
      lk.lock();
    }
  }

  std::string name_;
  uint64_t gen_;
  std::shared_ptr<Check> check_;
  Duration timeout_;
  Done done_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false, stop_ = false;
  std::thread thread_;
};

std::string read_boot_id(const std::string& path) {
  std::ifstream in(path);
  std::string id;
  std::getline(in, id);
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

namespace {
std::vector<std::string> all_peer_urls(const Config& c) {
  std::set<std::string> urls;
  for (const auto& [name, s] : c.services) urls.insert(s.peers.begin(), s.peers.end());
  return {urls.begin(), urls.end()};
}
}  // namespace

Agent::Agent(Config config, const Clock& clock)
    : config_(std::move(config)), clock_(clock), store_(config_.agent.state_dir) {
  auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
  engine_ = std::make_unique<Engine>(
      config_, clock_,
      [rng] { return std::uniform_real_distribution<double>(0.0, 1.0)(*rng); },
      read_boot_id(config_.agent.boot_id_file));
  engine_->add_observer(&metrics_);
  struct EventLogger : Observer {
    void on_event(const Event& e) override { log_raw(event_logfmt(e)); }
  };
  static EventLogger logger;
  engine_->add_observer(&logger);
  engine_->on_auto_intent([this] {
    std::string err = persist(*engine_);
    if (!err.empty()) log_error("cannot save state", {{"error", err}});
  });
  snapshot_.store(engine_->snapshot());
}

Agent::~Agent() { shutdown(); }

std::string Agent::persist(Engine& e) { return store_.save(e.intents()); }

void Agent::make_workers() {
  // Called on the owner thread (or before it starts). Checks whose generation changed
  // get a new worker; the old one finishes its probe and its result is dropped.
  std::map<std::string, std::unique_ptr<ProbeWorker>> next;
  for (const auto& [name, cc] : engine_->config().checks) {
    uint64_t gen = engine_->generation(name);
    auto it = workers_.find(name);
    if (it != workers_.end() && it->second->gen() == gen) {
      next[name] = std::move(it->second);
      continue;
    }
    next[name] = std::make_unique<ProbeWorker>(
        name, gen, cc.check, cc.timeout, [this](const std::string& n, uint64_t g, Result r) {
          post([n, g, r = std::move(r)](Engine& e) { e.on_result(n, g, r); });
        });
  }
  for (auto& [name, w] : workers_) {
    if (!w) continue;
    w->retire();
    retired_.push_back(std::move(w));
  }
  workers_ = std::move(next);
}

void Agent::start() {
  LoadedState st = store_.load();
  if (st.status == LoadedState::Status::kUnreadable) {
    log_error("STATE FILE UNREADABLE: every service starts depooled until an operator pools it",
              {{"error", st.error}});
  }
  engine_->load_state(st);
  metrics_.state_file(st.status != LoadedState::Status::kUnreadable);

  HttpServerOptions opts;
  opts.listen = config_.agent.listen;
  http_ = std::make_unique<HttpServer>(opts, [this] { return snapshot_.load(); }, &metrics_);
  http_->start();
  admin_ = std::make_unique<AdminServer>(config_.agent.admin_socket,
                                         [this](const std::string& line, const PeerCred& cred) {
                                           return handle_admin(line, cred);
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
  make_workers();
  auto urls = all_peer_urls(config_);
  peers_ = std::make_unique<PeerWatcher>(urls, std::chrono::milliseconds(500), std::chrono::seconds(1),
                                         [this](std::vector<PeerState> p) {
                                           post([p = std::move(p)](Engine& e) mutable { e.set_peers(std::move(p)); });
                                         });
  if (!urls.empty()) peers_->start();
  if (config_.conftool) {
    engine_->set_conftool_enabled(true);
    std::string host = config_.conftool->hostname.empty() ? config_.agent.hostname : config_.conftool->hostname;
    ConftoolWriter::Callbacks cb;
    cb.adopt = [this](const std::string& svc, const std::string& pooled) {
      post([this, svc, pooled](Engine& e) {
        AdminIntent i;
        i.intent = pooled == "yes" ? Intent::kPooled : pooled == "inactive" ? Intent::kInactive : Intent::kDepooled;
        i.reason = "set via conftool";
        i.who = "conftool";
        i.when = clock_.wall();
        e.set_intent(svc, i);
        std::string err = persist(e);
        if (!err.empty()) log_error("cannot save state", {{"error", err}});
      });
    };
    cb.verdict = [this](const std::string& svc, FloorVerdict v) {
      post([svc, v](Engine& e) { e.set_floor_verdict(svc, v); });
    };
    cb.status = [this](bool up, const std::string& error, const nlohmann::json& keys) {
      post([up, error, keys](Engine& e) { e.set_conftool_status(up, error, keys); });
    };
    conftool_ = std::make_unique<ConftoolWriter>(*config_.conftool, host, config_.agent.state_dir + "/conftool.json", cb);
  }
  snapshot_.store(engine_->snapshot());
  owner_ = std::thread([this] { owner_loop(); });
  post([](Engine& e) { e.set_lifecycle(Lifecycle::kRunning); });
  if (conftool_) conftool_->start();
}

void Agent::begin_stop() {
  post([](Engine& e) { e.set_lifecycle(Lifecycle::kStopping); });
}

void Agent::shutdown() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (shut_down_) return;
    shut_down_ = true;
    stop_ = true;
  }
  cv_.notify_all();
  if (peers_) peers_->stop();
  if (conftool_) conftool_->stop();
  if (agent_check_) agent_check_->stop();
  if (admin_) admin_->stop();
  if (owner_.joinable()) owner_.join();
  if (http_) http_->stop();
  for (auto& [n, w] : workers_) w->retire();
  workers_.clear();  // joins each worker after its in-flight probe ends
  retired_.clear();
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
  if (s == snapshot_.load()) return;
  snapshot_.store(s);
  if (conftool_) conftool_->update(conftool_wants(*s, engine_->config()), conftool_peers(*s, engine_->config()));
}

void Agent::owner_loop() {
  uint64_t watchdog_usec = 0;
  bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0;
  auto watchdog_every = std::chrono::microseconds(watchdog_usec / 2);
  SteadyTime next_ping = SteadyClock::now();
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    std::deque<std::function<void(Engine&)>> work;
    work.swap(inbox_);
    lk.unlock();
    for (auto& fn : work) fn(*engine_);
    engine_->tick();
    publish();  // before probes start: a state change is visible at once
    for (const auto& d : engine_->take_due()) {
      auto it = workers_.find(d.name);
      if (it != workers_.end()) it->second->trigger();
    }
    SteadyTime now = SteadyClock::now();
    if (watchdog && now >= next_ping) {
      sd_notify(0, "WATCHDOG=1");  // only while this loop turns: a stuck owner gets restarted
      next_ping = now + watchdog_every;
    }
    SteadyTime wake = std::min(engine_->next_due(), now + std::chrono::seconds(1));
    if (watchdog) wake = std::min(wake, next_ping);
    lk.lock();
    if (inbox_.empty() && !stop_) cv_.wait_until(lk, wake);
  }
  std::deque<std::function<void(Engine&)>> work;
  work.swap(inbox_);
  lk.unlock();
  for (auto& fn : work) fn(*engine_);
  publish();
}

std::string Agent::reload(const std::string& file) {
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
  run_on_owner([&](Engine& e) {
    e.reconfigure(next);
    make_workers();
    publish();  // visible before reload() returns and the metric says so
  });
  if (peers_) {
    auto urls = all_peer_urls(next);
    peers_->set_urls(urls);
    if (!urls.empty()) peers_->start();
  }
  {
    std::lock_guard<std::mutex> lk(config_mu_);
    config_ = next;
  }
  metrics_.config_reload(true);
  log_info("config reloaded", {{"file", file}, {"services", std::to_string(next.services.size())},
                               {"checks", std::to_string(next.checks.size())}});
  return "";
}

bool Agent::authorised(const PeerCred& cred, std::string* who, std::string* error) const {
  char buf[4096];
  struct passwd pw, *pwp = nullptr;
  std::string user = std::to_string(cred.uid);
  if (::getpwuid_r(cred.uid, &pw, buf, sizeof buf, &pwp) == 0 && pwp) user = pwp->pw_name;
  *who = user;
  if (cred.uid == 0) return true;
  std::string group;
  {
    std::lock_guard<std::mutex> lk(config_mu_);
    group = config_.agent.admin_group;
  }
  if (!group.empty()) {
    struct group gr, *grp = nullptr;
    char gbuf[16384];
    if (::getgrnam_r(group.c_str(), &gr, gbuf, sizeof gbuf, &grp) == 0 && grp) {
      if (cred.gid == grp->gr_gid) return true;
      if (pwp) {
        int n = 64;
        std::vector<gid_t> groups(static_cast<size_t>(n));
        if (::getgrouplist(user.c_str(), pwp->pw_gid, groups.data(), &n) < 0) {
          groups.resize(static_cast<size_t>(n));
          ::getgrouplist(user.c_str(), pwp->pw_gid, groups.data(), &n);
        }
        for (int i = 0; i < n; ++i)
          if (groups[static_cast<size_t>(i)] == grp->gr_gid) return true;
      }
    }
  }
  *error = "permission denied: " + user + " is not root" +
           (group.empty() ? "" : " nor in group " + group);
  return false;
}

std::string Agent::handle_admin(const std::string& line, const PeerCred& cred) {
  std::string error;
  auto req = parse_admin_request(line, &error);
  if (!req) return admin_error(error);
  auto snap = snapshot_.load();
  std::vector<std::string> services = req->services;
  if (services.empty())
    for (const auto& s : snap->services) services.push_back(s.name);
  for (const auto& name : services) {
    if (!snap->find_service(name)) {
      std::string known;
      for (const auto& s : snap->services) known += (known.empty() ? "" : ", ") + s.name;
      return admin_error("unknown service \"" + name + "\" (known: " + known + ")");
    }
  }
  if (req->cmd == "status")
    return nlohmann::json{{"ok", true}, {"status", status_json(*snap)}}.dump() + "\n";
  if (req->cmd == "ispooled") {
    const ServiceView* s = snap->find_service(services[0]);
    return nlohmann::json{{"ok", true},
                          {"pooled", s->effective.state == Effective::kPooled},
                          {"effective", effective_name(s->effective.state)},
                          {"reason", s->effective.reason}}
               .dump() + "\n";
  }
  std::string who;
  if (!authorised(cred, &who, &error)) return admin_error(error);
  if (!req->sudo_user.empty() && req->sudo_user != who) who += " (sudo from " + req->sudo_user + ")";

  // The floor: taking a pooled service out must leave min_pooled others pooled and
  // healthy, judged from a fresh look at the peers (or, with conftool, from every
  // host's key under the etcd lock). The conftool sync waits until the intent below is
  // applied, so it cannot write back a "yes" decided before the depool.
  std::unique_lock<std::mutex> sync_hold;
  if (conftool_ && req->cmd != "pool") sync_hold = conftool_->hold_sync();
  if ((req->cmd == "depool" || req->cmd == "drain") && !req->force) {
    std::map<std::string, ServiceConfig> configured;
    std::string self;
    {
      std::lock_guard<std::mutex> lk(config_mu_);
      configured = config_.services;
      self = config_.agent.hostname;
    }
    std::vector<PeerState> fresh;
    bool polled = false;
    for (const auto& name : services) {
      auto it = configured.find(name);
      if (it != configured.end() && it->second.hold_on_reboot && req->until_boot) continue;  // held: stays in
      if (conftool_ && conftool_->up() && it != configured.end()) {
        // The atomic floor: decided and written under the etcd lock.
        bool unavailable = false;
        auto refusal = conftool_->take_out(name, it->second.min_pooled, &unavailable);
        if (refusal) return admin_error(*refusal);
        if (!unavailable) continue;
      }
      if (it == configured.end() || it->second.peers.empty() ||
          snap->find_service(name)->effective.state != Effective::kPooled)
        continue;
      const ServiceConfig& sc = it->second;
      if (!polled) {
        fresh = peers_->poll_now();
        polled = true;
      }
      std::vector<PeerState> mine;
      for (const auto& p : fresh)
        if (std::find(sc.peers.begin(), sc.peers.end(), p.url) != sc.peers.end() && p.host != self)
          mine.push_back(p);
      if (auto refusal = depool_refusal(name, sc.min_pooled, mine)) return admin_error(*refusal);
    }
    if (polled) post([fresh](Engine& e) { e.set_peers(fresh); });
  }

  WallTime now = clock_.wall();
  AdminIntent intent;
  intent.intent = req->cmd == "pool" ? Intent::kPooled : req->cmd == "drain" ? Intent::kDrained : Intent::kDepooled;
  intent.reason = req->reason;
  intent.who = who;
  intent.when = now;
  if (req->for_seconds) intent.expires = now + std::chrono::seconds(*req->for_seconds);
  intent.until_boot = req->until_boot;
  std::string save_error;
  nlohmann::json result = nlohmann::json::object();
  run_on_owner([&](Engine& e) {
    auto before = e.intents();
    intent.boot_id = req->until_boot ? e.boot_id() : "";
    for (const auto& name : services) e.set_intent(name, intent);
    save_error = persist(e);
    if (!save_error.empty()) {  // not acknowledged: put everything back
      for (const auto& [name, i] : before) e.set_intent(name, i);
      return;
    }
    auto s = e.snapshot();
    for (const auto& name : services) {
      const ServiceView* v = s->find_service(name);
      if (!v) {  // a reload removed it while this request was on its way
        result[name] = {{"effective", "unknown"}, {"reason", "removed by a config reload"}, {"port", 0}};
        continue;
      }
      result[name] = {{"effective", effective_name(v->effective.state)}, {"reason", v->effective.reason},
                      {"port", v->port}};
    }
    publish();
  });
  if (!save_error.empty()) {
    log_error("cannot save state; change not applied", {{"error", save_error}});
    return admin_error("cannot save state, nothing changed: " + save_error);
  }
  log_info("admin " + req->cmd, {{"services", [&] {
                                     std::string s;
                                     for (const auto& n : services) s += (s.empty() ? "" : ",") + n;
                                     return s;
                                   }()},
                                  {"who", who},
                                  {"reason", req->reason}});
  return nlohmann::json{{"ok", true}, {"services", result}}.dump() + "\n";
}

}  // namespace poolkeeper
