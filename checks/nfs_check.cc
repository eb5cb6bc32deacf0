#include "checks/nfs_check.h"

#include <fcntl.h>
#include <poll.h>

// libnfs's headers are C and rely on these being in scope first.
#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs4.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "agent/base/duration.h"
#include "agent/base/utf8.h"
#include "agent/base/net.h"

namespace poolkeeper {

namespace {

constexpr auto kMaxPoll = std::chrono::milliseconds(100);

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

uint32_t be32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}
uint64_t be64(const unsigned char* p) { return (uint64_t(be32(p)) << 32) | be32(p + 4); }

int poll_ms(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
  if (left.count() <= 0) return 0;
  return static_cast<int>(std::min(left, kMaxPoll).count()) + 1;
}

}  // namespace

std::string nfs4_status_name(int status) {
  switch (status) {
    case NFS4_OK: return "NFS4_OK";
    case NFS4ERR_PERM: return "NFS4ERR_PERM";
    case NFS4ERR_NOENT: return "NFS4ERR_NOENT";
    case NFS4ERR_IO: return "NFS4ERR_IO";
    case NFS4ERR_ACCESS: return "NFS4ERR_ACCESS";
    case NFS4ERR_NOTDIR: return "NFS4ERR_NOTDIR";
    case NFS4ERR_ISDIR: return "NFS4ERR_ISDIR";
    case NFS4ERR_STALE: return "NFS4ERR_STALE";
    case NFS4ERR_SERVERFAULT: return "NFS4ERR_SERVERFAULT";
    case NFS4ERR_DELAY: return "NFS4ERR_DELAY";
    case NFS4ERR_GRACE: return "NFS4ERR_GRACE";
    case NFS4ERR_WRONGSEC: return "NFS4ERR_WRONGSEC";
    case NFS4ERR_MOVED: return "NFS4ERR_MOVED";
    case NFS4ERR_NOFILEHANDLE: return "NFS4ERR_NOFILEHANDLE";
    case NFS4ERR_MINOR_VERS_MISMATCH: return "NFS4ERR_MINOR_VERS_MISMATCH";
    case NFS4ERR_STALE_CLIENTID: return "NFS4ERR_STALE_CLIENTID";
    case NFS4ERR_EXPIRED: return "NFS4ERR_EXPIRED";
    case NFS4ERR_BADHANDLE: return "NFS4ERR_BADHANDLE";
    case NFS4ERR_RESOURCE: return "NFS4ERR_RESOURCE";
    default: return "NFS4ERR_" + std::to_string(status);
  }
}

// What a callback left behind. Owned by the check (not the stack), because a
// callback may still fire while a timed-out context is being destroyed.
struct NfsCheck::Pending {
  bool done = false;
  int status = RPC_STATUS_ERROR;
  std::string error;
  // COMPOUND results, copied out of the reply inside the callback
  int compound_status = 0;
  int failed_op = -1;  // index of the op whose status was not OK
  int failed_status = 0;
  unsigned ops = 0;
  std::string root_fh, fh;  // raw bytes (hex only when they change: see compound())
  bool have_attrs = false;
  uint32_t type = 0;
  uint64_t size = 0, fileid = 0;
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  std::string data;
  bool eof = false;
  // high-level results
  struct nfsfh* file = nullptr;
  // Back to "nothing yet", keeping the strings' buffers: a probe allocates nothing here.
  void reset() {
    done = false;
    status = RPC_STATUS_ERROR;
    error.clear();
    compound_status = 0;
    failed_op = -1;
    failed_status = 0;
    ops = 0;
    root_fh.clear();
    fh.clear();
    have_attrs = false;
    type = 0;
    size = fileid = 0;
    mtime_sec = 0;
    mtime_nsec = 0;
    data.clear();
    eof = false;
    file = nullptr;
  }
};

NfsCheck::NfsCheck(NfsCheckOptions o) : o_(std::move(o)), pending_(std::make_unique<Pending>()) {
  size_t i = 0;
  while (i < o_.path.size()) {
    size_t j = o_.path.find('/', i);
    if (j == std::string::npos) j = o_.path.size();
    if (j > i) components_.push_back(o_.path.substr(i, j - i));
    i = j + 1;
  }
  build_ops();
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
    int ms = poll_ms(deadline);
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

bool NfsCheck::connect(Deadline deadline, Result* fail) {
  rpc_ = rpc_init_context();
  if (!rpc_) {
    *fail = Result::fail(Outcome::kFailed, "cannot create an RPC context");
    return false;
  }
  pending_->reset();
  ++counters_.connects;
  // libnfs's C code calls these callbacks: nothing may throw out of them.
  auto cb = [](rpc_context*, int status, void* data, void* priv) noexcept {
    auto* p = static_cast<Pending*>(priv);
    p->done = true;
    p->status = status;
    try {
      if (status != RPC_STATUS_SUCCESS && data) p->error = static_cast<const char*>(data);
    } catch (...) {
      p->status = RPC_STATUS_ERROR;
    }
  };
  if (rpc_connect_port_async(rpc_, o_.server.c_str(), o_.port, NFS4_PROGRAM, NFS_V4, cb,
                             pending_.get()) != 0) {
    *fail = Result::fail(Outcome::kNetworkError, short_error(rpc_get_error(rpc_)));
    disconnect();
    return false;
  }
  if (!service_rpc(rpc_, pending_->done, deadline)) {
    *fail = pending_->done ? Result::fail(Outcome::kNetworkError, short_error(pending_->error))
                           : Result::fail(Outcome::kTimeout, "timed out connecting");
    disconnect();
    return false;
  }
  if (pending_->status != RPC_STATUS_SUCCESS) {
    *fail = Result::fail(Outcome::kNetworkError, short_error(pending_->error));
    disconnect();
    return false;
  }
  need_open_ = true;  // a new connection may mean a restarted server: prove OPEN works
  return true;
}

// PUTROOTFH, (LOOKUP c, [GETFH after the first])..., GETFH, GETATTR, READ: the same
// for every probe, so built once (the ops point into components_ and attr_mask_).
void NfsCheck::build_ops() {
  nfs_argop4 op;
  std::memset(&op, 0, sizeof op);
  op.argop = OP_PUTROOTFH;
  ops_.push_back(op);
  for (size_t i = 0; i < components_.size(); ++i) {
    std::memset(&op, 0, sizeof op);
    op.argop = OP_LOOKUP;
    op.nfs_argop4_u.oplookup.objname.utf8string_len = static_cast<u_int>(components_[i].size());
    op.nfs_argop4_u.oplookup.objname.utf8string_val = components_[i].data();
    ops_.push_back(op);
    if (i == 0 && components_.size() > 1) {
      std::memset(&op, 0, sizeof op);
      op.argop = OP_GETFH;
      ops_.push_back(op);
    }
  }
  std::memset(&op, 0, sizeof op);
  op.argop = OP_GETFH;
  ops_.push_back(op);
  attr_mask_[0] = (1u << FATTR4_TYPE) | (1u << FATTR4_SIZE) | (1u << FATTR4_FILEID);
  attr_mask_[1] = 1u << (FATTR4_TIME_MODIFY - 32);
  std::memset(&op, 0, sizeof op);
  op.argop = OP_GETATTR;
  op.nfs_argop4_u.opgetattr.attr_request.bitmap4_len = 2;
  op.nfs_argop4_u.opgetattr.attr_request.bitmap4_val = attr_mask_;
  ops_.push_back(op);
  std::memset(&op, 0, sizeof op);
  op.argop = OP_READ;  // anonymous stateid: all zeros
  op.nfs_argop4_u.opread.offset = 0;
  op.nfs_argop4_u.opread.count =
      static_cast<count4>(std::max<size_t>(64, o_.expect ? o_.expect->size() : 0));
  ops_.push_back(op);
}

Result NfsCheck::compound(Deadline deadline) {
  const std::vector<nfs_argop4>& ops = ops_;
  COMPOUND4args args;
  std::memset(&args, 0, sizeof args);
  args.minorversion = 0;
  args.argarray.argarray_len = static_cast<u_int>(ops.size());
  args.argarray.argarray_val = ops_.data();

  pending_->reset();
  auto cb = [](rpc_context*, int status, void* data, void* priv) noexcept {
    auto* p = static_cast<Pending*>(priv);
    p->done = true;
    p->status = status;
    try {
      if (status != RPC_STATUS_SUCCESS) {
        if (data) p->error = static_cast<const char*>(data);
        return;
      }
      auto* res = static_cast<COMPOUND4res*>(data);
      p->compound_status = res->status;
      p->ops = res->resarray.resarray_len;
      int getfh_seen = 0;
      for (u_int i = 0; i < res->resarray.resarray_len; ++i) {
        // libnfs's decoder may lay the results out at 4-byte alignment (seen with UBSan);
        // read each through an aligned shallow copy (its pointers still point into the reply).
        nfs_resop4 r;
        std::memcpy(static_cast<void*>(&r),
                    reinterpret_cast<const char*>(res->resarray.resarray_val) + i * sizeof(nfs_resop4), sizeof r);
        // Every result union starts with its nfsstat4.
        int st = *reinterpret_cast<const int*>(&r.nfs_resop4_u);
        if (st != NFS4_OK) {
          p->failed_op = static_cast<int>(i);
          p->failed_status = st;
          break;
        }
        if (r.resop == OP_GETFH) {
          auto& obj = r.nfs_resop4_u.opgetfh.GETFH4res_u.resok4.object;
          (getfh_seen++ == 0 ? p->root_fh : p->fh).assign(obj.nfs_fh4_val, obj.nfs_fh4_len);
        } else if (r.resop == OP_GETATTR) {
          auto& fa = r.nfs_resop4_u.opgetattr.GETATTR4res_u.resok4.obj_attributes;
          const auto* v = reinterpret_cast<const unsigned char*>(fa.attr_vals.attrlist4_val);
          size_t n = fa.attr_vals.attrlist4_len, off = 0;
          uint32_t w0 = fa.attrmask.bitmap4_len > 0 ? fa.attrmask.bitmap4_val[0] : 0;
          uint32_t w1 = fa.attrmask.bitmap4_len > 1 ? fa.attrmask.bitmap4_val[1] : 0;
          bool ok = true;
          auto take = [&](size_t len) {
            if (!ok || off + len > n) {
              ok = false;
              return static_cast<const unsigned char*>(nullptr);
            }
            const unsigned char* q = v + off;
            off += len;
            return q;
          };
          if (w0 & (1u << FATTR4_TYPE))
            if (auto q = take(4)) p->type = be32(q);
          if (w0 & (1u << FATTR4_SIZE))
            if (auto q = take(8)) p->size = be64(q);
          if (w0 & (1u << FATTR4_FILEID))
            if (auto q = take(8)) p->fileid = be64(q);
          if (w1 & (1u << (FATTR4_TIME_MODIFY - 32)))
            if (auto q = take(12)) {
              p->mtime_sec = static_cast<int64_t>(be64(q));
              p->mtime_nsec = be32(q + 8);
            }
          p->have_attrs = ok;
        } else if (r.resop == OP_READ) {
          auto& ok = r.nfs_resop4_u.opread.READ4res_u.resok4;
          p->data.assign(ok.data.data_val, ok.data.data_len);
          p->eof = ok.eof;
        }
      }
    } catch (...) {  // out of memory copying the reply: a failed probe, not a crash
      p->status = RPC_STATUS_ERROR;
    }
  };
  ++counters_.compounds;
  if (rpc_nfs4_compound_async(rpc_, cb, &args, pending_.get()) != 0) {
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
  const Pending& p = *pending_;
  Result r = Result::pass();
  // The handles are the same on nearly every probe: hex-encoded only when they change.
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
  if (p.failed_op >= 0) {
    nfs_opnum4 which = ops[static_cast<size_t>(p.failed_op)].argop;
    std::string st = nfs4_status_name(p.failed_status);
    if (which == OP_LOOKUP) {
      // Name the first missing component.
      size_t comp = 0;
      for (int i = 0; i <= p.failed_op; ++i)
        if (ops[static_cast<size_t>(i)].argop == OP_LOOKUP) ++comp;
      std::string upto;
      for (size_t i = 0; i < comp; ++i) upto += "/" + components_[i];
      if (p.failed_status == NFS4ERR_NOENT) return Result::fail(Outcome::kFailed, "path missing: " + upto);
      return Result::fail(Outcome::kFailed, "lookup " + upto + ": " + st);
    }
    if (which == OP_READ) {
      if (p.failed_status == NFS4ERR_GRACE) return Result::fail(Outcome::kFailed, "grace period");
      if (p.failed_status == NFS4ERR_ISDIR) return Result::fail(Outcome::kFailed, "not a file: " + o_.path);
      return Result::fail(Outcome::kFailed, "read " + o_.path + ": " + st);
    }
    const char* names[] = {"", "", "", "ACCESS", "CLOSE", "COMMIT", "CREATE", "DELEGPURGE",
                           "DELEGRETURN", "GETATTR", "GETFH"};
    std::string opname = static_cast<int>(which) < 11 ? names[which] : "";
    if (which == OP_PUTROOTFH) opname = "PUTROOTFH";
    Result f = Result::fail(Outcome::kFailed, opname + ": " + st);
    f.details = r.details;
    return f;
  }
  if (p.ops != ops.size()) return Result::fail(Outcome::kNetworkError, "short COMPOUND reply");
  if (p.have_attrs) {
    r.details["size"] = p.size;
    r.details["fileid"] = p.fileid;
    r.details["mtime"] = p.mtime_sec;
    WallTime mtime{std::chrono::duration_cast<WallTime::duration>(
        std::chrono::seconds(p.mtime_sec) + std::chrono::nanoseconds(p.mtime_nsec))};
    Duration age = std::chrono::system_clock::now() - mtime;
    r.details["age_seconds"] = seconds(age);
    if (o_.max_age) r.details["max_age_seconds"] = seconds(*o_.max_age);
    if (o_.max_age && age > *o_.max_age) {
      // "2h01m" rather than "7.26e+03s": an operator reads this reason.
      long long secs = std::chrono::duration_cast<std::chrono::seconds>(age).count();
      char when[48];
      if (secs >= 3600) std::snprintf(when, sizeof when, "%lldh%02lldm", secs / 3600, secs % 3600 / 60);
      else if (secs >= 60) std::snprintf(when, sizeof when, "%lldm%02llds", secs / 60, secs % 60);
      else std::snprintf(when, sizeof when, "%llds", secs);
      Result f = Result::fail(Outcome::kFailed, std::string("canary too old: ") + when + " (max_age " +
                                                    format_duration(*o_.max_age) + ")");
      f.details = r.details;  // the age is what the operator (and the metrics) need here
      return f;
    }
    if (p.type != NF4REG) return Result::fail(Outcome::kFailed, "not a regular file: " + o_.path);
  }
  r.details["read_bytes"] = p.data.size();
  if (o_.expect && p.data.compare(0, o_.expect->size(), *o_.expect) != 0) {
    std::string got = p.data.substr(0, std::min<size_t>(p.data.size(), 32));
    for (char& c : got)
      if (static_cast<unsigned char>(c) < ' ' || static_cast<unsigned char>(c) > '~') c = '.';
    Result f = Result::fail(Outcome::kFailed, "canary content wrong: got \"" + got + "\"");
    f.details = r.details;
    return f;
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
  // Called from libnfs's C code: nothing may throw out of them.
  auto cb = [](int err, nfs_context* nfs, void* data, void* priv) noexcept {
    auto* p = static_cast<Pending*>(priv);
    p->done = true;
    p->status = err;
    try {
      if (err < 0) p->error = data ? static_cast<const char*>(data) : nfs_get_error(nfs);
    } catch (...) {
    }
  };
  auto open_cb = [](int err, nfs_context* nfs, void* data, void* priv) noexcept {
    auto* p = static_cast<Pending*>(priv);
    p->done = true;
    p->status = err;
    try {
      if (err < 0) p->error = data ? static_cast<const char*>(data) : nfs_get_error(nfs);
      else p->file = static_cast<struct nfsfh*>(data);
    } catch (...) {
    }
  };
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

Result NfsCheck::run(Deadline deadline) {
  Result fail;
  if (!rpc_ && !connect(deadline, &fail)) return fail;
  Result r = compound(deadline);
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
  r.details["connects"] = counters_.connects;
  r.details["compounds"] = counters_.compounds;
  return r;
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
  return std::make_unique<NfsCheck>(std::move(o));
}

}  // namespace poolkeeper
