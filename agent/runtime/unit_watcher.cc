#include "agent/runtime/unit_watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

#include "agent/base/log.h"
#include "agent/base/utf8.h"

namespace poolkeeper {

namespace {

constexpr uint64_t kCallTimeoutUsec = 2'000'000;  // each bus call; bounds stop()
constexpr const char* kSystemd = "org.freedesktop.systemd1";
constexpr const char* kManagerPath = "/org/freedesktop/systemd1";
constexpr const char* kManager = "org.freedesktop.systemd1.Manager";
constexpr const char* kProperties = "org.freedesktop.DBus.Properties";
constexpr const char* kUnitIface = "org.freedesktop.systemd1.Unit";
constexpr const char* kServiceIface = "org.freedesktop.systemd1.Service";
constexpr const char* kJobIface = "org.freedesktop.systemd1.Job";
constexpr const char* kUnitProps[] = {"LoadState", "ActiveState", "SubState", "Job"};
constexpr const char* kServiceProps[] = {"Result", "ExecMainCode", "ExecMainStatus"};

std::string bus_error_text(int r, const sd_bus_error& e) {
  if (e.message) return valid_utf8(e.message);
  return std::strerror(r < 0 ? -r : r);
}

std::string join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += (out.empty() ? "" : ",") + x;
  return out;
}

// Reads the variant `m` is at into `out`: 1 = a value, 0 = a type nobody here reads
// (skipped), < 0 = a malformed message.
int read_variant(sd_bus_message* m, UnitValue* out) {
  char type = 0;
  const char* contents = nullptr;
  int r = sd_bus_message_peek_type(m, &type, &contents);
  if (r <= 0 || type != 'v' || !contents) return -EBADMSG;
  std::string sig = contents;
  if ((r = sd_bus_message_enter_container(m, 'v', contents)) < 0) return r;
  int got = 1;
  if (sig == "s" || sig == "o") {
    const char* s = nullptr;
    r = sd_bus_message_read_basic(m, sig[0], &s);
    if (r >= 0) *out = valid_utf8(s ? s : "");
  } else if (sig == "i") {
    int32_t v = 0;
    r = sd_bus_message_read_basic(m, 'i', &v);
    *out = int64_t{v};
  } else if (sig == "u") {
    uint32_t v = 0;
    r = sd_bus_message_read_basic(m, 'u', &v);
    *out = int64_t{v};
  } else if (sig == "(uo)") {
    uint32_t id = 0;
    const char* path = nullptr;
    r = sd_bus_message_read(m, "(uo)", &id, &path);
    if (r >= 0) *out = UnitJobRef{id, path ? path : ""};
  } else if (sig == "a(ss)") {
    std::vector<std::pair<std::string, std::string>> pairs;
    if ((r = sd_bus_message_enter_container(m, 'a', "(ss)")) >= 0) {
      const char *k = nullptr, *v = nullptr;
      while ((r = sd_bus_message_read(m, "(ss)", &k, &v)) > 0)
        pairs.emplace_back(valid_utf8(k), valid_utf8(v));
      if (r >= 0) r = sd_bus_message_exit_container(m);
    }
    if (r >= 0) *out = std::move(pairs);
  } else {
    r = sd_bus_message_skip(m, contents);
    got = 0;
  }
  if (r < 0) return r;
  if ((r = sd_bus_message_exit_container(m)) < 0) return r;
  return got;
}

// One watched unit on one connection. `state` is what systemd said last; `reported`
// what the callbacks were given.
struct Watched {
  std::string path;
  UnitState state, reported;
  bool changed = false;
  bool refresh = false;  // a property was invalidated (sent without its value): read it again
  sd_bus_slot* slot = nullptr;
  ~Watched() { sd_bus_slot_unref(slot); }
};

// PropertiesChanged(s interface, a{sv} changed, as invalidated) on a unit's object. A
// C callback: nothing may escape it.
int on_properties_changed(sd_bus_message* m, void* userdata, sd_bus_error* /*ret_error*/) {
  auto* w = static_cast<Watched*>(userdata);
  try {
    const char* iface = nullptr;
    if (sd_bus_message_read(m, "s", &iface) < 0) return 0;
    if (sd_bus_message_enter_container(m, 'a', "{sv}") < 0) return 0;
    while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
      const char* name = nullptr;
      UnitValue v;
      if (sd_bus_message_read(m, "s", &name) < 0 || !name) return 0;
      int got = read_variant(m, &v);
      if (got < 0) return 0;
      if (got > 0) apply_unit_property(w->state, name, v);
      if (sd_bus_message_exit_container(m) < 0) return 0;
    }
    if (sd_bus_message_exit_container(m) < 0) return 0;
    w->changed = true;
    if (sd_bus_message_enter_container(m, 'a', "s") < 0) return 0;
    const char* name = nullptr;
    while (sd_bus_message_read(m, "s", &name) > 0 && name) {
      for (const char* p : kUnitProps) w->refresh |= std::strcmp(p, name) == 0;
      for (const char* p : kServiceProps) w->refresh |= std::strcmp(p, name) == 0;
    }
  } catch (...) {
    w->refresh = true;  // whatever went wrong: read the state afresh
  }
  return 0;
}

// One connection to systemd.
class Connection {
 public:
  ~Connection() {
    units_.clear();  // their match slots first
    if (bus_) sd_bus_flush_close_unref(bus_);
  }

  // As the agent's user on the system bus (or `address`); as root without dbus-daemon,
  // systemd's private socket. Then Manager.Subscribe: systemd sends unit signals only
  // while someone is subscribed.
  static std::unique_ptr<Connection> open(const std::string& address, std::string* error) {
    auto c = std::make_unique<Connection>();
    int r;
    if (address.empty()) {
      r = sd_bus_open_system(&c->bus_);
      if (r < 0 && ::geteuid() == 0) {
        c->bus_ = nullptr;
        c->direct_ = true;
        r = c->open_address("unix:path=/run/systemd/private", false);
      }
      if (r < 0) {
        c->bus_ = nullptr;
        *error = std::string("cannot reach the system bus: ") + std::strerror(-r);
        return nullptr;
      }
    } else if ((r = c->open_address(address, true)) < 0) {
      *error = "cannot reach the bus at " + address + ": " + std::strerror(-r);
      return nullptr;
    }
    sd_bus_set_method_call_timeout(c->bus_, kCallTimeoutUsec);
    sd_bus_error e = SD_BUS_ERROR_NULL;
    r = sd_bus_call_method(c->bus_, kSystemd, kManagerPath, kManager, "Subscribe", &e, nullptr, "");
    if (r < 0) {
      *error = "systemd does not answer on the bus (Subscribe): " + bus_error_text(r, e);
      sd_bus_error_free(&e);
      return nullptr;
    }
    return c;
  }

  // LoadUnit, the PropertiesChanged match, then the state as it is now. False with
  // *error for a unit systemd does not know (or cannot load).
  bool watch(const std::string& unit, std::string* error) {
    sd_bus_error e = SD_BUS_ERROR_NULL;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call_method(bus_, kSystemd, kManagerPath, kManager, "LoadUnit", &e, &reply, "s",
                               unit.c_str());
    if (r < 0) {
      *error = "systemd cannot load it: " + bus_error_text(r, e);
      sd_bus_error_free(&e);
      return false;
    }
    const char* path = nullptr;
    r = sd_bus_message_read(reply, "o", &path);
    auto w = std::make_unique<Watched>();
    if (r >= 0 && path) w->path = path;
    sd_bus_message_unref(reply);
    if (w->path.empty()) {
      *error = "LoadUnit gave no object path";
      return false;
    }
    w->state.unit = unit;
    // The match before the first read, so that no change falls between the two. Over
    // the private socket messages carry no sender.
    r = sd_bus_match_signal(bus_, &w->slot, direct_ ? nullptr : kSystemd, w->path.c_str(),
                            kProperties, "PropertiesChanged", on_properties_changed, w.get());
    if (r < 0) {
      *error = std::string("cannot match its signals: ") + std::strerror(-r);
      return false;
    }
    if (!read_state(*w, error)) return false;
    if (w->state.load_state == "not-found") {
      *error = "no such unit (systemd: LoadState not-found)";
      return false;
    }
    job_details(*w);
    w->reported = w->state;
    units_[unit] = std::move(w);
    return true;
  }

  const UnitState& state(const std::string& unit) const { return units_.at(unit)->state; }

  // Handles what the bus has, then reports every unit whose state changed. "" while
  // all is well; what went wrong when the connection is lost.
  std::string process(const std::function<void(const UnitState&)>& report) {
    for (;;) {
      int r = sd_bus_process(bus_, nullptr);
      if (r < 0) return std::strerror(-r);
      if (r == 0) break;
    }
    for (auto& [unit, w] : units_) {
      if (w->refresh) {
        std::string error;
        if (!read_state(*w, &error)) return error;
        w->refresh = false;
        w->changed = true;
      }
      if (!w->changed) continue;
      w->changed = false;
      job_details(*w);
      if (w->state == w->reported) continue;
      w->reported = w->state;
      report(w->state);
    }
    if (sd_bus_is_open(bus_) <= 0) return "connection closed";
    return "";
  }

  // Waits for the bus or `wake_fd` (at most `max_ms`; -1 = no limit).
  void wait(int wake_fd, int max_ms) {
    struct pollfd fds[2] = {{sd_bus_get_fd(bus_), static_cast<short>(sd_bus_get_events(bus_)), 0},
                            {wake_fd, POLLIN, 0}};
    uint64_t until = 0;
    int timeout = max_ms;
    if (sd_bus_get_timeout(bus_, &until) >= 0 && until != UINT64_MAX) {
      struct timespec ts {};
      clock_gettime(CLOCK_MONOTONIC, &ts);
      uint64_t now =
          static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
      int ms = until <= now
                   ? 0
                   : static_cast<int>(std::min<uint64_t>((until - now + 999) / 1000, 60'000));
      timeout = timeout < 0 ? ms : std::min(timeout, ms);
    }
    ::poll(fds, 2, timeout);
  }

 private:
  int open_address(const std::string& address, bool bus_client) {
    int r = sd_bus_new(&bus_);
    if (r < 0) return r;
    if ((r = sd_bus_set_address(bus_, address.c_str())) >= 0 &&
        (r = sd_bus_set_bus_client(bus_, bus_client)) >= 0)
      r = sd_bus_start(bus_);
    if (r < 0) {
      sd_bus_unref(bus_);
      bus_ = nullptr;
    }
    return r;
  }

  int get(const std::string& path, const char* iface, const char* name, UnitValue* out,
          std::string* error) {
    sd_bus_error e = SD_BUS_ERROR_NULL;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call_method(bus_, kSystemd, path.c_str(), kProperties, "Get", &e, &reply, "ss",
                               iface, name);
    if (r < 0) {
      if (error) *error = std::string(name) + ": " + bus_error_text(r, e);
      sd_bus_error_free(&e);
      return r;
    }
    r = read_variant(reply, out);
    sd_bus_message_unref(reply);
    if (r < 0 && error) *error = std::string(name) + ": malformed reply";
    return r;
  }

  bool read_state(Watched& w, std::string* error) {
    UnitValue v;
    for (const char* p : kUnitProps) {
      if (get(w.path, kUnitIface, p, &v, error) < 0) return false;
      apply_unit_property(w.state, p, v);
    }
    if (w.state.unit.size() > 8 && w.state.unit.ends_with(".service")) {
      for (const char* p : kServiceProps) {
        if (get(w.path, kServiceIface, p, &v, error) < 0) return false;
        apply_unit_property(w.state, p, v);
      }
    }
    return true;
  }

  // A new job's type and trigger, from the job object. A job that has already ended
  // is gone from the bus: its type stays unknown (the next change says what it did).
  void job_details(Watched& w) {
    if (w.state.job_id == 0 || !w.state.job_type.empty() || w.state.job_path.empty()) return;
    UnitValue v;
    if (get(w.state.job_path, kJobIface, "JobType", &v, nullptr) > 0)
      apply_unit_property(w.state, "JobType", v);
    // ActivationDetails is systemd 252's; older ones have none.
    if (get(w.state.job_path, kJobIface, "ActivationDetails", &v, nullptr) > 0)
      apply_unit_property(w.state, "ActivationDetails", v);
  }

  sd_bus* bus_ = nullptr;
  bool direct_ = false;
  std::map<std::string, std::unique_ptr<Watched>> units_;
};

}  // namespace

std::set<std::string> configured_units(const ModelConfig& config) {
  std::set<std::string> out;
  for (const auto& [name, c] : config.checks)
    if (!c.unit.empty()) out.insert(c.unit);
  return out;
}

UnitWatcher::UnitWatcher(Options options, Callbacks callbacks)
    : options_(std::move(options)), callbacks_(std::move(callbacks)) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

UnitWatcher::~UnitWatcher() {
  stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void UnitWatcher::set_units(const std::set<std::string>& units) {
  std::lock_guard<std::mutex> lk(mu_);
  if (units == units_) return;
  units_ = units;
  ++units_version_;
  if (!thread_.joinable() && !units_.empty() && !stop_ && wake_fd_ >= 0)
    thread_ = std::thread([this] { run(); });
  else
    wake();
}

void UnitWatcher::stop() {
  std::thread t;
  {
    std::lock_guard<std::mutex> lk(mu_);  // set_units() starts no thread after this
    stop_ = true;
    t = std::move(thread_);
  }
  wake();
  if (t.joinable()) t.join();
}

void UnitWatcher::wake() {
  uint64_t one = 1;
  ssize_t n = ::write(wake_fd_, &one, sizeof one);
  (void)n;  // a full counter wakes the thread as well
}

void UnitWatcher::run() {
  // Waits for stop(), set_units() or `d` (forever when negative), whichever comes first.
  auto pause = [this](Duration d) {
    struct pollfd p = {wake_fd_, POLLIN, 0};
    int ms =
        d < Duration::zero()
            ? -1
            : static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
    ::poll(&p, 1, ms);
    uint64_t drained;
    ssize_t n = ::read(wake_fd_, &drained, sizeof drained);
    (void)n;  // nothing to read is fine: the timeout passed
  };
  const bool booted = !options_.address.empty() || sd_booted() > 0;
  Duration backoff = options_.retry_min;
  bool warned = false;                 // one warning until unit events work (again)
  std::set<std::string> warned_units;  // units reported missing: one warning each
  while (!stop_) {
    std::set<std::string> want;
    uint64_t version;
    {
      std::lock_guard<std::mutex> lk(mu_);
      want = units_;
      version = units_version_;
    }
    auto unwatched = [&](const std::string& error) {
      for (const auto& u : want) callbacks_.unwatched(u, error);
    };
    if (want.empty()) {
      pause(Duration(-1));
      continue;
    }
    if (!booted) {
      // No systemd now means none for this process's life: no retries.
      if (!warned)
        log_warn(
            "systemd unit events unavailable (not booted with systemd): checks naming a unit poll "
            "as without it",
            {{"units", join(want)}});
      warned = true;
      unwatched("not booted with systemd");
      pause(Duration(-1));
      continue;
    }
    std::string error;
    auto conn = Connection::open(options_.address, &error);
    if (!conn) {
      if (!warned)
        log_warn(
            "systemd unit events unavailable: checks naming a unit poll as without it; retrying",
            {{"error", error}, {"units", join(want)}});
      warned = true;
      unwatched(error);
      pause(backoff);
      backoff = std::min(backoff * 2, options_.retry_max);
      continue;
    }
    std::set<std::string> watching;
    for (const auto& u : want) {
      if (!conn->watch(u, &error)) {
        callbacks_.unwatched(u, error);
        if (warned_units.insert(u).second)
          log_warn("systemd unit not watched: its checks poll as without it",
                   {{"unit", u}, {"error", error}});
        continue;
      }
      warned_units.erase(u);
      watching.insert(u);
      callbacks_.state(conn->state(u), /*resync=*/true);
    }
    if (!watching.empty())
      log_info(warned ? "systemd unit events back" : "watching systemd units",
               {{"units", join(watching)}});
    warned = false;
    backoff = options_.retry_min;
    std::string lost;
    while (!stop_ && lost.empty()) {
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (units_version_ != version) break;  // another set: watched afresh
      }
      lost = conn->process([&](const UnitState& s) { callbacks_.state(s, /*resync=*/false); });
      if (lost.empty()) conn->wait(wake_fd_, -1);
      uint64_t drained;
      ssize_t n = ::read(wake_fd_, &drained, sizeof drained);
      (void)n;
    }
    conn.reset();
    if (stop_ || lost.empty()) continue;
    log_warn(
        "systemd unit events lost with the bus: checks naming a unit poll as without it; "
        "reconnecting",
        {{"error", lost}});
    warned = true;
    for (const auto& u : watching) callbacks_.unwatched(u, "bus connection lost: " + lost);
    pause(backoff);
    backoff = std::min(backoff * 2, options_.retry_max);
  }
}

}  // namespace poolkeeper
