// Every process an exec probe starts is found and killed at the end of the probe,
// including descendants that left its process group (setsid, double fork): the agent
// is a child subreaper, so such a process becomes the agent's child once its parent
// exits, and a sweep kills and reaps every child of the agent that is not a running
// probe's own command. A process that does not die at once (uninterruptible sleep on
// a hung mount) is left behind, reaped by a later sweep and counted meanwhile.
// Thread-safe; one registry per process.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>

namespace poolkeeper {

// Makes this process a child subreaper (prctl PR_SET_CHILD_SUBREAPER). Without it
// escapees go to init and cannot be found.
bool become_child_subreaper();

// Starts a probe's command under the registry's lock, so that no sweep can take it
// for a leftover between its birth and its registration. `spawn` returns the pid (or
// -1); the pid stays registered until release_probe_child().
pid_t spawn_probe_child(const std::function<pid_t()>& spawn);
// The probe is done with its command: reaped (exit status taken) or, if it could not
// be reaped in time, handed to the sweeps.
void release_probe_child(pid_t pid);

struct LeftoverStats {
  int alive = 0;              // killed, not yet gone (or reaped)
  uint64_t killed_total = 0;  // leftovers found and killed since start
};

// Kills (SIGKILL, and its process group when it leads one) and reaps every child of
// this process that is not a registered probe command. With `everything`, registered
// ones too (at exit). Returns what is left.
LeftoverStats sweep_leftover_children(bool everything = false);
LeftoverStats leftover_stats();

}  // namespace poolkeeper
