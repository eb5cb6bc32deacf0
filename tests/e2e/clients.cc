// Production-like clients (see clients.h): libcurl, the rsync binary and libnfs.
#include "tests/e2e/clients.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>

#include "tests/e2e/world.h"

// libnfs keeps this layout private (libnfs-private.h, unchanged since 1.x); the
// clients read an open file's handle through nfs_get_fh() to tell which server's it is.
struct nfs_fh {
  int len;
  char* val;
};

namespace pk_e2e {

namespace {

constexpr int kSoftTimeoutMs = 4000;  // timeo=20 (2 s) × (retrans=1 + 1)


// A libnfs NFSv4 mount of <vip>:/dumps with one open file, as a kernel mount with a
// process holding the file open.
struct NfsMount {
  // Each client is its own NFSv4 client (own name, as each client host is); a new
  // verifier per mount tells the server the old state of that client is gone. (Two
  // libnfs contexts with libnfs's default name expire each other's state.)
  explicit NfsMount(std::string client) : client_name(std::move(client)) {}
  std::string client_name;
  nfs_context* ctx = nullptr;
  nfsfh* fh = nullptr;
  std::string error;

  ~NfsMount() { drop(); }
  void drop() {
    if (ctx) nfs_destroy_context(ctx);  // (no CLOSE on a context that may be dead)
    ctx = nullptr;
    fh = nullptr;
  }
  // `timeout_ms`: how long any one call may wait for an answer (libnfs counts whole
  // seconds); a soft client passes what is left of its call's window.
  bool mount(const std::string& server, int timeout_ms = kSoftTimeoutMs) {
    drop();
    ctx = nfs_init_context();
    if (!ctx) return fail("cannot create an NFS context");
    nfs_set_timeout(ctx, timeout_ms);
    static std::atomic<uint64_t> serial{0};
    char verifier[8];
    uint64_t v = ++serial ^ static_cast<uint64_t>(Clock::now().time_since_epoch().count());
    std::memcpy(verifier, &v, sizeof verifier);
    nfs4_set_client_name(ctx, client_name.c_str());
    nfs4_set_verifier(ctx, verifier);
    nfs_url* u = nfs_parse_url_dir(ctx, ("nfs://" + server + "/dumps?version=4").c_str());
    if (!u) return fail(std::string("url: ") + nfs_get_error(ctx));
    int rc = nfs_mount(ctx, server.c_str(), u->path);
    nfs_destroy_url(u);
    if (rc != 0) return fail(std::string("mount: ") + nfs_get_error(ctx), true);
    return true;
  }
  bool open(const std::string& path) {
    fh = nullptr;
    if (nfs_open(ctx, path.c_str(), O_RDONLY, &fh) != 0) {
      fh = nullptr;
      return fail(std::string("open: ") + nfs_get_error(ctx));
    }
    return true;
  }
  void set_timeout(int timeout_ms) {
    if (ctx) nfs_set_timeout(ctx, timeout_ms);
  }
  // The open file's NFS file handle (bytes), "" if unreadable.
  std::string handle() const {
    const nfs_fh* h = fh ? nfs_get_fh(fh) : nullptr;
    if (!h || h->len <= 0 || h->len > 128 || !h->val) return "";
    return std::string(h->val, static_cast<size_t>(h->len));
  }
  // Reads 4 KiB of file1 at `off` and compares; returns 0, or a negative errno.
  int read_check(uint64_t off) {
    char buf[4096];
    int n = nfs_pread(ctx, fh, off, sizeof buf, buf);
    if (n < 0) {
      error = std::string("read: ") + nfs_get_error(ctx);
      return n;
    }
    if (file1_content().compare(off, static_cast<size_t>(n), buf, static_cast<size_t>(n)) != 0 || n == 0) {
      error = "read: wrong data";
      return -EIO;
    }
    return 0;
  }
  bool fail(const std::string& e, bool drop_ctx = false) {
    error = e;
    if (drop_ctx) drop();
    return false;
  }
};

// What is left of a soft call's window, rounded up to whole seconds (libnfs's unit),
// at least 1 s; a hard client's calls each wait the full timeout and are retried.
int call_timeout_ms(bool hard, double started) {
  if (hard) return kSoftTimeoutMs;
  double left = kSoftTimeoutMs / 1000.0 - (since_start() - started);
  return std::max(1, static_cast<int>(std::ceil(left))) * 1000;
}

bool is_estale(int rc, const std::string& error) {
  if (rc == -ESTALE) return true;
  size_t p = error.find("NFS4ERR_STALE");
  return p != std::string::npos && error.compare(p, 14, "NFS4ERR_STALE_") != 0;
}

}  // namespace

const std::string& file1_content() {
  static const std::string s = [] {
    std::string out(256 * 1024, '\0');
    uint32_t x = 2463534242u;
    for (auto& c : out) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      c = static_cast<char>('a' + x % 26);
    }
    return out;
  }();
  return s;
}

std::string nfs_read_once(const std::string& server, const std::string& path) {
  static std::atomic<int> probes{0};
  NfsMount m("poolkeeper-e2e-probe-" + std::to_string(++probes));
  if (!m.mount(server) || !m.open(path)) return "";
  char buf[256];
  int n = nfs_pread(m.ctx, m.fh, 0, sizeof buf, buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// ---- Recorder ----

class Clients::Recorder {
 public:
  Recorder(std::string name, Timeline& t) : timeline_(t) { r_.name = std::move(name); }
  void success(double started) {
    double now = since_start();
    std::lock_guard<std::mutex> lk(mu_);
    ++r_.ok;
    if (last_ok_ > 0) r_.longest_gap = std::max(r_.longest_gap, now - last_ok_);
    r_.longest_op = std::max(r_.longest_op, now - started);
    last_ok_ = now;
  }
  void failure(std::string what) {
    for (size_t p; (p = what.find('\n')) != std::string::npos;) what.replace(p, 1, " | ");
    double now = since_start();
    std::lock_guard<std::mutex> lk(mu_);
    ++r_.failed;
    if (r_.failures.size() < 400) r_.failures.emplace_back(now, what);
    if (r_.failed <= 30) timeline_.add(r_.name, "FAILED " + what);
  }
  void note(const std::string& what) { timeline_.add(r_.name, what); }
  void remount() {
    timeline_.add(r_.name, "remount on ESTALE");
    std::lock_guard<std::mutex> lk(mu_);
    ++r_.remounts;
  }
  void begin() {
    std::lock_guard<std::mutex> lk(mu_);
    last_ok_ = since_start();
  }
  ClientReport report() const {
    std::lock_guard<std::mutex> lk(mu_);
    ClientReport r = r_;
    if (last_ok_ > 0) r.longest_gap = std::max(r.longest_gap, since_start() - last_ok_);
    return r;
  }
  const std::string& name() const { return r_.name; }

 private:
  Timeline& timeline_;
  mutable std::mutex mu_;
  ClientReport r_;
  double last_ok_ = 0;
};

// ---- Clients ----

Clients::Clients(World& w) : world_(w) {}

Clients::~Clients() { stop(); }

void Clients::start() {
  auto add = [&](const std::string& name, auto fn) {
    recorders_.push_back(std::make_unique<Recorder>(name, world_.timeline()));
    Recorder* r = recorders_.back().get();
    threads_.emplace_back([this, r, fn] {
      world_.client_ns().enter_this_thread();
      r->begin();
      fn(*r);
    });
  };
  add("http-keepalive", [this](Recorder& r) { http_loop(r, true); });
  add("http-fresh", [this](Recorder& r) { http_loop(r, false); });
  add("rsync", [this](Recorder& r) { rsync_loop(r); });
  add("nfs-soft-session", [this](Recorder& r) { nfs_session_loop(r, false); });
  add("nfs-soft-fresh", [this](Recorder& r) { nfs_fresh_loop(r, false); });
  add("nfs-hard-session", [this](Recorder& r) { nfs_session_loop(r, true); });
  add("nfs-hard-fresh", [this](Recorder& r) { nfs_fresh_loop(r, true); });
}

void Clients::stop() {
  stop_ = true;
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

void Clients::http_loop(Recorder& r, bool keepalive) {
  const std::string url = std::string("http://") + World::kVip + "/data/file1.bin";
  CURL* c = nullptr;
  while (!stop_) {
    if (!c || !keepalive) {
      if (c) curl_easy_cleanup(c);
      c = curl_easy_init();
    }
    std::string body;
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    double t0 = since_start();
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) r.failure(curl_easy_strerror(rc));
    else if (status != 200) r.failure("status " + std::to_string(status));
    else if (body != file1_content()) r.failure("short or wrong body (" + std::to_string(body.size()) + " bytes)");
    else r.success(t0);
    std::this_thread::sleep_for(20ms);
  }
  if (c) curl_easy_cleanup(c);
}

void Clients::rsync_loop(Recorder& r) {
  pk_test::TempDir dest;
  const std::string module = std::string("rsync://") + World::kVip + "/dumps/";
  for (int i = 0; !stop_; ++i) {
    std::string out;
    double t0 = since_start();
    bool listing = i % 2 == 0;
    std::error_code ec;
    std::filesystem::remove_all(dest.file("data"), ec);
    std::vector<std::string> argv{"rsync", "--contimeout=3", "--timeout=5"};
    if (listing) {
      argv.push_back(module);
    } else {
      argv.insert(argv.end(), {"-a", module + "data/", dest.file("data/")});
    }
    int rc = pk_test::run_command(argv, &out, 15000ms);
    if (rc != 0) {
      while (!out.empty() && out.back() == '\n') out.pop_back();
      r.failure(std::string(listing ? "list" : "transfer") + " exit " + std::to_string(rc) + ": " +
                out.substr(0, 160));
    } else if (!listing && pk_test::read_file(dest.file("data/file1.bin")) != file1_content()) {
      r.failure("transfer: wrong data");
    } else if (listing && out.find("canary.txt") == std::string::npos) {
      r.failure("list: canary.txt missing");
    } else {
      r.success(t0);
    }
    std::this_thread::sleep_for(50ms);
  }
}

// A long-lived mount with one file kept open and re-read. Soft: a call that has not
// worked within timeo × (retrans + 1) fails to the application; until then the client
// reconnects and retries by itself, as the kernel does. Hard: a call is retried until it
// works (the stall is the operation's length). On both, ESTALE reaches the application
// at once, and the helper mounts again.
void Clients::nfs_session_loop(Recorder& r, bool hard) {
  NfsMount m("poolkeeper-e2e-" + r.name());
  const uint64_t size = file1_content().size();
  std::string handle;  // the file's handle as this mount first opened it
  for (uint64_t i = 0; !stop_; ++i) {
    double t0 = since_start();
    uint64_t off = (i * 4096) % size;
    for (int attempt = 0; !stop_; ++attempt) {
      std::string step_error;
      int rc = 0;
      bool estale = false;
      m.set_timeout(call_timeout_ms(hard, t0));
      if (!m.ctx && !m.mount(World::kVip, call_timeout_ms(hard, t0))) {
        step_error = m.error;
      } else if (!m.fh && !m.open("/data/file1.bin")) {
        step_error = m.error;
        m.drop();  // an open that fails on a live mount: mount again next time
      } else if (handle.empty() ? (handle = m.handle()), false : m.handle() != handle) {
        // The kernel recovers an open by its file handle; another server's handle is
        // ESTALE to it (libnfs recovered by path, which the kernel does not).
        estale = true;
        step_error = "file handle of another server";
      } else if ((rc = m.read_check(off)) == 0) {
        r.success(t0);
        break;
      } else {
        step_error = m.error;
        estale = is_estale(rc, step_error);
        // Anything else (a lost connection, a restarted server's unknown state): the
        // kernel recovers its state by itself; here: open the file again, and compare.
        if (!estale) m.fh = nullptr;
      }
      if (estale) {
        // What reaches the application, and the helper's answer: mount again.
        r.failure("ESTALE: " + step_error);
        r.remount();
        m.drop();
        handle.clear();
        break;
      }
      if (!hard && since_start() - t0 >= kSoftTimeoutMs / 1000.0) {
        r.failure(step_error);
        break;
      }
      if (attempt == 0) r.note("retrying: " + step_error);
      std::this_thread::sleep_for(200ms);
    }
    std::this_thread::sleep_for(200ms);
  }
}

// A fresh mount per operation (automount, a new job): mount, open, read, unmount;
// retried within the same bounds as above.
void Clients::nfs_fresh_loop(Recorder& r, bool hard) {
  const uint64_t size = file1_content().size();
  for (uint64_t i = 0; !stop_; ++i) {
    double t0 = since_start();
    for (int attempt = 0; !stop_; ++attempt) {
      NfsMount m("poolkeeper-e2e-" + r.name());
      std::string err;
      if (!m.mount(World::kVip, call_timeout_ms(hard, t0)) || !m.open("/data/file1.bin")) err = m.error;
      else if (m.read_check((i * 4096) % size) != 0) err = m.error;
      if (err.empty()) {
        r.success(t0);
        break;
      }
      if (!hard && since_start() - t0 >= kSoftTimeoutMs / 1000.0) {
        r.failure(err);
        break;
      }
      if (attempt == 0) r.note("retrying: " + err);
      std::this_thread::sleep_for(200ms);
    }
    std::this_thread::sleep_for(500ms);
  }
}

std::vector<ClientReport> Clients::reports() const {
  std::vector<ClientReport> out;
  for (const auto& r : recorders_) out.push_back(r->report());
  return out;
}

ClientReport Clients::report(const std::string& name) const {
  for (const auto& r : recorders_)
    if (r->name() == name) return r->report();
  return {};
}

int Clients::failed(const std::string& prefix) const {
  int n = 0;
  for (const auto& r : reports())
    if (r.name.rfind(prefix, 0) == 0) n += r.failed;
  return n;
}

std::string Clients::table() const {
  std::string out = "  client              ok  failed  remounts  longest gap  longest op  failures (first .. last)\n";
  for (const auto& r : reports()) {
    char line[256];
    std::string span = r.failures.empty() ? "-"
                                          : fmt(r.failures.front().first) + " .. " + fmt(r.failures.back().first) + " s";
    std::snprintf(line, sizeof line, "  %-17s %5d  %6d  %8d  %9.2f s  %8.2f s  %s\n", r.name.c_str(), r.ok, r.failed,
                  r.remounts, r.longest_gap, r.longest_op, span.c_str());
    out += line;
  }
  return out;
}

std::string Clients::failures_dump() const {
  std::string out;
  for (const auto& r : reports()) {
    if (r.failures.empty()) continue;
    out += "  " + r.name + ": " + std::to_string(r.failed) + " failed\n";
    size_t n = 0;
    for (const auto& [t, what] : r.failures) {
      if (++n > 12) {
        out += "    …\n";
        break;
      }
      out += "    " + fmt(t, 3) + "  " + what + "\n";
    }
  }
  return out;
}

}  // namespace pk_e2e
