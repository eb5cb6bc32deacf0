// kind = "nfs": a real NFSv4 probe. Each probe is ONE COMPOUND on a kept-open
// connection — PUTROOTFH, LOOKUP of each path component with GETFH of the export's root
// (after PUTROOTFH for a file at the top, as under knfsd's fsid=0; else after the first
// LOOKUP), GETFH, GETATTR(type, size, fileid, time_modify), READ of the first bytes with
// the anonymous stateid — so it costs one round trip and creates no client state per probe.
//
// It speaks the highest minor version the server has (4.2, 4.1, then 4.0; `minor_version`
// pins one). NFSv4.1/4.2 (checks/nfs4_wire.*): one session per connection (EXCHANGE_ID,
// CREATE_SESSION, RECLAIM_COMPLETE), SEQUENCE first in each COMPOUND. NFSv4.0: libnfs.
//
// Grace: ganesha lets the anonymous READ through during its grace period while clients'
// OPENs fail, so after every (re)connect and every `open_every` probes the check also
// proves a real OPEN/READ/CLOSE works, and fails with "grace period" until it does. On
// 4.1 that is the same COMPOUND with OPEN (by the file handle), READ and CLOSE added; on
// 4.0 it is one long-lived libnfs context (one client id per connection, never one per
// probe). knfsd refuses the anonymous READ itself during grace. Either way the handles
// and attributes the reply did carry stay in the details.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checks/check.h"

struct rpc_context;
struct nfs_context;
struct nfs_argop4;

namespace poolkeeper::nfs4 {
class Nfs41Session;
struct CompoundReply;
}  // namespace poolkeeper::nfs4

namespace poolkeeper {

struct NfsCheckOptions {
  std::string server = "127.0.0.1";
  int port = 2049;
  std::string path;                  // "/dumps/canary.txt" in the NFSv4 pseudo-filesystem
  std::optional<std::string> expect;  // content must start with this
  std::optional<Duration> max_age;    // the file's mtime must be newer than this
  int open_every = 30;
  std::optional<int> minor_version;  // 0, 1 or 2; unset: the highest the server has
};

// Counters of what the probe sent, for tests and /status: proof that a probe is one
// round trip and never creates client state.
struct NfsProbeCounters {
  uint64_t connects = 0;       // raw connections made
  uint64_t compounds = 0;      // COMPOUND RPCs sent on the raw connection
  uint64_t opens = 0;          // probes that also did OPEN/READ/CLOSE
  uint64_t mounts = 0;         // clients set up: a libnfs mount (SETCLIENTID) on 4.0, a
                               // session (EXCHANGE_ID, CREATE_SESSION) on 4.1/4.2
};

class NfsCheck final : public Check {
 public:
  explicit NfsCheck(NfsCheckOptions o);
  ~NfsCheck() override;
  Result run(Deadline deadline, const Clock& clock) override;
  std::string target() const override;
  const NfsProbeCounters& counters() const { return counters_; }

 private:
  struct Pending;
  std::optional<Result> connect(Deadline deadline, const Clock& clock);
  std::optional<Result> connect40(Deadline deadline);
  void disconnect();
  void build_ops();
  Result run40(Deadline deadline, const Clock& clock);
  Result run41(Deadline deadline, const Clock& clock);
  // The verdict on a COMPOUND's results (either minor version); `ops` are the opcodes
  // sent, `now` the time of day the file's age is judged at.
  Result judge(const nfs4::CompoundReply& p, const std::vector<uint32_t>& ops, WallTime now);
  std::optional<Result> open_read_close(Deadline deadline);
  void drop_client();

  NfsCheckOptions o_;
  std::vector<std::string> components_;
  std::vector<uint32_t> probe_ops_, open_ops_;  // opcodes of the two COMPOUNDs
  int root_getfh_ = -1;                         // index of the root handle's GETFH
  std::vector<nfs_argop4> ops_;                 // NFSv4.0: the probe, for libnfs
  std::string probe41_, open41_;                // NFSv4.1: the two, encoded once
  uint32_t attr_mask_[2] = {0, 0};
  std::string root_fh_raw_, fh_raw_, root_fh_hex_, fh_hex_;  // last handles seen
  std::string owner_;     // NFSv4.1 client owner: this check in this process
  int minor_ = -1;        // minor version spoken on the current connection
  rpc_context* rpc_ = nullptr;
  nfs_context* nfs_ = nullptr;
  std::unique_ptr<nfs4::Nfs41Session> s41_;
  bool need_open_ = true;
  int since_open_ = 0;
  std::unique_ptr<Pending> pending_;
  NfsProbeCounters counters_;
};

std::unique_ptr<Check> make_nfs_check(TableReader& reader);
// Clients stay on their host (balancing kPinned); peers compare the root and canary
// file handles (identity), which must be equal for a client to move unharmed.
CheckTraits nfs_check_traits();

}  // namespace poolkeeper
