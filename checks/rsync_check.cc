#include "checks/rsync_check.h"

#include "agent/base/utf8.h"
#include "agent/base/net.h"

#include <type_traits>

namespace poolkeeper {

namespace {

constexpr size_t kMaxReply = 256 * 1024;
constexpr const char* kOurVersion = "@RSYNCD: 29.0\n";

std::string printable(std::string_view s, size_t max = 80) {
  std::string out;
  for (char c : s.substr(0, max)) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (u >= ' ' && u < 0x7f) ? c : '.';
  }
  return out;
}

std::string trim_line(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  return std::string(s);
}

// Reads more of the daemon's reply into *buf (at most `max` bytes). When the read
// fails, what it makes of the probe: "timed out <waiting><what>", the socket's error,
// or `closed` (a message, or a function making one) when the daemon just closed.
template <class Closed>
std::optional<Result> read_more(TcpConn& c, std::string* buf, size_t max, Deadline deadline,
                                std::string_view waiting, std::string_view what, Closed closed) {
  bool timeout = false;
  std::string err;
  if (c.read_some(buf, max, deadline, &timeout, &err)) return std::nullopt;
  if (timeout) return Result::fail(Outcome::kTimeout, "timed out " + std::string(waiting) + std::string(what));
  if (!err.empty()) return Result::fail(Outcome::kNetworkError, err);
  if constexpr (std::is_invocable_v<Closed>) return closed();
  else return Result::fail(Outcome::kNetworkError, std::string(closed));
}

// Reads until `buf` holds a full line; returns false (with *fail set) otherwise.
bool read_line(TcpConn& c, std::string* buf, Deadline deadline, Result* fail, const char* what) {
  auto garbage = [&] {
    return Result::fail(Outcome::kNetworkError, std::string("garbage ") + what + ": \"" + printable(*buf) + "\"");
  };
  while (buf->find('\n') == std::string::npos) {
    if (buf->size() > 4096) {
      *fail = garbage();
      return false;
    }
    auto closed = [&] {
      return buf->empty() ? Result::fail(Outcome::kNetworkError, std::string("connection closed before ") + what)
                          : garbage();
    };
    if (auto f = read_more(c, buf, 4096, deadline, "waiting for ", what, closed)) {
      *fail = std::move(*f);
      return false;
    }
  }
  return true;
}

// Connects and reads the daemon's greeting line; leaves what followed it in *buf.
std::optional<RsyncGreeting> connect_and_greet(TcpConn& c, const std::string& host, int port, Deadline deadline,
                                               std::string* buf, Result* fail);

}  // namespace

std::optional<RsyncGreeting> parse_rsync_greeting(std::string_view line) {
  constexpr std::string_view kPrefix = "@RSYNCD: ";
  if (line.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::string_view rest = line.substr(kPrefix.size());
  RsyncGreeting g;
  size_t i = 0;
  auto number = [&](int* out) {
    size_t start = i;
    long v = 0;
    while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9' && i - start < 4) v = v * 10 + (rest[i++] - '0');
    *out = static_cast<int>(v);
    return i > start;
  };
  if (!number(&g.major)) return std::nullopt;
  if (i < rest.size() && rest[i] == '.') {
    ++i;
    if (!number(&g.minor)) return std::nullopt;
  }
  if (i < rest.size() && rest[i] != ' ' && rest[i] != '\n' && rest[i] != '\r') return std::nullopt;
  if (g.major < 20 || g.major > 99) return std::nullopt;
  return g;
}

RsyncListing parse_rsync_listing(std::string_view bytes) {
  RsyncListing out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t nl = bytes.find('\n', pos);
    if (nl == std::string_view::npos) break;  // partial line: not complete
    std::string line = trim_line(bytes.substr(pos, nl - pos));
    pos = nl + 1;
    if (line == "@RSYNCD: EXIT") {
      out.complete = true;
      break;
    }
    if (line.rfind("@ERROR", 0) == 0) {
      size_t text = line.find_first_not_of(": ", 6);  // "@ERROR: " may carry nothing else
      out.error = line.size() > 7 && text != std::string::npos ? line.substr(text) : "error";
      break;
    }
    size_t tab = line.find('\t');
    if (tab == std::string::npos) continue;  // MOTD line or blank
    std::string name = line.substr(0, tab);
    while (!name.empty() && name.back() == ' ') name.pop_back();
    if (!name.empty()) out.modules.push_back(name);
  }
  return out;
}

bool take_rsync_frames(std::string* buf, std::vector<RsyncFrame>* frames) {
  while (buf->size() >= 4) {
    const auto* p = reinterpret_cast<const unsigned char*>(buf->data());
    uint32_t h = uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
    int code = static_cast<int>(h >> 24);
    size_t len = h & 0xffffff;
    if (code < 7 || code > 7 + 110) return false;
    if (buf->size() < 4 + len) return true;
    frames->push_back({code - 7, buf->substr(4, len)});
    buf->erase(0, 4 + len);
  }
  return true;
}

namespace {
std::optional<RsyncGreeting> connect_and_greet(TcpConn& c, const std::string& host, int port, Deadline deadline,
                                               std::string* buf, Result* fail) {
  if (auto f = c.connect(host, port, deadline)) {
    *fail = *f;
    return std::nullopt;
  }
  if (!read_line(c, buf, deadline, fail, "greeting")) return std::nullopt;
  std::string greeting = trim_line(buf->substr(0, buf->find('\n')));
  auto g = parse_rsync_greeting(greeting);
  if (!g) {
    *fail = Result::fail(Outcome::kNetworkError, "garbage greeting: \"" + printable(greeting) + "\"");
    return std::nullopt;
  }
  buf->erase(0, buf->find('\n') + 1);
  return g;
}
}  // namespace

std::string RsyncCheck::target() const {
  std::string h = o_.host.find(':') != std::string::npos ? "[" + o_.host + "]" : o_.host;
  return "rsync://" + h + ":" + std::to_string(o_.port) + "/" + o_.module +
         (o_.path ? "/" + *o_.path : "");
}

Result RsyncCheck::run(Deadline deadline, const Clock& /*clock*/) {
  TcpConn c;
  std::string buf;
  Result fail;
  auto g = connect_and_greet(c, o_.host, o_.port, deadline, &buf, &fail);
  if (!g) return fail;
  if (auto f = c.write_all(std::string(kOurVersion) + "\n", deadline)) return *f;
  // The module list ends with "@RSYNCD: EXIT" and the daemon closes.
  RsyncListing listing;
  for (;;) {
    listing = parse_rsync_listing(buf);
    if (listing.complete || !listing.error.empty()) break;
    if (buf.size() > kMaxReply) return Result::fail(Outcome::kNetworkError, "module list too long");
    if (auto f = read_more(c, &buf, 65536, deadline, "reading the module list", "", "module list cut short")) return *f;
  }
  if (!listing.error.empty()) return Result::fail(Outcome::kFailed, "daemon error: " + printable(listing.error, 120));
  bool found = false;
  for (const auto& m : listing.modules) found |= (m == o_.module);
  Result r = Result::pass("module " + o_.module + " listed");
  r.details["protocol"] = std::to_string(g->major) + "." + std::to_string(g->minor);
  // Module names are the daemon's bytes (rsyncd.conf may be in any charset): matched
  // as bytes above, shown as valid UTF-8.
  nlohmann::json modules = nlohmann::json::array();
  for (const auto& m : listing.modules) modules.push_back(valid_utf8(m, 256));
  r.details["modules"] = std::move(modules);
  if (!found) {
    r.outcome = Outcome::kFailed;
    r.reason = "module " + o_.module + " not listed";
    return r;
  }
  if (!o_.path) return r;
  Result p = list_path(deadline);
  p.details = r.details;
  return p;
}

Result RsyncCheck::list_path(Deadline deadline) {
  TcpConn c;
  std::string buf;
  Result fail;
  if (!connect_and_greet(c, o_.host, o_.port, deadline, &buf, &fail)) return fail;
  if (auto f = c.write_all(std::string(kOurVersion) + o_.module + "\n", deadline)) return *f;
  for (;;) {  // MOTD lines, then @RSYNCD: OK or @ERROR
    if (!read_line(c, &buf, deadline, &fail, "module reply")) return fail;
    std::string line = trim_line(buf.substr(0, buf.find('\n')));
    buf.erase(0, buf.find('\n') + 1);
    if (line == "@RSYNCD: OK") break;
    if (line.rfind("@ERROR", 0) == 0) return Result::fail(Outcome::kFailed, "daemon error: " + printable(line.substr(std::min<size_t>(line.size(), 8)), 120));
    if (line.rfind("@RSYNCD: AUTHREQD", 0) == 0) return Result::fail(Outcome::kFailed, "module " + o_.module + " needs authentication");
    if (line == "@RSYNCD: EXIT") return Result::fail(Outcome::kFailed, "daemon closed the module");
  }
  // Protocol 29 arguments, one per line, ended by an empty line: list one level.
  std::string args = "--server\n--sender\n-d\n.\n" + o_.module + "/" + *o_.path + "\n\n";
  if (auto f = c.write_all(args, deadline)) return *f;
  // 4-byte checksum seed, then the empty filter list from us, then multiplexed frames.
  while (buf.size() < 4) {
    if (auto f = read_more(c, &buf, 4096, deadline, "waiting for the file list", "", "daemon closed before the file list"))
      return *f;
  }
  buf.erase(0, 4);
  if (auto f = c.write_all(std::string(4, '\0'), deadline)) return *f;
  std::string errors;
  for (;;) {
    std::vector<RsyncFrame> frames;
    if (!take_rsync_frames(&buf, &frames)) return Result::fail(Outcome::kNetworkError, "garbage in the file list stream");
    for (const auto& f : frames) {
      if (f.tag == 0 && !f.payload.empty()) {
        // The file list's first byte is 0 exactly when the list is empty.
        if (f.payload[0] == '\0')
          return Result::fail(Outcome::kFailed,
                              "path missing: " + o_.module + "/" + *o_.path +
                                  (errors.empty() ? "" : " (" + printable(errors, 120) + ")"));
        return Result::pass("listed " + o_.module + "/" + *o_.path);
      }
      if (f.tag == 1 || f.tag == 3) errors += trim_line(f.payload);
    }
    if (buf.size() > kMaxReply) return Result::fail(Outcome::kNetworkError, "file list frame too long");
    if (auto f = read_more(c, &buf, 65536, deadline, "reading the file list", "", "daemon closed during the file list")) {
      // What the daemon said before it went says more than how it went.
      if (f->outcome != Outcome::kTimeout && !errors.empty()) return Result::fail(Outcome::kFailed, printable(errors, 160));
      return *f;
    }
  }
}

std::unique_ptr<Check> make_rsync_check(TableReader& reader) {
  RsyncCheckOptions o;
  std::string addr = reader.string("address").value_or("127.0.0.1:873");
  if (!parse_address(addr, &o.host, &o.port))
    reader.fail("address", "\"" + addr + "\" must be a numeric ADDRESS:PORT, e.g. \"127.0.0.1:873\"");
  o.module = reader.require_string("module");
  if (o.module.find_first_of("/\n\r\t ") != std::string::npos) reader.fail("module", "must be a plain module name");
  o.path = reader.string("path");
  if (o.path) {
    while (!o.path->empty() && o.path->front() == '/') o.path->erase(0, 1);
    if (o.path->empty() || o.path->find('\n') != std::string::npos || o.path->find("..") != std::string::npos)
      reader.fail("path", "must be a path inside the module");
  }
  return std::make_unique<RsyncCheck>(std::move(o));
}

}  // namespace poolkeeper
