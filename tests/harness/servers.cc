#include "tests/harness/servers.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace pk_test {

bool tcp_open(const std::string& host, int port) {
  bool v6 = host.find(':') != std::string::npos;
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool ok = false;
  if (v6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET6, host.c_str(), &a.sin6_addr);
    ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, host.c_str(), &a.sin_addr);
    ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ::close(fd);
  return ok;
}

namespace {
void must_start(const std::string& what, const std::string& host, int port, Process& p,
                const std::string& log) {
  if (!wait_for([&] { return tcp_open(host, port) || !p.running(); }, 15000ms, 20ms) ||
      !p.running())
    throw std::runtime_error(what + " did not start on port " + std::to_string(port) + ":\n" +
                             read_file(log));
}
}  // namespace

// ---- nfs-ganesha ----

Ganesha::Ganesha(const std::string& dir, const std::string& export_dir, GaneshaOptions o)
    : dir_(dir), export_dir_(export_dir), o_(o), port_(free_port()) {
  std::filesystem::create_directories(dir_ + "/recovery");
}

void Ganesha::start() {
  std::string conf = dir_ + "/ganesha.conf";
  std::string nfsv4 = "NFSV4 { RecoveryRoot = \"" + dir_ + "/recovery\"; Minor_Versions = 0, 1, 2; ";
  nfsv4 += o_.graceless ? "Graceless = true; " : "Graceless = false; Grace_Period = " + std::to_string(o_.grace_period) + "; ";
  if (o_.lease_lifetime > 0) nfsv4 += "Lease_Lifetime = " + std::to_string(o_.lease_lifetime) + "; ";
  nfsv4 += "}\n";
  write_file(conf,
             "NFS_CORE_PARAM { Protocols = 4; NFS_Port = " + std::to_string(port_) +
                 "; Bind_addr = " + o_.address +
                 "; Enable_NLM = false; Enable_RQUOTA = false; Enable_UDP = false; }\n" + nfsv4 +
                 "NFS_KRB5 { Active_krb5 = false; }\n"
                 "MDCACHE { Use_Getattr_Directory_Invalidation = true; }\n"
                 "EXPORT { Export_Id = 1; Path = \"" + export_dir_ +
                 "\"; Pseudo = /dumps; Access_Type = RO; Attr_Expiration_Time = 0; Squash = No_Root_Squash; SecType = sys; "
                 "Protocols = 4; FSAL { Name = VFS; } }\n");
  proc_ = Process({"ganesha.nfsd", "-F", "-f", conf, "-L", dir_ + "/ganesha.log", "-p",
                   dir_ + "/ganesha.pid", "-N", "NIV_EVENT"},
                  dir_ + "/ganesha.out");
  must_start("nfs-ganesha", o_.address, port_, proc_, dir_ + "/ganesha.log");
}

void Ganesha::stop() {
  if (!proc_.running()) return;
  proc_.signal(SIGCONT);
  proc_.signal(SIGTERM);
  if (!proc_.wait(5000ms)) proc_.kill_and_wait();
  proc_ = Process();
}

std::string Ganesha::log() const { return read_file(dir_ + "/ganesha.log"); }

// ---- nginx ----

Nginx::Nginx(const std::string& dir, const std::string& root) : dir_(dir), root_(root), port_(free_port()) {
  std::filesystem::create_directories(dir_ + "/tmp");
}

void Nginx::start() {
  std::string conf = dir_ + "/nginx.conf";
  write_file(conf,
             "daemon off;\nmaster_process on;\nworker_processes 1;\npid " + dir_ + "/nginx.pid;\n"
             "error_log " + dir_ + "/error.log warn;\n"
             "events { worker_connections 256; }\n"
             "http {\n  access_log off;\n"
             "  client_body_temp_path " + dir_ + "/tmp; proxy_temp_path " + dir_ + "/tmp;\n"
             "  fastcgi_temp_path " + dir_ + "/tmp; uwsgi_temp_path " + dir_ + "/tmp; scgi_temp_path " + dir_ + "/tmp;\n"
             "  server {\n    listen 127.0.0.1:" + std::to_string(port_) + ";\n    listen [::1]:" +
                 std::to_string(port_) + ";\n    root " + root_ + ";\n" + extra_ + "  }\n}\n");
  proc_ = Process({"nginx", "-c", conf, "-p", dir_, "-e", dir_ + "/error.log"}, dir_ + "/nginx.out");
  must_start("nginx", "127.0.0.1", port_, proc_, dir_ + "/error.log");
}

void Nginx::stop() {
  if (!proc_.running()) return;
  resume_all();
  proc_.signal(SIGTERM);
  if (!proc_.wait(5000ms)) proc_.kill_and_wait();
  proc_ = Process();
}

void Nginx::hang_all() { stop_group(proc_.pid()); }
void Nginx::resume_all() { continue_group(proc_.pid()); }

// ---- rsync daemon ----

RsyncDaemon::RsyncDaemon(const std::string& dir, const std::string& root, const std::string& module,
                         const std::string& address)
    : dir_(dir), root_(root), module_(module), address_(address), port_(free_port()) {}

void RsyncDaemon::start() {
  std::string conf = dir_ + "/rsyncd.conf";
  write_file(conf, "pid file = " + dir_ + "/rsyncd.pid\nuse chroot = false\nreverse lookup = no\n"
                   "[" + module_ + "]\n  path = " + root_ + "\n  read only = true\n  comment = dumps\n");
  proc_ = Process({"rsync", "--daemon", "--no-detach", "--config=" + conf, "--address=" + address_,
                   "--port=" + std::to_string(port_), "--log-file=" + dir_ + "/rsyncd.log"},
                  dir_ + "/rsyncd.out");
  must_start("rsync daemon", address_, port_, proc_, dir_ + "/rsyncd.log");
}

void RsyncDaemon::stop() {
  if (!proc_.running()) return;
  proc_.signal(SIGCONT);
  proc_.kill_and_wait();
  proc_ = Process();
}

// ---- etcd ----

Etcd::Etcd(const std::string& dir) : dir_(dir), client_port_(free_port()), peer_port_(free_port()) {}

void Etcd::start() {
  std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
  std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
  proc_ = Process({"etcd", "--name", "test", "--data-dir", dir_ + "/data", "--listen-client-urls", client,
                   "--advertise-client-urls", client, "--listen-peer-urls", peer,
                   "--initial-advertise-peer-urls", peer, "--initial-cluster", "test=" + peer,
                   "--enable-v2=true", "--log-level", "warn",
                   // One member: it is the leader as soon as its first election runs, and
                   // nothing can take that from it, so the election need not wait the
                   // default second (it would, at every start of every test).
                   "--heartbeat-interval", "20", "--election-timeout", "100"},
                  dir_ + "/etcd.log");
  if (!wait_for([&] { return http_get(client + "/v2/keys/", 500).status == 200 || !proc_.running(); }, 20000ms, 50ms) ||
      !proc_.running())
    throw std::runtime_error("etcd did not start:\n" + read_file(dir_ + "/etcd.log"));
}

void Etcd::stop() {
  if (!proc_.running()) return;
  proc_.signal(SIGCONT);
  proc_.signal(SIGTERM);
  if (!proc_.wait(5000ms)) proc_.kill_and_wait();
  proc_ = Process();
}

// ---- the stack ----

Stack::Stack(GaneshaOptions g) {
  std::filesystem::create_directories(data_dir());
  ::chmod(data_dir().c_str(), 0755);
  write_file(canary_path(), kCanary);
  ::chmod(canary_path().c_str(), 0644);
  for (const char* d : {"ganesha", "nginx", "rsyncd"}) std::filesystem::create_directories(dir_.file(d));
  ganesha = std::make_unique<Ganesha>(dir_.file("ganesha"), data_dir(), g);
  nginx = std::make_unique<Nginx>(dir_.file("nginx"), data_dir());
  rsyncd = std::make_unique<RsyncDaemon>(dir_.file("rsyncd"), data_dir());
}

void Stack::start() {
  ganesha->start();
  nginx->start();
  rsyncd->start();
}

void Stack::remove_canary() { std::remove(canary_path().c_str()); }

void Stack::write_canary(const std::string& content) {
  // ganesha notices an out-of-band change by the file's times at one-second
  // granularity; a real canary changes hours apart, a test's within milliseconds.
  struct stat st;
  if (::stat(canary_path().c_str(), &st) == 0)
    wait_for([&] { return ::time(nullptr) > st.st_mtime && ::time(nullptr) > st.st_ctime; }, 2000ms, 20ms);
  std::ofstream(canary_path(), std::ios::binary | std::ios::trunc) << content;  // same inode
  ::chmod(canary_path().c_str(), 0644);
}

void Stack::age_canary(std::chrono::seconds age) { set_canary_mtime(std::chrono::system_clock::now() - age); }

void Stack::set_canary_mtime(std::chrono::system_clock::time_point t) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  struct timeval tv;
  tv.tv_sec = static_cast<time_t>(us / 1'000'000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1'000'000);
  struct timeval both[2] = {tv, tv};
  ::utimes(canary_path().c_str(), both);
}

}  // namespace pk_test
