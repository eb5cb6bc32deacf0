#include "pybal-compat/etcd_client.h"

#include "agent/base/curl.h"
#include "agent/base/duration.h"
#include "agent/base/utf8.h"

#include <nlohmann/json.hpp>

namespace poolkeeper {

namespace {

// The header callback runs inside libcurl's C code: nothing may throw out of it (out of
// memory aborts the transfer).
size_t on_header(char* p, size_t size, size_t n, void* out) noexcept {
  try {
    std::string line(p, size * n);
    static const std::string kName = "x-etcd-index:";
    if (line.size() > kName.size()) {
      std::string lower = line.substr(0, kName.size());
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower == kName) *static_cast<uint64_t*>(out) = std::strtoull(line.c_str() + kName.size(), nullptr, 10);
    }
  } catch (...) {
    return 0;
  }
  return size * n;
}

EtcdNode parse_node(const nlohmann::json& j) {
  EtcdNode n;
  n.key = j.value("key", "");
  if (j.contains("value") && j["value"].is_string()) n.value = j["value"].get<std::string>();
  n.dir = j.value("dir", false);
  n.modified_index = j.value("modifiedIndex", uint64_t{0});
  n.created_index = j.value("createdIndex", uint64_t{0});
  if (j.contains("ttl") && j["ttl"].is_number_integer()) n.ttl = j["ttl"].get<int64_t>();
  if (j.contains("nodes") && j["nodes"].is_array())
    for (const auto& c : j["nodes"])
      if (c.is_object()) n.nodes.push_back(parse_node(c));
  return n;
}

}  // namespace

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') out += static_cast<char>(c);
    else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string EtcdResult::describe() const {
  if (!transport_error.empty()) return transport_error;
  std::string at = "etcd" + (endpoint.empty() ? std::string() : " at " + endpoint) + ": ";
  // etcd's v2 auth answers a wrong password, an unknown user and a path the role does not
  // grant alike (401, errorCode 110): name the user and the key so an operator can tell.
  if (error_code == EtcdError::kUnauthorized)
    return at + (username.empty() ? std::string("no user given") : "user " + username) + " may not access " +
           (key.empty() ? std::string("/") : key) +
           ": wrong password, unknown user, or the role grants no such path (110)";
  if (error_code != EtcdError::kNone) return at + message + " (" + std::to_string(static_cast<int>(error_code)) + ")";
  if (http < 200 || http >= 300) return at + "HTTP " + std::to_string(http);
  return "ok";
}

EtcdResult parse_etcd_response(long http, const std::string& body, uint64_t etcd_index_header) {
  EtcdResult r;
  r.http = http;
  r.etcd_index = etcd_index_header;
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    if (http < 200 || http >= 300) {
      r.error_code = EtcdError::kMalformed;
      r.message = http == 404 ? "v2 API not enabled (start etcd with --enable-v2=true)" : "not an etcd reply";
      return r;
    }
    r.error_code = EtcdError::kMalformed;
    r.message = "not an etcd reply";
    return r;
  }
  try {
    if (j.contains("errorCode")) {
      r.error_code = j["errorCode"].is_number_integer() ? static_cast<EtcdError>(j["errorCode"].get<int>())
                                                        : EtcdError::kMalformed;
      r.message = j.value("message", "error");
      if (j.contains("index") && j["index"].is_number_unsigned()) r.etcd_index = j["index"].get<uint64_t>();
      return r;
    }
    r.action = j.value("action", "");
    if (j.contains("node") && j["node"].is_object()) r.node = parse_node(j["node"]);
    if (j.contains("prevNode") && j["prevNode"].is_object()) r.prev_node = parse_node(j["prevNode"]);
  } catch (const nlohmann::json::exception& e) {
    r.error_code = EtcdError::kMalformed;
    r.message = std::string("bad etcd reply: ") + e.what();
  }
  return r;
}

EtcdClient::EtcdClient(EtcdOptions o, const Clock& clock)
    : o_(std::move(o)), clock_(clock), states_(o_.endpoints.size()) {}

void EtcdClient::note(size_t idx, const std::string& error) {
  std::lock_guard<std::mutex> lk(mu_);
  auto& st = states_[idx];
  st.error = error;
  (error.empty() ? st.last_ok : st.last_error) = clock_.wall();
  if (error.empty()) preferred_ = idx;
}

nlohmann::json EtcdClient::endpoints() const {
  std::lock_guard<std::mutex> lk(mu_);
  nlohmann::json out = nlohmann::json::array();
  auto when = [](std::chrono::system_clock::time_point t) {
    return t == std::chrono::system_clock::time_point{} ? nlohmann::json(nullptr) : nlohmann::json(format_wall(t));
  };
  for (size_t i = 0; i < o_.endpoints.size(); ++i) {
    const auto& st = states_[i];
    bool tried = st.last_ok != std::chrono::system_clock::time_point{} || !st.error.empty();
    bool in_use = i == preferred_ && tried && st.error.empty();
    std::string state = in_use ? "in use" : !tried ? "not tried" : st.error.empty() ? "standby" : "failing";
    out.push_back({{"url", o_.endpoints[i]}, {"in_use", in_use}, {"state", state}, {"error", st.error},
                   {"last_ok", when(st.last_ok)}, {"last_error", when(st.last_error)}});
  }
  return out;
}

std::string EtcdClient::in_use() const {
  std::lock_guard<std::mutex> lk(mu_);
  if (o_.endpoints.empty() || states_[preferred_].last_ok == std::chrono::system_clock::time_point{}) return "";
  return o_.endpoints[preferred_];
}

EtcdResult EtcdClient::request(const std::string& method, const std::string& key, const std::string& query,
                               const std::string& form, std::chrono::milliseconds timeout) {
  EtcdResult last;
  std::string failures;  // every endpoint's cause, when none answers
  size_t start;
  {
    std::lock_guard<std::mutex> lk(mu_);
    start = preferred_;
  }
  for (size_t k = 0; k < o_.endpoints.size(); ++k) {
    size_t idx = (start + k) % o_.endpoints.size();
    const std::string& ep = o_.endpoints[idx];
    std::string url = ep + "/v2/keys" + url_encode(key) + (query.empty() ? "" : "?" + query);
    CURL* c = curl_easy_init();
    if (!c) {
      last.transport_error = "cannot create a curl handle";
      continue;
    }
    uint64_t index = 0;
    CurlTransfer t(16u << 20);
    t.setup(c, url, real_clock().now() + std::max(timeout, std::chrono::milliseconds(1)),
            std::min(o_.timeout, std::chrono::milliseconds(2000)));
    // etcd 3.4 serves gRPC and HTTP on one TLS port; libcurl's HTTP/2 there fails with a
    // broken pipe before any answer. The v2 API is plain HTTP/1.1.
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
    // Our own error buffer: for TLS an operator needs libcurl's detail (expired, wrong
    // host, unknown issuer, unreadable CA file), not only "not trusted".
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &index);
    if (abort_) {
      curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, +[](void* flag, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
        return static_cast<const std::atomic<bool>*>(flag)->load() ? 1 : 0;
      });
      curl_easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(abort_));
      curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
    if (!form.empty()) {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, form.c_str());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(form.size()));
    }
    if (!o_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, o_.ca_file.c_str());
    if (!o_.cert_file.empty()) curl_easy_setopt(c, CURLOPT_SSLCERT, o_.cert_file.c_str());
    if (!o_.key_file.empty()) curl_easy_setopt(c, CURLOPT_SSLKEY, o_.key_file.c_str());
    if (!o_.username.empty()) {
      curl_easy_setopt(c, CURLOPT_USERNAME, o_.username.c_str());
      curl_easy_setopt(c, CURLOPT_PASSWORD, o_.password.c_str());
    }
    CURLcode rc = curl_easy_perform(c);
    long http = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
    std::string why;
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_SSL_CACERT_BADFILE ||
        rc == CURLE_SSL_CERTPROBLEM)
      why = "TLS: " + (errbuf[0] ? valid_utf8(errbuf, 200) : std::string(curl_easy_strerror(rc)));
    else if (rc != CURLE_OK)
      why = curl_error_text(c, rc, errbuf);
    curl_easy_cleanup(c);
    const std::string& body = t.body();
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
      last = EtcdResult();
      last.transport_error = "aborted";
      return last;
    }
    if (rc != CURLE_OK) {
      if (rc == CURLE_OPERATION_TIMEDOUT && query.find("wait=true") != std::string::npos) {
        last = EtcdResult();
        last.endpoint = ep;
        last.http = 0;
        last.error_code = EtcdError::kWatchTimedOut;
        last.message = "watch timed out";
        return last;  // a long poll that saw nothing
      }
      note(idx, why);
      failures += (failures.empty() ? "etcd at " : "; at ") + ep + ": " + why;
      last = EtcdResult();
      last.endpoint = ep;
      last.transport_error = failures;
      continue;
    }
    EtcdResult r = parse_etcd_response(http, body, index);
    r.endpoint = ep;
    r.key = key;
    r.username = o_.username;
    if (http >= 500) {  // a member without a leader or quorum: another may do better
      std::string cause = static_cast<int>(r.error_code) > 0
                              ? r.message + " (" + std::to_string(static_cast<int>(r.error_code)) + ")"
                              : "HTTP " + std::to_string(http);
      note(idx, cause);
      failures += (failures.empty() ? "etcd at " : "; at ") + ep + ": " + cause;
      last = r;
      continue;
    }
    note(idx, "");
    return r;
  }
  return last;
}

EtcdResult EtcdClient::get(const std::string& key, bool recursive, bool quorum) {
  std::string q;
  if (recursive) q += "recursive=true";
  if (quorum) q += std::string(q.empty() ? "" : "&") + "quorum=true";
  return request("GET", key, q, "", o_.timeout);
}

EtcdResult EtcdClient::put(const std::string& key, const std::string& value, const EtcdPut& cond) {
  std::string q;
  auto add = [&](const std::string& kv) { q += (q.empty() ? "" : "&") + kv; };
  if (cond.prev_exist) add(std::string("prevExist=") + (*cond.prev_exist ? "true" : "false"));
  if (cond.prev_index) add("prevIndex=" + std::to_string(*cond.prev_index));
  if (cond.prev_value) add("prevValue=" + url_encode(*cond.prev_value));
  std::string form;
  if (!cond.refresh) form = "value=" + url_encode(value);
  if (cond.ttl) form += std::string(form.empty() ? "" : "&") + "ttl=" + std::to_string(*cond.ttl);
  if (cond.refresh) form += std::string(form.empty() ? "" : "&") + "refresh=true";
  return request("PUT", key, q, form, o_.timeout);
}

EtcdResult EtcdClient::del(const std::string& key, const std::optional<std::string>& prev_value) {
  return request("DELETE", key, prev_value ? "prevValue=" + url_encode(*prev_value) : "", "", o_.timeout);
}

EtcdResult EtcdClient::watch(const std::string& key, bool recursive, uint64_t wait_index,
                             std::chrono::milliseconds timeout) {
  std::string q = "wait=true&waitIndex=" + std::to_string(wait_index);
  if (recursive) q += "&recursive=true";
  return request("GET", key, q, "", timeout);
}

}  // namespace poolkeeper
