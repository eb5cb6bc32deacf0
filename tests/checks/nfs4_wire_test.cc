// The NFSv4.1 wire code without a server: XDR as RFC 4506 lays it out, the encoders'
// bytes, and what the COMPOUND reply decoder makes of replies servers send (a probe's,
// knfsd's grace refusal after the handles, a dropped session, a refused minor version,
// a reply cut short). The servers themselves: checks_test, nfs_grace_test, tests/vm.
#include <gtest/gtest.h>

#include "checks/nfs4_wire.h"

using namespace poolkeeper::nfs4;

namespace {

std::string fh_bytes(char c, size_t n) { return std::string(n, c); }

struct ReplyBuilder {
  XdrOut x;
  std::vector<std::string> results;
  void ok(uint32_t op) { add(op, 0); }
  void add(uint32_t op, uint32_t status, const std::string& body = "") {
    XdrOut r;
    r.u32(op);
    r.u32(status);
    r.append(body);
    results.push_back(r.bytes());
  }
  std::string build(uint32_t status = 0) {
    XdrOut c;
    c.u32(status);
    c.opaque("");
    c.u32(static_cast<uint32_t>(results.size()));
    for (const auto& r : results) c.append(r);
    return c.bytes();
  }
};

std::string sequence_ok() {
  XdrOut b;
  b.fixed(std::string(16, 'S'));
  for (int i = 0; i < 5; ++i) b.u32(0);
  return b.bytes();
}

std::string getfh(const std::string& fh) {
  XdrOut b;
  b.opaque(fh);
  return b.bytes();
}

std::string getattr(uint64_t size, uint64_t fileid, int64_t mtime) {
  XdrOut vals;
  vals.u32(1);  // NF4REG
  vals.u64(size);
  vals.u64(fileid);
  vals.u64(static_cast<uint64_t>(mtime));
  vals.u32(7);
  XdrOut b;
  b.u32(2);
  b.u32((1u << 1) | (1u << 4) | (1u << 20));
  b.u32(1u << 21);
  b.opaque(vals.bytes());
  return b.bytes();
}

std::string read_ok(const std::string& data) {
  XdrOut b;
  b.u32(1);  // eof
  b.opaque(data);
  return b.bytes();
}

}  // namespace

TEST(Nfs4WireTest, XdrPadsToFourBytesAndReadsBack) {
  XdrOut x;
  x.u32(0x01020304);
  x.opaque("abcde");
  x.u64(0x1122334455667788ull);
  EXPECT_EQ(x.bytes(), std::string("\x01\x02\x03\x04\0\0\0\x05" "abcde\0\0\0"
                                   "\x11\x22\x33\x44\x55\x66\x77\x88", 24));
  XdrIn in(x.bytes());
  EXPECT_EQ(in.u32(), 0x01020304u);
  EXPECT_EQ(in.opaque(16), "abcde");
  EXPECT_EQ(in.u64(), 0x1122334455667788ull);
  EXPECT_TRUE(in.ok());
  EXPECT_EQ(in.left(), 0u);
  EXPECT_EQ(in.u32(), 0u);  // past the end: zero, and not ok from then on
  EXPECT_FALSE(in.ok());
  std::string from_opaque = x.bytes().substr(4);  // XdrIn reads it in place: keep it alive
  XdrIn bounded(from_opaque);
  EXPECT_EQ(bounded.opaque(4), "");  // longer than its bound
  EXPECT_FALSE(bounded.ok());
}

TEST(Nfs4WireTest, EncodersLayOutTheOperations) {
  XdrOut x;
  put_lookup(x, "dumps");
  uint32_t mask[2] = {0x00100012, 0x00200000};
  put_getattr(x, mask);
  put_read_anonymous(x, 64);
  XdrIn in(x.bytes());
  EXPECT_EQ(in.u32(), kOpLookup);
  EXPECT_EQ(in.opaque(255), "dumps");
  EXPECT_EQ(in.u32(), kOpGetattr);
  EXPECT_EQ(in.u32(), 2u);
  EXPECT_EQ(in.u32(), 0x00100012u);
  EXPECT_EQ(in.u32(), 0x00200000u);
  EXPECT_EQ(in.u32(), kOpRead);
  EXPECT_EQ(in.fixed(16), std::string(16, '\0'));  // the anonymous stateid
  EXPECT_EQ(in.u64(), 0u);
  EXPECT_EQ(in.u32(), 64u);
  EXPECT_TRUE(in.ok());
  EXPECT_EQ(in.left(), 0u);
  XdrOut c;
  put_read_current(c, 64);
  EXPECT_EQ(c.bytes().substr(4, 4), std::string("\0\0\0\x01", 4));  // seqid 1: the current stateid
}

TEST(Nfs4WireTest, AProbesReplyGivesHandlesAttributesAndData) {
  ReplyBuilder b;
  b.add(kOpSequence, 0, sequence_ok());
  b.ok(kOpPutrootfh);
  b.add(kOpGetfh, 0, getfh(fh_bytes('r', 12)));
  b.ok(kOpLookup);
  b.add(kOpGetfh, 0, getfh(fh_bytes('f', 28)));
  b.add(kOpGetattr, 0, getattr(18, 4242, 1700000000));
  b.add(kOpRead, 0, read_ok("poolkeeper canary\n"));
  CompoundReply r;
  std::string error;  // the root's GETFH: after PUTROOTFH, counting from the op after SEQUENCE
  ASSERT_TRUE(decode_compound(b.build(), 1, 1, &r, &error)) << error;
  EXPECT_EQ(r.ops, 6u);
  EXPECT_EQ(r.failed_op, -1);
  EXPECT_EQ(r.root_fh, fh_bytes('r', 12));
  EXPECT_EQ(r.fh, fh_bytes('f', 28));
  ASSERT_TRUE(r.attrs.have);
  EXPECT_EQ(r.attrs.size, 18u);
  EXPECT_EQ(r.attrs.fileid, 4242u);
  EXPECT_EQ(r.attrs.mtime_sec, 1700000000);
  EXPECT_EQ(r.attrs.mtime_nsec, 7u);
  EXPECT_EQ(r.data, "poolkeeper canary\n");
  EXPECT_TRUE(r.eof);
}

TEST(Nfs4WireTest, KnfsdGraceRefusesTheReadAfterTheHandles) {
  ReplyBuilder b;
  b.add(kOpSequence, 0, sequence_ok());
  b.ok(kOpPutrootfh);
  b.add(kOpGetfh, 0, getfh(fh_bytes('r', 8)));
  b.ok(kOpLookup);
  b.add(kOpGetfh, 0, getfh(fh_bytes('f', 8)));
  b.add(kOpGetattr, 0, getattr(11, 7, 1700000000));
  b.add(kOpRead, 10013);  // NFS4ERR_GRACE
  CompoundReply r;
  std::string error;
  ASSERT_TRUE(decode_compound(b.build(10013), 1, 1, &r, &error)) << error;
  EXPECT_EQ(r.failed_op, 5);
  EXPECT_EQ(r.failed_status, 10013);
  EXPECT_EQ(status_name(r.failed_status), "NFS4ERR_GRACE");
  EXPECT_EQ(r.root_fh, fh_bytes('r', 8));  // what came before the refusal is kept
  EXPECT_EQ(r.fh, fh_bytes('f', 8));
  EXPECT_TRUE(r.attrs.have);
}

TEST(Nfs4WireTest, SessionAndVersionRefusals) {
  ReplyBuilder gone;
  gone.add(kOpSequence, kErrBadSession);
  CompoundReply r;
  std::string error;
  ASSERT_TRUE(decode_compound(gone.build(kErrBadSession), 1, -1, &r, &error));
  EXPECT_EQ(r.leading_status, kErrBadSession);  // the session's, not an operation's
  EXPECT_EQ(r.ops, 0u);
  EXPECT_EQ(r.failed_op, -1);
  EXPECT_EQ(status_name(kErrBadSession), "NFS4ERR_BADSESSION");

  ReplyBuilder refused;  // knfsd without 4.0: no results at all
  CompoundReply v;
  ASSERT_TRUE(decode_compound(refused.build(kErrMinorVersMismatch), 0, -1, &v, &error));
  EXPECT_EQ(v.status, kErrMinorVersMismatch);
  EXPECT_EQ(v.ops, 0u);
  EXPECT_EQ(status_name(v.status), "NFS4ERR_MINOR_VERS_MISMATCH");
}

TEST(Nfs4WireTest, RepliesItCannotReadAreSaidSo) {
  ReplyBuilder b;
  b.add(kOpSequence, 0, sequence_ok());
  b.add(kOpGetfh, 0, getfh(fh_bytes('f', 8)));
  std::string whole = b.build();
  CompoundReply r;
  std::string error;
  EXPECT_FALSE(decode_compound(whole.substr(0, whole.size() - 3), 1, -1, &r, &error));
  EXPECT_EQ(error, "COMPOUND reply cut short");
  ReplyBuilder odd;
  odd.ok(7);  // an operation the probe never sends
  CompoundReply o;
  EXPECT_FALSE(decode_compound(odd.build(), 0, -1, &o, &error));
  EXPECT_EQ(error, "COMPOUND reply has an operation the probe did not send (7)");
  ReplyBuilder big;
  big.add(kOpGetfh, 0, getfh(fh_bytes('f', 200)));  // over NFS4_FHSIZE
  CompoundReply g;
  EXPECT_FALSE(decode_compound(big.build(), 0, -1, &g, &error));
}

TEST(Nfs4WireTest, AttributesNotAskedForAreNotGuessedAt) {
  uint32_t mask[2] = {(1u << 1) | (1u << 3), 0};  // type and an attribute we did not ask for
  XdrOut vals;
  vals.u32(1);
  vals.u64(1);
  EXPECT_FALSE(decode_fattr(mask, 2, vals.bytes()).have);
  uint32_t ours[2] = {1u << 1, 0};
  FileAttrs a = decode_fattr(ours, 2, vals.bytes().substr(0, 4));
  EXPECT_TRUE(a.have);
  EXPECT_EQ(a.type, 1u);
}
