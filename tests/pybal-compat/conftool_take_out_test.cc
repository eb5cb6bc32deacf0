// ConftoolWriter::take_out against a real etcd: the floor under the etcd lock, and
// the sync held off until the caller's `apply` has returned — so a sync can never write
// back a "yes" decided from wants older than the depool.
#include <gtest/gtest.h>

#include <future>

#include "pybal-compat/conftool_writer.h"
#include "tests/harness/conftool_etcd.h"
#include "tests/harness/harness.h"

using namespace pk_test;
using namespace poolkeeper;
using Answers = std::vector<ConftoolWriter::TakeOutAnswer>;

namespace {

class ConftoolTakeOutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_.endpoints = {conftool_.etcd().url()};
    cfg_.prefix = ConftoolEtcd::kPrefix;
    cfg_.liveness_prefix = "/poolkeeper/alive";
  }
  void TearDown() override {
    if (writer_) writer_->stop();
  }
  // Only the nfs key of a host.
  void seed(const std::string& host, const std::string& pooled) {
    std::string value = R"({"pooled":")" + pooled + R"(","weight":10})";
    ASSERT_TRUE(conftool_.client().put(ConftoolEtcd::key("nfs", host), value).ok());
  }
  std::string pooled(const std::string& host) { return conftool_.pooled("nfs", host); }
  uint64_t index(const std::string& host) { return conftool_.index("nfs", host); }
  void start_writer(ConftoolWant::Kind kind) {
    ConftoolWriter::Callbacks cb;
    cb.adopt = [](const std::string&, ConftoolPooled) {};
    cb.verdict = [](const std::string&, FloorVerdict) {};
    cb.status = [](bool, const std::string&, const nlohmann::json&, const nlohmann::json&) {};
    writer_ = std::make_unique<ConftoolWriter>(cfg_, "a.example.org", dir_.path() + "/conftool.json", cb, real_clock());
    writer_->update({{"nfs", kind, 1}}, {});
    writer_->start();
    ASSERT_TRUE(writer_->wait_synced(std::chrono::seconds(10)));
  }

  TempDir dir_;
  ConftoolEtcd conftool_;
  ConftoolConfig cfg_;
  std::unique_ptr<ConftoolWriter> writer_;
};

}  // namespace

TEST_F(ConftoolTakeOutTest, NoSyncRunsUntilTheIntentIsApplied) {
  seed("a.example.org", "yes");
  seed("b.example.org", "yes");
  start_writer(ConftoolWant::Kind::kYes);
  for (int round = 0; round < 5; ++round) {
    bool applied = false;
    std::future<bool> sync;
    writer_->take_out({{"nfs", 1}}, [&](const Answers& answers) {
      ASSERT_EQ(answers.size(), 1u);
      EXPECT_FALSE(answers[0].unavailable);
      EXPECT_FALSE(answers[0].refusal);
      EXPECT_EQ(pooled("a.example.org"), "no");  // written under the lock, before apply
      // A sync asked for now (the wants still say "yes") must wait for apply.
      sync = std::async(std::launch::async, [&] { return writer_->wait_synced(std::chrono::seconds(10)); });
      EXPECT_TRUE(holds_for([&] { return sync.wait_for(0s) != std::future_status::ready; }, 300ms))
          << "a sync ran while the depool was being applied";
      EXPECT_EQ(pooled("a.example.org"), "no");
      writer_->update({{"nfs", ConftoolWant::Kind::kNo, 1}}, {});  // the intent, applied
      applied = true;
    });
    ASSERT_TRUE(applied);
    EXPECT_TRUE(sync.get());  // it ran once apply had returned, with the new wants
    ASSERT_TRUE(writer_->wait_synced(std::chrono::seconds(10)));
    uint64_t after = index("a.example.org");
    EXPECT_EQ(pooled("a.example.org"), "no") << "round " << round;
    ASSERT_TRUE(writer_->wait_synced(std::chrono::seconds(10)));
    EXPECT_EQ(index("a.example.org"), after) << "a sync wrote the key again";
    // Pooled again for the next round.
    writer_->update({{"nfs", ConftoolWant::Kind::kYes, 1}}, {});
    ASSERT_TRUE(wait_for([&] { return pooled("a.example.org") == "yes"; }, 5000ms));
  }
}

TEST_F(ConftoolTakeOutTest, RefusesUnderTheFloorAndStopsAtTheFirstRefusal) {
  seed("a.example.org", "yes");
  seed("b.example.org", "no");
  start_writer(ConftoolWant::Kind::kYes);
  Answers got;
  writer_->take_out({{"nfs", 1}, {"http", 1}}, [&](const Answers& a) { got = a; });
  ASSERT_EQ(got.size(), 1u);  // http not asked after nfs's refusal
  ASSERT_TRUE(got[0].refusal);
  EXPECT_EQ(*got[0].refusal,
            "refused: depooling nfs would leave 0 other hosts pooled=yes in conftool (min_pooled 1): "
            "b.example.org pooled=no");
  EXPECT_EQ(pooled("a.example.org"), "yes");
}

TEST_F(ConftoolTakeOutTest, WithEtcdDownEveryAnswerIsUnavailableAndApplyStillRuns) {
  seed("a.example.org", "yes");
  start_writer(ConftoolWant::Kind::kYes);
  conftool_.etcd().stop();
  ASSERT_TRUE(wait_for([&] { return !writer_->up(); }, 15000ms));
  Answers got;
  writer_->take_out({{"nfs", 1}, {"http", 1}}, [&](const Answers& a) { got = a; });
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0].unavailable);
  EXPECT_TRUE(got[1].unavailable);
}
