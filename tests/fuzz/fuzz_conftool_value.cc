// Fuzzes what comes back from etcd: the v2 API's reply (parse_etcd_response) and the
// value of a conftool key (written by anyone). Neither throws; a reply that is not a
// JSON object is an error that explains itself; an accepted value has a known
// "pooled" and an integer weight (or none); merging our change into it keeps every
// other field in its order (the legacy marker fields dropped), parses back, and is the
// fixed point of its own merge (the same bytes again).
#include <nlohmann/json.hpp>

#include "pybal-compat/conftool_writer.h"
#include "pybal-compat/etcd_client.h"
#include "tests/fuzz/fuzz_check.h"

using namespace poolkeeper;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string value(reinterpret_cast<const char*>(data), size);
  for (long http : {200L, 201L, 404L, 412L}) {
    EtcdResult r = parse_etcd_response(http, value, 7);
    auto j = nlohmann::json::parse(value, nullptr, false);
    if (j.is_discarded() || !j.is_object()) FUZZ_ASSERT(r.error_code == EtcdError::kMalformed && !r.ok());
    if (!r.ok()) FUZZ_ASSERT(!r.describe().empty());
    if (http >= 400) FUZZ_ASSERT(!r.ok());
  }
  std::string error;
  auto v = parse_conftool_value(value, &error);
  if (!v) {
    FUZZ_ASSERT(!error.empty());
    return 0;
  }
  FUZZ_ASSERT(v->raw["pooled"] == conftool_pooled_name(v->pooled));
  FUZZ_ASSERT(v->raw.is_object());
  FUZZ_ASSERT(!v->raw.contains("weight") || v->raw["weight"].is_number_integer());
  for (ConftoolPooled pooled : {ConftoolPooled::kYes, ConftoolPooled::kNo}) {
    std::string merged = merge_conftool_value(v->raw, pooled);
    std::string err2;
    auto back = parse_conftool_value(merged, &err2);
    FUZZ_ASSERT(back && back->pooled == pooled);
    FUZZ_ASSERT(!back->raw.contains(kConftoolLegacyMarkBy) && !back->raw.contains(kConftoolLegacyMarkReason));
    auto kept = back->raw.items().begin();
    for (const auto& [k, val] : v->raw.items()) {
      if (k == kConftoolLegacyMarkBy || k == kConftoolLegacyMarkReason) continue;
      FUZZ_ASSERT(kept != back->raw.items().end() && kept.key() == k);
      if (k != "pooled") FUZZ_ASSERT(kept.value() == val);
      ++kept;
    }
    FUZZ_ASSERT(merge_conftool_value(back->raw, pooled) == merged);
  }
  return 0;
}
