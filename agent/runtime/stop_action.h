// What a stop signal means: a host shutdown/reboot drains (every service leaves the
// pool through the floor), a restart of the agent alone keeps the pool state exactly as
// it is. Decided at SIGTERM time from, in order: a one-shot override file next to the
// admin socket, agent.stop_action, and (for "auto") systemd's own view of the host.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace poolkeeper {

enum class StopAction { kAuto, kDrain, kKeep };
const char* stop_action_name(StopAction a);
std::optional<StopAction> parse_stop_action(const std::string& s);

// <directory of admin_socket>/stop-action: "drain" or "keep", written by an init script,
// a package script or a test just before it sends SIGTERM; read and removed at the signal.
std::string stop_action_file(const std::string& admin_socket);

// Whether systemd is taking the host down: true when the manager's SystemState is
// "stopping" (shutdown.target active or queued), or when shutdown.target has a job or is
// active (which also covers a shutdown requested while still booting). nullopt with
// *error set when there is no systemd to ask or it did not answer (bounded: 1 s).
std::optional<bool> systemd_host_stopping(std::string* error);

struct StopDecision {
  StopAction action = StopAction::kDrain;  // kDrain or kKeep, never kAuto
  std::string why;                         // for the log
};

// The rule. `override_text` is the override file's content (nullopt: no file);
// `host_stopping` asks systemd (only called for "auto"). Without an answer from
// systemd the agent drains: the safe old behaviour.
StopDecision decide_stop(const std::optional<std::string>& override_text, StopAction configured,
                         const std::function<std::optional<bool>(std::string*)>& host_stopping);

// Reads and removes the override file (nullopt when there is none).
std::optional<std::string> take_stop_action_file(const std::string& path);

}  // namespace poolkeeper
