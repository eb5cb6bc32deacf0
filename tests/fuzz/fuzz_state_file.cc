// Fuzzes the state file's reader (a file that may be cut short, hand-edited or from
// another version): it never throws; an unreadable file says why and yields no intent;
// a readable one is read exactly: written back and read again, it gives the same
// intents.
#include "agent/runtime/state_store.h"
#include "tests/fuzz/fuzz_check.h"

using namespace poolkeeper;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  LoadedState s = StateStore::parse(text);
  if (s.status != LoadedState::Status::kOk) {
    FUZZ_ASSERT(s.status == LoadedState::Status::kUnreadable);
    FUZZ_ASSERT(!s.error.empty() && s.intents.empty());
    return 0;
  }
  LoadedState again = StateStore::parse(StateStore::serialize(s.intents));
  FUZZ_ASSERT(again.status == LoadedState::Status::kOk);
  FUZZ_ASSERT(again.intents == s.intents);
  return 0;
}
