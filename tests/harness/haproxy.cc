#include "tests/harness/haproxy.h"

#include <cctype>
#include <sstream>
#include <vector>

namespace pk_test {

HaproxyServers parse_servers_state(const std::string& text) {
  HaproxyServers out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || !std::isdigit(static_cast<unsigned char>(line[0]))) continue;
    std::istringstream f(line);
    std::vector<std::string> w;
    std::string x;
    while (f >> x) w.push_back(x);
    // be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight ...
    if (w.size() < 8) continue;
    out[w[1]][w[3]] = {std::stoi(w[5]), std::stoi(w[6]), std::stoi(w[7])};
  }
  return out;
}

}  // namespace pk_test
