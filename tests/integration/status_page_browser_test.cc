// The status page of a running agent as a browser shows it: Debian's headless
// Chromium renders GET / of an agent with a healthy, a failing and a depooled service;
// the visible text must name each service's state and reason, and screenshots at a
// laptop's and a phone's width are kept under the build dir as test artifacts.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "tests/harness/agent_proc.h"

using namespace pk_test;

namespace {

const std::string kChromium = "/usr/bin/chromium";

// Chromium's common flags: headless as root in a container, no GPU, no first-run or
// network side trips (the page loads nothing but itself).
std::string chromium(const std::string& args) {
  return "timeout 90 " + kChromium +
         " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run"
         " --disable-background-networking --disable-component-update --disable-sync"
         " --hide-scrollbars --user-data-dir=" + args;
}

// The text a reader sees: tags, style and title dropped, entities of interest decoded.
std::string visible_text(std::string dom) {
  dom = std::regex_replace(dom, std::regex("<style[^]*?</style>|<title>[^]*?</title>"), " ");
  dom = std::regex_replace(dom, std::regex("<[^>]*>"), " ");
  dom = std::regex_replace(dom, std::regex("&amp;"), "&");
  dom = std::regex_replace(dom, std::regex("&lt;"), "<");
  dom = std::regex_replace(dom, std::regex("&gt;"), ">");
  dom = std::regex_replace(dom, std::regex("&quot;"), "\"");
  return std::regex_replace(dom, std::regex("\\s+"), " ");
}

// Width and height from a PNG's IHDR.
std::pair<uint32_t, uint32_t> png_size(const std::string& path) {
  std::string b = read_file(path);
  if (b.size() < 24 || b.compare(1, 3, "PNG") != 0) return {0, 0};
  auto be = [&](size_t at) {
    return (uint32_t(uint8_t(b[at])) << 24) | (uint32_t(uint8_t(b[at + 1])) << 16) |
           (uint32_t(uint8_t(b[at + 2])) << 8) | uint32_t(uint8_t(b[at + 3]));
  };
  return {be(16), be(20)};
}

}  // namespace

TEST(StatusPageBrowserTest, ChromiumShowsEveryServicesStateAndReason) {
  ASSERT_TRUE(std::filesystem::exists(kChromium)) << "chromium is not installed (deploy/packages.sh)";
  AgentProc a("h1.example.org");
  a.write_config(a.config_text() + "\n[services.rsync]\nchecks = [\"rsync_ok\"]\n[checks.rsync_ok]\n"
                 "kind = \"exec\"\ncommand = [\"/usr/bin/test\", \"-e\", \"" + a.dir().file("rsync.ok") + "\"]\n" +
                 a.check_timing);
  a.set_ok("rsync", true);
  a.set_ok("http", false);
  a.start();
  ASSERT_TRUE(a.wait_health("nfs", 200, 10000ms)) << a.log();
  ASSERT_TRUE(a.wait_health("rsync", 200, 10000ms)) << a.log();
  CommandResult d = a.ctl({"depool", "rsync", "--reason", "disk <swap> & check"});
  ASSERT_EQ(d.rc, 0) << d.out;
  ASSERT_TRUE(a.wait_health("http", 503, 10000ms));
  ASSERT_TRUE(wait_for([&] { return a.get("/").body.find("unhealthy: exit status 1") != std::string::npos ||
                                     a.get("/").body.find("check http_ok unhealthy") != std::string::npos; },
                       10000ms));
  // Let the history fill a little (exec checks every 250 ms), so the screenshot shows it.
  EXPECT_TRUE(wait_for([&] { return std::regex_search(a.get("/").body, std::regex("<title>(1[2-9]|[2-9][0-9]) results")); },
                       15000ms, 100ms));
  auto page = a.get("/");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.headers["content-type"], "text/html; charset=utf-8");

  std::string dom_file = a.dir().file("dom.html");
  std::string out;
  int rc = run_command({"sh", "-c", chromium(a.dir().file("chrome-dom")) + " --dump-dom " + a.url() + "/ > " +
                                        dom_file + " 2>" + a.dir().file("chrome-dom.log")},
                       &out, 100000ms);
  ASSERT_EQ(rc, 0) << read_file(a.dir().file("chrome-dom.log"));
  std::string text = visible_text(read_file(dom_file));
  std::cout << "visible text: " << text.substr(0, 1500) << "\n";
  // Healthy: pooled, all critical checks healthy.
  EXPECT_TRUE(std::regex_search(text, std::regex("nfs POOLED all critical checks healthy"))) << text;
  // Failing: not pooled, and why.
  EXPECT_TRUE(std::regex_search(text, std::regex("http NOT POOLED check http_ok unhealthy: [^ ]"))) << text;
  // Depooled: the operator's state, reason and who.
  EXPECT_TRUE(std::regex_search(text, std::regex("rsync NOT POOLED \\(operator\\) depooled: disk <swap> & check")))
      << text;
  EXPECT_TRUE(std::regex_search(text, std::regex("intent depooled by [^ ]+: \u201cdisk <swap> & check\u201d"))) << text;
  EXPECT_NE(text.find("1 of 3 services pooled"), std::string::npos) << text;
  EXPECT_NE(text.find("Last events"), std::string::npos);

  std::filesystem::create_directories(ARTIFACT_DIR);
  for (auto [name, w, h] : {std::tuple{"laptop", 1366, 1100}, std::tuple{"phone", 390, 2000}}) {
    std::string png = std::string(ARTIFACT_DIR) + "/status_page_" + name + ".png";
    std::filesystem::remove(png);
    std::string log = a.dir().file(std::string("chrome-") + name + ".log");
    rc = run_command({"sh", "-c", chromium(a.dir().file(std::string("chrome-") + name)) + " --screenshot=" + png +
                                      " --window-size=" + std::to_string(w) + "," + std::to_string(h) + " " +
                                      a.url() + "/ >" + log + " 2>&1"},
                     &out, 100000ms);
    ASSERT_EQ(rc, 0) << read_file(log);
    auto [pw, ph] = png_size(png);
    EXPECT_EQ(pw, uint32_t(w)) << png;
    EXPECT_EQ(ph, uint32_t(h)) << png;
    EXPECT_GT(std::filesystem::file_size(png), 10000u);
    std::cout << "screenshot (" << name << ", " << w << "x" << h << "): " << png << "\n";
  }
}
