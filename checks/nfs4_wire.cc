#include "checks/nfs4_wire.h"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>

namespace poolkeeper::nfs4 {

namespace {

constexpr uint32_t kNfsProgram = 100003;
constexpr uint32_t kNfsV4 = 4;
constexpr uint32_t kProcCompound = 1;
constexpr uint32_t kAuthNone = 0;
constexpr uint32_t kAuthSys = 1;
constexpr size_t kMaxRecord = 1 << 20;  // no reply to this probe is anywhere near 1 MiB
constexpr size_t kSessionIdSize = 16;
constexpr size_t kStateidSize = 16;
constexpr uint32_t kOurMaxOps = 64;    // asked for; the server's answer is what counts
constexpr uint32_t kFattrType = 1, kFattrSize = 4, kFattrFileid = 20, kFattrTimeModify = 53;

uint32_t be32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

bool session_gone(int status) {
  return status == kErrBadSession || status == kErrDeadSession || status == kErrStaleClientid ||
         status == kErrExpired || status == kErrSeqMisordered || status == kErrBadSlot ||
         status == kErrConnNotBound;
}

// Each operation's result after its status (RFC 8881 section 18), for the ones we send.
bool skip_stateid(XdrIn& in) { return in.fixed(kStateidSize).size() == kStateidSize; }

bool skip_nfsace(XdrIn& in) {
  in.u32();  // type
  in.u32();  // flag
  in.u32();  // access mask
  in.opaque(1024);  // who
  return in.ok();
}

bool skip_open_ok(XdrIn& in) {
  skip_stateid(in);
  in.u32();  // change_info: atomic
  in.u64();  // before
  in.u64();  // after
  in.u32();  // rflags
  uint32_t words = in.u32();  // attrset
  if (words > 8) return false;
  for (uint32_t i = 0; i < words; ++i) in.u32();
  switch (in.u32()) {  // delegation type
    case 0:  // OPEN_DELEGATE_NONE
      break;
    case 1:  // READ: stateid, recall, permissions
      skip_stateid(in);
      in.u32();
      skip_nfsace(in);
      break;
    case 2: {  // WRITE: stateid, recall, space limit, permissions
      skip_stateid(in);
      in.u32();
      uint32_t limitby = in.u32();
      if (limitby == 1) in.u64();
      else if (limitby == 2) { in.u32(); in.u32(); }
      else return false;
      skip_nfsace(in);
      break;
    }
    case 3: {  // OPEN_DELEGATE_NONE_EXT: why not
      uint32_t why = in.u32();
      if (why == 1 || why == 2) in.u32();  // contention / resource: a server_will_* bool
      break;
    }
    default:
      return false;
  }
  return in.ok();
}

}  // namespace

std::string status_name(int status) {
  switch (status) {
    case 0: return "NFS4_OK";
    case 1: return "NFS4ERR_PERM";
    case 2: return "NFS4ERR_NOENT";
    case 5: return "NFS4ERR_IO";
    case 13: return "NFS4ERR_ACCESS";
    case 20: return "NFS4ERR_NOTDIR";
    case 21: return "NFS4ERR_ISDIR";
    case 22: return "NFS4ERR_INVAL";
    case 70: return "NFS4ERR_STALE";
    case 10001: return "NFS4ERR_BADHANDLE";
    case 10006: return "NFS4ERR_SERVERFAULT";
    case 10008: return "NFS4ERR_DELAY";
    case kErrExpired: return "NFS4ERR_EXPIRED";
    case 10013: return "NFS4ERR_GRACE";
    case 10016: return "NFS4ERR_WRONGSEC";
    case 10018: return "NFS4ERR_RESOURCE";
    case 10019: return "NFS4ERR_MOVED";
    case 10020: return "NFS4ERR_NOFILEHANDLE";
    case kErrMinorVersMismatch: return "NFS4ERR_MINOR_VERS_MISMATCH";
    case kErrStaleClientid: return "NFS4ERR_STALE_CLIENTID";
    case 10044: return "NFS4ERR_OP_ILLEGAL";
    case kErrBadSession: return "NFS4ERR_BADSESSION";
    case kErrBadSlot: return "NFS4ERR_BADSLOT";
    case kErrCompleteAlready: return "NFS4ERR_COMPLETE_ALREADY";
    case kErrConnNotBound: return "NFS4ERR_CONN_NOT_BOUND_TO_SESSION";
    case 10057: return "NFS4ERR_TOO_MANY_OPS";
    case kErrSeqMisordered: return "NFS4ERR_SEQ_MISORDERED";
    case 10065: return "NFS4ERR_REQ_TOO_BIG";
    case 10066: return "NFS4ERR_REP_TOO_BIG";
    case 10071: return "NFS4ERR_CLID_INUSE";
    case kErrDeadSession: return "NFS4ERR_DEADSESSION";
    case 10081: return "NFS4ERR_NOT_ONLY_OP";
    default: return "NFS4ERR_" + std::to_string(status);
  }
}

// ---- XDR ----

void XdrOut::u32(uint32_t v) {
  char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  buf_.append(b, 4);
}

void XdrOut::u64(uint64_t v) {
  u32(static_cast<uint32_t>(v >> 32));
  u32(static_cast<uint32_t>(v));
}

void XdrOut::opaque(std::string_view v) {
  u32(static_cast<uint32_t>(v.size()));
  fixed(v);
}

void XdrOut::fixed(std::string_view v) {
  buf_ += v;
  buf_.append((4 - v.size() % 4) % 4, '\0');
}

uint32_t XdrIn::u32() {
  if (!ok_ || left() < 4) {
    ok_ = false;
    return 0;
  }
  uint32_t v = be32(reinterpret_cast<const unsigned char*>(b_.data() + off_));
  off_ += 4;
  return v;
}

uint64_t XdrIn::u64() {
  uint64_t hi = u32();
  return (hi << 32) | u32();
}

std::string_view XdrIn::opaque(size_t max) {
  uint32_t n = u32();
  if (n > max) ok_ = false;
  return fixed(n);
}

std::string_view XdrIn::fixed(size_t n) {
  size_t padded = n + (4 - n % 4) % 4;
  if (!ok_ || left() < padded) {
    ok_ = false;
    return {};
  }
  std::string_view v = b_.substr(off_, n);
  off_ += padded;
  return v;
}

FileAttrs decode_fattr(const uint32_t* mask, size_t mask_words, std::string_view values) {
  FileAttrs a;
  uint32_t w0 = mask_words > 0 ? mask[0] : 0, w1 = mask_words > 1 ? mask[1] : 0;
  // Attributes below the ones we ask for would come first: a server that sends any
  // the probe did not ask for is not understood (their sizes vary).
  constexpr uint32_t asked0 = (1u << kFattrType) | (1u << kFattrSize) | (1u << kFattrFileid);
  constexpr uint32_t asked1 = 1u << (kFattrTimeModify - 32);
  if ((w0 & ~asked0) || (w1 & ~asked1)) return a;
  for (size_t i = 2; i < mask_words; ++i)
    if (mask[i]) return a;
  XdrIn in(values);
  if (w0 & (1u << kFattrType)) a.type = in.u32();
  if (w0 & (1u << kFattrSize)) a.size = in.u64();
  if (w0 & (1u << kFattrFileid)) a.fileid = in.u64();
  if (w1 & asked1) {
    a.mtime_sec = static_cast<int64_t>(in.u64());
    a.mtime_nsec = in.u32();
  }
  a.have = in.ok();
  return a;
}

void CompoundReply::clear() {
  status = 0;
  ops = 0;
  failed_op = -1;
  failed_status = 0;
  leading_status = 0;
  root_fh.clear();
  fh.clear();
  attrs = FileAttrs{};
  data.clear();
  eof = false;
}

// ---- encoders ----

void put_compound_head(XdrOut& x, uint32_t minor_version) {
  x.opaque("");  // tag
  x.u32(minor_version);
}

void put_putrootfh(XdrOut& x) { x.u32(kOpPutrootfh); }

void put_lookup(XdrOut& x, std::string_view name) {
  x.u32(kOpLookup);
  x.opaque(name);
}

void put_getfh(XdrOut& x) { x.u32(kOpGetfh); }

void put_getattr(XdrOut& x, const uint32_t mask[2]) {
  x.u32(kOpGetattr);
  x.u32(2);
  x.u32(mask[0]);
  x.u32(mask[1]);
}

namespace {
void put_stateid(XdrOut& x, uint32_t seqid) {
  x.u32(seqid);
  x.fixed(std::string_view("\0\0\0\0\0\0\0\0\0\0\0\0", 12));
}
}  // namespace

void put_read_anonymous(XdrOut& x, uint32_t count) {
  x.u32(kOpRead);
  put_stateid(x, 0);  // all zeros: the anonymous stateid
  x.u64(0);
  x.u32(count);
}

void put_read_current(XdrOut& x, uint32_t count) {
  x.u32(kOpRead);
  put_stateid(x, 1);  // seqid 1, other zeros: "the current stateid" (RFC 8881 16.2.3.1.2)
  x.u64(0);
  x.u32(count);
}

void put_open_current_fh(XdrOut& x, std::string_view owner) {
  x.u32(kOpOpen);
  x.u32(0);                // seqid (unused in 4.1)
  x.u32(0x0001 | 0x0400);  // OPEN4_SHARE_ACCESS_READ | OPEN4_SHARE_ACCESS_WANT_NO_DELEG
  x.u32(0);                // share_deny: none
  x.u64(0);                // owner's clientid (the session's, in 4.1)
  x.opaque(owner);
  x.u32(0);  // OPEN4_NOCREATE
  x.u32(4);  // CLAIM_FH: the file is the current filehandle
}

void put_close_current(XdrOut& x) {
  x.u32(kOpClose);
  x.u32(0);
  put_stateid(x, 1);
}

// ---- decoding a COMPOUND reply ----

bool decode_compound(std::string_view reply, unsigned skip, int root_getfh, CompoundReply* out,
                     std::string* error) {
  XdrIn in(reply);
  out->status = static_cast<int>(in.u32());
  in.opaque(1024);  // tag
  uint32_t n = in.u32();
  if (!in.ok() || n > 1024) {
    *error = "COMPOUND reply cannot be read";
    return false;
  }
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t op = in.u32();
    int st = static_cast<int>(in.u32());
    if (!in.ok()) break;
    if (i < skip) {
      if (st != 0) {
        out->leading_status = st;
        return true;
      }
    } else {
      ++out->ops;
      if (st != 0) {
        out->failed_op = static_cast<int>(i - skip);
        out->failed_status = st;
        return true;  // the server stops at the first failure
      }
    }
    switch (op) {
      case kOpSequence:
        in.fixed(kSessionIdSize);
        for (int k = 0; k < 5; ++k) in.u32();  // seqid, slot, highest, target highest, flags
        break;
      case kOpPutrootfh:
      case kOpLookup:
      case kOpReclaimComplete:
        break;
      case kOpGetfh: {
        std::string_view fh = in.opaque(128);
        (static_cast<int>(i - skip) == root_getfh ? out->root_fh : out->fh).assign(fh);
        break;
      }
      case kOpGetattr: {
        uint32_t words = in.u32();
        if (words > 8) {
          *error = "GETATTR reply cannot be read";
          return false;
        }
        uint32_t mask[8] = {};
        for (uint32_t w = 0; w < words; ++w) mask[w] = in.u32();
        std::string_view vals = in.opaque(4096);
        if (in.ok()) out->attrs = decode_fattr(mask, words, vals);
        break;
      }
      case kOpRead:
        out->eof = in.u32() != 0;
        out->data.assign(in.opaque(kMaxRecord));
        break;
      case kOpOpen:
        if (!skip_open_ok(in)) {
          *error = "OPEN reply cannot be read";
          return false;
        }
        break;
      case kOpClose:
        skip_stateid(in);
        break;
      default:
        *error = "COMPOUND reply has an operation the probe did not send (" + std::to_string(op) + ")";
        return false;
    }
  }
  if (!in.ok()) {
    *error = "COMPOUND reply cut short";
    return false;
  }
  return true;
}

// ---- the session ----

Nfs41Session::Nfs41Session(std::string owner, uint32_t minor_version, uint64_t* sessions, WallTime now)
    : owner_(std::move(owner)), minor_(minor_version), sessions_(sessions) {
  std::random_device rd;
  xid_ = rd();
  verifier_ = (uint64_t(rd()) << 32) | rd();
  // AUTH_SYS as the kernel client sends it: stamp, machine name, uid, gid, no groups.
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  XdrOut c;
  c.u32(static_cast<uint32_t>(now.time_since_epoch() / std::chrono::seconds(1)));
  c.opaque(std::string_view(host, ::strnlen(host, 255)));
  c.u32(::geteuid());
  c.u32(::getegid());
  c.u32(0);
  cred_ = std::move(c.bytes());
}

Nfs41Session::~Nfs41Session() = default;

std::optional<Result> Nfs41Session::call(const std::string& args, std::string* reply, Deadline deadline) {
  uint32_t xid = ++xid_;
  XdrOut m;
  m.u32(0);  // record mark, filled in below
  m.u32(xid);
  m.u32(0);  // CALL
  m.u32(2);  // RPC version
  m.u32(kNfsProgram);
  m.u32(kNfsV4);
  m.u32(kProcCompound);
  m.u32(kAuthSys);
  m.opaque(cred_);
  m.u32(kAuthNone);
  m.u32(0);
  m.append(args);
  std::string& b = m.bytes();
  uint32_t len = static_cast<uint32_t>(b.size() - 4) | 0x80000000u;  // one, last, fragment
  b[0] = char(len >> 24), b[1] = char(len >> 16), b[2] = char(len >> 8), b[3] = char(len);
  if (auto f = conn_->write_all(b, deadline)) return f;

  // Records until the one with our xid (an earlier call's late reply is skipped).
  std::string buf;
  // Reads until buf holds n bytes.
  auto fill = [&](size_t n) -> std::optional<Result> {
    while (buf.size() < n) {
      bool timeout = false;
      std::string err;
      if (!conn_->read_some(&buf, 65536, deadline, &timeout, &err)) {
        if (timeout) return Result::fail(Outcome::kTimeout, "timed out");
        return Result::fail(Outcome::kNetworkError, err.empty() ? "connection closed by the server" : err);
      }
    }
    return std::nullopt;
  };
  for (;;) {
    std::string record;
    bool last = false;
    while (!last) {
      if (auto f = fill(4)) return f;
      uint32_t mark = be32(reinterpret_cast<const unsigned char*>(buf.data()));
      last = mark & 0x80000000u;
      size_t flen = mark & 0x7fffffffu;
      if (record.size() + flen > kMaxRecord)
        return Result::fail(Outcome::kNetworkError, "RPC reply over 1 MiB: not an NFS server?");
      if (auto f = fill(4 + flen)) return f;
      record.append(buf, 4, flen);
      buf.erase(0, 4 + flen);
    }
    XdrIn in(record);
    uint32_t got_xid = in.u32();
    uint32_t mtype = in.u32();
    if (!in.ok() || mtype != 1) return Result::fail(Outcome::kNetworkError, "not an RPC reply");
    if (got_xid != xid) continue;
    uint32_t reply_stat = in.u32();
    if (reply_stat == 1) {  // MSG_DENIED
      uint32_t why = in.u32();
      if (why == 0) return Result::fail(Outcome::kFailed, "RPC version refused by the server");
      static const char* auth[] = {"AUTH_OK", "AUTH_BADCRED", "AUTH_REJECTEDCRED", "AUTH_BADVERF",
                                   "AUTH_REJECTEDVERF", "AUTH_TOOWEAK", "AUTH_INVALIDRESP", "AUTH_FAILED"};
      uint32_t st = in.u32();
      return Result::fail(Outcome::kFailed, std::string("RPC credentials refused: ") +
                                                (st < 8 ? auth[st] : "auth_stat " + std::to_string(st)));
    }
    in.u32();          // verifier flavor
    in.opaque(400);    // verifier body
    uint32_t accept = in.u32();
    if (!in.ok() || reply_stat != 0) return Result::fail(Outcome::kNetworkError, "RPC reply cannot be read");
    switch (accept) {
      case 0: {
        size_t header = record.size() - in.left();
        reply->assign(record, header, std::string::npos);
        return std::nullopt;
      }
      case 1: return Result::fail(Outcome::kFailed, "the server has no NFS program (PROG_UNAVAIL)");
      case 2: {
        uint32_t lo = in.u32(), hi = in.u32();
        return Result::fail(Outcome::kFailed, "the server has no NFS version 4 (it has " + std::to_string(lo) +
                                                  " to " + std::to_string(hi) + ")");
      }
      case 3: return Result::fail(Outcome::kFailed, "the server has no COMPOUND procedure (PROC_UNAVAIL)");
      case 4: return Result::fail(Outcome::kFailed, "the server could not decode the call (GARBAGE_ARGS)");
      default: return Result::fail(Outcome::kFailed, "RPC call refused (accept_stat " + std::to_string(accept) + ")");
    }
  }
}

std::optional<Result> Nfs41Session::open(const std::string& host, int port, Deadline deadline, bool* mismatch) {
  conn_ = std::make_unique<TcpConn>();
  // From a reserved port when allowed, as the kernel client does: knfsd's default
  // `secure` export refuses others.
  if (auto f = conn_->connect(host, port, deadline, /*reserved_port=*/true)) return f;
  return setup(deadline, mismatch);
}

std::optional<Result> Nfs41Session::retry_minor(uint32_t minor_version, Deadline deadline, bool* mismatch) {
  minor_ = minor_version;
  return setup(deadline, mismatch);
}

std::optional<Result> Nfs41Session::setup(Deadline deadline, bool* mismatch) {
  *mismatch = false;
  sessionid_.clear();
  ++verifier_;  // a new incarnation: the server drops the previous one's client and session
  auto compound_of = [&](XdrOut& ops) {
    XdrOut a;
    put_compound_head(a, minor_);
    a.append(ops.bytes());
    return std::move(a.bytes());
  };
  auto op_failed = [&](const char* what, int st) {
    return Result::fail(Outcome::kFailed, std::string(what) + ": " + status_name(st));
  };
  // The COMPOUND's status and its one result's, for EXCHANGE_ID and CREATE_SESSION.
  auto head = [&](XdrIn& in, uint32_t want_op, int* status) -> bool {
    *status = static_cast<int>(in.u32());
    in.opaque(1024);
    uint32_t n = in.u32();
    if (n == 0) return false;
    uint32_t op = in.u32();
    int st = static_cast<int>(in.u32());
    if (op != want_op) return false;
    if (st != 0) *status = st;
    return in.ok();
  };

  // EXCHANGE_ID
  XdrOut x;
  x.u32(1);
  x.u32(kOpExchangeId);
  char verf[8];
  for (int i = 0; i < 8; ++i) verf[i] = char(verifier_ >> (56 - 8 * i));
  x.fixed(std::string_view(verf, 8));
  x.opaque(owner_);
  x.u32(0);  // flags
  x.u32(0);  // SP4_NONE
  x.u32(0);  // no implementation id
  std::string reply;
  if (auto f = call(compound_of(x), &reply, deadline)) return f;
  XdrIn in(reply);
  int st = 0;
  if (!head(in, kOpExchangeId, &st)) {
    if (st == kErrMinorVersMismatch) {
      *mismatch = true;
      return Result::fail(Outcome::kFailed, "the server does not speak NFSv4." + std::to_string(minor_) +
                                                " (NFS4ERR_MINOR_VERS_MISMATCH)");
    }
    if (st != 0) return op_failed("EXCHANGE_ID", st);
    return Result::fail(Outcome::kNetworkError, "EXCHANGE_ID reply cannot be read");
  }
  if (st != 0) return op_failed("EXCHANGE_ID", st);
  uint64_t clientid = in.u64();
  uint32_t seq = in.u32();
  if (!in.ok()) return Result::fail(Outcome::kNetworkError, "EXCHANGE_ID reply cut short");

  // CREATE_SESSION: one slot each way, no back channel on this connection.
  x = XdrOut();
  x.u32(1);
  x.u32(kOpCreateSession);
  x.u64(clientid);
  x.u32(seq);
  x.u32(0);  // flags: not persistent, no back channel
  auto attrs = [&](uint32_t maxreq, uint32_t maxresp, uint32_t cached, uint32_t maxops) {
    x.u32(0);  // header pad
    x.u32(maxreq);
    x.u32(maxresp);
    x.u32(cached);
    x.u32(maxops);
    x.u32(1);  // one request at a time
    x.u32(0);  // no RDMA
  };
  attrs(65536, 65536, 4096, kOurMaxOps);  // fore channel
  attrs(4096, 4096, 0, 2);                // back channel
  x.u32(0x40000000);  // callback program (unused: no back channel)
  x.u32(1);
  x.u32(kAuthNone);
  if (auto f = call(compound_of(x), &reply, deadline)) return f;
  in = XdrIn(reply);
  if (!head(in, kOpCreateSession, &st) || st != 0) {
    if (st != 0) return op_failed("CREATE_SESSION", st);
    return Result::fail(Outcome::kNetworkError, "CREATE_SESSION reply cannot be read");
  }
  sessionid_.assign(in.fixed(kSessionIdSize));
  in.u32();  // sequence
  in.u32();  // flags
  in.u32();  // fore channel: header pad
  in.u32();  // max request
  in.u32();  // max response
  in.u32();  // max response cached
  max_ops_ = in.u32();
  if (!in.ok() || sessionid_.size() != kSessionIdSize)
    return Result::fail(Outcome::kNetworkError, "CREATE_SESSION reply cut short");
  slot_seq_ = 1;
  ++*sessions_;

  // RECLAIM_COMPLETE: this client has nothing to reclaim. Until it says so, a server
  // answers its OPENs with NFS4ERR_GRACE even after the grace period.
  XdrOut args;
  args.u32(kOpReclaimComplete);
  args.u32(0);  // rca_one_fs: false
  CompoundReply r;
  in_setup_ = true;
  auto f = compound(args.bytes(), 1, -1, deadline, &r);
  in_setup_ = false;
  if (f) return f;
  if (r.failed_op == 0 && r.failed_status != kErrCompleteAlready) return op_failed("RECLAIM_COMPLETE", r.failed_status);
  return std::nullopt;
}

std::optional<Result> Nfs41Session::compound(const std::string& ops, uint32_t nops, int root_getfh,
                                             Deadline deadline, CompoundReply* out) {
  for (int attempt = 0;; ++attempt) {
    XdrOut a;
    put_compound_head(a, minor_);
    a.u32(nops + 1);
    a.u32(kOpSequence);
    a.fixed(sessionid_);
    a.u32(slot_seq_);
    a.u32(0);  // slot
    a.u32(0);  // highest slot
    a.u32(0);  // cachethis: no
    a.append(ops);
    std::string reply;
    if (auto f = call(a.bytes(), &reply, deadline)) return f;
    out->clear();
    std::string error;
    if (!decode_compound(reply, 1, root_getfh, out, &error)) return Result::fail(Outcome::kNetworkError, error);
    if (out->leading_status == 0) {
      ++slot_seq_;  // the slot moved on, whatever the later operations said
      return std::nullopt;
    }
    if (attempt == 0 && !in_setup_ && session_gone(out->leading_status)) {
      bool mismatch = false;
      if (auto f = setup(deadline, &mismatch)) return f;
      continue;
    }
    return Result::fail(Outcome::kFailed, "SEQUENCE: " + status_name(out->leading_status));
  }
}

}  // namespace poolkeeper::nfs4
