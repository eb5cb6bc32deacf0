// The real servers every integration test, end-to-end test and the demo use, started
// on free loopback ports in a temp dir and always stopped again: nfs-ganesha (VFS
// FSAL, NFSv4 only, read-only export of the data tree, no rpcbind or dbus), nginx
// serving the same tree, and an rsync daemon with a read-only module of it. Plus the
// faults tests inject: stop, hang (SIGSTOP) and resume, restart, and changes to the
// canary file.
#pragma once

#include <csignal>
#include <memory>
#include <string>

#include "tests/harness/harness.h"

namespace pk_test {

struct GaneshaOptions {
  bool graceless = true;
  int grace_period = 90;   // seconds, used when !graceless
  int lease_lifetime = 0;  // 0: ganesha's default
  std::string address = "127.0.0.1";
};

class Ganesha {
 public:
  Ganesha(const std::string& dir, const std::string& export_dir, GaneshaOptions o = {});
  ~Ganesha() { stop(); }
  void start();  // waits until it accepts TCP connections (bounded)
  void stop();
  void restart() { stop(); start(); }
  void hang() { stop_group(proc_.pid()); }
  void resume() { continue_group(proc_.pid()); }
  int port() const { return port_; }
  std::string log() const;

 private:
  std::string dir_, export_dir_;
  GaneshaOptions o_;
  int port_;
  Process proc_;
};

class Nginx {
 public:
  Nginx(const std::string& dir, const std::string& root);
  ~Nginx() { stop(); }
  void start();
  void stop();
  void hang_all();  // master and workers
  void resume_all();
  int port() const { return port_; }
  // Extra `location` blocks for the server, e.g. a proxy to the agent's health URL.
  void set_extra(const std::string& locations) { extra_ = locations; }

 private:
  std::string dir_, root_, extra_;
  int port_;
  Process proc_;
};

class RsyncDaemon {
 public:
  RsyncDaemon(const std::string& dir, const std::string& root, const std::string& module = "dumps",
              const std::string& address = "127.0.0.1");
  ~RsyncDaemon() { stop(); }
  void start();
  void stop();
  void hang() { stop_group(proc_.pid()); }
  void resume() { continue_group(proc_.pid()); }
  int port() const { return port_; }

 private:
  std::string dir_, root_, module_, address_;
  int port_;
  Process proc_;
};

// etcd 3.4 with the v2 API enabled (conftool's), on free loopback ports.
class Etcd {
 public:
  explicit Etcd(const std::string& dir);
  ~Etcd() { stop(); }
  void start();  // waits until /v2/keys answers
  void stop();
  void hang() { stop_group(proc_.pid()); }
  void resume() { continue_group(proc_.pid()); }
  int port() const { return client_port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(client_port_); }

 private:
  std::string dir_;
  int client_port_, peer_port_;
  Process proc_;
};

// The three servers over one data tree with a canary file.
class Stack {
 public:
  explicit Stack(GaneshaOptions g = {});
  void start();
  const std::string& dir() const { return dir_.path(); }
  std::string data_dir() const { return dir_.file("data"); }
  std::string canary_path() const { return data_dir() + "/canary.txt"; }
  static constexpr const char* kCanary = "poolkeeper canary\n";

  void remove_canary();  // (ganesha may serve a removed file from its cache for a while)
  void write_canary(const std::string& content);
  void age_canary(std::chrono::seconds age);  // its mtime `age` before now
  void set_canary_mtime(std::chrono::system_clock::time_point t);  // (microseconds kept)

  TempDir dir_;
  std::unique_ptr<Ganesha> ganesha;
  std::unique_ptr<Nginx> nginx;
  std::unique_ptr<RsyncDaemon> rsyncd;
};

// True when a TCP connect to host:port succeeds now.
bool tcp_open(const std::string& host, int port);

}  // namespace pk_test
