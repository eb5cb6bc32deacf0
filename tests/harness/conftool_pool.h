// The conftool keys of one pool as the tests lay them out (<kPrefix>/<service>/<host>,
// created pooled the way conftool-sync does), written through any client: the
// single-etcd fixture (conftool_etcd.h) and the cluster suite share them.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "pybal-compat/etcd_client.h"

namespace pk_test {

struct ConftoolPool {
  static constexpr const char* kPrefix = "/conftool/v1/pools/eqiad/dumps";
  // A key as conftool-sync creates it, pooled.
  static constexpr const char* kPooledYes = R"({"pooled": "yes", "weight": 10})";

  static std::string key(const std::string& svc, const std::string& host) {
    return std::string(kPrefix) + "/" + svc + "/" + host;
  }
  // Writes `value` to the host's nfs and http keys; a failed write is a test failure.
  static void seed(poolkeeper::EtcdClient& client, const std::string& host, const std::string& value = kPooledYes) {
    for (const char* svc : {"nfs", "http"}) ASSERT_TRUE(client.put(key(svc, host), value).ok()) << key(svc, host);
  }
};

}  // namespace pk_test
