// Clients like production's, running in the client namespace against the service IP
// through every scenario, each logging every failure with a timestamp: HTTP downloads
// (a kept-alive and a fresh connection per request), rsync listings and transfers, and
// NFS readers with libnfs — soft-mount semantics (`soft,timeo=20,retrans=1`: a call
// with no answer fails after about 2 × 2 s) and hard-mount semantics (retry for ever),
// each as a long-lived session (one mount, one open file re-read) and as fresh mounts.
// Every NFS client also runs the remount-on-ESTALE helper of the Cloud VPS hosts: on
// ESTALE the mount is dropped and made again through the service IP.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pk_e2e {

class World;
class Timeline;

// The 256 KiB file every host serves as data/file1.bin (the same bytes everywhere).
const std::string& file1_content();
// One fresh NFSv4 mount of `server`:/dumps, reads `path` whole; "" on any error.
std::string nfs_read_once(const std::string& server, const std::string& path);

struct ClientReport {
  std::string name;
  int ok = 0, failed = 0, remounts = 0;
  double longest_gap = 0;  // longest time between two successful operations
  double longest_op = 0;   // longest single operation (for a hard mount: the stall)
  std::vector<std::pair<double, std::string>> failures;
};

class Clients {
 public:
  explicit Clients(World& w);
  ~Clients();
  void start();
  void stop();  // bounded: every operation has a deadline
  std::vector<ClientReport> reports() const;
  ClientReport report(const std::string& name) const;
  // Failed operations of clients whose name starts with `prefix`.
  int failed(const std::string& prefix) const;
  std::string table() const;
  std::string failures_dump() const;

  class Recorder;

 private:
  void http_loop(Recorder& r, bool keepalive);
  void rsync_loop(Recorder& r);
  void nfs_session_loop(Recorder& r, bool hard);
  void nfs_fresh_loop(Recorder& r, bool hard);

  World& world_;
  std::atomic<bool> stop_{false};
  std::vector<std::unique_ptr<Recorder>> recorders_;
  std::vector<std::thread> threads_;
};

}  // namespace pk_e2e
