// A small fixed Snapshot for tests of the HTTP endpoint: nfs pooled and healthy, http
// not pooled because its check "web" failed with `reason` (also the text of that
// check's last result and of the one event). Services in the order http, nfs.
#pragma once

#include <string>

#include "agent/model/snapshot.h"

namespace poolkeeper {

inline Snapshot sample_snapshot(const std::string& reason = "status 500") {
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
  CheckView web;
  web.name = "web";
  web.kind = "http";
  web.health = CheckHealth::kUnhealthy;
  web.last = Result::fail(Outcome::kFailed, reason);
  s.checks = {web};
  s.events.push_back({WallTime{}, EventKind::kCheck, "web", "healthy", "unhealthy", reason});
  return s;
}

}  // namespace poolkeeper
