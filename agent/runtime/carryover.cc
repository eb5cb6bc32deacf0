#include "agent/runtime/carryover.h"

#include <time.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "agent/runtime/state_store.h"

namespace poolkeeper {

int64_t boottime_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

std::string carryover_path(const std::string& state_dir) { return state_dir + "/carryover.json"; }

std::string CarryOver::serialize() const {
  nlohmann::json checks_j = nlohmann::json::object(), services_j = nlohmann::json::object();
  for (const auto& [name, c] : checks)
    checks_j[name] = {{"health", check_health_name(c.health)}, {"fingerprint", c.fingerprint}};
  for (const auto& [name, e] : services) services_j[name] = e;
  return nlohmann::json{{"format", 1},
                        {"boot_id", boot_id},
                        {"boottime_ms", boottime_ms},
                        {"checks", checks_j},
                        {"services", services_j}}
             .dump(2) + "\n";
}

std::optional<CarryOver> CarryOver::parse(const std::string& text, std::string* error) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || j.value("format", 0) != 1) {
    *error = "not a carry-over file (format 1)";
    return std::nullopt;
  }
  CarryOver c;
  try {
    c.boot_id = j.at("boot_id").get<std::string>();
    c.boottime_ms = j.at("boottime_ms").get<int64_t>();
    for (const auto& [name, o] : j.at("checks").items()) {
      CheckEntry e;
      std::string h = o.at("health").get<std::string>();
      if (h == "healthy") e.health = CheckHealth::kHealthy;
      else if (h == "unhealthy") e.health = CheckHealth::kUnhealthy;
      else if (h == "unknown") e.health = CheckHealth::kUnknown;
      else {
        *error = "check " + name + ": unknown health \"" + h + "\"";
        return std::nullopt;
      }
      e.fingerprint = o.at("fingerprint").get<std::string>();
      c.checks[name] = e;
    }
    for (const auto& [name, e] : j.at("services").items()) c.services[name] = e.get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    *error = std::string("bad entry (") + e.what() + ")";
    return std::nullopt;
  }
  return c;
}

std::string save_carryover(const std::string& state_dir, const CarryOver& c) {
  return write_file_atomically(state_dir, carryover_path(state_dir), c.serialize());
}

std::optional<CarryOver> take_carryover(const std::string& state_dir, const std::string& boot_id,
                                        int64_t now_boottime_ms, std::string* why) {
  std::string path = carryover_path(state_dir);
  std::ifstream in(path);
  if (!in) {
    *why = "no carry-over file";
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  in.close();
  ::unlink(path.c_str());  // one restart only: a later crash must not reuse it
  std::string error;
  auto c = CarryOver::parse(ss.str().substr(0, 1 << 20), &error);
  if (!c) {
    *why = path + ": " + error;
    return std::nullopt;
  }
  if (boot_id.empty() || c->boot_id != boot_id) {
    *why = "written in another boot";
    return std::nullopt;
  }
  int64_t age = now_boottime_ms - c->boottime_ms;
  if (age < 0 || age > std::chrono::duration_cast<std::chrono::milliseconds>(CarryOver::kMaxAge).count()) {
    *why = "written " + std::to_string(age / 1000) + " s ago (limit " +
           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(CarryOver::kMaxAge).count()) + " s)";
    return std::nullopt;
  }
  return c;
}

}  // namespace poolkeeper
