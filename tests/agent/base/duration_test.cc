#include "agent/base/duration.h"

#include <gtest/gtest.h>

using namespace poolkeeper;
using namespace std::chrono_literals;

TEST(DurationTest, ParsesUnits) {
  std::string err;
  EXPECT_EQ(parse_duration("500ms", &err), Duration(500ms));
  EXPECT_EQ(parse_duration("2s", &err), Duration(2s));
  EXPECT_EQ(parse_duration("26h", &err), Duration(26h));
  EXPECT_EQ(parse_duration("1m30s", &err), Duration(90s));
  EXPECT_EQ(parse_duration("1.5s", &err), Duration(1500ms));
  EXPECT_EQ(parse_duration("2d", &err), Duration(48h));
  EXPECT_EQ(parse_duration("250us", &err), Duration(250us));
}

TEST(DurationTest, RejectsWithReason) {
  std::string err;
  EXPECT_FALSE(parse_duration("5", &err));
  EXPECT_NE(err.find("missing unit"), std::string::npos) << err;
  EXPECT_FALSE(parse_duration("5 s", &err));
  EXPECT_FALSE(parse_duration("5x", &err));
  EXPECT_NE(err.find("unknown unit"), std::string::npos) << err;
  EXPECT_FALSE(parse_duration("", &err));
  EXPECT_FALSE(parse_duration("s", &err));
  EXPECT_FALSE(parse_duration("1..2s", &err));
  EXPECT_FALSE(parse_duration("-1s", &err));
  EXPECT_FALSE(parse_duration("99999999999999d", &err));
}

TEST(DurationTest, Formats) {
  EXPECT_EQ(format_duration(2s), "2s");
  EXPECT_EQ(format_duration(500ms), "500ms");
  EXPECT_EQ(format_duration(26h), "26h");
  EXPECT_EQ(format_duration(3min), "3m");
  EXPECT_EQ(format_duration(1500ms), "1.5s");
  EXPECT_EQ(format_duration(0s), "0s");
}

TEST(DurationTest, FormatsWallTimeAsUtc) {
  WallTime t{std::chrono::milliseconds(1'800'000'000'123LL)};
  EXPECT_EQ(format_wall(t), "2027-01-15T08:00:00.123Z");
}
