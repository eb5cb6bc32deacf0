// A real etcd 3.4 holding conftool keys the way PyBal reads them, for tests of the
// conftool side: it starts the server in its own temp dir, keeps a client on it, and
// reads and writes the keys of one pool (<kPrefix>/<service>/<host>).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "pybal-compat/etcd_client.h"
#include "tests/harness/conftool_pool.h"
#include "tests/harness/harness.h"
#include "tests/harness/servers.h"

namespace pk_test {

class ConftoolEtcd {
 public:
  static constexpr const char* kPrefix = ConftoolPool::kPrefix;
  static constexpr const char* kPooledYes = ConftoolPool::kPooledYes;

  ConftoolEtcd();  // etcd is up when this returns (throws when it does not start)

  Etcd& etcd() { return *etcd_; }
  poolkeeper::EtcdClient& client() { return *client_; }
  static std::string key(const std::string& svc, const std::string& host);

  // Writes `value` to the host's nfs and http keys; a failed write is a test failure.
  void seed(const std::string& host, const std::string& value = kPooledYes);
  // The key's value as JSON; null when the key is missing.
  nlohmann::json value(const std::string& svc, const std::string& host);
  // The key's "pooled" field: "(missing)" without the key, "?" without the field.
  std::string pooled(const std::string& svc, const std::string& host);
  // The key's modifiedIndex (0 when it is missing).
  uint64_t index(const std::string& svc, const std::string& host);

 private:
  TempDir dir_;
  std::unique_ptr<Etcd> etcd_;
  std::unique_ptr<poolkeeper::EtcdClient> client_;
};

}  // namespace pk_test
