#include "tests/harness/agent_proc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

namespace pk_test {

AgentProc::AgentProc(std::string hostname, std::string extra_agent_, std::string nfs_extra_,
                     std::string http_extra_)
    : extra_agent(std::move(extra_agent_)),
      nfs_extra(std::move(nfs_extra_)),
      http_extra(std::move(http_extra_)),
      hostname_(std::move(hostname)),
      port_(free_port()) {
  write_file(dir_.file("boot_id"), "boot-1\n");
  set_ok("nfs", true);
  set_ok("http", true);
}

AgentProc::~AgentProc() {
  proc_.kill_and_wait();
  if (listen_fd >= 0) ::close(listen_fd);
}

void AgentProc::listen_on_own_socket() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port_));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 512) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot listen on 127.0.0.1:" + std::to_string(port_));
  }
  listen_fd = fd;
}

std::string AgentProc::config_text() const {
  auto check = [&](const std::string& svc) {
    return "[checks." + svc + "_ok]\nkind = \"exec\"\ncommand = [\"/usr/bin/test\", \"-e\", \"" +
           dir_.file(svc + ".ok") + "\"]\n" + check_timing;
  };
  return "[agent]\nlisten = \"127.0.0.1:" + std::to_string(port_) + "\"\nhostname = \"" + hostname_ +
         "\"\nadmin_socket = \"" + socket() + "\"\nstate_dir = \"" + dir_.file("state") +
         "\"\nboot_id_file = \"" + dir_.file("boot_id") + "\"\ndrain_seconds = 0\n" + extra_agent +
         "\n[services.nfs]\nchecks = [\"nfs_ok\"]\n" + nfs_extra + "\n[services.http]\nchecks = [\"http_ok\"]\n" +
         http_extra + "\n" + check("nfs") + check("http");
}

void AgentProc::write_config(const std::string& text) { write_file(dir_.file("agent.toml"), text); }

void AgentProc::start() {
  if (!std::filesystem::exists(dir_.file("agent.toml"))) write_config(config_text());
  proc_ = Process({POOLKEEPER_BIN, "--config", dir_.file("agent.toml")}, dir_.file("agent.log"), listen_fd);
  if (!wait_for([&] { return get("/status").status == 200; }, 5000ms))
    throw std::runtime_error("agent " + hostname_ + " did not start:\n" + log());
}

void AgentProc::stop_kill9() {
  proc_.signal(SIGKILL);
  proc_.wait(5000ms);
}

void AgentProc::sigterm_and_wait() {
  proc_.signal(SIGTERM);
  proc_.wait(10000ms);
}

void AgentProc::set_ok(const std::string& service, bool ok) {
  if (ok) write_file(dir_.file(service + ".ok"), "");
  else std::filesystem::remove(dir_.file(service + ".ok"));
}

HttpResponse AgentProc::get(const std::string& path) const { return http_get(url() + path, 2000); }

nlohmann::json AgentProc::status() const {
  auto r = get("/status");
  return nlohmann::json::parse(r.body.empty() ? "{}" : r.body);
}

bool AgentProc::wait_health(const std::string& service, int code, std::chrono::milliseconds timeout) const {
  return wait_for([&] { return health(service) == code; }, timeout, 20ms);
}

CommandResult AgentProc::ctl(const std::vector<std::string>& args, const std::string& as,
                             const std::vector<std::string>& prefix) const {
  std::string bin = std::filesystem::path(POOLCTL_BIN).parent_path() / as;
  std::vector<std::string> argv = prefix;
  argv.push_back(bin);
  argv.push_back("--socket");
  argv.push_back(socket());
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r;
  r.rc = run_command(argv, &r.out);
  return r;
}

}  // namespace pk_test
