// Fuzzes the parser of a peer agent's /status (bytes from another host, or whatever
// answers at its address): it never throws, a refusal says why, and an accepted peer
// can be fed to the floor and described without trouble.
#include <nlohmann/json.hpp>

#include "agent/model/floor.h"
#include "tests/fuzz/fuzz_check.h"

using namespace poolkeeper;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  std::string error;
  auto p = parse_peer_status("http://peer.example.org:9473", body, &error);
  if (!p) {
    FUZZ_ASSERT(!error.empty());
    return 0;
  }
  FUZZ_ASSERT(p->reachable && p->url == "http://peer.example.org:9473");
  std::vector<PeerState> peers{*p};
  for (const auto& [name, s] : p->services) {
    int healthy = pooled_healthy_peers(name, peers);
    FUZZ_ASSERT(healthy == 0 || healthy == 1);
    if (healthy == 1) FUZZ_ASSERT(s.effective == "pooled" && s.healthy && p->lifecycle == "running");
    for (int min_pooled : {0, 1, 2}) {
      bool keeps = floor_keeps(name, "self.example.org", min_pooled, peers);
      // Enough healthy others: never kept; none needed: never kept.
      if (healthy >= min_pooled) FUZZ_ASSERT(!keeps);
      auto refusal = depool_refusal(name, min_pooled, peers);
      FUZZ_ASSERT(refusal.has_value() == (healthy < min_pooled));
    }
    FUZZ_ASSERT(!describe_peer(name, *p).empty());
  }
  return 0;
}
