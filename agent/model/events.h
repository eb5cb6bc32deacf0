// Transitions (check, service, intent, lifecycle) as one stream. Everything that
// reacts to state — metrics, the event log, the HTTP snapshot — subscribes to it
// through Observer; probe code never has side effects of its own.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/base/clock.h"
#include "agent/base/probe.h"

namespace poolkeeper {

// What an event is about. Its name (event_kind_name) is the event log's `event=` and
// the JSON's "kind": part of the interface, never renamed.
enum class EventKind { kCheck, kService, kIntent, kLifecycle, kConfig, kUnit, kConftool };
const char* event_kind_name(EventKind k);

struct Event {
  WallTime when{};
  EventKind kind = EventKind::kCheck;
  std::string name;  // check or service name; "" for the host
  std::string from;
  std::string to;
  std::string reason;
  // An intent the model changed by itself (an expiry, a return after reboot), which
  // the owner persists; false for everything else.
  bool automatic = false;
};

// "ts=… event=check name=web from=healthy to=unhealthy reason=\"status 500\""
std::string event_logfmt(const Event& e);
nlohmann::json event_json(const Event& e);

struct Snapshot;

// Subscribers to the state owner: the one stream every publisher reads (metrics, the
// event log, the conftool writer's feed, persistence of automatic intent changes).
// Called on the owner's thread; must not block.
class Observer {
 public:
  virtual ~Observer() = default;
  // Each probe result (and each overdue deadline of a stuck probe) as it is folded in.
  virtual void on_result(const std::string& /*check*/, const Result& /*r*/, WallTime /*when*/) {}
  // Each transition, as it happens.
  virtual void on_event(const Event& /*e*/) {}
  // Each new snapshot, once, when it is built: what readers will see next. Lists that
  // did not change are shared with the previous one (SharedList::shared() compares).
  virtual void on_snapshot(const Snapshot& /*s*/) {}
};

}  // namespace poolkeeper
