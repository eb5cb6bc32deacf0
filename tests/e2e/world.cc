// The end-to-end world (see world.h): namespaces, the hosts' servers and agents, etcd,
// HAProxy, the conftool watcher that drives it, and the sampler of its view.
#include "tests/e2e/world.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "tests/e2e/clients.h"
#include "tests/harness/haproxy.h"
#include "tests/harness/servers.h"

extern char** environ;

namespace pk_e2e {

namespace fs = std::filesystem;
using pk_test::Process;
using pk_test::read_file;
using pk_test::wait_for;
using pk_test::write_file;

namespace {

std::atomic<int64_t> g_start_ns{Clock::now().time_since_epoch().count()};

// PUT of an etcd v2 key (the way conftool-sync would have created it).
bool etcd_put(const std::string& base, const std::string& key, const std::string& value) {
  CURL* c = curl_easy_init();
  char* esc = curl_easy_escape(c, value.c_str(), static_cast<int>(value.size()));
  std::string body = std::string("value=") + esc, out;
  curl_free(esc);
  std::string url = base + "/v2/keys" + key;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
  long code = 0;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  return code == 200 || code == 201;
}

DirectorView parse_state(const std::string& text) {
  DirectorView v;
  for (const auto& [backend, servers] : pk_test::parse_servers_state(text))
    for (const auto& [server, s] : servers) v[backend][server] = {s.op, s.admin};
  return v;
}

// A listening TCP socket on ip:port in the calling thread's namespace (the role of
// poolkeeper.socket's ListenStream).
int listen_socket(const std::string& ip, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 512) != 0) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error("cannot listen on " + ip + ":" + std::to_string(port) + ": " + std::strerror(err));
  }
  return fd;
}

}  // namespace

std::string fmt(double v, int prec) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

size_t append_body(char* p, size_t s, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, s * n);
  return s * n;
}

double since_start() {
  return std::chrono::duration<double>(Clock::now().time_since_epoch() -
                                       Clock::duration(g_start_ns.load()))
      .count();
}
void reset_start() { g_start_ns = Clock::now().time_since_epoch().count(); }

// ---- Timeline ----

void Timeline::add(const std::string& who, const std::string& what) {
  std::lock_guard<std::mutex> lk(mu_);
  lines_.push_back({since_start(), who, what});
}

std::vector<Timeline::Line> Timeline::lines() const {
  std::lock_guard<std::mutex> lk(mu_);
  return lines_;
}

std::string Timeline::dump(double from, double to) const {
  std::string out;
  for (const auto& l : lines())
    if (l.t >= from && l.t <= to) out += "  " + fmt(l.t, 3) + "  " + l.who + ": " + l.what + "\n";
  return out;
}


// ---- Host ----

Host::Host(const std::string& name, const std::string& ip, const std::string& peer_ip, const std::string& dir,
           const std::string& etcd_url, HostOptions o)
    : name_(name), ip_(ip), peer_ip_(peer_ip), dir_(dir), etcd_url_(etcd_url), o_(std::move(o)) {
  ns_ = std::make_unique<pk_test::NetNs>("pk-" + name);
  for (const char* d : {"ganesha/recovery", "nginx/tmp", "rsyncd", "agent/state"}) fs::create_directories(dir_ + "/" + d);
  ::chmod(dir_.c_str(), 0755);
  write_file(dir_ + "/agent/boot_id", "boot-1\n");
  // A filesystem of its own, as each production host has: the NFS file handles (which
  // carry the filesystem id) then differ between the hosts, as they do there. On one
  // shared filesystem ganesha would open the other host's handles just fine.
  fs::create_directories(data_dir());
  std::string out;
  if (pk_test::run_command({"mount", "-t", "tmpfs", "-o", "size=32m,mode=0755", "tmpfs", data_dir()}, &out) != 0)
    throw std::runtime_error("cannot mount a tmpfs for " + name_ + ": " + out);
  mounted_ = true;
}

Host::~Host() {
  agent_.kill_and_wait();
  close_listen_socket();
  ganesha_.kill_and_wait();
  nginx_.kill_and_wait();
  rsyncd_.kill_and_wait();
  ns_.reset();
  if (mounted_) pk_test::run_command({"umount", "-l", data_dir()}, nullptr);
}

void Host::start_services() {
  std::string nfsv4 = "NFSV4 { RecoveryRoot = \"" + dir_ + "/ganesha/recovery\"; Minor_Versions = 0, 1, 2; ";
  nfsv4 += o_.graceless ? std::string("Graceless = true; ")
                        : "Graceless = false; Grace_Period = " + std::to_string(o_.grace_seconds) +
                              "; Lease_Lifetime = 3; ";
  nfsv4 += "}\n";
  write_file(dir_ + "/ganesha/ganesha.conf",
             "NFS_CORE_PARAM { Protocols = 4; NFS_Port = 2049; Bind_addr = 0.0.0.0; Enable_NLM = false; "
             "Enable_RQUOTA = false; Enable_UDP = false; }\n" + nfsv4 +
                 "NFS_KRB5 { Active_krb5 = false; }\n"
                 "MDCACHE { Use_Getattr_Directory_Invalidation = true; }\n"
                 "EXPORT { Export_Id = 1; Path = \"" + data_dir() +
                 "\"; Pseudo = /dumps; Access_Type = RO; Attr_Expiration_Time = 0; Squash = No_Root_Squash; "
                 "SecType = sys; Protocols = 4; FSAL { Name = VFS; } }\n");
  // The health location exactly as deploy/examples ships it, pointed at this agent.
  std::string health = read_file(std::string(SOURCE_DIR) + "/deploy/examples/nginx-health.conf");
  for (size_t p; (p = health.find("127.0.0.1:9473")) != std::string::npos;) health.replace(p, 14, ip_ + ":9473");
  std::string nd = dir_ + "/nginx";
  write_file(nd + "/nginx.conf",
             "daemon off;\nmaster_process on;\nworker_processes 1;\npid " + nd + "/nginx.pid;\n"
             "error_log " + nd + "/error.log warn;\nevents { worker_connections 512; }\n"
             "http {\n  access_log off;\n  client_body_temp_path " + nd + "/tmp; proxy_temp_path " + nd + "/tmp;\n"
             "  fastcgi_temp_path " + nd + "/tmp; uwsgi_temp_path " + nd + "/tmp; scgi_temp_path " + nd + "/tmp;\n"
             "  server {\n    listen 80;\n    server_name dumps.example.org;\n    root " + data_dir() + ";\n" +
                 health + "  }\n}\n");
  write_file(dir_ + "/rsyncd/rsyncd.conf",
             "pid file = " + dir_ + "/rsyncd/rsyncd.pid\nuse chroot = false\nreverse lookup = no\n"
             "[dumps]\n  path = " + data_dir() + "\n  read only = true\n  comment = dumps\n");
  std::filesystem::remove(dir_ + "/rsyncd/rsyncd.pid");
  ns_->enter([&] {
    ganesha_ = Process({"ganesha.nfsd", "-F", "-f", dir_ + "/ganesha/ganesha.conf", "-L", dir_ + "/ganesha/ganesha.log",
                        "-p", dir_ + "/ganesha/ganesha.pid", "-N", "NIV_EVENT"},
                       dir_ + "/ganesha/ganesha.out");
    nginx_ = Process({"nginx", "-c", nd + "/nginx.conf", "-p", nd, "-e", nd + "/error.log"}, nd + "/nginx.out");
    rsyncd_ = Process({"rsync", "--daemon", "--no-detach", "--config=" + dir_ + "/rsyncd/rsyncd.conf", "--port=873",
                       "--log-file=" + dir_ + "/rsyncd/rsyncd.log"},
                      dir_ + "/rsyncd/rsyncd.out");
    for (auto [what, port] : {std::pair{"ganesha", 2049}, {"nginx", 80}, {"rsyncd", 873}})
      if (!wait_for([&] { return pk_test::tcp_open("127.0.0.1", port); }, 15000ms, 20ms))
        throw std::runtime_error(name_ + ": " + what + " did not start");
  });
}

void Host::write_agent_config(const std::string& stop_action) {
  std::string peers = "peers = [\"http://" + peer_ip_ + ":9473\"]\nmin_pooled = " + std::to_string(o_.min_pooled) + "\n";
  std::string timing = "interval = \"500ms\"\ntimeout = \"400ms\"\nfast_interval = \"100ms\"\nrise = 2\nfall = 2\n";
  std::string cfg =
      "[agent]\nlisten = \"" + ip_ + ":9473\"\nhostname = \"" + fqdn() + "\"\nadmin_socket = \"" + dir_ +
      "/agent/admin.sock\"\nstate_dir = \"" + dir_ + "/agent/state\"\nboot_id_file = \"" + dir_ +
      "/agent/boot_id\"\ndrain_seconds = 3\n" +
      "stop_action = \"" + stop_action + "\"\n" +
      "\n[services.nfs]\nchecks = [\"export\"]\nport = 2049\non_reboot = \"" + o_.nfs_on_reboot + "\"\n" + peers +
      "\n[services.http]\nchecks = [\"web\", \"export\"]\nport = 80\n" + peers +
      "\n[services.rsync]\nchecks = [\"mirror\", \"export\"]\nport = 873\n" + peers +
      "\n[conftool]\nendpoints = [\"" + etcd_url_ + "\"]\nprefix = \"" + World::kPrefix +
      "\"\npeer_dead_after = \"" + o_.peer_dead_after + "\"\n" +
      "liveness_ttl = \"1s\"\n" +
      "\n[checks.export]\nkind = \"nfs\"\nserver = \"127.0.0.1\"\nport = 2049\npath = \"/dumps/canary.txt\"\n"
      "expect = \"poolkeeper canary\"\nmax_age = \"" + o_.max_age + "\"\n" + timing +
      "\n[checks.web]\nkind = \"http\"\nurl = \"http://127.0.0.1/canary.txt\"\nhost = \"dumps.example.org\"\n" +
      timing +
      "\n[checks.mirror]\nkind = \"rsync\"\naddress = \"127.0.0.1:873\"\nmodule = \"dumps\"\npath = \"canary.txt\"\n" +
      timing + "\n[checks.disk]\nkind = \"exec\"\ncommand = [\"/bin/true\"]\ncritical = false\n" + timing;
  write_file(dir_ + "/agent/agent.toml", cfg);
}

void Host::start_agent() {
  write_agent_config(o_.stop_action);
  const std::string cfg = dir_ + "/agent/agent.toml", log = dir_ + "/agent/agent.log";
  ns_->enter([&] {
    // The agent gets its HTTP socket as poolkeeper.socket hands it over, so that an
    // agent restart never refuses a health check.
    if (listen_fd_ < 0) listen_fd_ = listen_socket(ip_, 9473);
    agent_ = pk_test::Process({POOLKEEPER_BIN, "--config", cfg}, log, listen_fd_);
  });
  if (!wait_for([&] { return agent_get("/status").status == 200 || !agent_.running(); }, 10000ms, 50ms) ||
      !agent_.running())
    throw std::runtime_error(name_ + ": agent did not start:\n" + agent_log());
}

void Host::stop_agent(bool host_going_down) {
  agent_.signal(SIGTERM);
  // Beyond the agent's own bound (drain_seconds + 22 s: with etcd down a drain waits
  // up to 20 s for it to take the keys).
  if (!agent_.wait(30000ms).has_value()) agent_.kill_and_wait();
  agent_ = pk_test::Process();
  if (host_going_down) close_listen_socket();
}

void Host::close_listen_socket() {
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

void Host::stop_services() {
  nginx_.signal(SIGCONT);
  nginx_.signal(SIGQUIT);  // as nginx.service's ExecStop: graceful
  ganesha_.signal(SIGCONT);
  ganesha_.signal(SIGTERM);
  rsyncd_.signal(SIGTERM);
  for (Process* p : {&nginx_, &ganesha_, &rsyncd_}) {
    if (!p->wait(8000ms)) p->kill_and_wait();
    *p = Process();
  }
  ns_->kill_all(SIGKILL);  // workers and children left behind, as systemd's KillMode would
}

void Host::new_boot_id() { write_file(dir_ + "/agent/boot_id", "boot-" + std::to_string(++boot_) + "\n"); }

void Host::crash() {
  for (int i = 0; i < 20 && ns_->kill_all(SIGKILL) > 0; ++i) std::this_thread::sleep_for(20ms);
  close_listen_socket();
  agent_.kill_and_wait();
  agent_ = pk_test::Process();
  for (Process* p : {&nginx_, &ganesha_, &rsyncd_}) {
    p->kill_and_wait();
    *p = Process();
  }
}

void Host::hang_ganesha() { pk_test::stop_group(ganesha_.pid()); }
void Host::resume_ganesha() { pk_test::continue_group(ganesha_.pid()); }
void Host::hang_nginx() { pk_test::stop_group(nginx_.pid()); }
void Host::resume_nginx() { pk_test::continue_group(nginx_.pid()); }

void Host::restart_ganesha() {
  ganesha_.signal(SIGTERM);
  if (!ganesha_.wait(8000ms)) ganesha_.kill_and_wait();
  ganesha_ = Process();
  ns_->enter([&] {
    ganesha_ = Process({"ganesha.nfsd", "-F", "-f", dir_ + "/ganesha/ganesha.conf", "-L", dir_ + "/ganesha/ganesha.log",
                        "-p", dir_ + "/ganesha/ganesha.pid", "-N", "NIV_EVENT"},
                       dir_ + "/ganesha/ganesha.out");
    if (!wait_for([&] { return pk_test::tcp_open("127.0.0.1", 2049); }, 15000ms, 20ms))
      throw std::runtime_error(name_ + ": ganesha did not start again");
  });
}

pk_test::HttpResponse Host::agent_get(const std::string& path) {
  pk_test::HttpResponse r;
  ns_->enter([&] { r = pk_test::http_get("http://" + ip_ + ":9473" + path, 2000); });
  return r;
}

int Host::poolctl(const std::vector<std::string>& args, const std::string& as, std::string* out) {
  std::vector<std::string> argv{(fs::path(POOLCTL_BIN).parent_path() / as).string(), "--socket",
                                dir_ + "/agent/admin.sock"};
  argv.insert(argv.end(), args.begin(), args.end());
  return pk_test::run_command(argv, out, 20000ms);
}

std::string Host::agent_log() const { return read_file(dir_ + "/agent/agent.log"); }

std::string Host::agent_events() {
  auto r = agent_get("/events");
  if (r.status == 200) return r.body;
  std::string log = agent_log();
  if (log.size() > 6000) log = "…" + log.substr(log.size() - 6000);
  return "(agent not answering; its log's tail)\n" + log;
}

// ---- World ----

World::World(WorldOptions o) {
  reset_start();
  director_ = std::make_unique<pk_test::NetNs>("pk-dir");
  client_ = std::make_unique<pk_test::NetNs>("pk-cli");
  std::string data_src = dir_.file("src");
  fs::create_directories(data_src + "/data");
  write_file(data_src + "/canary.txt", "poolkeeper canary\n");
  write_file(data_src + "/data/file1.bin", file1_content());
  for (const char* f : {"a.txt", "b.txt", "c.txt"}) write_file(data_src + "/data/" + f, std::string(f) + " dumps\n");
  std::string out;
  if (pk_test::run_command({"chmod", "-R", "a+rX", data_src}, &out) != 0) throw std::runtime_error(out);

  // The network: a bridge on the director, one veth per namespace.
  director_->must({"ip", "link", "add", "br0", "type", "bridge"});
  director_->must({"ip", "addr", "add", "192.0.2.1/24", "dev", "br0"});
  director_->must({"ip", "link", "set", "br0", "up"});
  director_->must({"ip", "addr", "add", std::string(kVip) + "/32", "dev", "lo"});
  auto plug = [&](pk_test::NetNs& ns, const std::string& port, const std::vector<std::string>& addrs) {
    director_->must({"ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns.name()});
    director_->must({"ip", "link", "set", port, "master", "br0"});
    director_->must({"ip", "link", "set", port, "up"});
    for (const auto& a : addrs) ns.must({"ip", "addr", "add", a + "/24", "dev", "eth0"});
    ns.must({"ip", "link", "set", "eth0", "up"});
  };

  start_etcd_process();
  const char* names[] = {"rs1", "rs2"};
  const char* ips[] = {"192.0.2.11", "192.0.2.12"};
  HostOptions hopts[] = {o.rs1, o.rs2};
  for (int i = 0; i < 2; ++i) {
    std::string hd = dir_.file(names[i]);
    fs::create_directories(hd);
    hosts_.push_back(std::make_unique<Host>(names[i], ips[i], ips[1 - i], hd, etcd_url(), hopts[i]));
    plug(hosts_.back()->ns(), std::string("v-") + names[i], {ips[i]});
    // Filled separately, as production's mirrors are: the same files, other inodes,
    // so their NFS file handles differ.
    if (pk_test::run_command({"cp", "-a", data_src + "/.", hosts_.back()->data_dir()}, &out) != 0)
      throw std::runtime_error(out);
    write_file(hosts_.back()->data_dir() + "/host.txt", std::string(names[i]) + "\n");
    ::chmod((hosts_.back()->data_dir() + "/host.txt").c_str(), 0644);
  }
  std::vector<std::string> client_addrs;
  for (int i = 100; i < 108; ++i) client_addrs.push_back("192.0.2." + std::to_string(i));
  plug(*client_, "v-cli", client_addrs);
  client_->must({"ip", "route", "add", std::string(kVip) + "/32", "via", "192.0.2.1", "src", "192.0.2.100"});

  director_->enter([&] {
    if (!wait_for([&] { return pk_test::http_get("http://127.0.0.1:2379/v2/keys/", 500).status == 200; }, 20000ms, 50ms))
      throw std::runtime_error("etcd did not start:\n" + read_file(dir_.file("etcd.log")));
  });
  seed_keys();
  for (auto& h : hosts_) h->start_services();
  start_haproxy();
  for (auto& h : hosts_) h->start_agent();
  timeline_.add("world", "started");
  watcher_ = std::thread([this] { watcher_loop(); });
  sampler_ = std::thread([this] { sampler_loop(); });
}

World::~World() {
  stop_ = true;
  if (watcher_.joinable()) watcher_.join();
  if (sampler_.joinable()) sampler_.join();
  hosts_.clear();
  haproxy_.kill_and_wait();
  etcd_.kill_and_wait();
}

void World::seed_keys() {
  director_->enter([&] {
    for (const char* svc : {"nfs", "http", "rsync"})
      for (const char* h : {"rs1", "rs2"})
        if (!etcd_put("http://127.0.0.1:2379", std::string(kPrefix) + "/" + svc + "/" + h + ".example.org",
                      R"({"pooled": "yes", "weight": 10})"))
          throw std::runtime_error("cannot seed the conftool keys");
  });
}

void World::start_haproxy() {
  std::string sock = dir_.file("haproxy.sock");
  std::string cfg =
      "global\n  stats socket " + sock + " mode 600 level admin\n  pidfile " + dir_.file("haproxy.pid") +
      "\n  log stderr format short local0 notice\n"
      "defaults\n  log global\n  timeout connect 1s\n  timeout client 10m\n  timeout server 10m\n"
      "  timeout check 1s\n\n"
      // HTTP: PyBal's ProxyFetch / Liberica's HTTPCheck on the agent's health URL
      // through nginx; one failure is down, one success is up.
      "frontend http_in\n  mode http\n  bind " + std::string(kVip) + ":80\n  default_backend http\n"
      "backend http\n  mode http\n  balance roundrobin\n"
      "  option httpchk GET /pybal-health/http\n  http-check send hdr Host dumps.example.org\n"
      "  http-check expect status 200\n  default-server inter 1s fall 1 rise 1\n"
      "  server rs1 192.0.2.11:80 check\n  server rs2 192.0.2.12:80 check\n\n"
      // NFS: source-sticky (sh/mh), no monitor (the hold must survive a reboot); ready
      // or maint from conftool alone.
      "frontend nfs_in\n  mode tcp\n  bind " + std::string(kVip) + ":2049\n  default_backend nfs\n"
      "backend nfs\n  mode tcp\n  balance source\n  hash-type consistent\n"
      "  server rs1 192.0.2.11:2049\n  server rs2 192.0.2.12:2049\n\n"
      // rsync: conftool plus a TCP connect check (PyBal's IdleConnection).
      "frontend rsync_in\n  mode tcp\n  bind " + std::string(kVip) + ":873\n  default_backend rsync\n"
      "backend rsync\n  mode tcp\n  balance roundrobin\n  default-server inter 1s fall 1 rise 1\n"
      "  server rs1 192.0.2.11:873 check\n  server rs2 192.0.2.12:873 check\n";
  write_file(dir_.file("haproxy.cfg"), cfg);
  director_->enter([&] {
    haproxy_ = Process({"haproxy", "-db", "-f", dir_.file("haproxy.cfg")}, dir_.file("haproxy.log"));
  });
  if (!wait_for([&] { return !haproxy(("show info")).empty() || !haproxy_.running(); }, 10000ms, 50ms) ||
      !haproxy_.running())
    throw std::runtime_error("haproxy did not start:\n" + read_file(dir_.file("haproxy.log")));
}

std::string World::haproxy(const std::string& cmd) { return pk_test::unix_socket_request(dir_.file("haproxy.sock"), cmd); }

DirectorView World::view() { return parse_state(haproxy("show servers state")); }

bool World::apply_key(const std::string& key, const std::string& value, uint64_t index) {
  // <prefix>/<service>/<host>
  std::string rest = key.substr(std::string(kPrefix).size() + 1);
  size_t slash = rest.find('/');
  if (slash == std::string::npos) return false;
  std::string svc = rest.substr(0, slash), host = rest.substr(slash + 1);
  std::string pooled = "(deleted)";
  if (!value.empty()) {
    auto j = nlohmann::json::parse(value, nullptr, false);
    pooled = j.is_object() ? j.value("pooled", "?") : "?";
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto& last = pooled_[svc + "/" + host];
    if (!last.empty() && last != pooled) {
      conftool_changes_.push_back(since_start());
      timeline_.add("conftool", svc + "/" + host + " " + last + " -> " + pooled + " (index " + std::to_string(index) + ")");
    }
    last = pooled;
    key_log_.emplace_back(since_start(), svc + "/" + host, pooled);
  }
  if (svc != "nfs" && svc != "rsync") return true;  // HTTP follows its httpchk
  std::string server = host.substr(0, host.find('.'));
  haproxy("set server " + svc + "/" + server + " state " + (pooled == "yes" ? "ready" : "maint"));
  return true;
}

// PyBal's etcd driver: GET recursive, then long-poll with wait=true&waitIndex=N; a full
// re-read on errorCode 401 (the index left etcd's window) and after any error.
void World::watcher_loop() {
  director_->enter_this_thread();
  const std::string base = "http://127.0.0.1:2379/v2/keys" + std::string(kPrefix);
  uint64_t next = 0;
  bool need_read = true;
  while (!stop_) {
    if (need_read) {
      auto r = pk_test::http_get(base + "?recursive=true", 1000);
      auto j = nlohmann::json::parse(r.body, nullptr, false);
      if (r.status != 200 || !j.is_object()) {
        std::this_thread::sleep_for(200ms);
        continue;
      }
      for (const auto& svc : j["node"].value("nodes", nlohmann::json::array()))
        for (const auto& h : svc.value("nodes", nlohmann::json::array()))
          apply_key(h.value("key", ""), h.value("value", ""), h.value("modifiedIndex", 0ull));
      next = std::stoull(r.headers.count("x-etcd-index") ? r.headers["x-etcd-index"] : "0") + 1;
      need_read = false;
    }
    auto r = pk_test::http_get(base + "?recursive=true&wait=true&waitIndex=" + std::to_string(next), 1000);
    if (r.status == 0 && r.error.find("imeout") != std::string::npos) continue;  // nothing happened
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (r.status != 200 || !j.is_object() || !j.contains("node")) {
      if (j.is_object() && j.value("errorCode", 0) == 401) timeline_.add("watcher", "index cleared (401): re-read");
      need_read = true;
      std::this_thread::sleep_for(100ms);
      continue;
    }
    const auto& n = j["node"];
    std::string action = j.value("action", "");
    bool gone = action == "delete" || action == "expire";
    if (!n.value("dir", false)) apply_key(n.value("key", ""), gone ? "" : n.value("value", ""), n.value("modifiedIndex", 0ull));
    next = n.value("modifiedIndex", next) + 1;
  }
}

void World::sampler_loop() {
  while (!stop_) {
    DirectorView v = view();
    if (!v.empty()) {
      std::lock_guard<std::mutex> lk(mu_);
      if (changes_.empty() || !(changes_.back().second == v)) {
        if (!changes_.empty())
          for (const auto& [be, servers] : v)
            for (const auto& [s, st] : servers) {
              const SrvState& old = changes_.back().second[be][s];
              if (!(old == st))
                timeline_.add("director", be + "/" + s + " " + (old.serving() ? "serving" : "out") + " -> " +
                                              (st.serving() ? "serving" : "out") + " (op " + std::to_string(st.op) +
                                              " admin " + std::to_string(st.admin) + ")");
            }
        changes_.emplace_back(since_start(), v);
      }
    }
    std::this_thread::sleep_for(100ms);
  }
}

std::vector<std::pair<double, DirectorView>> World::changes() const {
  std::lock_guard<std::mutex> lk(mu_);
  return changes_;
}

// (Each wait ends a little after the live view agrees, so that the sampled view — which
// the figures are computed from — has seen it too.)
bool World::wait_serving(const std::string& backend, const std::string& server, bool serving,
                         std::chrono::milliseconds timeout) {
  bool ok = wait_for([&] { return view()[backend][server].serving() == serving; }, timeout, 50ms);
  std::this_thread::sleep_for(300ms);
  return ok;
}

bool World::wait_all_serving(std::chrono::milliseconds timeout) {
  bool ok = wait_for(
      [&] {
        auto v = view();
        for (const char* be : {"http", "nfs", "rsync"})
          for (const char* s : {"rs1", "rs2"})
            if (!v[be][s].serving()) return false;
        return true;
      },
      timeout, 100ms);
  std::this_thread::sleep_for(300ms);
  return ok;
}

std::optional<double> World::first(const std::string& backend, const std::string& server, bool serving,
                                   double after) const {
  auto ch = changes();
  for (size_t i = 0; i < ch.size(); ++i) {
    double end = i + 1 < ch.size() ? ch[i + 1].first : 1e18;
    if (end <= after) continue;  // a state that ended by `after` does not count
    auto be = ch[i].second.find(backend);
    if (be == ch[i].second.end()) continue;
    auto s = be->second.find(server);
    if (s != be->second.end() && s->second.serving() == serving) return std::max(after, ch[i].first);
  }
  return std::nullopt;
}

int World::min_serving(const std::string& backend, double after) const {
  auto ch = changes();
  int least = 1000;
  for (size_t i = 0; i < ch.size(); ++i) {
    double end = i + 1 < ch.size() ? ch[i + 1].first : 1e18;
    if (end < after) continue;
    int n = 0;
    for (const auto& [s, st] : ch[i].second.at(backend)) n += st.serving();
    least = std::min(least, n);
  }
  return least;
}

int World::changes_after(double after) const {
  auto ch = changes();
  int n = 0;
  for (size_t i = 1; i < ch.size(); ++i)
    if (ch[i].first >= after)
      for (const auto& [be, servers] : ch[i].second)
        for (const auto& [s, st] : servers)
          if (!(ch[i - 1].second.at(be).at(s) == st)) ++n;
  return n;
}

std::optional<double> World::first_key(const std::string& svc, const std::string& host, const std::string& value,
                                      double after) const {
  std::lock_guard<std::mutex> lk(mu_);
  std::string want = svc + "/" + host + ".example.org";
  std::optional<double> state_since;  // the key's value as of `after`
  for (const auto& [t, k, v] : key_log_) {
    if (k != want) continue;
    if (t <= after) {
      state_since = v == value ? std::optional<double>(after) : std::nullopt;
      continue;
    }
    if (state_since) return state_since;
    if (v == value) return t;
  }
  return state_since;
}

int World::conftool_changes_after(double after) const {
  std::lock_guard<std::mutex> lk(mu_);
  int n = 0;
  for (double t : conftool_changes_) n += t >= after;
  return n;
}

std::string World::director_table(double from) const {
  std::string out = "  director's view (serving servers per backend, at each change):\n      t(s)   http      nfs       rsync\n";
  auto ch = changes();
  for (size_t i = 0; i < ch.size(); ++i) {
    const auto& [t, v] = ch[i];
    if (i + 1 < ch.size() && ch[i + 1].first <= from) continue;  // only the last view before `from`
    std::string line = "  " + std::string(t < from ? "(" : " ") + fmt(t, 2);
    while (line.size() < 11) line.insert(2, " ");
    for (const char* be : {"http", "nfs", "rsync"}) {
      std::string cell;
      auto it = v.find(be);
      if (it != v.end())
        for (const auto& [s, st] : it->second)
          if (st.serving()) cell += (cell.empty() ? "" : ",") + s;
      if (cell.empty()) cell = "EMPTY";
      cell.resize(10, ' ');
      line += "  " + cell;
    }
    out += line + "\n";
  }
  return out;
}

void World::stop_etcd() {
  etcd_.signal(SIGTERM);
  if (!etcd_.wait(8000ms)) etcd_.kill_and_wait();
  etcd_ = Process();
  timeline_.add("world", "etcd stopped");
}

void World::start_etcd_process() {
  director_->enter([&] {
    etcd_ = Process({"etcd", "--name", "e2e", "--data-dir", dir_.file("etcd"), "--listen-client-urls",
                     "http://192.0.2.1:2379,http://127.0.0.1:2379", "--advertise-client-urls", "http://192.0.2.1:2379",
                     "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls",
                     "http://127.0.0.1:2380", "--initial-cluster", "e2e=http://127.0.0.1:2380", "--enable-v2=true",
                     "--log-level", "warn"},
                    dir_.file("etcd.log"));
  });
}

void World::start_etcd() {
  start_etcd_process();
  director_->enter([&] {
    if (!wait_for([&] { return pk_test::http_get("http://127.0.0.1:2379/v2/keys/", 500).status == 200; }, 20000ms, 50ms))
      throw std::runtime_error("etcd did not start again");
  });
  timeline_.add("world", "etcd started");
}

void World::cut_agents_link(bool cut) {
  // A blackhole route on each side: packets between the two hosts vanish, as behind a
  // firewall that drops them; the director (etcd, HAProxy) is still reached.
  std::string verb = cut ? "add" : "del";
  rs1().ns().must({"ip", "route", verb, "blackhole", "192.0.2.12/32"});
  rs2().ns().must({"ip", "route", verb, "blackhole", "192.0.2.11/32"});
  timeline_.add("world", cut ? "link rs1<->rs2 cut" : "link rs1<->rs2 restored");
}

bool World::steer_nfs_clients_to(const std::string& server) {
  for (int i = 100; i < 108; ++i) {
    std::string src = "192.0.2." + std::to_string(i);
    client_->must({"ip", "route", "replace", std::string(kVip) + "/32", "via", "192.0.2.1", "src", src});
    std::string who;
    client_->enter([&] { who = nfs_read_once(kVip, "/host.txt"); });
    if (who == server + "\n") {
      timeline_.add("world", "client source " + src + ": NFS goes to " + server);
      return true;
    }
  }
  return false;
}

}  // namespace pk_e2e
