// A production-shaped etcd for tests: three etcd 3.4 members (v2 API on) on loopback
// ports picked here, client and peer TLS with a CA and certificates made here with
// openssl, and etcd's v2 auth on (root, the guest role stripped, least-privilege users
// made per test). Plus the faults: a member killed, hung (SIGSTOP), restarted with an
// expired or wrong-host certificate; users' grants and passwords changed as root.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pybal-compat/etcd_client.h"
#include "tests/harness/harness.h"

namespace pk_test {

// The certificates, made once per fixture (EC keys: quick).
class EtcdPki {
 public:
  explicit EtcdPki(const std::string& dir);  // throws when openssl fails
  std::string ca() const { return dir_ + "/ca.crt"; }              // signed everything below
  std::string other_ca() const { return dir_ + "/other-ca.crt"; }  // signed nothing here
  std::string key() const { return dir_ + "/member.key"; }
  std::string cert() const { return dir_ + "/member.crt"; }          // 127.0.0.1 and localhost
  std::string expired() const { return dir_ + "/expired.crt"; }      // the same, expired
  std::string wrong_host() const { return dir_ + "/wrong-host.crt"; }  // only wrong.example.org

 private:
  std::string dir_;
};

class EtcdCluster {
 public:
  static constexpr const char* kRootPassword = "root-secret";
  explicit EtcdCluster(int members = 3);  // started, with auth on, when this returns (else throws)
  ~EtcdCluster();

  const EtcdPki& pki() const { return *pki_; }
  int size() const { return static_cast<int>(members_.size()); }
  std::string url(int i) const;
  int port(int i) const;
  std::vector<std::string> urls() const;
  int index_of(const std::string& url) const;  // -1 when no member has it
  // etcd as root, over TLS, through every member.
  poolkeeper::EtcdClient& root() { return *root_; }

  // Faults. A killed or stopped member comes back with start(); `cert` is the client
  // certificate it presents (peers always get the good one).
  void kill(int i);
  void stop(int i);
  void hang(int i);
  void resume(int i);
  void start(int i, const std::string& cert = "");
  bool running(int i) const;
  // The member that leads now (-1: none answers as leader).
  int leader();
  // Waits until a leader is elected among the running members (bounded).
  bool wait_leader(std::chrono::milliseconds limit = 15000ms);

  // v2 auth, as root. A user with a role of the same name granting --readwrite on `paths`.
  void add_user(const std::string& user, const std::string& password, const std::vector<std::string>& paths);
  void grant(const std::string& role, const std::string& path);
  void revoke(const std::string& role, const std::string& path);
  void set_password(const std::string& user, const std::string& password);
  // A raw request to a member with root's credentials (auth and stats APIs).
  nlohmann::json admin(const std::string& method, const std::string& path, const nlohmann::json& body = nullptr,
                       int member = -1);

 private:
  struct Member {
    std::string name, dir;
    int client_port, peer_port;
    std::unique_ptr<Process> proc;
  };
  std::string member_log(int i) const;
  TempDir dir_;
  std::unique_ptr<EtcdPki> pki_;
  std::vector<Member> members_;
  std::string initial_cluster_;
  std::unique_ptr<poolkeeper::EtcdClient> root_;
};

}  // namespace pk_test
