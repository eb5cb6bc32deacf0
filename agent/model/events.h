// Transitions (check, service, intent, lifecycle) as one stream. Everything that
// reacts to state — metrics, the event log, the HTTP snapshot — subscribes to it
// through Observer; probe code never has side effects of its own.
#pragma once

#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/base/clock.h"
#include "agent/base/probe.h"

namespace poolkeeper {

struct Event {
  WallTime when{};
  std::string kind;  // "check", "service", "intent", "lifecycle", "config"
  std::string name;  // check or service name; "" for the host
  std::string from;
  std::string to;
  std::string reason;
};

// "ts=… event=check name=web from=healthy to=unhealthy reason=\"status 500\""
std::string event_logfmt(const Event& e);
nlohmann::json event_json(const Event& e);

// Bounded history of recent events (the /events endpoint). Not thread-safe: owned by
// the state owner; readers get copies through the snapshot.
class EventRing {
 public:
  explicit EventRing(size_t capacity = 256) : capacity_(capacity) {}
  void push(Event e);
  const std::deque<Event>& items() const { return items_; }

 private:
  size_t capacity_;
  std::deque<Event> items_;
};

struct Snapshot;

// Subscribers to the state owner. Called on the owner's thread; must not block.
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_result(const std::string& /*check*/, const Result& /*r*/, WallTime /*when*/) {}
  virtual void on_event(const Event& /*e*/) {}
  virtual void on_snapshot(const Snapshot& /*s*/) {}
};

}  // namespace poolkeeper
