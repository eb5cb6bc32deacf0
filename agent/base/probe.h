// The one interface every probe kind implements, and what a probe returns. A probe is
// one call with a hard deadline that returns a value; it has no side effects beyond its
// result. The kinds themselves are in checks/; the model and the runtime know them only
// through this interface.
//
// Two ways to run a probe: run() blocks the calling thread until the answer (poolctl,
// tests); start() begins it on a ProbeLoop and reports through a callback. The agent
// uses start(): network kinds hand their I/O to the loop's single thread, so a hung
// server costs a socket and a timer rather than a thread; the others (the default
// start()) run their blocking run() on the loop's small thread pool.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/base/clock.h"

namespace poolkeeper {

// When a probe must have ended: a time on real_clock(), because a probe waits in the
// kernel (poll(), libcurl), which measures real time.
using Deadline = SteadyTime;

// Why a probe ended as it did. The operator's first question is "why is it out?".
enum class Outcome {
  kPassed,
  kFailed,        // the server answered, but wrongly (status, content, age, missing path)
  kNetworkError,  // refused, reset, unreachable, protocol garbage on the wire
  kTimeout,       // the deadline passed before an answer
};
const char* outcome_name(Outcome o);

struct Result {
  Outcome outcome = Outcome::kFailed;
  std::string reason;            // a few words: "connection refused", "status 500"
  Duration latency{0};           // time the probe took, on the agent's clock
  nlohmann::json details = nlohmann::json::object();  // kind-specific facts for /status
  bool ok() const { return outcome == Outcome::kPassed; }

  static Result pass(std::string reason = "ok") { return {Outcome::kPassed, std::move(reason)}; }
  static Result fail(Outcome o, std::string reason) { return {o, std::move(reason)}; }
};

// Where asynchronous probes run (the agent's is agent/runtime/prober.h). All its
// callbacks run on its loop thread, as does Check::start().
class ProbeLoop {
 public:
  virtual ~ProbeLoop() = default;
  // Adds a libcurl easy handle (CURL*, fully set up) to the loop's transfers. `done`
  // gets the transfer's CURLcode on the loop thread once it ends; a transfer still
  // running at `deadline` (libcurl's own timeout should have ended it) is removed and
  // reported as CURLE_OPERATION_TIMEDOUT. The handle must stay valid until then. Call
  // only from the loop thread (from start() or from another callback).
  virtual void add_transfer(void* easy, Deadline deadline, std::function<void(int curl_code)> done) = 0;
  // A libcurl easy handle (CURL*) for a transfer on this loop: a new one, or one an
  // earlier transfer gave back, still carrying its options (set it up afresh, e.g. with
  // CurlTransfer::setup, which resets it); null when none can be made. Give it back with
  // release_easy() once its transfer has ended, or was never added. Loop thread only.
  // The loop keeps a few for the next transfers: a probe does not pay for a handle and
  // its buffers each time, and an idle loop holds none for long.
  virtual void* take_easy() = 0;
  virtual void release_easy(void* easy) = 0;
  // Runs `fn` on a pool thread: for probes that block (a child process, a syscall).
  virtual void run_blocking(std::function<void()> fn) = 0;
  // The agent's clock, which the loop's probes are given (Check::run) and their
  // latency is measured on. Any thread.
  virtual const Clock& clock() const = 0;
};

using ProbeDone = std::function<void(Result)>;

// What a load balancer must know of a service's traffic, as the kinds of its checks say
// (poolctl lvs-config): a service takes its service kind's (checks/check.h service_kind).
enum class Balancing {
  kTcp,     // spread freely, watched by an idle connection (the default)
  kHttp,    // a web server: watched through its health location (PyBal's ProxyFetch)
  kPinned,  // a client must stay on one host (it holds per-server state such as file
            // handles): source hashing, and no monitor, which would depool a host that
            // holds its clients through a reboot
};

// What the rest of the agent knows of a check kind beyond running it, so that nothing
// outside checks/ names a kind. Each kind states its own in its registry line
// (checks/check.cc); the defaults suit a kind with nothing to add.
struct CheckTraits {
  Balancing balancing = Balancing::kTcp;
  // What must be equal on two hosts for a client to move between them unharmed, read
  // from a result's details (ours, or a peer's as its /status reported them); "" when
  // the details do not show it. Null for a kind that has nothing of the sort. Checks of
  // the same name and kind are compared with each peer's (/status
  // peers[].nfs_handles_match, the metric poolkeeper_nfs_handles_match). Never throws.
  std::string (*identity)(const nlohmann::json& details) = nullptr;
  // What `poolctl depool --wait` adds when it gives up waiting for the clients of a
  // service this kind checks ("" = nothing).
  std::string clients_note;
};

// Thread-safety: the scheduler never runs two probes of one Check at once, but probes
// of different checks run concurrently on different threads.
class Check {
 public:
  virtual ~Check() = default;
  // Must return by `deadline` (plus a small, bounded grace for cleanup) whatever the
  // peer does. A kind that judges by the time of day (a file's age) reads it from
  // `clock`, the agent's (simulated in tests), not from the system. Never throws.
  virtual Result run(Deadline deadline, const Clock& clock) = 0;
  // Begins one probe on `loop` (called on the loop thread) and calls `done` exactly
  // once, by `deadline` plus a small grace, on the loop thread or a pool thread. The
  // default runs run() on the loop's pool, with the loop's clock. Never throws.
  virtual void start(ProbeLoop& loop, Deadline deadline, ProbeDone done);
  // A short human description of the target ("GET http://127.0.0.1/").
  virtual std::string target() const = 0;
  // The address the load balancer sends the service's clients to, when the check
  // watches it (the service IP); "" otherwise.
  virtual std::string service_address() const { return ""; }
  // The Host the load balancer's HTTP health request should name, when the check knows
  // it; "" otherwise (the host's own name is used).
  virtual std::string health_host() const { return ""; }
};

// Fills in the latency (clock.now() - started) and makes the reason and details valid
// UTF-8: they carry servers' and commands' bytes into /status, /events and the log.
void finish_result(Result& r, SteadyTime started, const Clock& clock);

// check.run(deadline, clock) with any exception turned into a failed result.
Result run_guarded(Check& check, Deadline deadline, const Clock& clock) noexcept;

}  // namespace poolkeeper
