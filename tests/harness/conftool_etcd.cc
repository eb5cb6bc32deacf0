#include "tests/harness/conftool_etcd.h"

#include <gtest/gtest.h>

namespace pk_test {

ConftoolEtcd::ConftoolEtcd() : etcd_(std::make_unique<Etcd>(dir_.path())) {
  etcd_->start();
  client_ = std::make_unique<poolkeeper::EtcdClient>(
      poolkeeper::EtcdOptions{{etcd_->url()}, "", "", "", "", "", std::chrono::milliseconds(2000)});
}

std::string ConftoolEtcd::key(const std::string& svc, const std::string& host) { return ConftoolPool::key(svc, host); }

void ConftoolEtcd::seed(const std::string& host, const std::string& value) { ConftoolPool::seed(*client_, host, value); }

nlohmann::json ConftoolEtcd::value(const std::string& svc, const std::string& host) {
  auto r = client_->get(key(svc, host));
  if (!r.ok()) return nullptr;
  return nlohmann::json::parse(r.node.value);
}

std::string ConftoolEtcd::pooled(const std::string& svc, const std::string& host) {
  auto v = value(svc, host);
  return v.is_null() ? "(missing)" : v.value("pooled", "?");
}

uint64_t ConftoolEtcd::index(const std::string& svc, const std::string& host) {
  return client_->get(key(svc, host)).node.modified_index;
}

}  // namespace pk_test
