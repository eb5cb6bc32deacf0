// The admin socket's wire format: one JSON object per line each way. Parsing is a
// pure function (fuzzed): anything that is not a well-formed request gets a one-line
// error, never an exception.
//
//   {"cmd":"depool","services":["nfs"],"reason":"kernel upgrade","for_seconds":7200,
//    "until_boot":false,"force":false,"sudo_user":"alice"}
//   {"ok":true,"services":{"nfs":{"effective":"not_pooled","reason":"depooled: …"}}}
//   {"ok":false,"error":"unknown service \"nsf\" (known: http, nfs, rsync)"}
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace poolkeeper {

constexpr size_t kMaxAdminRequest = 16 * 1024;

// The commands; admin_cmd_name gives the wire name (status | ispooled | pool | depool |
// drain), which is also the word in the "admin …" log line.
enum class AdminCmd { kStatus, kIsPooled, kPool, kDepool, kDrain };
const char* admin_cmd_name(AdminCmd c);

struct AdminRequest {
  AdminCmd cmd = AdminCmd::kStatus;
  std::vector<std::string> services;  // empty: every service (not for ispooled)
  std::string reason;
  std::optional<int64_t> for_seconds;
  bool until_boot = false;
  bool force = false;
  std::string sudo_user;  // informative only: who ran sudo
  // Changes intent (needs authorisation); status and ispooled only read.
  bool mutating() const { return cmd == AdminCmd::kPool || cmd == AdminCmd::kDepool || cmd == AdminCmd::kDrain; }
  // Takes services out of the pool (the floor judges it unless forced).
  bool takes_out() const { return cmd == AdminCmd::kDepool || cmd == AdminCmd::kDrain; }
};

std::optional<AdminRequest> parse_admin_request(const std::string& line, std::string* error);
std::string admin_error(const std::string& message);  // {"ok":false,"error":…}\n

}  // namespace poolkeeper
