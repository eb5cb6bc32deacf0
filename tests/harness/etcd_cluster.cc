#include "tests/harness/etcd_cluster.h"

#include <curl/curl.h>
#include <signal.h>

#include <filesystem>
#include <stdexcept>

namespace pk_test {

namespace {

void openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  if (run_command(argv, &out, 30000ms) != 0) throw std::runtime_error("openssl failed: " + out);
}

size_t collect(char* p, size_t size, size_t n, void* out) noexcept {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

struct TlsAnswer {
  long status = 0;
  std::string body, error;
};

TlsAnswer tls_request(const std::string& method, const std::string& url, const std::string& body,
                      const std::string& ca, const std::string& userpwd, long timeout_ms) {
  TlsAnswer a;
  CURL* c = curl_easy_init();
  if (!c) return a;
  char err[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(c, CURLOPT_CAINFO, ca.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &a.body);
  if (!userpwd.empty()) curl_easy_setopt(c, CURLOPT_USERPWD, userpwd.c_str());
  if (!body.empty()) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
  else a.error = err;
  curl_easy_cleanup(c);
  return a;
}

}  // namespace

EtcdPki::EtcdPki(const std::string& dir) : dir_(dir) {
  std::filesystem::create_directories(dir);
  auto f = [&](const std::string& n) { return dir_ + "/" + n; };
  write_file(f("ext.cnf"),
             "[member]\nsubjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth, clientAuth\n"
             "[wrong]\nsubjectAltName = DNS:wrong.example.org\nextendedKeyUsage = serverAuth, clientAuth\n");
  const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};
  auto req = [&](std::vector<std::string> a) {
    std::vector<std::string> v = {"req"};
    v.insert(v.end(), ec.begin(), ec.end());
    v.insert(v.end(), a.begin(), a.end());
    openssl(v);
  };
  req({"-x509", "-keyout", f("ca.key"), "-out", ca(), "-days", "2", "-subj", "/CN=poolkeeper test CA"});
  req({"-x509", "-keyout", f("other-ca.key"), "-out", other_ca(), "-days", "2", "-subj", "/CN=another CA"});
  req({"-keyout", key(), "-out", f("member.csr"), "-subj", "/CN=etcd member"});
  auto sign = [&](const std::string& out, const std::string& days, const std::string& ext) {
    openssl({"x509", "-req", "-in", f("member.csr"), "-CA", ca(), "-CAkey", f("ca.key"), "-CAcreateserial", "-out", out,
             "-days", days, "-extfile", f("ext.cnf"), "-extensions", ext});
  };
  sign(cert(), "2", "member");
  sign(expired(), "-1", "member");  // not after: a day before not before
  sign(wrong_host(), "2", "wrong");
}

EtcdCluster::EtcdCluster(int members) {
  pki_ = std::make_unique<EtcdPki>(dir_.file("pki"));
  for (int i = 0; i < members; ++i) {
    Member m;
    m.name = "m" + std::to_string(i);
    m.dir = dir_.file(m.name);
    m.client_port = free_port();
    m.peer_port = free_port();
    initial_cluster_ += (i ? "," : "") + m.name + "=https://127.0.0.1:" + std::to_string(m.peer_port);
    members_.push_back(std::move(m));
  }
  for (int i = 0; i < members; ++i) start(i);
  for (int i = 0; i < members; ++i)
    if (!wait_for([&] { return tls_request("GET", url(i) + "/health", "", pki_->ca(), "", 1000).body.find("\"true\"") !=
                               std::string::npos || !running(i); },
                  30000ms, 50ms) || !running(i))
      throw std::runtime_error("etcd member " + std::to_string(i) + " did not start:\n" + member_log(i));
  // v2 auth: root first, then on, then the guest role (everything, by default) emptied.
  admin("PUT", "/v2/auth/users/root", {{"user", "root"}, {"password", kRootPassword}});
  admin("PUT", "/v2/auth/enable");
  admin("PUT", "/v2/auth/roles/guest", {{"role", "guest"}, {"revoke", {{"kv", {{"read", {"/*"}}, {"write", {"/*"}}}}}}});
  root_ = std::make_unique<poolkeeper::EtcdClient>(
      poolkeeper::EtcdOptions{urls(), pki_->ca(), "", "", "root", kRootPassword, std::chrono::milliseconds(3000)});
}

EtcdCluster::~EtcdCluster() {
  for (int i = 0; i < size(); ++i) stop(i);
}

std::string EtcdCluster::url(int i) const { return "https://127.0.0.1:" + std::to_string(members_[i].client_port); }
int EtcdCluster::port(int i) const { return members_[i].client_port; }
std::vector<std::string> EtcdCluster::urls() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(url(i));
  return out;
}
int EtcdCluster::index_of(const std::string& u) const {
  for (int i = 0; i < size(); ++i)
    if (url(i) == u) return i;
  return -1;
}
std::string EtcdCluster::member_log(int i) const { return read_file(members_[i].dir + ".log"); }

void EtcdCluster::start(int i, const std::string& cert) {
  Member& m = members_[i];
  if (running(i)) return;
  std::string client = url(i), peer = "https://127.0.0.1:" + std::to_string(m.peer_port);
  m.proc = std::make_unique<Process>(
      std::vector<std::string>{"etcd", "--name", m.name, "--data-dir", m.dir, "--listen-client-urls", client,
                               "--advertise-client-urls", client, "--listen-peer-urls", peer,
                               "--initial-advertise-peer-urls", peer, "--initial-cluster", initial_cluster_,
                               "--initial-cluster-state", "new", "--initial-cluster-token", "poolkeeper-test",
                               "--cert-file", cert.empty() ? pki_->cert() : cert, "--key-file", pki_->key(),
                               "--peer-cert-file", pki_->cert(), "--peer-key-file", pki_->key(),
                               "--peer-trusted-ca-file", pki_->ca(), "--peer-client-cert-auth", "--enable-v2=true",
                               // A member alone (quorum lost) must not raise its term and
                               // depose the leader when the others come back.
                               "--pre-vote",
                               "--log-level", "warn"},
      m.dir + ".log");
}

bool EtcdCluster::running(int i) const { return members_[i].proc && members_[i].proc->running(); }

void EtcdCluster::kill(int i) {
  if (!members_[i].proc) return;
  members_[i].proc->kill_and_wait();
  members_[i].proc.reset();
}

void EtcdCluster::stop(int i) {
  if (!running(i)) return kill(i);
  members_[i].proc->signal(SIGCONT);
  members_[i].proc->signal(SIGTERM);
  if (!members_[i].proc->wait(5000ms)) members_[i].proc->kill_and_wait();
  members_[i].proc.reset();
}

void EtcdCluster::hang(int i) { stop_group(members_[i].proc->pid()); }
void EtcdCluster::resume(int i) { continue_group(members_[i].proc->pid()); }

int EtcdCluster::leader() {
  for (int i = 0; i < size(); ++i) {
    if (!running(i)) continue;
    auto a = tls_request("GET", url(i) + "/v2/stats/self", "", pki_->ca(), "", 500);
    auto j = nlohmann::json::parse(a.body, nullptr, false);
    if (a.status == 200 && j.is_object() && j.value("state", "") == "StateLeader") return i;
  }
  return -1;
}

bool EtcdCluster::wait_leader(std::chrono::milliseconds limit) {
  return wait_for([&] { return leader() >= 0; }, limit, 100ms);
}

nlohmann::json EtcdCluster::admin(const std::string& method, const std::string& path, const nlohmann::json& body,
                                  int member) {
  std::string text = body.is_null() ? "" : body.dump();
  std::string errors;
  for (int k = 0; k < size(); ++k) {
    int i = member >= 0 ? member : k;
    if (!running(i)) continue;
    auto a = tls_request(method, url(i) + path, text, pki_->ca(), std::string("root:") + kRootPassword, 5000);
    if (a.status >= 200 && a.status < 300) {
      auto j = nlohmann::json::parse(a.body, nullptr, false);
      return j.is_discarded() ? nlohmann::json(a.body) : j;
    }
    errors += url(i) + ": " + (a.status ? std::to_string(a.status) + " " + a.body : a.error) + "\n";
    if (member >= 0) break;
  }
  throw std::runtime_error(method + " " + path + " failed:\n" + errors);
}

void EtcdCluster::add_user(const std::string& user, const std::string& password, const std::vector<std::string>& paths) {
  admin("PUT", "/v2/auth/roles/" + user,
        {{"role", user}, {"permissions", {{"kv", {{"read", paths}, {"write", paths}}}}}});
  admin("PUT", "/v2/auth/users/" + user, {{"user", user}, {"password", password}, {"roles", {user}}});
}

void EtcdCluster::grant(const std::string& role, const std::string& path) {
  admin("PUT", "/v2/auth/roles/" + role, {{"role", role}, {"grant", {{"kv", {{"read", {path}}, {"write", {path}}}}}}});
}

void EtcdCluster::revoke(const std::string& role, const std::string& path) {
  admin("PUT", "/v2/auth/roles/" + role, {{"role", role}, {"revoke", {{"kv", {{"read", {path}}, {"write", {path}}}}}}});
}

void EtcdCluster::set_password(const std::string& user, const std::string& password) {
  admin("PUT", "/v2/auth/users/" + user, {{"user", user}, {"password", password}});
}

}  // namespace pk_test
