#include "agent/state_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <nlohmann/json.hpp>

namespace poolkeeper {

namespace {

int64_t to_ms(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
// A time in milliseconds as the file holds it; one that is not a whole number or that
// WallTime cannot represent (past the year 2262) makes the file unreadable, never a
// different time.
WallTime ms_field(const nlohmann::json& o, const char* key) {
  const nlohmann::json& v = o.at(key);
  constexpr int64_t kMax =
      std::chrono::duration_cast<std::chrono::milliseconds>(WallTime::duration::max()).count();
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(kMax)) ||
      v.get<int64_t>() > kMax || v.get<int64_t>() < -kMax)
    throw std::out_of_range(std::string(key) + " out of range: " + v.dump());
  return WallTime(std::chrono::duration_cast<WallTime::duration>(std::chrono::milliseconds(v.get<int64_t>())));
}

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

StateStore::StateStore(std::string dir) : dir_(std::move(dir)), path_(dir_ + "/state.json") {}

std::string StateStore::serialize(const std::map<std::string, AdminIntent>& intents) {
  nlohmann::json services = nlohmann::json::object();
  for (const auto& [name, i] : intents) {
    nlohmann::json o = {{"intent", intent_name(i.intent)}, {"reason", i.reason},
                        {"who", i.who},                    {"when_ms", to_ms(i.when)},
                        {"until_boot", i.until_boot},      {"boot_id", i.boot_id}};
    o["expires_ms"] = i.expires ? nlohmann::json(to_ms(*i.expires)) : nlohmann::json(nullptr);
    services[name] = o;
  }
  return nlohmann::json{{"format", 1}, {"services", services}}.dump(2) + "\n";
}

LoadedState StateStore::parse(const std::string& text) {
  LoadedState out;
  out.status = LoadedState::Status::kUnreadable;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range: a number too large
    out.error = std::string("not JSON (") + e.what() + ")";
    return out;
  }
  if (!j.is_object() || (!j.contains("format") || j["format"] != 1) || !j.contains("services") ||
      !j["services"].is_object()) {
    out.error = "not a poolkeeper state file (format 1)";
    return out;
  }
  try {
    for (const auto& [name, o] : j["services"].items()) {
      AdminIntent i;
      auto intent = parse_intent(o.at("intent").get<std::string>());
      if (!intent) {
        out.intents.clear();  // all or nothing
        out.error = "service " + name + ": unknown intent \"" + o.at("intent").get<std::string>() + "\"";
        return out;
      }
      i.intent = *intent;
      i.reason = o.at("reason").get<std::string>();
      i.who = o.at("who").get<std::string>();
      i.when = ms_field(o, "when_ms");
      if (!o.at("expires_ms").is_null()) i.expires = ms_field(o, "expires_ms");
      i.until_boot = o.at("until_boot").get<bool>();
      i.boot_id = o.at("boot_id").get<std::string>();
      out.intents[name] = i;
    }
  } catch (const nlohmann::json::exception& e) {
    out.intents.clear();
    out.error = std::string("bad entry (") + e.what() + ")";
    return out;
  } catch (const std::out_of_range& e) {
    out.intents.clear();
    out.error = std::string("bad entry (") + e.what() + ")";
    return out;
  }
  out.status = LoadedState::Status::kOk;
  return out;
}

LoadedState StateStore::load() const {
  LoadedState out;
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return out;  // first start: nothing decided yet
    out.status = LoadedState::Status::kUnreadable;
    out.error = errno_text(path_);
    return out;
  }
  std::string text;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < (1u << 20)) text.append(buf, static_cast<size_t>(n));
  int e = errno;
  ::close(fd);
  if (n < 0) {
    errno = e;
    out.status = LoadedState::Status::kUnreadable;
    out.error = errno_text(path_);
    return out;
  }
  out = parse(text);
  if (out.status == LoadedState::Status::kUnreadable) out.error = path_ + ": " + out.error;
  return out;
}

std::string StateStore::save(const std::map<std::string, AdminIntent>& intents) const {
  std::string text = serialize(intents);
  if (::mkdir(dir_.c_str(), 0755) != 0 && errno != EEXIST) return errno_text("mkdir " + dir_);
  std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_text("create " + tmp);
  size_t off = 0;
  while (off < text.size()) {
    ssize_t w = ::write(fd, text.data() + off, text.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      std::string err = errno_text("write " + tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return err;
    }
    off += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0) {
    std::string err = errno_text("fsync " + tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return err;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    std::string err = errno_text("rename to " + path_);
    ::unlink(tmp.c_str());
    return err;
  }
  int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    if (::fsync(dfd) != 0) {
      std::string err = errno_text("fsync " + dir_);
      ::close(dfd);
      return err;
    }
    ::close(dfd);
  }
  return "";
}

}  // namespace poolkeeper
