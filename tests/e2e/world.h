// The end-to-end world: two realservers (rs1, rs2) behind a director running HAProxy
// with the service IP, etcd for conftool, and a client namespace — each in a network
// namespace of its own (192.0.2.0/24 between them, 198.51.100.10 the service IP, no
// other route anywhere). Each host runs nfs-ganesha, nginx, an rsync daemon and the
// real poolkeeper over its own copy of the data. HAProxy is driven as production's load
// balancer is: HTTP by httpchk on the agent's health URL through nginx, NFS and rsync
// by a watcher of the conftool keys that sets servers ready/maint.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/harness/harness.h"
#include "tests/harness/netns.h"

namespace pk_e2e {

using namespace std::chrono_literals;
using pk_test::Clock;

// Seconds since the world's start; every log line and table uses this clock.
double since_start();
// "%.2f"-style text of a figure in the tables.
std::string fmt(double v, int prec = 2);
// libcurl write callback: appends the body to the std::string given as WRITEDATA.
size_t append_body(char* p, size_t s, size_t n, void* out);
void reset_start();

// Timestamped lines from every part of the world (clients, watcher, director, steps).
class Timeline {
 public:
  void add(const std::string& who, const std::string& what);
  struct Line {
    double t;
    std::string who, what;
  };
  std::vector<Line> lines() const;
  std::string dump(double from = -1, double to = 1e18) const;

 private:
  mutable std::mutex mu_;
  std::vector<Line> lines_;
};

struct HostOptions {
  std::string nfs_on_reboot = "hold";
  int min_pooled = 1;
  bool graceless = true;
  int grace_seconds = 5;
  std::string max_age = "1h";
  // conftool.peer_dead_after: short for the crash and partition scenarios; longer than a
  // test's reboot where a held host must stay held (as 3m is longer than a real one).
  std::string peer_dead_after = "3s";
  // agent.stop_action: "drain" for a host shutdown, "keep" for a restart of the agent
  // alone. Left out of the config when the agent binary does not know the key.
  std::string stop_action = "drain";
};

class Host {
 public:
  Host(const std::string& name, const std::string& ip, const std::string& peer_ip, const std::string& dir,
       const std::string& etcd_url, HostOptions o);
  ~Host();

  const std::string& name() const { return name_; }
  std::string fqdn() const { return name_ + ".example.org"; }
  const std::string& ip() const { return ip_; }
  pk_test::NetNs& ns() { return *ns_; }
  std::string data_dir() const { return dir_ + "/data"; }

  void start_services();  // ganesha, nginx, rsyncd: what systemd starts before the agent
  void start_agent();     // waits until its /status answers
  // systemd's stop order on a shutdown: the agent first (SIGTERM, drain or keep per
  // `stop_action`), then nginx (SIGQUIT, graceful), ganesha and rsyncd. A restart of
  // the agent alone (`host_going_down` false) keeps its listening socket, as systemd
  // keeps poolkeeper.socket's.
  void stop_agent(bool host_going_down = true);
  void stop_services();
  void new_boot_id();
  void crash();  // kill -9 of every process in the namespace
  void hang_ganesha();
  void resume_ganesha();
  void restart_ganesha();
  void hang_nginx();
  void resume_nginx();
  bool agent_running() { return agent_.running(); }

  pk_test::HttpResponse agent_get(const std::string& path);
  int poolctl(const std::vector<std::string>& args, const std::string& as, std::string* out);
  std::string agent_events();  // GET /events, or the log's tail when the agent is down
  std::string agent_log() const;

 private:
  void write_agent_config(const std::string& stop_action);
  void close_listen_socket();

  std::string name_, ip_, peer_ip_, dir_, etcd_url_;
  HostOptions o_;
  std::unique_ptr<pk_test::NetNs> ns_;
  pk_test::Process ganesha_, nginx_, rsyncd_;
  pk_test::Process agent_;
  int boot_ = 1;
  bool mounted_ = false;
  int listen_fd_ = -1;  // the agent's HTTP socket when it takes one from "systemd"
};

// One HAProxy server's state from `show servers state`.
struct SrvState {
  int op = -1, admin = -1;
  bool serving() const { return op == 2 && admin == 0; }
  bool operator==(const SrvState& o) const { return op == o.op && admin == o.admin; }
};
using DirectorView = std::map<std::string, std::map<std::string, SrvState>>;  // backend → server

struct WorldOptions {
  HostOptions rs1, rs2;
};

class World {
 public:
  explicit World(WorldOptions o = {});
  ~World();

  Host& rs1() { return *hosts_[0]; }
  Host& rs2() { return *hosts_[1]; }
  Host& host(const std::string& n) { return n == "rs1" ? rs1() : rs2(); }
  pk_test::NetNs& client_ns() { return *client_; }
  Timeline& timeline() { return timeline_; }
  static constexpr const char* kVip = "198.51.100.10";
  static constexpr const char* kPrefix = "/conftool/v1/pools/test/dumps";

  // Points the client's route at a source address that the NFS backend's source hash
  // sends to `server`, so scenarios know where the NFS clients are. False if none does.
  bool steer_nfs_clients_to(const std::string& server);
  // Waits (bounded) until every backend has both servers serving.
  bool wait_all_serving(std::chrono::milliseconds timeout);
  bool wait_serving(const std::string& backend, const std::string& server, bool serving,
                    std::chrono::milliseconds timeout);
  DirectorView view();  // a fresh `show servers state`
  // The sampled changes: (time, full view) at every change, starting with the first sample.
  std::vector<std::pair<double, DirectorView>> changes() const;
  // First time ≥ `after` at which the sampled view showed `server` serving (or not).
  std::optional<double> first(const std::string& backend, const std::string& server, bool serving,
                              double after) const;
  // Fewest servers serving in `backend` at any sample from `after` on.
  int min_serving(const std::string& backend, double after) const;
  // Number of sampled changes of any server's state from `after` on.
  int changes_after(double after) const;
  // When the watcher first saw <prefix>/<svc>/<host fqdn> with `pooled` == value, at or
  // after `after`.
  std::optional<double> first_key(const std::string& svc, const std::string& host, const std::string& value,
                                  double after) const;
  // Changes of a conftool `pooled` value the watcher saw from `after` on.
  int conftool_changes_after(double after) const;
  std::string director_table(double from) const;

  void stop_etcd();
  void start_etcd();
  // Cuts (or restores) the link between rs1 and rs2 only: both still reach etcd and
  // the director.
  void cut_agents_link(bool cut);

  std::string haproxy(const std::string& cmd);
  std::string etcd_url() const { return "http://192.0.2.1:2379"; }

 private:
  void start_haproxy();
  void seed_keys();
  void start_etcd_process();
  void watcher_loop();
  void sampler_loop();
  bool apply_key(const std::string& key, const std::string& value, uint64_t index);

  pk_test::TempDir dir_;
  Timeline timeline_;
  std::unique_ptr<pk_test::NetNs> director_, client_;
  std::vector<std::unique_ptr<Host>> hosts_;
  pk_test::Process etcd_, haproxy_;
  std::atomic<bool> stop_{false};
  std::thread watcher_, sampler_;
  mutable std::mutex mu_;
  std::vector<std::pair<double, DirectorView>> changes_;
  std::map<std::string, std::string> pooled_;  // "svc/host" → last pooled value seen
  std::vector<double> conftool_changes_;
  std::vector<std::tuple<double, std::string, std::string>> key_log_;  // (t, "svc/host", pooled)
};

}  // namespace pk_e2e
