// NFSv4.1 and 4.2 on the wire, for the nfs check. libnfs 4.0's XDR knows only NFSv4.0
// operations (no EXCHANGE_ID, CREATE_SESSION, SEQUENCE, RECLAIM_COMPLETE), so this file
// speaks ONC RPC itself (RFC 5531: record marking over TCP, AUTH_SYS) and encodes and
// decodes the handful of NFSv4 operations the probe uses (RFC 8881), nothing more.
//
// Nfs41Session holds one TCP connection and one session on it: EXCHANGE_ID,
// CREATE_SESSION and RECLAIM_COMPLETE once per connection, then every probe is one
// COMPOUND that starts with SEQUENCE on slot 0. Each connection presents a new verifier
// for the same client owner, so the server replaces the previous connection's client
// (and its session) instead of keeping one per reconnect.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "agent/base/net.h"
#include "agent/base/probe.h"

namespace poolkeeper::nfs4 {

// Operation numbers (RFC 8881 section 16.2.1) the probe sends.
enum Op : uint32_t {
  kOpClose = 4,             // closes what OPEN opened
  kOpGetattr = 9,           // the file's attributes
  kOpGetfh = 10,            // a file handle (peers compare the export's)
  kOpLookup = 15,           // each component of the path
  kOpOpen = 18,             // the file opened for reading
  kOpPutrootfh = 24,        // every probe compound starts at the pseudo-root
  kOpRead = 25,             // the file's first bytes
  kOpExchangeId = 42,       // the client's identity (4.1)
  kOpCreateSession = 43,    // one session per connection
  kOpSequence = 53,         // first in every compound of the session
  kOpReclaimComplete = 58,  // nothing to reclaim: OPEN is answered outside grace
};

// Status codes of NFSv4.1 that libnfs's 4.0 headers do not have.
constexpr int kErrBadSession = 10052;
constexpr int kErrBadSlot = 10053;
constexpr int kErrCompleteAlready = 10054;
constexpr int kErrConnNotBound = 10055;
constexpr int kErrSeqMisordered = 10063;
constexpr int kErrDeadSession = 10078;
constexpr int kErrStaleClientid = 10022;
constexpr int kErrExpired = 10011;
constexpr int kErrMinorVersMismatch = 10021;

// "NFS4ERR_NOENT" for 2, "NFS4ERR_BADSESSION" for 10052, "NFS4ERR_<n>" when unknown.
std::string status_name(int status);

// XDR (RFC 4506) into a string.
class XdrOut {
 public:
  void u32(uint32_t v);
  void u64(uint64_t v);
  void opaque(std::string_view v);  // length, bytes, padding
  void fixed(std::string_view v);   // bytes, padding
  void append(std::string_view encoded) { buf_ += encoded; }
  std::string& bytes() { return buf_; }
  const std::string& bytes() const { return buf_; }

 private:
  std::string buf_;
};

// XDR out of a reply. A read past the end or a length over its bound makes ok() false
// and every later read return zero/empty: callers check ok() once at the end.
class XdrIn {
 public:
  explicit XdrIn(std::string_view b) : b_(b) {}
  uint32_t u32();
  uint64_t u64();
  std::string_view opaque(size_t max);
  std::string_view fixed(size_t n);
  bool ok() const { return ok_; }
  size_t left() const { return b_.size() - off_; }

 private:
  std::string_view b_;
  size_t off_ = 0;
  bool ok_ = true;
};

// The attributes the probe asks for (type, size, fileid, time_modify), decoded from a
// GETATTR's bitmap and values; shared with the NFSv4.0 path.
struct FileAttrs {
  bool have = false;
  uint32_t type = 0;
  uint64_t size = 0, fileid = 0;
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
};
FileAttrs decode_fattr(const uint32_t* mask, size_t mask_words, std::string_view values);

// What a COMPOUND reply carried, op by op, as far as the server went.
struct CompoundReply {
  int status = 0;       // the COMPOUND's own status
  unsigned ops = 0;     // results in the reply
  int failed_op = -1;   // index of the first result whose status was not NFS4_OK
  int failed_status = 0;
  int leading_status = 0;  // status of a skipped leading op (SEQUENCE) that failed
  std::string root_fh, fh;  // raw handles: the root's GETFH (see decode_compound), the last
  FileAttrs attrs;
  std::string data;
  bool eof = false;
  void clear();  // keeps the strings' buffers
};

// One connection and one NFSv4.1/4.2 session. Not thread-safe; one probe at a time.
class Nfs41Session {
 public:
  // owner: the client owner string (unique per check instance and process);
  // *sessions is counted up for every session created; `now`, the time of day, stamps
  // the AUTH_SYS credential.
  Nfs41Session(std::string owner, uint32_t minor_version, uint64_t* sessions, WallTime now);
  ~Nfs41Session();

  // Connects and sets the session up. On failure returns what went wrong; when the
  // server does not speak this minor version, *mismatch is set (the connection stays
  // usable for another minor version through retry_minor()).
  std::optional<Result> open(const std::string& host, int port, Deadline deadline, bool* mismatch);
  // On the same connection, tries another minor version (after a mismatch).
  std::optional<Result> retry_minor(uint32_t minor_version, Deadline deadline, bool* mismatch);

  // Sends one COMPOUND: SEQUENCE, then `ops` (already encoded, `nops` of them, the
  // root handle's GETFH at index `root_getfh`). The reply's op indexes in *out are those
  // of `ops` (SEQUENCE not counted). A session the
  // server no longer knows (restart, lease expired, replaced) is set up again and the
  // COMPOUND sent once more. Returns a failure only for the transport and the session;
  // an operation's status is in *out.
  std::optional<Result> compound(const std::string& ops, uint32_t nops, int root_getfh, Deadline deadline,
                                 CompoundReply* out);

  uint32_t minor_version() const { return minor_; }
  uint32_t max_ops() const { return max_ops_; }
  int fd() const { return conn_ ? conn_->fd() : -1; }

 private:
  std::optional<Result> setup(Deadline deadline, bool* mismatch);
  std::optional<Result> call(const std::string& args, std::string* reply, Deadline deadline);

  std::string owner_;
  uint32_t minor_;
  std::unique_ptr<TcpConn> conn_;
  uint32_t xid_;
  uint64_t verifier_ = 0;
  std::string sessionid_;  // 16 bytes
  uint32_t slot_seq_ = 0;
  uint32_t max_ops_ = 0;
  uint64_t* sessions_;
  bool in_setup_ = false;  // RECLAIM_COMPLETE inside setup(): no second setup from there
  std::string cred_;  // AUTH_SYS credential, encoded once
};

// Encoders of the operations the probe sends (appended to `x`).
void put_putrootfh(XdrOut& x);
void put_lookup(XdrOut& x, std::string_view name);
void put_getfh(XdrOut& x);
void put_getattr(XdrOut& x, const uint32_t mask[2]);
void put_read_anonymous(XdrOut& x, uint32_t count);
void put_read_current(XdrOut& x, uint32_t count);   // the stateid OPEN just returned
void put_open_current_fh(XdrOut& x, std::string_view owner);  // read-only, no delegation
void put_close_current(XdrOut& x);

// Decodes a COMPOUND4res (after the RPC header) into *out; `skip` leading results are
// not counted in out's indexes (a SEQUENCE). The GETFH at index `root_getfh` gives
// out->root_fh, any other out->fh. Returns false on a reply it cannot read.
bool decode_compound(std::string_view reply, unsigned skip, int root_getfh, CompoundReply* out,
                     std::string* error);

// The start of a COMPOUND4args: an empty tag and the minor version.
void put_compound_head(XdrOut& x, uint32_t minor_version);

}  // namespace poolkeeper::nfs4
