#include "agent/runtime/state_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <nlohmann/json.hpp>

#include "agent/base/utf8.h"

namespace poolkeeper {

namespace {

int64_t to_ms(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
// The wall clock counts nanoseconds in an int64: times from 1970 to 2262. A value
// outside that range is not a time this agent wrote, so the file is unreadable —
// never a different (e.g. already expired) intent.
constexpr int64_t kMaxMs = std::chrono::duration_cast<std::chrono::milliseconds>(WallTime::duration::max()).count();

WallTime from_ms(const nlohmann::json& v, const std::string& field) {
  if (!v.is_number_integer()) throw std::invalid_argument(field + " is not a whole number of milliseconds");
  if (v.is_number_unsigned() ? v.get<uint64_t>() > static_cast<uint64_t>(kMaxMs)
                             : (v.get<int64_t>() < 0 || v.get<int64_t>() > kMaxMs))
    throw std::invalid_argument(field + " " + v.dump() + " is out of range (0 to " + std::to_string(kMaxMs) + ")");
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
  return json_text(nlohmann::json{{"format", 1}, {"services", services}}, 2) + "\n";
}

LoadedState StateStore::parse(const std::string& text) {
  LoadedState out;
  out.status = LoadedState::Status::kUnreadable;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range: a number too large
    out.error = "not JSON (" + valid_utf8(e.what(), 300) + ")";  // it quotes the bad bytes
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
      i.when = from_ms(o.at("when_ms"), "when_ms");
      if (!o.at("expires_ms").is_null()) i.expires = from_ms(o.at("expires_ms"), "expires_ms");
      i.until_boot = o.at("until_boot").get<bool>();
      i.boot_id = o.at("boot_id").get<std::string>();
      out.intents[name] = i;
    }
  } catch (const nlohmann::json::exception& e) {
    out.intents.clear();
    out.error = std::string("bad entry (") + e.what() + ")";
    return out;
  } catch (const std::invalid_argument& e) {
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
  return write_file_atomically(dir_, path_, serialize(intents));
}

std::string write_file_atomically(const std::string& dir, const std::string& path, const std::string& text) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return errno_text("mkdir " + dir);
  std::string tmp = path + ".tmp";
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
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = errno_text("rename to " + path);
    ::unlink(tmp.c_str());
    return err;
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    if (::fsync(dfd) != 0) {
      std::string err = errno_text("fsync " + dir);
      ::close(dfd);
      return err;
    }
    ::close(dfd);
  }
  return "";
}

}  // namespace poolkeeper
