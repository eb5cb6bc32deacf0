// kind = "rsync": speaks the rsync daemon protocol. Reads the greeting
// ("@RSYNCD: <version>"), answers with our version, asks for the module list and
// requires `module` in it. With `path`, it also opens the module and asks the daemon
// to list that path (protocol 29, which needs no checksum negotiation) and fails when
// the file list comes back empty or with an error. The parsing is pure functions over
// bytes (fuzzed), separate from the socket code.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checks/check.h"

namespace poolkeeper {

// Parsing, pure and defensive against any bytes.
struct RsyncGreeting {
  int major = 0, minor = 0;
};
// "@RSYNCD: 31.0 sha512 sha256\n" → {31, 0}; nullopt for anything else.
std::optional<RsyncGreeting> parse_rsync_greeting(std::string_view line);

struct RsyncListing {
  bool complete = false;                // saw "@RSYNCD: EXIT"
  std::vector<std::string> modules;
  std::string error;                    // "@ERROR: …" text, if any
};
// Parses what the daemon sends after an empty module request: optional MOTD lines,
// "name\tcomment" lines, then "@RSYNCD: EXIT".
RsyncListing parse_rsync_listing(std::string_view bytes);

// One multiplexed frame: 4-byte little-endian header (tag + 7) << 24 | length.
struct RsyncFrame {
  int tag = 0;  // 0 data, 1 error_xfer, 2 info, 3 error, 4 warning, …
  std::string payload;
};
// Takes complete frames off the front of `buf`; leaves a partial one. Returns false
// when the bytes cannot be frames (bad tag).
bool take_rsync_frames(std::string* buf, std::vector<RsyncFrame>* frames);

struct RsyncCheckOptions {
  std::string host = "127.0.0.1";
  int port = 873;
  std::string module;
  std::optional<std::string> path;
};

class RsyncCheck final : public Check {
 public:
  explicit RsyncCheck(RsyncCheckOptions o) : o_(std::move(o)) {}
  Result run(Deadline deadline, const Clock& clock) override;
  std::string target() const override;

 private:
  Result list_path(Deadline deadline);
  RsyncCheckOptions o_;
};

std::unique_ptr<Check> make_rsync_check(TableReader& reader);

}  // namespace poolkeeper
