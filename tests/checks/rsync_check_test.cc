// The rsync daemon protocol parsers are pure functions over bytes: table tests here,
// and any byte sequence must be survivable (no crash, no unbounded work).
#include "checks/rsync_check.h"

#include <gtest/gtest.h>

#include <random>

using namespace poolkeeper;

TEST(RsyncParseTest, Greeting) {
  auto g = parse_rsync_greeting("@RSYNCD: 31.0 sha512 sha256 sha1 md5 md4");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->major, 31);
  EXPECT_EQ(g->minor, 0);
  EXPECT_TRUE(parse_rsync_greeting("@RSYNCD: 29"));
  EXPECT_FALSE(parse_rsync_greeting("SSH-2.0-OpenSSH_9.2"));
  EXPECT_FALSE(parse_rsync_greeting("@RSYNCD: "));
  EXPECT_FALSE(parse_rsync_greeting("@RSYNCD: x"));
  EXPECT_FALSE(parse_rsync_greeting("@RSYNCD: 31.x"));
  EXPECT_FALSE(parse_rsync_greeting("@RSYNCD: 3"));           // below any real protocol
  EXPECT_FALSE(parse_rsync_greeting("@RSYNCD: 99999999999"));  // bounded digits
  EXPECT_FALSE(parse_rsync_greeting(""));
}

TEST(RsyncParseTest, Listing) {
  auto l = parse_rsync_listing("Welcome to the mirror\n\ndumps          \tPublic dumps\nother\tx\n@RSYNCD: EXIT\n");
  EXPECT_TRUE(l.complete);
  EXPECT_EQ(l.modules, (std::vector<std::string>{"dumps", "other"}));
  auto partial = parse_rsync_listing("dumps\tPublic\nhalf");
  EXPECT_FALSE(partial.complete);
  auto err = parse_rsync_listing("@ERROR: access denied to dumps from host\n");
  EXPECT_EQ(err.error, "access denied to dumps from host");
  EXPECT_FALSE(parse_rsync_listing("@ERROR\n").error.empty());
}

TEST(RsyncParseTest, Frames) {
  std::string buf;
  auto frame = [](int tag, const std::string& payload) {
    uint32_t h = (uint32_t(tag + 7) << 24) | uint32_t(payload.size());
    std::string s(4, '\0');
    for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((h >> (8 * i)) & 0xff);
    return s + payload;
  };
  buf = frame(3, "rsync: link_stat failed\n") + frame(0, std::string("\0", 1)) + frame(0, "par");
  buf.pop_back();  // the last frame is partial
  std::vector<RsyncFrame> frames;
  ASSERT_TRUE(take_rsync_frames(&buf, &frames));
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].tag, 3);
  EXPECT_EQ(frames[0].payload, "rsync: link_stat failed\n");
  EXPECT_EQ(frames[1].tag, 0);
  EXPECT_EQ(buf.size(), 4u + 2u);
  std::string garbage("\x01\x00\x00\x00", 4);
  EXPECT_FALSE(take_rsync_frames(&garbage, &frames));
}

TEST(RsyncParseTest, SurvivesRandomBytes) {
  std::mt19937 gen(7);
  for (int i = 0; i < 20000; ++i) {
    std::string s(gen() % 64, '\0');
    for (auto& c : s) c = static_cast<char>(gen() % 4 == 0 ? "@RSYNCD: \t\n"[gen() % 11] : gen());
    if (auto g = parse_rsync_greeting(s)) {
      ASSERT_EQ(s.rfind("@RSYNCD: ", 0), 0u);
      ASSERT_TRUE(g->major >= 20 && g->major <= 99);
    }
    RsyncListing l = parse_rsync_listing(s);
    for (const auto& m : l.modules) ASSERT_TRUE(!m.empty() && m.find_first_of("\t\n") == std::string::npos);
    ASSERT_FALSE(l.complete && !l.error.empty());
    // Framing takes whole frames off the front and leaves exactly the rest.
    std::string buf = s;
    std::vector<RsyncFrame> f;
    take_rsync_frames(&buf, &f);
    size_t taken = 0;
    for (const auto& fr : f) taken += 4 + fr.payload.size();
    ASSERT_EQ(taken + buf.size(), s.size());
    ASSERT_EQ(buf, s.substr(taken));
  }
}

TEST(RsyncParseTest, ErrorWithNothingAfterIt) {
  // Once threw std::out_of_range (nothing after "@ERROR" and the colons).
  EXPECT_EQ(parse_rsync_listing("motd\n@ERROR  :\n").error, "error");
  EXPECT_EQ(parse_rsync_listing("@ERROR::\n").error, "error");
  EXPECT_EQ(parse_rsync_listing("@ERROR: no such module\n").error, "no such module");
}
