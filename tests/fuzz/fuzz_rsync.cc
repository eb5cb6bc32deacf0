// Fuzzes the rsync check's reply parsers (bytes from whatever listens on the port):
// greeting, module listing and multiplexed frames. None throws; what they accept
// is well-formed, and framing consumes exactly whole frames.
#include <fuzzer/FuzzedDataProvider.h>

#include "checks/rsync_check.h"
#include "tests/fuzz/fuzz_check.h"

using namespace poolkeeper;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);

  if (auto g = parse_rsync_greeting(bytes)) {
    FUZZ_ASSERT(bytes.substr(0, 9) == "@RSYNCD: ");
    FUZZ_ASSERT(g->major >= 20 && g->major <= 99 && g->minor >= 0 && g->minor <= 9999);
  }

  RsyncListing l = parse_rsync_listing(bytes);
  FUZZ_ASSERT(!(l.complete && !l.error.empty()));
  for (const auto& m : l.modules) {
    FUZZ_ASSERT(!m.empty() && m.back() != ' ');
    FUZZ_ASSERT(m.find('\t') == std::string::npos && m.find('\n') == std::string::npos);
  }
  if (l.complete) FUZZ_ASSERT(bytes.find("@RSYNCD: EXIT") != std::string_view::npos);

  std::string buf(bytes);
  std::vector<RsyncFrame> frames;
  bool ok = take_rsync_frames(&buf, &frames);
  size_t consumed = 0;
  for (const auto& f : frames) {
    FUZZ_ASSERT(f.tag >= 0 && f.tag <= 110 && f.payload.size() <= 0xffffff);
    consumed += 4 + f.payload.size();
  }
  FUZZ_ASSERT(consumed + buf.size() == size);
  FUZZ_ASSERT(std::string_view(buf) == bytes.substr(consumed));
  if (ok && buf.size() >= 4) {  // what is left is a frame still arriving
    size_t len = static_cast<unsigned char>(buf[0]) | (static_cast<unsigned char>(buf[1]) << 8) |
                 (static_cast<unsigned char>(buf[2]) << 16);
    FUZZ_ASSERT(buf.size() < 4 + len);
  }
  return 0;
}
