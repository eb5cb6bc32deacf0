// kind = "vip": what an LVS-DR realserver needs to accept the director's packets:
// each service address in `addresses` is configured on `interface` (default "lo"; IPv4
// as /32, IPv6 as /128, read through libnl-3 route), and — when any address is IPv4 —
// net.ipv4.conf.all.arp_ignore = 1 and arp_announce = 2, so the host does not answer
// ARP for the service IP. The reason names the first thing that is wrong.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "checks/check.h"

namespace poolkeeper {

struct VipCheckOptions {
  std::vector<std::string> addresses;
  std::string interface = "lo";
  std::string sysctl_root = "/proc/sys/net/ipv4/conf/all";
};

class VipCheck final : public Check {
 public:
  explicit VipCheck(VipCheckOptions o) : o_(std::move(o)) {}
  Result run(Deadline deadline, const Clock& clock) override;
  std::string target() const override;
  std::string service_address() const override { return o_.addresses.empty() ? "" : o_.addresses.front(); }

 private:
  VipCheckOptions o_;
};

std::unique_ptr<Check> make_vip_check(TableReader& reader);

}  // namespace poolkeeper
