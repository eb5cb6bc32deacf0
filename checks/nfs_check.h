// kind = "nfs": a real NFSv4 probe with libnfs. Each probe is ONE COMPOUND on a
// kept-open connection — PUTROOTFH, LOOKUP of each path component (GETFH after the
// first: the export's root handle), GETFH, GETATTR(type, size, fileid, time_modify),
// READ of the first bytes with the anonymous stateid — so it costs one round trip and
// creates no client state on the server. Because a READ with the anonymous stateid
// succeeds during the server's grace period while clients' OPENs fail, after every
// (re)connect and every `open_every` probes it also does a real OPEN/READ/CLOSE on one
// long-lived libnfs context (one client id per agent, never one per probe), and fails
// with "grace period" until that works.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checks/check.h"

struct rpc_context;
struct nfs_context;
struct nfs_argop4;

namespace poolkeeper {

struct NfsCheckOptions {
  std::string server = "127.0.0.1";
  int port = 2049;
  std::string path;                  // "/dumps/canary.txt" in the NFSv4 pseudo-filesystem
  std::optional<std::string> expect;  // content must start with this
  std::optional<Duration> max_age;    // the file's mtime must be newer than this
  int open_every = 30;
};

// Counters of what the probe sent, for tests and /status: proof that a probe is one
// round trip and never creates client state.
struct NfsProbeCounters {
  uint64_t connects = 0;       // raw connections made
  uint64_t compounds = 0;      // COMPOUND RPCs sent on the raw connection
  uint64_t opens = 0;          // OPEN/READ/CLOSE rounds on the high-level context
  uint64_t mounts = 0;         // high-level contexts mounted (one SETCLIENTID each)
};

class NfsCheck final : public Check {
 public:
  explicit NfsCheck(NfsCheckOptions o);
  ~NfsCheck() override;
  Result run(Deadline deadline) override;
  std::string target() const override;
  const NfsProbeCounters& counters() const { return counters_; }

 private:
  struct Pending;
  bool connect(Deadline deadline, Result* fail);
  void disconnect();
  void build_ops();
  Result compound(Deadline deadline);
  std::optional<Result> open_read_close(Deadline deadline);
  void drop_client();

  NfsCheckOptions o_;
  std::vector<std::string> components_;
  std::vector<nfs_argop4> ops_;  // the COMPOUND every probe sends
  uint32_t attr_mask_[2] = {0, 0};
  std::string root_fh_raw_, fh_raw_, root_fh_hex_, fh_hex_;  // last handles seen
  rpc_context* rpc_ = nullptr;
  nfs_context* nfs_ = nullptr;
  bool need_open_ = true;
  int since_open_ = 0;
  std::unique_ptr<Pending> pending_;
  NfsProbeCounters counters_;
};

std::unique_ptr<Check> make_nfs_check(TableReader& reader);

// "NFS4ERR_NOENT" for 2, "NFS4ERR_GRACE" for 10013, "NFS4ERR_<n>" otherwise.
std::string nfs4_status_name(int status);

}  // namespace poolkeeper
