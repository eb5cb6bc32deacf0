#include "agent/runtime/state_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

using namespace poolkeeper;

namespace {
struct Dir {
  std::string path;
  Dir() {
    char t[] = "/tmp/pk-state-XXXXXX";
    path = mkdtemp(t);
  }
  ~Dir() { std::filesystem::remove_all(path); }
};
std::string slurp(const std::string& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

TEST(StateStoreTest, RoundTrip) {
  Dir d;
  StateStore store(d.path);
  EXPECT_EQ(store.load().status, LoadedState::Status::kMissing);
  std::map<std::string, AdminIntent> intents;
  AdminIntent i{Intent::kDepooled, "kernel upgrade", "alice", WallTime(std::chrono::milliseconds(1800000000123))};
  i.expires = WallTime(std::chrono::milliseconds(1800007200123));
  intents["nfs"] = i;
  AdminIntent b{Intent::kDrained, "reboot", "root (sudo from bob)", WallTime(std::chrono::milliseconds(5))};
  b.until_boot = true;
  b.boot_id = "0f0e";
  intents["http"] = b;
  intents["rsync"] = AdminIntent{};
  ASSERT_EQ(store.save(intents), "");
  LoadedState l = store.load();
  ASSERT_EQ(l.status, LoadedState::Status::kOk) << l.error;
  EXPECT_EQ(l.intents, intents);
  EXPECT_FALSE(std::filesystem::exists(d.path + "/state.json.tmp"));
}

TEST(StateStoreTest, CorruptOrForeignFilesAreUnreadableWithAReason) {
  Dir d;
  StateStore store(d.path);
  std::ofstream(d.path + "/state.json") << "{\"format\": 1, \"services\": {\"nfs\": {\"intent\": \"depo";
  LoadedState l = store.load();
  EXPECT_EQ(l.status, LoadedState::Status::kUnreadable);
  EXPECT_EQ(l.error.rfind(d.path + "/state.json: not JSON", 0), 0u) << l.error;
  EXPECT_EQ(StateStore::parse("{}").error, "not a poolkeeper state file (format 1)");
  EXPECT_EQ(StateStore::parse(R"({"format":1,"services":{"nfs":{"intent":"maybe"}}})").error,
            "service nfs: unknown intent \"maybe\"");
  EXPECT_EQ(StateStore::parse(R"({"format":1,"services":{"nfs":{"intent":"pooled"}}})").status,
            LoadedState::Status::kUnreadable);
}

TEST(StateStoreTest, TimesOutOfRangeAreUnreadableNotAnotherIntent) {
  auto entry = [](const std::string& when, const std::string& expires) {
    return R"({"format":1,"services":{"nfs":{"intent":"depooled","reason":"r","who":"w","when_ms":)" + when +
           R"(,"until_boot":false,"boot_id":"","expires_ms":)" + expires + "}}}";
  };
  // Far in the future once overflowed into an expired depool (pooled).
  for (const char* expires : {"10000000000000", "9223372036854775807", "18446744073709551615",
                              "-10000000000000", "1.5e300", "\"soon\""}) {
    LoadedState l = StateStore::parse(entry("0", expires));
    EXPECT_EQ(l.status, LoadedState::Status::kUnreadable) << expires;
    EXPECT_TRUE(l.intents.empty()) << expires;
  }
  EXPECT_EQ(StateStore::parse(entry("10000000000000", "null")).status, LoadedState::Status::kUnreadable);
  // A number JSON itself cannot hold threw out of the reader (found by fuzz_state_file).
  EXPECT_EQ(StateStore::parse(entry("0", "9e23372036854775806")).status, LoadedState::Status::kUnreadable);
  LoadedState ok = StateStore::parse(entry("1800000000000", "9000000000000"));  // year 2255
  ASSERT_EQ(ok.status, LoadedState::Status::kOk) << ok.error;
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(ok.intents["nfs"].expires->time_since_epoch()).count(),
            9000000000000);
}

TEST(StateStoreTest, FailedWriteKeepsTheOldFile) {
  Dir d;
  StateStore store(d.path);
  std::map<std::string, AdminIntent> one = {{"nfs", AdminIntent{Intent::kDepooled, "a", "x", WallTime{}}}};
  ASSERT_EQ(store.save(one), "");
  std::string before = slurp(store.path());
  // Something in the way of the temp file: the write fails, the old file stays whole.
  std::filesystem::create_directory(store.path() + ".tmp");
  std::map<std::string, AdminIntent> two = {{"nfs", AdminIntent{}}};
  std::string err = store.save(two);
  EXPECT_NE(err, "");
  EXPECT_EQ(err.rfind("create " + store.path() + ".tmp: ", 0), 0u) << err;
  EXPECT_EQ(slurp(store.path()), before);
  EXPECT_EQ(store.load().intents, one);
}

// A far-future expiry used to overflow while loading (signed overflow converting ms
// to the clock's nanoseconds) and came back as an already expired depool — the
// service pooled. Out-of-range times make the file unreadable instead.
TEST(StateStoreTest, OutOfRangeTimesAreUnreadableNotADifferentIntent) {
  auto entry = [](const std::string& when, const std::string& expires) {
    return R"({"format":1,"services":{"nfs":{"intent":"depooled","reason":"r","who":"w","when_ms":)" + when +
           R"(,"expires_ms":)" + expires + R"(,"until_boot":false,"boot_id":""}}})";
  };
  for (std::string bad : {"10000000000000", "9223372036854775807", "18446744073709551615", "-1",
                                 "1e300", "1.5", "\"soon\""}) {
    LoadedState l = StateStore::parse(entry("1800000000000", bad));
    EXPECT_EQ(l.status, LoadedState::Status::kUnreadable) << bad;
    EXPECT_NE(l.error.find("expires_ms"), std::string::npos) << bad << ": " << l.error;
    EXPECT_TRUE(l.intents.empty()) << bad;
    l = StateStore::parse(entry(bad, "null"));
    EXPECT_EQ(l.status, LoadedState::Status::kUnreadable) << bad;
    EXPECT_NE(l.error.find("when_ms"), std::string::npos) << bad << ": " << l.error;
  }
  // The largest representable time still loads exactly.
  LoadedState ok = StateStore::parse(entry("1800000000000", "9223372036854"));
  ASSERT_EQ(ok.status, LoadedState::Status::kOk) << ok.error;
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(ok.intents.at("nfs").expires->time_since_epoch()).count(),
            9223372036854);
}
