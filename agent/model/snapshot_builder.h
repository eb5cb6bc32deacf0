// Assembles Snapshots from shared pieces. The owner hands over a new view only for what
// changed (one check after its result, the services using it); every other view, and
// every list that did not change, is shared with the previous snapshot. Building a
// snapshot then costs a copy of the host-wide fields and a few pointers, whatever the
// number of checks.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/model/snapshot.h"

namespace poolkeeper {

class SnapshotBuilder {
 public:
  // Events kept for /events and the status page.
  static constexpr size_t kEventCapacity = 256;

  // Whole lists, in the order they are shown (by name); after a start or a reload.
  void set_checks(std::vector<CheckView> views);
  void set_services(std::vector<ServiceView> views);
  void set_peers(std::vector<PeerView> views);
  // One view, replacing the one of the same name (which must be in the list).
  void set_check(CheckView view);
  void set_service(ServiceView view);
  void add_event(Event e);

  // A snapshot with `host_wide`'s own fields (version, host, lifecycle, conftool, …)
  // and the current lists.
  std::shared_ptr<const Snapshot> build(Snapshot host_wide);

 private:
  template <typename T>
  static void replace_all(SharedList<T>& list, std::map<std::string, size_t>* index, std::vector<T> views);

  SharedList<CheckView> checks_;
  std::map<std::string, size_t> check_at_;
  SharedList<ServiceView> services_;
  std::map<std::string, size_t> service_at_;
  SharedList<PeerView> peers_;
  std::deque<std::shared_ptr<const Event>> events_;
  bool events_changed_ = false;
  SharedList<Event> event_list_;
};

}  // namespace poolkeeper
