// The state owner's logic: schedules probes, folds their results into check states,
// service health, intent and lifecycle, decides each service's effective state, and
// emits events. Single-threaded by contract (one owner thread calls everything); it
// does no I/O and reads time only from the injected Clock, so unit tests drive it in
// simulated time. The threaded runtime around it lives in agent/agent.h.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/events.h"
#include "agent/health.h"
#include "agent/snapshot.h"

namespace poolkeeper {

class Engine {
 public:
  // `uniform01` returns values in [0, 1) for jitter and start-up spread.
  Engine(const Config& config, const Clock& clock, std::function<double()> uniform01);

  void add_observer(Observer* o) { observers_.push_back(o); }

  // Scheduling. Each check has at most one probe in flight. First probes are spread
  // over [0, interval/2) after start; later ones come `interval` (or `fast_interval`
  // while the check is changing state) after the previous result, plus a jitter of up
  // to 10% of that interval.
  std::vector<std::string> take_due();
  SteadyTime next_due() const;  // earliest due time of an idle check; max() if none
  void on_result(const std::string& check, const Result& r);

  void set_lifecycle(Lifecycle l);
  Lifecycle lifecycle() const { return lifecycle_; }

  // Returns false for an unknown service.
  bool set_intent(const std::string& service, const AdminIntent& intent);
  const AdminIntent* intent(const std::string& service) const;

  const CheckState* check_state(const std::string& check) const;
  const Config& config() const { return config_; }

  // The current picture (rebuilt only after a change).
  std::shared_ptr<const Snapshot> snapshot();
  uint64_t version() const { return version_; }

 private:
  struct CheckRuntime {
    CheckConfig cfg;
    CheckState state;
    SteadyTime next_due{};
    bool in_flight = false;
    std::optional<Result> last{};
    WallTime last_time{};
    WallTime since{};
    std::optional<WallTime> last_success{};
    std::vector<std::string> services{};
  };
  struct ServiceRuntime {
    ServiceConfig cfg;
    AdminIntent intent;
    EffectiveState effective{Effective::kNotPooled, "starting"};
    bool healthy = false;
    std::string health_reason;
    std::vector<std::string> warnings;
    WallTime since{};
  };

  Duration jittered(Duration base);
  void recompute_services();
  void emit(Event e);

  Config config_;
  const Clock& clock_;
  std::function<double()> uniform01_;
  std::vector<Observer*> observers_;
  std::map<std::string, CheckRuntime> checks_;
  std::map<std::string, ServiceRuntime> services_;
  Lifecycle lifecycle_ = Lifecycle::kStarting;
  WallTime lifecycle_since_{};
  EventRing events_;
  uint64_t version_ = 1;
  std::shared_ptr<const Snapshot> snapshot_;
};

}  // namespace poolkeeper
