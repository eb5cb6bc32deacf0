// poolctl: the operator's command line. `check` runs every configured check once, now,
// and prints Nagios plugin output (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), so
// Icinga can use it as is. `status` shows what the running agent decided and why.
#include <curl/curl.h>

#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/config.h"
#include "agent/duration.h"

using namespace poolkeeper;

namespace {

int usage(std::ostream& out, int code) {
  out << "usage: poolctl status [--json] [--url http://127.0.0.1:9473]\n"
         "       poolctl check --config FILE\n";
  return code;
}

size_t collect(char* p, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

int cmd_check(const std::string& file) {
  Config cfg;
  try {
    cfg = load_config(file);
  } catch (const ConfigError& e) {
    std::cout << "POOLKEEPER UNKNOWN - " << e.what() << "\n";
    return 3;
  }
  std::vector<std::string> crit, warn, ok;
  std::string perf;
  for (auto& [name, cc] : cfg.checks) {
    Result r = run_probe(*cc.check, cc.timeout);
    std::string line = name + ": " + r.reason;
    if (r.ok()) ok.push_back(line);
    else if (cc.critical) crit.push_back(line);
    else warn.push_back(line);
    char buf[128];
    std::snprintf(buf, sizeof buf, " %s=%.6fs;;%.3f;0", name.c_str(), seconds(r.latency),
                  seconds(cc.timeout));
    perf += buf;
  }
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  int code = 0;
  std::string summary;
  if (!crit.empty()) {
    code = 2;
    summary = "POOLKEEPER CRITICAL - " + join(crit) + (warn.empty() ? "" : "; " + join(warn));
  } else if (!warn.empty()) {
    code = 1;
    summary = "POOLKEEPER WARNING - " + join(warn);
  } else {
    summary = "POOLKEEPER OK - " + std::to_string(ok.size()) + " checks passed";
  }
  std::cout << summary << " |" << perf << "\n";
  for (const auto& l : ok) std::cout << "ok: " << l << "\n";
  return code;
}

std::string pad(std::string s, size_t w) {
  if (s.size() < w) s.append(w - s.size(), ' ');
  return s;
}

int cmd_status(const std::string& url, bool json) {
  CURL* c = curl_easy_init();
  std::string body;
  std::string full = url + "/status";
  curl_easy_setopt(c, CURLOPT_URL, full.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(c);
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK || code != 200) {
    std::cerr << "poolctl: agent not running at " << url << ": "
              << (rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP " + std::to_string(code)) << "\n";
    return 2;
  }
  if (json) {
    std::cout << body;
    return 0;
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const std::exception& e) {
    std::cerr << "poolctl: agent at " << url << " sent a bad /status: " << e.what() << "\n";
    return 2;
  }
  std::cout << "host " << j.value("host", "?") << "  lifecycle " << j.value("lifecycle", "?")
            << "\n\n";
  std::cout << pad("SERVICE", 12) << pad("EFFECTIVE", 12) << pad("HEALTH", 11)
            << pad("INTENT", 10) << pad("SINCE", 26) << "REASON\n";
  for (auto& [name, s] : j["services"].items()) {
    std::cout << pad(name, 12) << pad(s.value("effective", ""), 12)
              << pad(s.value("health", ""), 11) << pad(s["intent"].value("intent", ""), 10)
              << pad(s.value("since", ""), 26) << s.value("reason", "") << "\n";
  }
  std::cout << "\n"
            << pad("CHECK", 12) << pad("STATE", 11) << pad("STREAK", 9) << pad("LATENCY", 10)
            << "REASON\n";
  for (auto& [name, c] : j["checks"].items()) {
    std::string streak = c.value("successes", 0) > 0
                             ? "+" + std::to_string(c.value("successes", 0))
                             : "-" + std::to_string(c.value("failures", 0));
    std::string latency = "-", reason = "no result yet";
    if (c["last"].is_object()) {
      latency = format_duration(std::chrono::nanoseconds(
          static_cast<long long>(c["last"].value("latency_seconds", 0.0) * 1e9)));
      reason = c["last"].value("reason", "");
    }
    std::cout << pad(name, 12) << pad(c.value("state", ""), 11) << pad(streak, 9)
              << pad(latency, 10) << reason << (c.value("critical", true) ? "" : " (warn only)")
              << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage(std::cerr, 2);
  std::string verb = args[0];
  std::string config, url = "http://127.0.0.1:9473";
  bool json = false;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= args.size()) {
        std::cerr << "poolctl: " << a << " needs a value\n";
        std::exit(2);
      }
      *out = args[++i];
    };
    if (a == "--config") value(&config);
    else if (a == "--url") value(&url);
    else if (a == "--json") json = true;
    else {
      std::cerr << "poolctl: unknown argument \"" << a << "\"\n";
      return usage(std::cerr, 2);
    }
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (verb == "check") {
    if (config.empty()) {
      std::cerr << "poolctl: check needs --config FILE\n";
      return 3;
    }
    return cmd_check(config);
  }
  if (verb == "status") return cmd_status(url, json);
  if (verb == "-h" || verb == "--help") return usage(std::cout, 0);
  std::cerr << "poolctl: unknown command \"" << verb << "\"\n";
  return usage(std::cerr, 2);
}
