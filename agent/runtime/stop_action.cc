#include "agent/runtime/stop_action.h"

#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "agent/base/enum_names.h"

namespace poolkeeper {

namespace {
constexpr EnumNames<StopAction, 3> kStopActionNames{
    {{StopAction::kAuto, "auto"}, {StopAction::kDrain, "drain"}, {StopAction::kKeep, "keep"}}};
}  // namespace

const char* stop_action_name(StopAction a) { return kStopActionNames.name(a, "auto"); }

std::optional<StopAction> parse_stop_action(const std::string& s) { return kStopActionNames.parse(s); }

std::string stop_action_file(const std::string& admin_socket) {
  auto slash = admin_socket.rfind('/');
  std::string dir = slash == std::string::npos ? "." : admin_socket.substr(0, slash);
  return (dir.empty() ? "" : dir) + "/stop-action";
}

namespace {

// How long each question to systemd may take. They are asked once, at SIGTERM, while
// the agent still serves, inside the stop's own bound (drain_seconds + 22 s): an
// unanswered SystemState ends the asking (drain); the two shutdown.target questions
// after it are asked only of a systemd that just answered. During a shutdown systemd
// and dbus-daemon are busy with the shutdown transaction: a real reboot on a loaded
// host saw 1 s run out (the agent then drains, the safe side, but cannot say why).
constexpr uint64_t kSystemdCallTimeoutUsec = 3'000'000;

struct Bus {
  sd_bus* bus = nullptr;
  ~Bus() {
    if (bus) sd_bus_flush_close_unref(bus);
  }
};

std::string bus_error_text(int r, const sd_bus_error& e) {
  if (e.message) return e.message;
  return std::strerror(r < 0 ? -r : r);
}

}  // namespace

std::optional<bool> systemd_host_stopping(std::string* error) {
  if (sd_booted() <= 0) {
    *error = "not booted with systemd";
    return std::nullopt;
  }
  Bus b;
  int r = -1;
  // As root, systemd's private socket: it answers without dbus-daemon, which may
  // already be stopping during a shutdown (this is what systemctl itself does).
  if (::geteuid() == 0 && sd_bus_new(&b.bus) >= 0) {
    r = sd_bus_set_address(b.bus, "unix:path=/run/systemd/private");
    if (r >= 0) r = sd_bus_start(b.bus);
    if (r < 0) {
      sd_bus_unref(b.bus);
      b.bus = nullptr;
    }
  }
  if (!b.bus) {
    r = sd_bus_open_system(&b.bus);
    if (r < 0) {
      b.bus = nullptr;
      *error = std::string("cannot reach systemd: ") + std::strerror(-r);
      return std::nullopt;
    }
  }
  sd_bus_set_method_call_timeout(b.bus, kSystemdCallTimeoutUsec);
  const char* dest = "org.freedesktop.systemd1";
  sd_bus_error e = SD_BUS_ERROR_NULL;
  char* state = nullptr;
  r = sd_bus_get_property_string(b.bus, dest, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                                 "SystemState", &e, &state);
  if (r < 0) {
    *error = "systemd SystemState: " + bus_error_text(r, e);
    sd_bus_error_free(&e);
    return std::nullopt;
  }
  std::string system_state = state;
  std::free(state);
  if (system_state == "stopping") return true;
  // SystemState only says "stopping" once boot has finished; a shutdown asked for
  // while still booting shows as a job (or an active state) of shutdown.target.
  const char* unit = "/org/freedesktop/systemd1/unit/shutdown_2etarget";
  sd_bus_message* reply = nullptr;
  r = sd_bus_get_property(b.bus, dest, unit, "org.freedesktop.systemd1.Unit", "Job", &e, &reply, "(uo)");
  if (r >= 0) {
    uint32_t job = 0;
    const char* job_path = nullptr;
    r = sd_bus_message_read(reply, "(uo)", &job, &job_path);
    sd_bus_message_unref(reply);
    if (r >= 0 && job != 0) return true;
  }
  sd_bus_error_free(&e);
  e = SD_BUS_ERROR_NULL;
  char* active = nullptr;
  r = sd_bus_get_property_string(b.bus, dest, unit, "org.freedesktop.systemd1.Unit", "ActiveState", &e, &active);
  sd_bus_error_free(&e);
  if (r >= 0) {
    std::string a = active;
    std::free(active);
    if (a == "active" || a == "activating") return true;
  }
  return false;
}

namespace {
StopDecision decide_configured(StopAction configured,
                               const std::function<std::optional<bool>(std::string*)>& host_stopping);
}  // namespace

StopDecision decide_stop(const std::optional<std::string>& override_text, StopAction configured,
                         const std::function<std::optional<bool>(std::string*)>& host_stopping) {
  std::string ignored;
  if (override_text) {
    std::string t = *override_text;
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.erase(0, 1);
    auto a = parse_stop_action(t);
    if (a && *a != StopAction::kAuto)
      return {*a, std::string("stop-action file says ") + stop_action_name(*a)};
    if (!a) ignored = " (stop-action file ignored: \"" + t + "\" is not drain or keep)";
  }
  StopDecision d = decide_configured(configured, host_stopping);
  d.why += ignored;
  return d;
}

namespace {
StopDecision decide_configured(StopAction configured,
                               const std::function<std::optional<bool>(std::string*)>& host_stopping) {
  if (configured == StopAction::kDrain) return {StopAction::kDrain, "agent.stop_action = \"drain\""};
  if (configured == StopAction::kKeep) return {StopAction::kKeep, "agent.stop_action = \"keep\""};
  std::string error;
  auto stopping = host_stopping(&error);
  if (!stopping) return {StopAction::kDrain, "cannot tell a restart from a shutdown (" + error + "): draining"};
  if (*stopping) return {StopAction::kDrain, "systemd is taking the host down"};
  return {StopAction::kKeep, "systemd is not taking the host down: a restart of the agent alone"};
}
}  // namespace

std::optional<std::string> take_stop_action_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  ::unlink(path.c_str());
  return ss.str().substr(0, 64);
}

}  // namespace poolkeeper
