// The health model, and the state owner's model as one piece. HealthModel folds probe
// results into check states and those into service health; with the operator's intent,
// the lifecycle and the safety floor (floor.h; from the peers' states, or conftool's
// verdicts) it decides each service's effective state, and emits every transition to
// its Observers (events.h). It composes the two parts that are not health:
//   ProbeScheduler (scheduler.h)        when each probe is due, which one is in flight;
//   SnapshotBuilder (snapshot_builder.h) the Snapshot readers see, rebuilt piecewise.
// A result touches only its check, the services using it and their views, so its cost
// does not grow with the number of checks. Single-threaded by contract (one owner
// thread calls everything); it does no I/O and reads time only from the injected
// Clock, so unit tests drive it in simulated time. The threaded runtime around it
// lives in agent/runtime/runtime.h.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "agent/model/events.h"
#include "agent/model/floor.h"
#include "agent/model/health.h"
#include "agent/model/model_config.h"
#include "agent/model/scheduler.h"
#include "agent/model/snapshot.h"
#include "agent/model/snapshot_builder.h"
#include "agent/model/unit_state.h"

namespace poolkeeper {

class HealthModel {
 public:
  // `uniform01` returns values in [0, 1) for jitter and start-up spread. `boot_id`
  // identifies this boot (for `depool --until-boot`).
  HealthModel(const ModelConfig& config, const Clock& clock, std::function<double()> uniform01,
         std::string boot_id = "");

  // Observers get every result and transition as it happens, and each new snapshot.
  // An intent the model changed by itself (expiry, return after boot) comes as an
  // "intent" event with `automatic` set, for the owner to persist.
  void add_observer(Observer* o) { observers_.push_back(o); }

  // Scheduling. Each check has at most one probe in flight. First probes are spread
  // over [0, interval/2) after start; later ones come `interval` (or `fast_interval`
  // while the check is changing state) after the previous result, plus a jitter of up
  // to 10% of that interval. Results carry the generation of the check they were
  // started for and the probe's sequence number; results of a check replaced by a
  // reload, or of a probe that is no longer the one in flight, are dropped.
  //
  // Stuck probes: a probe still in flight `timeout + kOverdueGrace` after it started
  // is counted as a `timeout` failure, and again at the check's schedule (interval,
  // or fast_interval while changing) for as long as it stays stuck, so a hung probe
  // turns its check unhealthy after `fall` such deadlines and keeps it so. No second
  // copy is started while it is stuck; its late result, when it comes, is dropped and
  // only frees the check for the next probe.
  static constexpr Duration kOverdueGrace = ProbeScheduler::kOverdueGrace;
  // Results kept per check for the status page's history (about a minute at 1 s).
  static constexpr size_t kHistoryLength = 60;
  using Due = ProbeScheduler::Due;
  std::vector<Due> take_due() { return scheduler_.take_due(); }
  // Lets a due probe wait a little for others falling due (ProbeScheduler::
  // set_start_window), so probes due close together start in one turn.
  void set_probe_start_window(double fraction, Duration max) { scheduler_.set_start_window(fraction, max); }
  // Earliest time anything is due: an idle check's probe, a stuck probe's next
  // overdue deadline, or an intent's expiry.
  SteadyTime next_due() const;
  // `at`: when the result came (now if not given), which the next probe counts from.
  void on_result(const std::string& check, uint64_t gen, uint64_t seq, const Result& r,
                 std::optional<SteadyTime> at = std::nullopt);
  // Probes in flight whose result is still expected in time.
  size_t probes_awaiting() const { return scheduler_.awaiting(); }
  // For tests: the result of the probe now in flight for `check` (or, with none in
  // flight, as if one had just been started and finished).
  void on_result(const std::string& check, const Result& r);
  uint64_t generation(const std::string& check) const { return scheduler_.generation(check); }
  // Counts overdue deadlines of stuck probes; called by tick().
  void check_overdue();

  void set_lifecycle(Lifecycle l);
  Lifecycle lifecycle() const { return lifecycle_; }
  // Stopping: a service keeps its running decision (a restart changes nothing; a drain
  // the floor refused stays in) until it is released, then it reports not pooled with
  // reason "stopping". The agent releases each service the floor lets go.
  void release_for_stop(const std::string& service);
  // Carry-over from a restart in the same boot: the check starts in this state.
  void seed_check(const std::string& check, CheckHealth h);

  // Intent. load_state() installs what was persisted; an unreadable file depools
  // every service with reason "state file unreadable: …".
  void load_state(const LoadedState& state);
  bool set_intent(const std::string& service, const AdminIntent& intent);
  const AdminIntent* intent(const std::string& service) const;
  std::map<std::string, AdminIntent> intents() const;
  // Expiries and returns after boot; called on every owner wake-up.
  void tick();

  // The latest view of the peer agents (all services' peers together). An unreachable
  // peer keeps its last known name and gets the time it became unreachable.
  void set_peers(std::vector<PeerState> peers);

  // Processes exec probes left behind (killed, not yet reaped) and how many such
  // leftovers were killed in all; shown in /status and metrics.
  void set_leftover_processes(int left_behind, uint64_t killed_total);

  // systemd units (checks' `unit`). A unit's state as systemd reports it: for every check
  // naming the unit, a change away from active/running (unit_away) brings the next probe
  // forward at once — one probe for a burst, never a second one in flight
  // (ProbeScheduler::probe_now) — and the check probes at fast_interval until it has
  // settled: a probe started after the event has come back, the unit is steady
  // (unit_steady) and the check is not changing. The unit never decides health itself;
  // a failing probe's reason names it. `resync`: the first state after a (re)connect,
  // which brings nothing forward unless a state was known before and this one differs.
  // A change emits a "unit" event (with the job and who asked, as far as systemd says).
  void on_unit(const UnitState& s, bool resync);
  // The unit cannot be watched (no bus, no such unit, bus lost): shown in /status; the
  // check polls as without a unit.
  void set_unit_unwatched(const std::string& unit, const std::string& error);

  // conftool: when enabled and up, the floor for a failing service is decided under
  // the etcd lock (verdicts from the ConftoolWriter); until a verdict comes, the host
  // stays in. When etcd is down the peers' /status decide, as without conftool.
  void set_conftool_enabled(bool on);
  void set_conftool_status(bool up, const std::string& error, const nlohmann::json& keys,
                           const nlohmann::json& liveness = nullptr, const nlohmann::json& endpoints = nullptr);
  void set_floor_verdict(const std::string& service, FloorVerdict v);
  const std::vector<PeerState>& peers() const { return peers_; }

  // The leave without etcd (floor.h, floor_leave). A failing service the peers' floor
  // decides stays pooled and, when the latest peer view says it could go, announces
  // its leave ("leaving" in /status) and asks for a fresh poll of the peers: one
  // LeavePoll, taken by the owner's caller once the announcement is published. The
  // poll's result comes back through floor_leave_poll() (after set_peers() with it),
  // which leaves, stays (withdrawing the announcement) or asks for another poll
  // (kWait; with `last`, a kWait is a kStay). A released service comes back in when
  // fewer than min_pooled others are pooled (floor_returns). At most one attempt per
  // new peer view after the last one ended.
  struct LeavePoll {
    std::string service;
    uint64_t attempt = 0;
  };
  std::vector<LeavePoll> take_leave_polls() { return std::exchange(leave_polls_, {}); }
  LeaveDecision floor_leave_poll(const std::string& service, uint64_t attempt, bool last);
  // An operator's leave (depool, drain, the shutdown drain) announced while it polls the
  // peers: shown as "leaving" in /status until withdrawn.
  void set_leaving(const std::string& service, bool on);

  // Applies a new config, keeping the state (streaks, results, the probe in flight)
  // of checks whose probe target did not change — a change of timing keys only
  // (interval, timeout, fast_interval, rise, fall, critical) adopts the new values
  // without starting over — and every intent of services that still exist.
  void reconfigure(const ModelConfig& config);

  const CheckState* check_state(const std::string& check) const;
  const ModelConfig& config() const { return config_; }
  const std::string& boot_id() const { return boot_id_; }

  // The current picture (rebuilt only after a change, from the views that changed).
  // Observers' on_snapshot() runs once for each new one.
  std::shared_ptr<const Snapshot> snapshot();
  uint64_t version() const { return version_; }
  // For tests: the same picture with every view made afresh (what snapshot() must equal).
  std::shared_ptr<const Snapshot> snapshot_from_scratch() const;

 private:
  // A check as the health model sees it (its timing is the scheduler's).
  struct CheckRuntime {
    CheckConfig cfg;
    CheckState state;
    std::optional<Result> last{};
    WallTime last_time{};
    WallTime since{};
    std::optional<WallTime> last_success{};
    std::vector<std::string> services{};
    std::shared_ptr<const std::vector<ResultPoint>> history = std::make_shared<const std::vector<ResultPoint>>();
    // Since a unit event: probes with this sequence number or later look at the state
    // after it (0 = not hurried: no event waiting to settle).
    uint64_t hurry_seq = 0;
    std::string away_text{};  // unit_text() of the last away state since the event
  };
  struct UnitTrack {
    UnitState state;
    bool known = false;  // state comes from systemd now
    bool seen = false;   // a state has come at least once (kept while unwatched)
    std::string error;   // why not, when not
    std::optional<UnitView::Job> last_job;
  };
  struct ServiceRuntime {
    ServiceConfig cfg;
    AdminIntent intent;
    EffectiveState effective{Effective::kNotPooled, "starting"};
    bool healthy = false;
    bool failing = false;
    bool kept_by_floor = false;
    bool stop_released = false;
    // The peers' floor (floor_leave): the failing service was let go; a leave of it is
    // announced, attempt number, the peer view it started from; an operator's leave
    // is announced.
    bool floor_released = false;
    bool leave_announced = false;
    uint64_t leave_attempt = 0;
    uint64_t attempt_peers_gen = 0;
    bool operator_leaving = false;
    std::string health_reason;
    std::vector<std::string> warnings;
    WallTime since{};
  };

  CheckRuntime new_check(const CheckConfig& cc, WallTime wall);
  // fast_interval: the check is changing state, or settling after a unit event.
  bool fast(const CheckRuntime& rt) const { return rt.state.changing() || rt.hurry_seq != 0; }
  // What a failing result's reason adds about the unit ("" when nothing to say).
  std::string unit_note(const CheckRuntime& rt) const;
  void maybe_settle(CheckRuntime& rt, uint64_t seq);
  // Folds one result (a probe's, or a stuck probe's overdue deadline) into the check.
  void submit(const std::string& name, CheckRuntime& rt, const Result& r);
  // Decides one service (or all: after a change that concerns every service).
  void recompute_service(const std::string& name, ServiceRuntime& svc, WallTime wall);
  void recompute_services();
  // The peers' floor for a failing service: stays in (true) or was let go; starts a
  // leave attempt when the peer view allows one.
  bool peers_floor_keeps(const std::string& name, ServiceRuntime& svc);
  void check_changed(const std::string& name, const CheckRuntime& rt);
  void emit(Event e);
  void change_intent(ServiceRuntime& svc, const std::string& name, const AdminIntent& intent,
                     bool automatic = false);
  std::vector<PeerState> peers_for(const ServiceConfig& sc) const;
  CheckView check_view(const std::string& name, const CheckRuntime& c) const;
  std::optional<UnitView> unit_view(const CheckRuntime& c) const;  // set when the check names a unit
  ServiceView service_view(const std::string& name, const ServiceRuntime& svc) const;
  std::vector<PeerView> peer_views() const;
  void set_all_views(SnapshotBuilder& b) const;
  Snapshot host_wide() const;

  ModelConfig config_;
  const Clock& clock_;
  std::string boot_id_;
  ProbeScheduler scheduler_;
  SnapshotBuilder builder_;
  std::vector<Observer*> observers_;
  std::map<std::string, CheckRuntime> checks_;
  std::map<std::string, ServiceRuntime> services_;
  // Services whose intent can end by itself (an expiry, an until-boot depool).
  std::set<std::string> timed_intents_;
  std::vector<PeerState> peers_;
  std::map<std::string, UnitTrack> units_;  // by unit name
  uint64_t peers_gen_ = 0;  // counts set_peers()
  std::vector<LeavePoll> leave_polls_;
  Lifecycle lifecycle_ = Lifecycle::kStarting;
  WallTime lifecycle_since_{};
  bool conftool_enabled_ = false;
  bool conftool_up_ = false;
  nlohmann::json conftool_endpoints_;  // each etcd endpoint: in use, or why not
  std::string conftool_error_;
  nlohmann::json conftool_keys_ = nlohmann::json::object();
  nlohmann::json conftool_liveness_;
  std::map<std::string, FloorVerdict> verdicts_;
  bool state_ok_ = true;
  std::string state_error_;
  int leftover_processes_ = 0;
  uint64_t leftovers_killed_ = 0;
  uint64_t version_ = 1;
  // What changed since the last snapshot: views to rebuild.
  std::set<std::string> dirty_checks_, dirty_services_;
  bool all_dirty_ = true, peers_dirty_ = true;
  std::shared_ptr<const Snapshot> snapshot_;
};

}  // namespace poolkeeper
