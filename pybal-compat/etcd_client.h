// A small client for etcd's v2 keys API (what conftool and PyBal use), on libcurl and
// nlohmann-json: get (optionally recursive, quorum), compare-and-swap put, delete,
// and long-poll watch. Several endpoints are tried in turn: the one that answered last
// first, the next on a transport error (refused, timeout, TLS) or an HTTP 5xx, each for
// at most `timeout`. Thread-safe: every call uses its own curl handle. Responses are
// parsed by a pure function (fuzzed).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/base/clock.h"

namespace poolkeeper {

// How long one request may take at one endpoint before the next is tried, unless
// [conftool] timeout says otherwise.
inline constexpr std::chrono::milliseconds kEtcdDefaultTimeout{2000};

struct EtcdOptions {
  std::vector<std::string> endpoints;  // "http://127.0.0.1:2379"
  std::string ca_file, cert_file, key_file;
  std::string username, password;
  std::chrono::milliseconds timeout{kEtcdDefaultTimeout};
};

// etcd's errorCode (v2 API), read once where the answer is parsed. Codes not named
// here keep their number (describe() prints it).
enum class EtcdError : int {
  kNone = 0,
  kMalformed = -1,         // the answer was not etcd's JSON
  kWatchTimedOut = -2,     // a long poll that saw nothing (not an error of etcd's)
  kKeyNotFound = 100,
  kCompareFailed = 101,    // prevIndex / prevValue did not match
  kNodeExists = 105,       // prevExist=false on a key that exists
  kUnauthorized = 110,     // v2 auth: the user's roles grant no such path
  kIndexCleared = 401,     // the watch's waitIndex is older than etcd's history
};

struct EtcdNode {
  std::string key;
  std::string value;
  bool dir = false;
  uint64_t modified_index = 0;
  uint64_t created_index = 0;
  std::optional<int64_t> ttl;
  std::vector<EtcdNode> nodes;
};

struct EtcdResult {
  std::string transport_error;  // non-empty: no answer from any endpoint (each one's cause)
  std::string endpoint;         // the endpoint that answered (or was tried last)
  std::string key;              // the key asked for
  std::string username;         // who asked ("" without auth)
  long http = 0;
  EtcdError error_code = EtcdError::kNone;
  std::string message;
  std::string action;
  EtcdNode node;
  std::optional<EtcdNode> prev_node;
  uint64_t etcd_index = 0;      // X-Etcd-Index, or the error's index
  bool ok() const { return transport_error.empty() && error_code == EtcdError::kNone && http >= 200 && http < 300; }
  // "etcd at https://…: key not found (100)", "etcd at https://…: SSL certificate problem: …",
  // "etcd at https://…: user pool-eqiad-dumps may not access /poolkeeper/locks/nfs: wrong
  // password, unknown user, or the role grants no such path (110)"
  std::string describe() const;
};

struct EtcdPut {
  std::optional<bool> prev_exist{};
  std::optional<uint64_t> prev_index{};
  std::optional<std::string> prev_value{};
  std::optional<int64_t> ttl{};
  bool refresh = false;  // with ttl: renew without changing the value
};

// Pure: an HTTP answer from etcd → result.
EtcdResult parse_etcd_response(long http, const std::string& body, uint64_t etcd_index_header);

// The keys API as the conftool writer uses it. EtcdClient speaks it to etcd; the
// writer's simulated-time unit tests hold the keys in memory behind it.
class EtcdKeys {
 public:
  virtual ~EtcdKeys() = default;
  virtual EtcdResult get(const std::string& key, bool recursive, bool quorum) = 0;
  virtual EtcdResult put(const std::string& key, const std::string& value, const EtcdPut& cond) = 0;
  virtual EtcdResult del(const std::string& key, const std::optional<std::string>& prev_value) = 0;
  // Long poll: waits up to `timeout` for a change at or after wait_index.
  virtual EtcdResult watch(const std::string& key, bool recursive, uint64_t wait_index,
                           std::chrono::milliseconds timeout) = 0;
  // Each endpoint as the last requests found it, for `poolctl status`: [{url, in_use,
  // state: "in use" | "standby" | "failing" | "not tried", error, last_ok, last_error}].
  virtual nlohmann::json endpoints() const = 0;
  // The endpoint that answered last ("" before any answer).
  virtual std::string in_use() const = 0;
};

class EtcdClient final : public EtcdKeys {
 public:
  // `clock` stamps the endpoints' last answers; a transfer's deadline is real time.
  explicit EtcdClient(EtcdOptions o, const Clock& clock = real_clock());
  EtcdResult get(const std::string& key, bool recursive = false, bool quorum = true) override;
  EtcdResult put(const std::string& key, const std::string& value, const EtcdPut& cond = {}) override;
  EtcdResult del(const std::string& key, const std::optional<std::string>& prev_value = std::nullopt) override;
  EtcdResult watch(const std::string& key, bool recursive, uint64_t wait_index,
                   std::chrono::milliseconds timeout) override;
  // When *flag turns true, requests under way are abandoned (for a quick shutdown).
  void set_abort_flag(const std::atomic<bool>* flag) { abort_ = flag; }

  nlohmann::json endpoints() const override;
  std::string in_use() const override;

 private:
  EtcdResult request(const std::string& method, const std::string& key, const std::string& query,
                     const std::string& form, std::chrono::milliseconds timeout);
  void note(size_t idx, const std::string& error);
  EtcdOptions o_;
  const Clock& clock_;
  const std::atomic<bool>* abort_ = nullptr;
  mutable std::mutex mu_;
  size_t preferred_ = 0;  // the endpoint that answered last
  struct EndpointState {
    std::string error;  // the last request's failure; "" when it answered
    std::chrono::system_clock::time_point last_ok{}, last_error{};
  };
  std::vector<EndpointState> states_;  // under mu_, one per endpoint
};

std::string url_encode(const std::string& s);

}  // namespace poolkeeper
