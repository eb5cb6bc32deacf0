// Snapshots for the tests and benches of what reads them (the HTTP API, the status
// page, the metrics): views by name with only what a test sets, a check view in one
// call, and one small fixed snapshot.
#pragma once

#include <initializer_list>
#include <string>

#include "agent/model/snapshot.h"

namespace pk_test {

// Checks and services with these names, everything else left at its default.
inline poolkeeper::Snapshot snapshot_of(std::initializer_list<const char*> checks,
                                        std::initializer_list<const char*> services = {}) {
  poolkeeper::Snapshot s;
  for (const char* name : checks) {
    poolkeeper::CheckView c;
    c.name = name;
    s.checks.push_back(c);
  }
  for (const char* name : services) {
    poolkeeper::ServiceView v;
    v.name = name;
    s.services.push_back(v);
  }
  return s;
}

// A check of `kind` probing `target`, `health` with `last` as its last result.
inline poolkeeper::CheckView check_view(const std::string& name, const std::string& kind, const std::string& target,
                                        poolkeeper::CheckHealth health, poolkeeper::Result last, int rise = 0,
                                        int fall = 0) {
  poolkeeper::CheckView c;
  c.name = name;
  c.kind = kind;
  c.target = target;
  c.health = health;
  c.rise = rise;
  c.fall = fall;
  c.last = std::move(last);
  return c;
}

// A small fixed Snapshot for tests of the HTTP endpoint: nfs pooled and healthy, http
// not pooled because its check "web" failed with `reason` (also the text of that
// check's last result and of the one event). Services in the order http, nfs.
inline poolkeeper::Snapshot sample_snapshot(const std::string& reason = "status 500") {
  using namespace poolkeeper;
  Snapshot s;
  s.host = "h1.example.org";
  s.lifecycle = Lifecycle::kRunning;
  ServiceView nfs;
  nfs.name = "nfs";
  nfs.effective = {Effective::kPooled, ""};
  nfs.healthy = true;
  ServiceView http;
  http.name = "http";
  http.effective = {Effective::kNotPooled, "check web unhealthy: " + reason};
  s.services = {http, nfs};
  s.checks = {check_view("web", "http", "", CheckHealth::kUnhealthy, Result::fail(Outcome::kFailed, reason))};
  s.events.push_back({WallTime{}, EventKind::kCheck, "web", "healthy", "unhealthy", reason});
  return s;
}

}  // namespace pk_test
