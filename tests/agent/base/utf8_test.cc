// valid_utf8 / cut_utf8 / is_valid_utf8, checked against an independent decoder over
// every 1-, 2- and 3-byte sequence, every code point, and the edge cases by name.
#include "agent/base/utf8.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>

using namespace poolkeeper;

namespace {

const std::string kFFFD = "\xEF\xBF\xBD";

std::string encode(uint32_t cp, int len) {  // any length, even overlong or out of range
  std::string s;
  if (len == 1) return std::string(1, static_cast<char>(cp));
  static const unsigned char lead[] = {0, 0, 0xC0, 0xE0, 0xF0};
  s += static_cast<char>(lead[len] | (cp >> (6 * (len - 1))));
  for (int k = len - 2; k >= 0; --k) s += static_cast<char>(0x80 | ((cp >> (6 * k)) & 0x3F));
  return s;
}

// Reference: decode by bit patterns, then apply the rules (shortest form, no
// surrogates, at most U+10FFFF). Returns the code points, or nullopt if ill-formed.
std::optional<std::vector<uint32_t>> reference_decode(const std::string& s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return std::nullopt;
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (int k = 1; k < len; ++k) {
      unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 2) return std::nullopt;
      cp = (cp << 6) | (d & 0x3F);
    }
    uint32_t min = len == 1 ? 0 : len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return std::nullopt;
    out.push_back(cp);
    i += static_cast<size_t>(len);
  }
  return out;
}

}  // namespace

TEST(Utf8, EveryShortSequenceAgreesWithTheReference) {
  // All 1-, 2- and 3-byte strings: 16.8 million, each judged by both decoders.
  size_t valid = 0;
  for (uint32_t v = 0; v < (1u << 24); ++v) {
    for (int len : {1, 2, 3}) {
      if (len < 3 && (v >> (8 * len)) != 0) continue;
      std::string s;
      for (int k = len - 1; k >= 0; --k) s += static_cast<char>((v >> (8 * k)) & 0xFF);
      bool ref = reference_decode(s).has_value();
      ASSERT_EQ(is_valid_utf8(s), ref) << std::hex << v << " len " << len;
      std::string fixed = valid_utf8(s);
      ASSERT_TRUE(reference_decode(fixed).has_value()) << std::hex << v;
      if (ref) {
        ASSERT_EQ(fixed, s);
        ++valid;
      }
    }
  }
  // 128 + 128*128 + 1920 (2-byte chars) + ... : a sanity check that both saw some.
  EXPECT_GT(valid, 100000u);
}

TEST(Utf8, EveryCodePointRoundTripsAndSurrogatesDoNot) {
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    int len = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    std::string s = encode(cp, len);
    bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    ASSERT_EQ(is_valid_utf8(s), !surrogate) << std::hex << cp;
    if (surrogate) {
      ASSERT_EQ(valid_utf8(s), kFFFD + kFFFD + kFFFD) << std::hex << cp;  // ED, A0.., 80..: 3 subparts
    } else {
      ASSERT_EQ(valid_utf8(s), s);
      // Every overlong (longer) form of it is refused.
      for (int longer = len + 1; longer <= 4; ++longer) ASSERT_FALSE(is_valid_utf8(encode(cp, longer)));
    }
  }
}

TEST(Utf8, AboveU10FFFFIsRefused) {
  for (uint32_t cp : {0x110000u, 0x13FFFFu, 0x1FFFFFu}) EXPECT_FALSE(is_valid_utf8(encode(cp, 4))) << cp;
  for (int b = 0xF5; b <= 0xFF; ++b) {
    std::string s = std::string(1, static_cast<char>(b)) + "\x80\x80\x80";
    EXPECT_FALSE(is_valid_utf8(s));
    EXPECT_EQ(valid_utf8(s), kFFFD + kFFFD + kFFFD + kFFFD);  // nothing of it is a prefix
  }
  EXPECT_EQ(valid_utf8("\xF4\x90\x80\x80"), kFFFD + kFFFD + kFFFD + kFFFD);
}

TEST(Utf8, NamedCases) {
  EXPECT_EQ(valid_utf8("\xff"), kFFFD);
  EXPECT_EQ(valid_utf8("a\xffz"), "a" + kFFFD + "z");
  EXPECT_EQ(valid_utf8("\xC0\xAF"), kFFFD + kFFFD);         // overlong '/'
  EXPECT_EQ(valid_utf8("\xE0\x80\xAF"), kFFFD + kFFFD + kFFFD);
  EXPECT_EQ(valid_utf8("\xED\xA0\x80"), kFFFD + kFFFD + kFFFD);  // U+D800
  // Truncated sequences: the whole prefix is one ill-formed subpart.
  EXPECT_EQ(valid_utf8("\xE2\x82"), kFFFD);
  EXPECT_EQ(valid_utf8("\xE2\x82x"), kFFFD + "x");
  EXPECT_EQ(valid_utf8("\xF0\x9F\x98"), kFFFD);
  EXPECT_EQ(valid_utf8("\xF0\x9F\x98" "\xF0\x9F\x98\x80"), kFFFD + "\xF0\x9F\x98\x80");
  EXPECT_EQ(valid_utf8("\x80\x80"), kFFFD + kFFFD);
  EXPECT_EQ(valid_utf8(std::string("a\0b", 3)), std::string("a\0b", 3));  // NUL is valid UTF-8
  EXPECT_EQ(valid_utf8(""), "");
}

TEST(Utf8, MaxBytesCutsOnlyOnCharacterBoundaries) {
  std::string euro = "\xE2\x82\xAC";  // 3 bytes
  std::string s = "ab" + euro + "cd" + "\xF0\x9F\x98\x80";
  for (size_t max = 0; max <= s.size() + 2; ++max) {
    std::string v = valid_utf8(s, max), c = cut_utf8(s, max);
    EXPECT_LE(v.size(), max);
    EXPECT_LE(c.size(), max);
    EXPECT_TRUE(is_valid_utf8(v)) << max;
    EXPECT_TRUE(is_valid_utf8(c)) << max;
    EXPECT_EQ(v, c) << max;  // valid input: both cut at the same place
    EXPECT_EQ(s.substr(0, c.size()), c);
    EXPECT_GE(c.size() + 3, std::min(max, s.size()));  // at most one character lost
  }
  EXPECT_EQ(cut_utf8(s, 3), "ab");
  EXPECT_EQ(cut_utf8(s, 5), "ab" + euro);
  EXPECT_EQ(cut_utf8(s, 9), "ab" + euro + "cd");
  // A replacement that does not fit is left out whole.
  EXPECT_EQ(valid_utf8("ab\xff", 4), "ab");
}

TEST(Utf8, JsonWithBadBytesIsRepairedAndNeverThrows) {
  nlohmann::json j = {{"reason", "exit \xff"}, {"list", {"ok", "\xC3"}}};
  j["k\xfe"] = "v";
  EXPECT_THROW((void)j.dump(), nlohmann::json::type_error);  // what used to kill the agent
  std::string text;
  EXPECT_NO_THROW(text = json_text(j, 2));
  EXPECT_TRUE(is_valid_utf8(text));
  make_valid_utf8(j);
  EXPECT_NO_THROW((void)j.dump());
  EXPECT_EQ(j["reason"], "exit " + kFFFD);
  EXPECT_EQ(j["list"][1], kFFFD);
  EXPECT_TRUE(j.contains("k" + kFFFD));
  EXPECT_FALSE(j.contains("k\xfe"));
}
