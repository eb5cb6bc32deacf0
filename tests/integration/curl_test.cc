// The one libcurl setup (agent/base/curl.h) against a real nginx: the body cap, the
// reasons it gives for failures, and that they are valid UTF-8 on one line.
#include <gtest/gtest.h>

#include <filesystem>

#include "agent/base/curl.h"
#include "agent/base/utf8.h"
#include "tests/harness/servers.h"

using namespace poolkeeper;
using namespace pk_test;

namespace {

class CurlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    std::filesystem::create_directories(dir_->file("data"));
    std::filesystem::create_directories(dir_->file("nginx"));
    write_file(dir_->file("data") + "/big.bin", std::string(200000, 'x'));
    write_file(dir_->file("data") + "/small.txt", "hello\n");
    nginx_ = new Nginx(dir_->file("nginx"), dir_->file("data"));
    nginx_->start();
  }
  static void TearDownTestSuite() {
    delete nginx_;
    delete dir_;
  }
  static std::string url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(nginx_->port()) + path;
  }
  static TempDir* dir_;
  static Nginx* nginx_;
};
TempDir* CurlTest::dir_ = nullptr;
Nginx* CurlTest::nginx_ = nullptr;

struct Easy {
  CURL* c = curl_easy_init();
  ~Easy() { curl_easy_cleanup(c); }
};

}  // namespace

TEST_F(CurlTest, BodyIsCappedAndTheRestReadWithoutError) {
  Easy e;
  CurlTransfer t(1000);
  ASSERT_TRUE(t.setup(e.c, url("/big.bin"), SteadyClock::now() + 2s));
  EXPECT_EQ(curl_easy_perform(e.c), CURLE_OK);
  EXPECT_EQ(t.body(), std::string(1000, 'x'));
  EXPECT_TRUE(t.truncated());
  // The same handle again, for a body under the cap: nothing left from before.
  ASSERT_TRUE(t.setup(e.c, url("/small.txt"), SteadyClock::now() + 2s));
  EXPECT_EQ(curl_easy_perform(e.c), CURLE_OK);
  EXPECT_EQ(t.body(), "hello\n");
  EXPECT_FALSE(t.truncated());
}

TEST_F(CurlTest, RefusedConnectionAndPassedDeadline) {
  Easy e;
  CurlTransfer t(100);
  ASSERT_TRUE(t.setup(e.c, "http://127.0.0.1:" + std::to_string(free_port()) + "/", SteadyClock::now() + 2s));
  CURLcode rc = curl_easy_perform(e.c);
  EXPECT_EQ(t.error_text(e.c, rc), "connection refused");
  EXPECT_FALSE(t.setup(e.c, url("/small.txt"), SteadyClock::now() - 1ms));
}

TEST_F(CurlTest, OnlyHttpAndHttpsAndNoProxyFromTheEnvironment) {
  Easy e;
  CurlTransfer t(100);
  ASSERT_TRUE(t.setup(e.c, "file:///etc/hostname", SteadyClock::now() + 2s));
  CURLcode rc = curl_easy_perform(e.c);
  EXPECT_EQ(rc, CURLE_UNSUPPORTED_PROTOCOL);
  std::string why = t.error_text(e.c, rc);
  EXPECT_FALSE(why.empty());
  EXPECT_TRUE(is_valid_utf8(why));
  ::setenv("http_proxy", "http://127.0.0.1:1", 1);  // would refuse every request
  ASSERT_TRUE(t.setup(e.c, url("/small.txt"), SteadyClock::now() + 2s));
  EXPECT_EQ(curl_easy_perform(e.c), CURLE_OK);
  ::unsetenv("http_proxy");
}

TEST(CurlErrorText, ServerBytesAreMadeValidOneLineText) {
  std::string why = curl_error_text(nullptr, CURLE_SEND_ERROR, "bad \xff\xfe reply\r\nsecond line");
  EXPECT_TRUE(is_valid_utf8(why));
  EXPECT_EQ(why.find('\n'), std::string::npos);
  EXPECT_EQ(why, "bad \xEF\xBF\xBD\xEF\xBF\xBD reply  second line");
  EXPECT_EQ(curl_error_text(nullptr, CURLE_OPERATION_TIMEDOUT, ""), "timed out");
  EXPECT_EQ(curl_error_text(nullptr, CURLE_GOT_NOTHING, ""), "empty reply");
  EXPECT_EQ(curl_error_text(nullptr, CURLE_SEND_ERROR, ""), curl_easy_strerror(CURLE_SEND_ERROR));
}
