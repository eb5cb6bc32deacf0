// The admin path: one request line from the admin socket → one reply line. It reads
// from the latest snapshot, authorises changes (root, or a member of admin_group),
// judges `depool` and `drain` by the floor — under the etcd lock through the conftool
// writer when it is up, otherwise from a fresh poll of the peers' /status — and applies
// the intent on the agent's owner thread, persisted before it answers (a failed save
// puts every intent back). The shutdown drain's floor goes the same way.
//
// It knows the running agent only through what it is given (Deps), so it is
// unit-tested without one.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/admin/admin_protocol.h"
#include "agent/admin/admin_server.h"
#include "agent/base/clock.h"
#include "agent/model/health_model.h"
#include "agent/model/floor.h"
#include "agent/model/model_config.h"
#include "agent/model/snapshot.h"
#include "pybal-compat/conftool_writer.h"

namespace poolkeeper {

// The reply while (and after) the agent stops.
inline constexpr const char* kAdminStoppingMessage =
    "agent is stopping: nothing changed (ask again once it has restarted)";

class AdminHandler {
 public:
  struct Deps {
    const Clock* clock = nullptr;
    std::function<std::shared_ptr<const Snapshot>()> snapshot;  // the latest published
    std::function<ModelConfig()> config;                        // the running config (reloads change it)
    // Runs `fn` on the owner thread with the model and waits for it; false, without
    // running it, when the owner has stopped.
    std::function<bool(const std::function<void(HealthModel&)>&)> run_on_owner;
    // Queues `fn` for the owner thread without waiting.
    std::function<void(std::function<void(HealthModel&)>)> post;
    std::function<std::string(HealthModel&)> persist;         // on the owner: saves intents; "" or why not
    std::function<void()> publish;                       // on the owner: makes a change visible at once
    std::function<std::vector<PeerState>()> poll_peers;  // polls every peer now (bounded)
    std::function<bool()> stopping;                      // true once the agent is stopping
    ConftoolWriter* conftool = nullptr;                  // null without conftool
  };
  explicit AdminHandler(Deps deps);

  // One admin request line from a client with these credentials → one reply line.
  std::string handle(const std::string& line, const PeerCred& cred);

  // May this client change intent? *who is its user name; *error the refusal.
  bool authorised(const PeerCred& cred, std::string* who, std::string* error) const;

  // The shutdown drain for services that need the floor: one by one, each leaves
  // (released on the owner) when the floor agrees and stays pooled, logged, when it
  // refuses. Stops early when the owner has stopped.
  void drain_through_floor(const std::vector<std::string>& services, const Snapshot& snap);

 private:
  // The peers' side of the floor, for the services conftool could not decide: each is
  // announced as leaving (still pooled), the peers are polled afresh (again, bounded,
  // while a lower-named peer is deciding its own leave), and each is judged by
  // floor_leave (floor.h). nullopt when all may leave: the caller takes them out, then
  // withdraws the announcement (withdraw_leaving). Else the first refusal, already
  // withdrawn; kAdminStoppingMessage when the owner has stopped.
  std::optional<std::string> peers_leave(const std::vector<std::string>& services, const ModelConfig& cfg);
  void withdraw_leaving(const std::vector<std::string>& services);
  // The services of `floor` the peers decide: conftool's answer unavailable (or no
  // conftool), peers configured, and pooled now. *refusal is set when conftool refused one.
  std::vector<std::string> by_peers(const std::vector<std::string>& floor, const ModelConfig& cfg,
                                    const Snapshot& snap, const std::vector<ConftoolWriter::TakeOutAnswer>& answers,
                                    std::optional<std::string>* refusal) const;
  // Runs `decide_and_apply` with the conftool sync held off when there is conftool
  // (after it has taken `requests` out under the etcd lock), else at once.
  void through_conftool(const std::vector<ConftoolWriter::TakeOutRequest>& requests,
                        const std::function<void(const std::vector<ConftoolWriter::TakeOutAnswer>&)>& decide_and_apply);

  // The steps of handle(): which services a request names (all when none; false with
  // *error for an unknown one); the reply to a request that only reads; for a change,
  // floor → apply (the reply when refused or failed, else "" with *result filled);
  // and after a pool, what conftool will make of it.
  bool resolve_services(const AdminRequest& req, const Snapshot& snap, std::vector<std::string>* services,
                        std::string* error) const;
  std::string read_reply(const AdminRequest& req, const Snapshot& snap,
                         const std::vector<std::string>& services) const;
  std::string change(const AdminRequest& req, const std::vector<std::string>& services, const std::string& who,
                     const Snapshot& snap, nlohmann::json* result);
  AdminIntent intent_for(const AdminRequest& req, const std::string& who) const;
  // Sets the intent on the owner and persists it (a failed save puts every intent back).
  std::string apply(const AdminRequest& req, const std::vector<std::string>& services, AdminIntent intent,
                    const std::vector<std::string>& leaving, nlohmann::json* result);
  void report_conftool(const std::vector<std::string>& services, nlohmann::json* result);

  Deps d_;
};

}  // namespace poolkeeper
