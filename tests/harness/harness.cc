#include "tests/harness/harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <mutex>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace pk_test {

TempDir::TempDir() {
  char tmpl[] = "/tmp/poolkeeper-test-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
  ::chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    throw std::runtime_error("bind failed");
  }
  socklen_t l = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
  ::close(fd);
  return ntohs(a.sin_port);
}

void write_file(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
  }
  std::filesystem::rename(tmp, path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

// The guardian: one small process per test process that kills every process group the
// harness started as soon as the test process is gone, however it went (kill -9, a
// ctest timeout, a crash). It learns the groups through a pipe whose only write end
// the test process holds (close-on-exec, so no server inherits it); end of file means
// the test process has died. Killing the whole group also gets what the server forked
// (nginx's workers, a shell's background jobs) even once re-parented. Forked from a
// threaded process, the guardian uses only async-signal-safe calls and no heap.
// (A kill in the instant between a spawn and its registration can still leak that one
// group.)
class Guardian {
 public:
  static Guardian& get() {
    static Guardian g;
    return g;
  }
  void add(pid_t pgid) { send(pgid); }
  void remove(pid_t pgid) { send(-pgid); }

 private:
  void send(int32_t v) {
    std::lock_guard<std::mutex> lk(mu_);
    if (fd_ < 0 && !start()) return;
    ssize_t ignored = ::write(fd_, &v, sizeof v);
    (void)ignored;
  }
  bool start() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return false;
    pid_t g = ::fork();
    if (g < 0) {
      ::close(p[0]);
      ::close(p[1]);
      return false;
    }
    if (g == 0) run(p[0]);  // never returns
    ::close(p[0]);
    fd_ = p[1];
    return true;
  }
  [[noreturn]] static void run(int in) {
    ::setpgid(0, 0);  // out of the terminal's signals: Ctrl-C must not kill the guardian first
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) ::sigaction(sig, &ign, nullptr);
    // Hold nothing of the test's (a copy of a listening socket would keep it open).
    if (in != 3) {
      ::dup2(in, 3);
      in = 3;
    }
    ::syscall(SYS_close_range, 0u, 2u, 0u);
    ::syscall(SYS_close_range, 4u, ~0u, 0u);
    static pid_t groups[4096];
    size_t n = 0;
    int32_t v;
    while (::read(in, &v, sizeof v) == static_cast<ssize_t>(sizeof v)) {
      if (v > 0 && n < 4096) {
        groups[n++] = v;
      } else if (v < 0) {
        for (size_t i = 0; i < n; ++i)
          if (groups[i] == -v) {
            groups[i] = groups[--n];
            break;
          }
      }
    }
    for (size_t i = 0; i < n; ++i) ::kill(-groups[i], SIGKILL);
    ::_exit(0);
  }
  std::mutex mu_;
  int fd_ = -1;
};

}  // namespace

Process::Process(const std::vector<std::string>& argv, const std::string& log) : Process(argv, log, -1) {}

Process::Process(const std::vector<std::string>& argv_in, const std::string& log, int listen_fd) {
  std::vector<std::string> argv = argv_in;
  int dup_fd = -1;
  if (listen_fd >= 0) {
    // A shell sets LISTEN_PID to its own pid ($$) and execs the command under the same pid.
    argv = {"/bin/sh", "-c", "LISTEN_PID=$$; LISTEN_FDS=1; export LISTEN_PID LISTEN_FDS; exec \"$@\"", "sh"};
    argv.insert(argv.end(), argv_in.begin(), argv_in.end());
    if (listen_fd == 3) listen_fd = dup_fd = ::fcntl(3, F_DUPFD_CLOEXEC, 4);  // dup2(3, 3) would keep CLOEXEC
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  if (listen_fd >= 0) posix_spawn_file_actions_adddup2(&fa, listen_fd, 3);
  posix_spawnattr_t at;
  posix_spawnattr_init(&at);
  posix_spawnattr_setpgroup(&at, 0);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&at, &empty);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int err = ::posix_spawnp(&pid_, args[0], &fa, &at, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  if (dup_fd >= 0) ::close(dup_fd);
  if (err != 0) {
    pid_ = -1;
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(err));
  }
  Guardian::get().add(pid_);
}

Process::~Process() { kill_and_wait(); }

Process::Process(Process&& o) noexcept : pid_(o.pid_), status_(o.status_) { o.pid_ = -1; }

Process& Process::operator=(Process&& o) noexcept {
  if (this != &o) {
    kill_and_wait();
    pid_ = o.pid_;
    status_ = o.status_;
    o.pid_ = -1;
  }
  return *this;
}

bool Process::running() {
  if (pid_ <= 0 || status_) return false;
  int st;
  if (::waitpid(pid_, &st, WNOHANG) == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return true;
}

void Process::signal(int sig) {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  auto end = Clock::now() + timeout;
  while (running()) {
    if (Clock::now() >= end) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
  return status_;
}

void Process::kill_and_wait() {
  if (pid_ <= 0) return;
  ::kill(-pid_, SIGKILL);
  if (!status_) {
    int st;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  Guardian::get().remove(pid_);
  pid_ = -1;
}

namespace {
size_t body_cb(char* p, size_t s, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, s * n);
  return s * n;
}
size_t header_cb(char* p, size_t s, size_t n, void* out) {
  std::string line(p, s * n);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string k = line.substr(0, colon), v = line.substr(colon + 1);
    for (auto& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    while (!v.empty() && (v.front() == ' ')) v.erase(0, 1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n')) v.pop_back();
    (*static_cast<std::map<std::string, std::string>*>(out))[k] = v;
  }
  return s * n;
}
}  // namespace

HttpResponse http_get(const std::string& url, long timeout_ms, const std::string& method) {
  HttpResponse r;
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_cb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
  if (method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  else if (method != "GET") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r.seconds);
  } else {
    r.error = curl_easy_strerror(rc);
  }
  curl_easy_cleanup(c);
  return r;
}

std::string raw_request(int port, const std::string& bytes, std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    if (::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) >= 0) {
      auto end = Clock::now() + timeout;
      for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
        if (left.count() <= 0) break;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
      }
    }
  }
  ::close(fd);
  return out;
}

int connect_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string unix_socket_request(const std::string& path, const std::string& line,
                                std::chrono::milliseconds timeout) {
  int fd = connect_unix(path);
  if (fd < 0) return "";
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string bytes = line + "\n";
  ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds timeout,
              std::chrono::milliseconds poll) {
  auto end = Clock::now() + timeout;
  for (;;) {
    if (cond()) return true;
    if (Clock::now() >= end) return false;
    std::this_thread::sleep_for(poll);
  }
}

bool holds_for(const std::function<bool()>& cond, std::chrono::milliseconds duration,
               std::chrono::milliseconds poll) {
  auto end = Clock::now() + duration;
  while (Clock::now() < end) {
    if (!cond()) return false;
    std::this_thread::sleep_for(poll);
  }
  return cond();
}

void stop_group(pid_t pgid) {
  if (pgid <= 0) return;
  ::kill(-pgid, SIGSTOP);
  wait_for(
      [&] {
        namespace fs = std::filesystem;
        std::error_code ec;
        for (const auto& proc : fs::directory_iterator("/proc", ec)) {
          fs::path tasks = proc.path() / "task";
          std::error_code ec2;
          for (const auto& t : fs::directory_iterator(tasks, ec2)) {
            std::string stat = read_file((t.path() / "stat").string());
            size_t close = stat.rfind(')');
            if (close == std::string::npos) continue;
            std::istringstream f(stat.substr(close + 2));
            std::string state;
            long ppid = 0, pgrp = 0;
            f >> state >> ppid >> pgrp;
            if (pgrp == pgid && state != "T" && state != "t" && state != "Z") return false;
          }
        }
        return true;
      },
      2000ms, 2ms);
}

void continue_group(pid_t pgid) {
  if (pgid > 0) ::kill(-pgid, SIGCONT);
}

int run_command(const std::vector<std::string>& argv, std::string* output,
                std::chrono::milliseconds timeout) {
  char tmpl[] = "/tmp/poolkeeper-cmd-XXXXXX";
  int fd = ::mkstemp(tmpl);
  ::close(fd);
  int status;
  {
    Process p(argv, tmpl);
    auto st = p.wait(timeout);
    status = st ? *st : -1;
  }
  if (output) *output = read_file(tmpl);
  ::unlink(tmpl);
  return status;
}

}  // namespace pk_test
