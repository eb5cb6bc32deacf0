// Watches the systemd units that checks name (`unit = "nginx.service"`) over sd-bus, on
// its own thread, and reports each one's state as systemd says it: the only place that
// speaks to the bus for units. What a state means for a check is the model's
// (unit_state.h, HealthModel::on_unit); this file only decodes.
//
// It connects as the agent's own user to the system bus (as root without dbus-daemon:
// systemd's private socket), calls Manager.Subscribe, finds each unit's object with
// LoadUnit, matches PropertiesChanged on it (Unit: ActiveState, SubState, Job; Service:
// Result, ExecMainCode, ExecMainStatus), reads the state once, and then reports every
// change — with a new job's type and ActivationDetails read from the job object.
// Without systemd, without the bus, or for a unit that does not exist it logs one
// warning line and reports the unit unwatched (the check polls as without a unit); a
// lost bus (dbus restarting) is reconnected with a backoff from 1 s doubling to 1 min.
// Callbacks run on the watcher's thread and must not block; thread-safe otherwise.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "agent/base/clock.h"
#include "agent/model/model_config.h"
#include "agent/model/unit_state.h"

namespace poolkeeper {

class UnitWatcher {
 public:
  struct Callbacks {
    // The unit's state after a change; `resync` for the first one after (re)connecting.
    std::function<void(const UnitState& s, bool resync)> state;
    // The unit is not (or no longer) watched, and why.
    std::function<void(const std::string& unit, const std::string& error)> unwatched;
  };
  struct Options {
    std::string address;  // a D-Bus address; "" = the system bus (see above)
    Duration retry_min = std::chrono::seconds(1);
    Duration retry_max = std::chrono::minutes(1);
  };

  UnitWatcher(Options options, Callbacks callbacks);
  ~UnitWatcher();
  UnitWatcher(const UnitWatcher&) = delete;
  UnitWatcher& operator=(const UnitWatcher&) = delete;

  // The units to watch (a reload may change them); the thread starts with the first
  // non-empty set. A changed set is watched afresh on a new connection.
  void set_units(const std::set<std::string>& units);
  // Bounded by one bus call's timeout (2 s).
  void stop();

 private:
  void run();
  void wake();

  Options options_;
  Callbacks callbacks_;
  std::mutex mu_;
  std::set<std::string> units_;
  uint64_t units_version_ = 0;
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;
  std::thread thread_;
};

// Every unit the config's checks name.
std::set<std::string> configured_units(const ModelConfig& config);

}  // namespace poolkeeper
