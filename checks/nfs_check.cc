#include "checks/nfs_check.h"

#include <fcntl.h>
#include <poll.h>

// libnfs's headers are C and rely on these being in scope first.
#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs4.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "agent/base/duration.h"
#include "agent/base/utf8.h"
#include "agent/base/net.h"
#include "checks/nfs4_wire.h"

namespace poolkeeper {

namespace {

// A wait in libnfs's event loop lasts 100 ms at most (and the one poll_ms adds).
constexpr int kMaxPollMs = 100 + 1;

std::string hex(const char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(p[i]);
    s += digits[c >> 4];
    s += digits[c & 15];
  }
  return s;
}

// Copies what the probe needs out of libnfs's COMPOUND reply (it is freed after the
// callback). May throw (out of memory).
void copy_compound(const COMPOUND4res& res, int root_getfh, nfs4::CompoundReply& out) {
  out.status = res.status;
  out.ops = res.resarray.resarray_len;
  for (u_int i = 0; i < res.resarray.resarray_len; ++i) {
    // libnfs's decoder may lay the results out at 4-byte alignment (seen with UBSan);
    // read each through an aligned shallow copy (its pointers still point into the reply).
    nfs_resop4 r;
    std::memcpy(static_cast<void*>(&r),
                reinterpret_cast<const char*>(res.resarray.resarray_val) + i * sizeof(nfs_resop4), sizeof r);
    // Every result union starts with its nfsstat4.
    int st = *reinterpret_cast<const int*>(&r.nfs_resop4_u);
    if (st != NFS4_OK) {
      out.failed_op = static_cast<int>(i);
      out.failed_status = st;
      break;
    }
    if (r.resop == OP_GETFH) {
      auto& obj = r.nfs_resop4_u.opgetfh.GETFH4res_u.resok4.object;
      (static_cast<int>(i) == root_getfh ? out.root_fh : out.fh).assign(obj.nfs_fh4_val, obj.nfs_fh4_len);
    } else if (r.resop == OP_GETATTR) {
      auto& fa = r.nfs_resop4_u.opgetattr.GETATTR4res_u.resok4.obj_attributes;
      out.attrs = nfs4::decode_fattr(fa.attrmask.bitmap4_val, fa.attrmask.bitmap4_len,
                                     std::string_view(fa.attr_vals.attrlist4_val, fa.attr_vals.attrlist4_len));
    } else if (r.resop == OP_READ) {
      auto& ok = r.nfs_resop4_u.opread.READ4res_u.resok4;
      out.data.assign(ok.data.data_val, ok.data.data_len);
      out.eof = ok.eof;
    }
  }
}

}  // namespace

// What a callback left behind. Owned by the check (not the stack), because a
// callback may still fire while a timed-out context is being destroyed.
struct NfsCheck::Pending {
  bool done = false;
  int status = RPC_STATUS_ERROR;
  std::string error;
  nfs4::CompoundReply reply;  // copied out of libnfs's reply inside the callback
  int root_getfh = -1;           // which GETFH in the probe is the root's (set once)
  struct nfsfh* file = nullptr;  // high-level results
  // Back to "nothing yet", keeping the strings' buffers: a probe allocates nothing here.
  void reset() {
    done = false;
    status = RPC_STATUS_ERROR;
    error.clear();
    reply.clear();
    file = nullptr;
  }

  // The callbacks libnfs's C code calls with a Pending as `priv`: nothing may throw
  // out of them. An RPC call's: its status and error text, and for a COMPOUND the
  // reply copied out (out of memory copying it: a failed probe, not a crash).
  template <bool kCompound>
  static void on_rpc(rpc_context*, int status, void* data, void* priv) noexcept {
    auto* p = static_cast<Pending*>(priv);
    p->done = true;
    p->status = status;
    try {
      if (status != RPC_STATUS_SUCCESS) {
        if (data) p->error = static_cast<const char*>(data);
        return;
      }
      if constexpr (kCompound) copy_compound(*static_cast<COMPOUND4res*>(data), p->root_getfh, p->reply);
    } catch (...) {
      p->status = RPC_STATUS_ERROR;
    }
  }
  // A high-level (nfs_*) call's: its status and error text, and for an open the file.
  template <bool kOpen>
  static void on_nfs(int err, nfs_context* nfs, void* data, void* priv) noexcept {
    auto* p = static_cast<Pending*>(priv);
    p->done = true;
    p->status = err;
    try {
      if (err < 0) p->error = data ? static_cast<const char*>(data) : nfs_get_error(nfs);
      else if constexpr (kOpen) p->file = static_cast<struct nfsfh*>(data);
    } catch (...) {
    }
  }
};

namespace {
std::atomic<uint64_t> instances{0};
}  // namespace

NfsCheck::NfsCheck(NfsCheckOptions o) : o_(std::move(o)), pending_(std::make_unique<Pending>()) {
  size_t i = 0;
  while (i < o_.path.size()) {
    size_t j = o_.path.find('/', i);
    if (j == std::string::npos) j = o_.path.size();
    if (j > i) components_.push_back(o_.path.substr(i, j - i));
    i = j + 1;
  }
  build_ops();
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  owner_ = "poolkeeper " + std::string(host) + " " + std::to_string(::getpid()) + "." +
           std::to_string(++instances) + " " + target();
  if (owner_.size() > 1024) owner_.resize(1024);
}

NfsCheck::~NfsCheck() {
  disconnect();
  drop_client();
}

std::string NfsCheck::target() const {
  return "nfs://" + o_.server + ":" + std::to_string(o_.port) + o_.path;
}

void NfsCheck::disconnect() {
  if (rpc_) {
    rpc_destroy_context(rpc_);
    rpc_ = nullptr;
  }
  s41_.reset();
  minor_ = -1;
}

void NfsCheck::drop_client() {
  if (nfs_) {
    nfs_destroy_context(nfs_);
    nfs_ = nullptr;
  }
}

namespace {

// Drives a libnfs context's event loop (raw rpc_* or high-level nfs_*: same shape)
// until the pending call is done or the deadline passes.
template <typename Ctx>
bool service_until(Ctx* ctx, int (*get_fd)(Ctx*), int (*which_events)(Ctx*), int (*service)(Ctx*, int),
                   const bool& done, Deadline deadline) {
  while (!done) {
    int ms = std::min(poll_ms(deadline), kMaxPollMs);
    if (ms <= 0) return false;
    pollfd p{get_fd(ctx), static_cast<short>(which_events(ctx)), 0};
    int r = ::poll(&p, 1, ms);
    if (r < 0 && errno != EINTR) return false;
    if (service(ctx, r > 0 ? p.revents : 0) < 0) return done;
  }
  return true;
}

bool service_rpc(rpc_context* rpc, const bool& done, Deadline deadline) {
  return service_until(rpc, rpc_get_fd, rpc_which_events, rpc_service, done, deadline);
}

bool service_nfs(nfs_context* nfs, const bool& done, Deadline deadline) {
  return service_until(nfs, nfs_get_fd, nfs_which_events, nfs_service, done, deadline);
}

std::string short_error(std::string e) {
  // A refused connect shows up as a hang-up of the connecting socket.
  if (e.find("POLLHUP") != std::string::npos) return "connection refused";
  // libnfs's context lost its connection (the server restarted) and could not get it back.
  if (e.find("Failed to reconnect") != std::string::npos) return "connection to the server lost";
  // libnfs errors look like "connect() to server failed. Connection refused(111)".
  for (const char* known : {"Connection refused", "Connection reset", "No route to host",
                            "Network is unreachable", "Broken pipe"}) {
    if (e.find(known) != std::string::npos) {
      std::string k = known;
      k[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(k[0])));
      return k;
    }
  }
  e = valid_utf8(e);  // libnfs may quote the server (names, paths)
  if (e.size() > 120) e = cut_utf8(e, 117) + "...";
  return e;
}

}  // namespace

std::optional<Result> NfsCheck::connect(Deadline deadline, const Clock& clock) {
  ++counters_.connects;
  need_open_ = true;  // a new connection may mean a restarted server: prove OPEN works
  since_open_ = 0;
  if (!o_.minor_version || *o_.minor_version >= 1) {
    uint32_t want = static_cast<uint32_t>(o_.minor_version.value_or(2));
    s41_ = std::make_unique<nfs4::Nfs41Session>(owner_, want, &counters_.mounts, clock.wall());
    bool mismatch = false;
    auto fail = s41_->open(o_.server, o_.port, deadline, &mismatch);
    if (fail && mismatch && !o_.minor_version) fail = s41_->retry_minor(1, deadline, &mismatch);
    if (!fail) {
      size_t need = open_ops_.size() + 1;  // with SEQUENCE
      if (s41_->max_ops() < need) {
        uint32_t m = s41_->max_ops();
        s41_.reset();
        return Result::fail(Outcome::kFailed, "path too deep: the probe needs " + std::to_string(need) +
                                                  " operations in a COMPOUND, the server allows " + std::to_string(m));
      }
      minor_ = static_cast<int>(s41_->minor_version());
      return std::nullopt;
    }
    s41_.reset();
    // Only when the server has neither 4.2 nor 4.1 and no version was asked for: 4.0.
    if (!(mismatch && !o_.minor_version)) return fail;
  }
  return connect40(deadline);
}

std::optional<Result> NfsCheck::connect40(Deadline deadline) {
  // The OPEN context of an earlier connection may be dead (the server restarted): a
  // new connection gets a new one, rather than failing once on the old.
  drop_client();
  rpc_ = rpc_init_context();
  if (!rpc_) return Result::fail(Outcome::kFailed, "cannot create an RPC context");
  pending_->reset();
  std::optional<Result> fail;
  if (rpc_connect_port_async(rpc_, o_.server.c_str(), o_.port, NFS4_PROGRAM, NFS_V4, Pending::on_rpc<false>,
                             pending_.get()) != 0)
    fail = Result::fail(Outcome::kNetworkError, short_error(rpc_get_error(rpc_)));
  else if (!service_rpc(rpc_, pending_->done, deadline))
    fail = pending_->done ? Result::fail(Outcome::kNetworkError, short_error(pending_->error))
                          : Result::fail(Outcome::kTimeout, "timed out connecting");
  else if (pending_->status != RPC_STATUS_SUCCESS)
    fail = Result::fail(Outcome::kNetworkError, short_error(pending_->error));
  if (fail) {
    disconnect();
    return fail;
  }
  minor_ = 0;
  return std::nullopt;
}

// The probe's operations, the same for every probe, so built once: PUTROOTFH,
// LOOKUP of each component, the root handle's GETFH (after PUTROOTFH for a file at the
// top of the pseudo-filesystem, else after the first LOOKUP), GETFH, GETATTR, READ. The
// open variant (4.1) adds OPEN by the file handle, READ with its stateid, and CLOSE.
void NfsCheck::build_ops() {
  probe_ops_.push_back(nfs4::kOpPutrootfh);
  std::vector<int> comp_of;  // per op: the path component a LOOKUP names
  comp_of.push_back(-1);
  if (components_.size() == 1) {
    root_getfh_ = static_cast<int>(probe_ops_.size());
    probe_ops_.push_back(nfs4::kOpGetfh);
    comp_of.push_back(-1);
  }
  for (size_t i = 0; i < components_.size(); ++i) {
    probe_ops_.push_back(nfs4::kOpLookup);
    comp_of.push_back(static_cast<int>(i));
    if (i == 0 && components_.size() > 1) {
      root_getfh_ = static_cast<int>(probe_ops_.size());
      probe_ops_.push_back(nfs4::kOpGetfh);
      comp_of.push_back(-1);
    }
  }
  for (uint32_t op : {nfs4::kOpGetfh, nfs4::kOpGetattr, nfs4::kOpRead}) {
    probe_ops_.push_back(op);
    comp_of.push_back(-1);
  }
  open_ops_ = probe_ops_;
  for (uint32_t op : {nfs4::kOpOpen, nfs4::kOpRead, nfs4::kOpClose}) open_ops_.push_back(op);
  pending_->root_getfh = root_getfh_;

  attr_mask_[0] = (1u << FATTR4_TYPE) | (1u << FATTR4_SIZE) | (1u << FATTR4_FILEID);
  attr_mask_[1] = 1u << (FATTR4_TIME_MODIFY - 32);
  auto count = static_cast<uint32_t>(std::max<size_t>(64, o_.expect ? o_.expect->size() : 0));

  // NFSv4.0, for libnfs (the ops point into components_ and attr_mask_).
  for (size_t i = 0; i < probe_ops_.size(); ++i) {
    nfs_argop4 op;
    std::memset(&op, 0, sizeof op);
    op.argop = static_cast<nfs_opnum4>(probe_ops_[i]);
    if (probe_ops_[i] == nfs4::kOpLookup) {
      std::string& c = components_[static_cast<size_t>(comp_of[i])];
      op.nfs_argop4_u.oplookup.objname.utf8string_len = static_cast<u_int>(c.size());
      op.nfs_argop4_u.oplookup.objname.utf8string_val = c.data();
    } else if (probe_ops_[i] == nfs4::kOpGetattr) {
      op.nfs_argop4_u.opgetattr.attr_request.bitmap4_len = 2;
      op.nfs_argop4_u.opgetattr.attr_request.bitmap4_val = attr_mask_;
    } else if (probe_ops_[i] == nfs4::kOpRead) {
      op.nfs_argop4_u.opread.offset = 0;  // anonymous stateid: all zeros
      op.nfs_argop4_u.opread.count = count;
    }
    ops_.push_back(op);
  }

  // NFSv4.1/4.2, encoded (after the SEQUENCE the session puts first).
  nfs4::XdrOut x;
  for (size_t i = 0; i < probe_ops_.size(); ++i) {
    switch (probe_ops_[i]) {
      case nfs4::kOpPutrootfh: nfs4::put_putrootfh(x); break;
      case nfs4::kOpLookup: nfs4::put_lookup(x, components_[static_cast<size_t>(comp_of[i])]); break;
      case nfs4::kOpGetfh: nfs4::put_getfh(x); break;
      case nfs4::kOpGetattr: nfs4::put_getattr(x, attr_mask_); break;
      case nfs4::kOpRead: nfs4::put_read_anonymous(x, count); break;
    }
  }
  probe41_ = x.bytes();
  nfs4::put_open_current_fh(x, "poolkeeper probe");  // scoped to our client
  nfs4::put_read_current(x, count);
  nfs4::put_close_current(x);
  open41_ = std::move(x.bytes());
}

Result NfsCheck::run40(Deadline deadline, const Clock& clock) {
  COMPOUND4args args;
  std::memset(&args, 0, sizeof args);
  args.minorversion = 0;
  args.argarray.argarray_len = static_cast<u_int>(ops_.size());
  args.argarray.argarray_val = ops_.data();

  pending_->reset();
  ++counters_.compounds;
  if (rpc_nfs4_compound_async(rpc_, Pending::on_rpc<true>, &args, pending_.get()) != 0) {
    std::string e = short_error(rpc_get_error(rpc_));
    disconnect();
    return Result::fail(Outcome::kNetworkError, e);
  }
  // The socket of a warm connection is writable: send now rather than after a poll
  // that would only say so (one system call less on every probe).
  if (rpc_service(rpc_, POLLOUT) < 0 && !pending_->done) pending_->error = rpc_get_error(rpc_);
  if (!service_rpc(rpc_, pending_->done, deadline)) {
    // Decide before disconnecting: destroying the context cancels the call, which
    // runs the callback.
    bool answered = pending_->done;
    std::string error = pending_->error;
    disconnect();
    if (answered) return Result::fail(Outcome::kNetworkError, short_error(error));
    return Result::fail(Outcome::kTimeout, "timed out");
  }
  if (pending_->status != RPC_STATUS_SUCCESS) {
    std::string e = pending_->error.empty() ? "RPC failed" : short_error(pending_->error);
    disconnect();
    return Result::fail(pending_->status == RPC_STATUS_TIMEOUT ? Outcome::kTimeout
                                                                 : Outcome::kNetworkError,
                        e);
  }
  Result r = judge(pending_->reply, probe_ops_, clock.wall());
  if (!r.ok()) return r;
  if (need_open_ || ++since_open_ >= o_.open_every) {
    if (auto f = open_read_close(deadline)) {
      f->details = r.details;
      need_open_ = true;
      return *f;
    }
    need_open_ = false;
    since_open_ = 0;
    r.details["opened"] = true;
  }
  return r;
}

Result NfsCheck::run41(Deadline deadline, const Clock& clock) {
  bool open_now = need_open_ || since_open_ + 1 >= o_.open_every;
  const std::vector<uint32_t>& ops = open_now ? open_ops_ : probe_ops_;
  ++counters_.compounds;
  if (open_now) ++counters_.opens;
  nfs4::CompoundReply& reply = pending_->reply;
  if (auto f = s41_->compound(open_now ? open41_ : probe41_, static_cast<uint32_t>(ops.size()), root_getfh_,
                              deadline, &reply)) {
    disconnect();
    return *f;
  }
  Result r = judge(reply, ops, clock.wall());
  if (open_now) {
    need_open_ = !r.ok();
    if (r.ok()) {
      since_open_ = 0;
      r.details["opened"] = true;
    }
  } else if (r.ok()) {
    ++since_open_;
  }
  return r;
}

Result NfsCheck::judge(const nfs4::CompoundReply& p, const std::vector<uint32_t>& ops, WallTime now) {
  Result r = Result::pass();
  // What the reply carried goes into the details whatever the verdict: the handles
  // during a grace period, the age of a stale canary. The handles are the same on
  // nearly every probe: hex-encoded only when they change.
  if (p.root_fh != root_fh_raw_) {
    root_fh_raw_ = p.root_fh;
    root_fh_hex_ = hex(p.root_fh.data(), p.root_fh.size());
  }
  if (p.fh != fh_raw_) {
    fh_raw_ = p.fh;
    fh_hex_ = hex(p.fh.data(), p.fh.size());
  }
  if (!root_fh_hex_.empty()) r.details["root_fh"] = root_fh_hex_;
  if (!fh_hex_.empty()) r.details["fh"] = fh_hex_;
  r.details["minor_version"] = minor_;
  Duration age{0};
  if (p.attrs.have) {
    r.details["size"] = p.attrs.size;
    r.details["fileid"] = p.attrs.fileid;
    r.details["mtime"] = p.attrs.mtime_sec;
    WallTime mtime{std::chrono::duration_cast<WallTime::duration>(
        std::chrono::seconds(p.attrs.mtime_sec) + std::chrono::nanoseconds(p.attrs.mtime_nsec))};
    age = now - mtime;
    r.details["age_seconds"] = seconds(age);
    if (o_.max_age) r.details["max_age_seconds"] = seconds(*o_.max_age);
  }
  size_t first_read = static_cast<size_t>(std::find(ops.begin(), ops.end(), nfs4::kOpRead) - ops.begin());
  if (first_read < p.ops && (p.failed_op < 0 || static_cast<size_t>(p.failed_op) > first_read))
    r.details["read_bytes"] = p.data.size();
  auto fail = [&](Outcome o, std::string why) {
    Result f = Result::fail(o, std::move(why));
    f.details = r.details;
    return f;
  };
  if (p.failed_op >= 0 && static_cast<size_t>(p.failed_op) < ops.size()) {
    uint32_t which = ops[static_cast<size_t>(p.failed_op)];
    std::string st = nfs4::status_name(p.failed_status);
    if (p.failed_status == NFS4ERR_PERM) {
      // knfsd's default `secure` export answers a client on a port >= 1024 with this.
      int port = local_port(minor_ == 0 ? (rpc_ ? rpc_get_fd(rpc_) : -1) : (s41_ ? s41_->fd() : -1));
      if (port >= 1024)
        st += " (from source port " + std::to_string(port) +
              ": a `secure` export wants one below 1024; export `insecure` to the agent)";
    }
    switch (which) {
      case nfs4::kOpLookup: {  // name the first missing component
        size_t comp = 0;
        for (int i = 0; i <= p.failed_op; ++i)
          if (ops[static_cast<size_t>(i)] == nfs4::kOpLookup) ++comp;
        std::string upto;
        for (size_t i = 0; i < comp; ++i) upto += "/" + components_[i];
        if (p.failed_status == NFS4ERR_NOENT) return fail(Outcome::kFailed, "path missing: " + upto);
        return fail(Outcome::kFailed, "lookup " + upto + ": " + st);
      }
      case nfs4::kOpRead:
      case nfs4::kOpOpen:
        if (p.failed_status == NFS4ERR_GRACE) return fail(Outcome::kFailed, "grace period");
        if (p.failed_status == NFS4ERR_ISDIR) return fail(Outcome::kFailed, "not a file: " + o_.path);
        return fail(Outcome::kFailed, std::string(which == nfs4::kOpRead ? "read " : "open ") + o_.path + ": " + st);
      case nfs4::kOpClose: return fail(Outcome::kFailed, "close " + o_.path + ": " + st);
      case nfs4::kOpPutrootfh: return fail(Outcome::kFailed, "PUTROOTFH: " + st);
      case nfs4::kOpGetfh: return fail(Outcome::kFailed, "GETFH: " + st);
      case nfs4::kOpGetattr: return fail(Outcome::kFailed, "GETATTR: " + st);
      default: return fail(Outcome::kFailed, st);
    }
  }
  if (p.ops != ops.size()) {
    // No result failed, yet results are missing: the COMPOUND itself was refused.
    if (p.status == nfs4::kErrMinorVersMismatch)
      return fail(Outcome::kFailed, "the server does not speak NFSv4." + std::to_string(minor_) +
                                        " (NFS4ERR_MINOR_VERS_MISMATCH)");
    if (p.status != NFS4_OK) return fail(Outcome::kFailed, "COMPOUND refused: " + nfs4::status_name(p.status));
    return fail(Outcome::kNetworkError, "short COMPOUND reply");
  }
  if (p.attrs.have) {
    if (o_.max_age && age > *o_.max_age) {
      // "2h01m" rather than "7.26e+03s": an operator reads this reason.
      long long secs = std::chrono::duration_cast<std::chrono::seconds>(age).count();
      char when[48];
      if (secs >= 3600) std::snprintf(when, sizeof when, "%lldh%02lldm", secs / 3600, secs % 3600 / 60);
      else if (secs >= 60) std::snprintf(when, sizeof when, "%lldm%02llds", secs / 60, secs % 60);
      else std::snprintf(when, sizeof when, "%llds", secs);
      return fail(Outcome::kFailed, std::string("canary too old: ") + when + " (max_age " +
                                        format_duration(*o_.max_age) + ")");
    }
    if (p.attrs.type != NF4REG) return fail(Outcome::kFailed, "not a regular file: " + o_.path);
  }
  if (o_.expect && p.data.compare(0, o_.expect->size(), *o_.expect) != 0) {
    std::string got = p.data.substr(0, std::min<size_t>(p.data.size(), 32));
    for (char& c : got)
      if (static_cast<unsigned char>(c) < ' ' || static_cast<unsigned char>(c) > '~') c = '.';
    return fail(Outcome::kFailed, "canary content wrong: got \"" + got + "\"");
  }
  r.reason = "read " + std::to_string(p.data.size()) + " bytes";
  return r;
}

std::optional<Result> NfsCheck::open_read_close(Deadline deadline) {
  std::string dir = "/", file = o_.path;
  size_t slash = o_.path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    dir = o_.path.substr(0, slash);
    file = o_.path.substr(slash);
  }
  auto cb = Pending::on_nfs<false>;
  auto open_cb = Pending::on_nfs<true>;
  auto fail_from = [&](const char* what) -> Result {
    std::string e = pending_->done ? pending_->error : "timed out";
    Outcome o = pending_->done ? Outcome::kFailed : Outcome::kTimeout;
    drop_client();
    if (e.find("GRACE") != std::string::npos) return Result::fail(Outcome::kFailed, "grace period");
    return Result::fail(o, std::string(what) + ": " + short_error(e));
  };
  if (!nfs_) {
    nfs_ = nfs_init_context();
    if (!nfs_) return Result::fail(Outcome::kFailed, "cannot create an NFS context");
    // The URL only carries the options (libnfs has no setter for the NFS port); the
    // server is passed to the mount itself, which also works for IPv6 literals.
    std::string url = "nfs://127.0.0.1" + dir + "?version=4&nfsport=" + std::to_string(o_.port);
    nfs_url* u = nfs_parse_url_dir(nfs_, url.c_str());
    if (!u) {
      std::string e = nfs_get_error(nfs_);
      drop_client();
      return Result::fail(Outcome::kFailed, "bad NFS URL " + url + ": " + e);
    }
    pending_->reset();
    ++counters_.mounts;
    int rc = nfs_mount_async(nfs_, o_.server.c_str(), u->path, cb, pending_.get());
    nfs_destroy_url(u);
    if (rc != 0) return fail_from("mount");
    if (!service_nfs(nfs_, pending_->done, deadline) || pending_->status < 0)
      return fail_from("mount");
  }
  ++counters_.opens;
  pending_->reset();
  if (nfs_open_async(nfs_, file.c_str(), O_RDONLY, open_cb, pending_.get()) != 0 ||
      !service_nfs(nfs_, pending_->done, deadline) || pending_->status < 0)
    return fail_from("open");
  struct nfsfh* fh = pending_->file;
  pending_->reset();
  bool read_ok = nfs_pread_async(nfs_, fh, 0, 64, cb, pending_.get()) == 0 &&
                 service_nfs(nfs_, pending_->done, deadline) && pending_->status >= 0;
  if (!read_ok) return fail_from("read after open");
  pending_->reset();
  if (nfs_close_async(nfs_, fh, cb, pending_.get()) != 0 ||
      !service_nfs(nfs_, pending_->done, deadline) || pending_->status < 0)
    return fail_from("close");
  return std::nullopt;
}

Result NfsCheck::run(Deadline deadline, const Clock& clock) {
  if (minor_ < 0)
    if (auto f = connect(deadline, clock)) return *f;
  Result r = minor_ == 0 ? run40(deadline, clock) : run41(deadline, clock);
  r.details["connects"] = counters_.connects;
  r.details["compounds"] = counters_.compounds;
  return r;
}

namespace {
// "<root_fh>/<fh>" (hex) when the details carry the canary's handle; a moved client
// keeps working only where both handles are the same.
std::string handles_identity(const nlohmann::json& details) {
  auto text = [&](const char* key) {
    auto it = details.find(key);
    return it != details.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::string fh = text("fh");
  return fh.empty() ? "" : text("root_fh") + "/" + fh;
}
}  // namespace

CheckTraits nfs_check_traits() {
  CheckTraits t;
  t.balancing = Balancing::kPinned;
  t.identity = handles_identity;
  t.clients_note =
      "NFS clients stay connected while they have the export mounted; they stall until this host is back (or "
      "they remount elsewhere).";
  return t;
}

std::unique_ptr<Check> make_nfs_check(TableReader& reader) {
  NfsCheckOptions o;
  o.server = reader.string("server").value_or(o.server);
  if (o.server.size() > 2 && o.server.front() == '[' && o.server.back() == ']')
    o.server = o.server.substr(1, o.server.size() - 2);
  if (!is_numeric_host(o.server))
    reader.fail("server", "\"" + o.server + "\" must be a numeric address (IPv4, or IPv6 like \"::1\")");
  o.port = static_cast<int>(reader.integer("port", 1, 65535).value_or(2049));
  o.path = reader.require_string("path");
  if (o.path[0] != '/' || o.path.back() == '/' || o.path.find("//") != std::string::npos)
    reader.fail("path", "must be an absolute path to a file, like \"/dumps/canary.txt\"");
  o.expect = reader.string("expect");
  if (o.expect && o.expect->size() > 4096) reader.fail("expect", "must be at most 4096 bytes");
  o.max_age = reader.duration("max_age", std::chrono::seconds(1), std::chrono::hours(24 * 365));
  o.open_every = static_cast<int>(reader.integer("open_every", 1, 1'000'000).value_or(30));
  if (auto m = reader.integer("minor_version", 0, 2)) o.minor_version = static_cast<int>(*m);
  return std::make_unique<NfsCheck>(std::move(o));
}

}  // namespace poolkeeper
