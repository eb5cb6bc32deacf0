// Fuzzes the config reader (TOML → Config): any bytes are either a Config or a
// ConfigError naming the file ("FILE:LINE: …" or "FILE: …"); anything else thrown, or
// a crash, is a finding. An accepted config is consistent: every service's checks
// exist, and each check has a probe and sane timing.
#include <exception>

#include "agent/config/config.h"
#include "agent/base/toml_reader.h"
#include "tests/fuzz/fuzz_check.h"

using namespace poolkeeper;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  Config c;
  try {
    c = parse_config(text, "fuzz.toml");
  } catch (const ConfigError& e) {
    FUZZ_ASSERT(std::string(e.what()).rfind("fuzz.toml", 0) == 0);
    return 0;
  }
  for (const auto& [name, s] : c.services) {
    FUZZ_ASSERT(!s.checks.empty());
    for (const auto& ch : s.checks) FUZZ_ASSERT(c.checks.count(ch) == 1);
    FUZZ_ASSERT(s.min_pooled >= 0);
  }
  for (const auto& [name, ch] : c.checks) {
    FUZZ_ASSERT(ch.check != nullptr);
    FUZZ_ASSERT(ch.timeout > Duration::zero() && ch.timeout <= ch.interval);
    FUZZ_ASSERT(ch.rise >= 1 && ch.fall >= 1 && ch.fast_interval > Duration::zero());
  }
  return 0;
}
