// Fuzzes the NFSv4.1 COMPOUND reply decoder (bytes from whatever answers on the NFS
// port): it never throws or reads past the input, and what it reports is consistent.
#include <fuzzer/FuzzedDataProvider.h>

#include "checks/nfs4_wire.h"
#include "tests/fuzz/fuzz_check.h"

using namespace poolkeeper;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (unsigned skip : {0u, 1u}) {
    nfs4::CompoundReply r;
    std::string error;
    bool ok = nfs4::decode_compound(bytes, skip, 1, &r, &error);
    FUZZ_ASSERT(ok == error.empty());
    FUZZ_ASSERT(r.root_fh.size() <= 128 && r.fh.size() <= 128);
    FUZZ_ASSERT(r.data.size() <= size);
    if (r.failed_op >= 0) {
      FUZZ_ASSERT(r.failed_status != 0);
      FUZZ_ASSERT(static_cast<unsigned>(r.failed_op) + 1 == r.ops);
    }
    if (r.leading_status != 0) FUZZ_ASSERT(skip == 1 && r.ops == 0);
    FUZZ_ASSERT(r.ops <= size / 8);  // each result is at least an op and a status
  }
  // The attribute decoder on a mask and values taken from the input.
  nfs4::XdrIn in(bytes);
  uint32_t mask[2] = {in.u32(), in.u32()};
  nfs4::FileAttrs a = nfs4::decode_fattr(mask, 2, bytes.substr(std::min<size_t>(8, size)));
  if (a.have) FUZZ_ASSERT((mask[0] & ~((1u << 1) | (1u << 4) | (1u << 20))) == 0 && (mask[1] & ~(1u << 21)) == 0);
  return 0;
}
