#include "agent/admin/admin_protocol.h"

#include "agent/base/enum_names.h"
#include "agent/base/utf8.h"

namespace poolkeeper {

std::string admin_error(const std::string& message) {
  return json_text(nlohmann::json{{"ok", false}, {"error", message}}) + "\n";
}

namespace {
constexpr EnumNames<AdminCmd, 5> kAdminCmdNames{{{AdminCmd::kStatus, "status"},
                                                 {AdminCmd::kIsPooled, "ispooled"},
                                                 {AdminCmd::kPool, "pool"},
                                                 {AdminCmd::kDepool, "depool"},
                                                 {AdminCmd::kDrain, "drain"}}};
}  // namespace

const char* admin_cmd_name(AdminCmd c) { return kAdminCmdNames.name(c, "?"); }

std::optional<AdminRequest> parse_admin_request(const std::string& line, std::string* error) {
  auto fail = [&](const std::string& e) -> std::optional<AdminRequest> {
    *error = e;
    return std::nullopt;
  };
  if (line.size() > kMaxAdminRequest) return fail("request too large");
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail("request is not JSON");
  if (!j.is_object()) return fail("request must be a JSON object");
  AdminRequest r;
  std::string cmd;
  for (const auto& [k, v] : j.items()) {
    if (k == "cmd") {
      if (!v.is_string()) return fail("cmd must be a string");
      cmd = v.get<std::string>();
    } else if (k == "services") {
      if (!v.is_array()) return fail("services must be a list of names");
      for (const auto& s : v) {
        if (!s.is_string() || s.get<std::string>().empty() || s.get<std::string>().size() > 64)
          return fail("services must be a list of names");
        r.services.push_back(s.get<std::string>());
      }
    } else if (k == "reason") {
      if (!v.is_string()) return fail("reason must be a string");
      r.reason = v.get<std::string>();
      if (r.reason.size() > 200) return fail("reason is longer than 200 characters");
      for (char c : r.reason)
        if (c == '\n' || c == '\r') return fail("reason must be one line");
    } else if (k == "for_seconds") {
      if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > 366LL * 86400)
        return fail("for_seconds must be a whole number of seconds up to a year");
      r.for_seconds = v.get<int64_t>();
    } else if (k == "until_boot") {
      if (!v.is_boolean()) return fail("until_boot must be true or false");
      r.until_boot = v.get<bool>();
    } else if (k == "force") {
      if (!v.is_boolean()) return fail("force must be true or false");
      r.force = v.get<bool>();
    } else if (k == "sudo_user") {
      if (!v.is_string() || v.get<std::string>().size() > 64) return fail("sudo_user must be a name");
      r.sudo_user = v.get<std::string>();
    } else {
      return fail("unknown field \"" + cut_utf8(k, 40) + "\"");
    }
  }
  auto known = kAdminCmdNames.parse(cmd);
  if (!known) return fail(cmd.empty() ? "cmd is required" : "unknown cmd \"" + cut_utf8(cmd, 40) + "\"");
  r.cmd = *known;
  if (r.cmd == AdminCmd::kIsPooled && r.services.size() != 1) return fail("ispooled takes exactly one service");
  if (r.for_seconds && r.until_boot) return fail("for_seconds and until_boot exclude each other");
  if ((r.for_seconds || r.until_boot) && !r.takes_out())
    return fail("for_seconds and until_boot go with depool or drain");
  return r;
}

}  // namespace poolkeeper
