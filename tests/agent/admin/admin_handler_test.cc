// The admin path without a running agent: a real HealthModel driven on the test's thread
// stands in for the owner, the peers' answers are given, and there is no conftool.
#include "agent/admin/admin_handler.h"

#include <gtest/gtest.h>

#include "agent/config/config.h"

using namespace poolkeeper;

namespace {

class AdminHandlerTest : public ::testing::Test {
 protected:
  AdminHandlerTest() {
    config_ = parse_config(R"(
[agent]
hostname = "a.example.org"
[services.nfs]
checks = ["c"]
peers = ["http://b.example.org:9473"]
[services.http]
checks = ["c"]
[checks.c]
kind = "exec"
command = ["/bin/true"]
)", "t.toml");
    model_ = std::make_unique<HealthModel>(config_, clock_, [] { return 0.5; });
    model_->set_lifecycle(Lifecycle::kRunning);  // healthy and pooled, as the peers see it
    for (int i = 0; i < 3; ++i) model_->on_result("c", Result::pass());
    // The snapshot the handler reads: both services pooled.
    auto s = std::make_shared<Snapshot>(*model_->snapshot());
    for (size_t i = 0; i < s->services.size(); ++i) s->services[i].effective = {Effective::kPooled, "healthy"};
    snap_ = s;
    AdminHandler::Deps d;
    d.clock = &clock_;
    d.snapshot = [this] { return snap_; };
    d.config = [this] { return static_cast<const ModelConfig&>(config_); };
    d.run_on_owner = [this](const std::function<void(HealthModel&)>& fn) {
      ++owner_runs_;
      fn(*model_);
      return true;
    };
    d.post = [this](std::function<void(HealthModel&)> fn) { fn(*model_); };
    d.persist = [this](HealthModel&) { return save_error_; };
    d.publish = [] {};
    d.poll_peers = [this] {
      ++polls_;
      // What the peers see of us meanwhile: the leave announced, still pooled.
      const ServiceView* v = model_->snapshot()->find_service("nfs");
      leaving_seen_.push_back(v && v->leaving);
      std::vector<PeerState> answer = peers_;
      if (!next_peers_.empty()) peers_ = std::exchange(next_peers_, {});
      return answer;
    };
    d.stopping = [this] { return stopping_; };
    handler_ = std::make_unique<AdminHandler>(std::move(d));
  }

  std::string as_root(const std::string& line) { return handler_->handle(line, PeerCred{1, 0, 0}); }

  PeerState peer(bool reachable, const std::string& effective, bool healthy) {
    PeerState p;
    p.url = "http://b.example.org:9473";
    p.host = "b.example.org";
    p.reachable = reachable;
    p.lifecycle = "running";
    if (!reachable) p.error = "connection refused";
    else p.services["nfs"] = {effective, healthy, false, ""};
    return p;
  }

  Config config_;
  FakeClock clock_;
  std::unique_ptr<HealthModel> model_;
  std::shared_ptr<const Snapshot> snap_;
  std::unique_ptr<AdminHandler> handler_;
  std::vector<PeerState> peers_, next_peers_;  // next_peers_: the answer to the poll after this one
  std::vector<bool> leaving_seen_;
  std::string save_error_;
  bool stopping_ = false;
  int owner_runs_ = 0, polls_ = 0;
};

nlohmann::json reply(const std::string& line) {
  EXPECT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  return nlohmann::json::parse(line);
}

}  // namespace

TEST_F(AdminHandlerTest, ChangesNeedRootOrTheAdminGroup) {
  PeerCred nobody{1, 65534, 65534};
  auto r = reply(handler_->handle(R"({"cmd":"depool","services":["http"]})", nobody));
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_EQ(r["error"].get<std::string>().rfind("permission denied: ", 0), 0u) << r;
  EXPECT_NE(r["error"].get<std::string>().find(" is not root"), std::string::npos) << r;
  EXPECT_EQ(owner_runs_, 0);
  // With a group configured the refusal names it.
  config_.agent.admin_group = "root";
  r = reply(handler_->handle(R"({"cmd":"pool"})", nobody));
  EXPECT_NE(r["error"].get<std::string>().find("nor in group root"), std::string::npos) << r;
  // Reading needs nothing.
  r = reply(handler_->handle(R"({"cmd":"ispooled","services":["nfs"]})", nobody));
  EXPECT_TRUE(r["ok"].get<bool>()) << r;
  EXPECT_TRUE(r["pooled"].get<bool>());
  std::string who, error;
  EXPECT_TRUE(handler_->authorised(PeerCred{1, 0, 0}, &who, &error));
  EXPECT_EQ(who, "root");
}

TEST_F(AdminHandlerTest, UnknownServiceNamesTheKnownOnes) {
  auto r = reply(as_root(R"({"cmd":"depool","services":["nsf"]})"));
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_EQ(r["error"], "unknown service \"nsf\" (known: http, nfs)");
  r = reply(as_root("not json"));
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_EQ(owner_runs_, 0);
}

TEST_F(AdminHandlerTest, TheFloorRefusesFromAFreshPollOfThePeers) {
  peers_ = {peer(false, "", false)};
  auto r = reply(as_root(R"({"cmd":"depool","services":["nfs"],"reason":"x"})"));
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_EQ(r["error"],
            "refused: depooling nfs would leave 0 other hosts pooled and healthy (min_pooled 1): "
            "b.example.org: unreachable (connection refused) — use --force to depool anyway");
  EXPECT_EQ(polls_, 1);
  EXPECT_EQ(leaving_seen_, std::vector<bool>{true});  // announced before the poll
  EXPECT_EQ(owner_runs_, 2);  // announced, withdrawn; nothing applied
  EXPECT_EQ(model_->intent("nfs")->intent, Intent::kPooled);
  EXPECT_FALSE(model_->snapshot()->find_service("nfs")->leaving);
  // A drain is judged alike; --force goes through without asking the peers.
  r = reply(as_root(R"({"cmd":"drain","services":["nfs"]})"));
  EXPECT_FALSE(r["ok"].get<bool>());
  r = reply(as_root(R"({"cmd":"depool","services":["nfs"],"force":true})"));
  EXPECT_TRUE(r["ok"].get<bool>()) << r;
  EXPECT_EQ(polls_, 2);
  EXPECT_EQ(model_->intent("nfs")->intent, Intent::kDepooled);
  // A service without peers needs no poll; with a healthy pooled peer the floor allows.
  r = reply(as_root(R"({"cmd":"depool","services":["http"]})"));
  EXPECT_TRUE(r["ok"].get<bool>()) << r;
  EXPECT_EQ(polls_, 2);
  as_root(R"({"cmd":"pool"})");
  peers_ = {peer(true, "pooled", true)};
  r = reply(as_root(R"({"cmd":"depool","services":["nfs"]})"));
  EXPECT_TRUE(r["ok"].get<bool>()) << r;
  EXPECT_EQ(r["services"]["nfs"]["effective"], "not_pooled") << r;
}

TEST_F(AdminHandlerTest, TwoDepoolsAtOnceTheLowerNameGivesWay) {
  // We are a.example.org. b announced its own leave: it does not count; we give way.
  PeerState b = peer(true, "pooled", true);
  b.services["nfs"].leaving = true;
  peers_ = {b};
  auto r = reply(as_root(R"({"cmd":"depool","services":["nfs"]})"));
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_EQ(r["error"],
            "refused: depooling nfs would leave 0 other hosts pooled and healthy (min_pooled 1): "
            "b.example.org: pooled, healthy, leaving — use --force to depool anyway");
  EXPECT_EQ(polls_, 1);
  // A lower-named host deciding its own leave: we poll again for its answer. It stays
  // (its depool refused): we go.
  PeerState z = peer(true, "pooled", true);
  z.url = "http://0.example.org:9473";
  z.host = "0.example.org";
  z.services["nfs"].leaving = true;
  config_.agent.hostname = "c.example.org";
  config_.services["nfs"].peers = {z.url};
  peers_ = {z};
  z.services["nfs"].leaving = false;
  next_peers_ = {z};
  polls_ = 0;
  r = reply(as_root(R"({"cmd":"depool","services":["nfs"]})"));
  EXPECT_TRUE(r["ok"].get<bool>()) << r;
  EXPECT_EQ(polls_, 2);
  EXPECT_EQ(model_->intent("nfs")->intent, Intent::kDepooled);
  EXPECT_FALSE(model_->snapshot()->find_service("nfs")->leaving);
}

TEST_F(AdminHandlerTest, AFailedSaveLeavesEverythingAsItWas) {
  as_root(R"({"cmd":"depool","services":["http"],"force":true,"reason":"before"})");
  auto before = model_->intents();
  save_error_ = "disk full";
  auto r = reply(as_root(R"({"cmd":"depool","force":true,"reason":"both"})"));
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_EQ(r["error"], "cannot save state, nothing changed: disk full");
  EXPECT_EQ(model_->intents(), before);
  EXPECT_EQ(model_->intent("http")->reason, "before");
  EXPECT_EQ(model_->intent("nfs")->intent, Intent::kPooled);
}

TEST_F(AdminHandlerTest, NothingChangesWhileStopping) {
  stopping_ = true;
  auto r = reply(as_root(R"({"cmd":"depool","services":["http"],"force":true})"));
  EXPECT_EQ(r["error"], kAdminStoppingMessage);
  EXPECT_EQ(owner_runs_, 0);
}

TEST_F(AdminHandlerTest, ShutdownDrainReleasesOnlyWhatTheFloorAllows) {
  peers_ = {peer(false, "", false)};
  handler_->drain_through_floor({"nfs"}, *snap_);
  EXPECT_EQ(owner_runs_, 2);  // refused: announced, withdrawn, stays pooled
  EXPECT_FALSE(model_->snapshot()->find_service("nfs")->leaving);
  peers_ = {peer(true, "pooled", true)};
  handler_->drain_through_floor({"nfs"}, *snap_);
  EXPECT_EQ(owner_runs_, 4);  // announced, released
  EXPECT_EQ(leaving_seen_, (std::vector<bool>{true, true}));
}
