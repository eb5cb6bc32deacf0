#include "checks/check.h"

#include <map>

#include "checks/exec_check.h"
#include "checks/http_check.h"
#include "checks/nfs_check.h"
#include "checks/rsync_check.h"
#include "checks/vip_check.h"

namespace poolkeeper {

namespace {
const std::map<std::string, CheckKind>& registry() {
  static const std::map<std::string, CheckKind> kinds = {
      {"exec", {make_exec_check, {}}},
      {"http", {make_http_check, http_check_traits(), true}},
      {"nfs", {make_nfs_check, nfs_check_traits(), true}},
      {"rsync", {make_rsync_check, {}, true}},
      {"vip", {make_vip_check, {}}},
  };
  return kinds;
}
}  // namespace

const CheckKind* find_check_kind(const std::string& kind) {
  auto it = registry().find(kind);
  return it == registry().end() ? nullptr : &it->second;
}

const CheckKind* service_kind(const std::vector<std::string>& check_kinds) {
  for (const auto& k : check_kinds)
    if (const CheckKind* kind = find_check_kind(k); kind && kind->speaks_protocol) return kind;
  return nullptr;
}

std::string known_check_kinds() {
  std::string out;
  for (const auto& [k, f] : registry()) out += (out.empty() ? "" : ", ") + k;
  return out;
}

Result run_probe(Check& check, Duration timeout, const Clock& clock) {
  SteadyTime start = clock.now();
  Result r = run_guarded(check, real_clock().now() + timeout, clock);
  finish_result(r, start, clock);
  return r;
}

}  // namespace poolkeeper
