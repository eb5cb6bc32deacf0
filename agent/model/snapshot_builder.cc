#include "agent/model/snapshot_builder.h"

namespace poolkeeper {

template <typename T>
void SnapshotBuilder::replace_all(SharedList<T>& list, std::map<std::string, size_t>* index, std::vector<T> views) {
  list.clear();
  if (index) index->clear();
  for (auto& v : views) {
    if constexpr (requires { v.name; }) {
      if (index) (*index)[v.name] = list.size();
    }
    list.push_back(std::move(v));
  }
}

void SnapshotBuilder::set_checks(std::vector<CheckView> views) { replace_all(checks_, &check_at_, std::move(views)); }

void SnapshotBuilder::set_services(std::vector<ServiceView> views) {
  replace_all(services_, &service_at_, std::move(views));
}

void SnapshotBuilder::set_peers(std::vector<PeerView> views) { replace_all(peers_, nullptr, std::move(views)); }

void SnapshotBuilder::set_check(CheckView view) {
  size_t i = check_at_.at(view.name);
  checks_.set(i, std::make_shared<CheckView>(std::move(view)));
}

void SnapshotBuilder::set_service(ServiceView view) {
  size_t i = service_at_.at(view.name);
  services_.set(i, std::make_shared<ServiceView>(std::move(view)));
}

void SnapshotBuilder::add_event(Event e) {
  events_.push_back(std::make_shared<Event>(std::move(e)));
  while (events_.size() > kEventCapacity) events_.pop_front();
  events_changed_ = true;
}

std::shared_ptr<const Snapshot> SnapshotBuilder::build(Snapshot host_wide) {
  if (events_changed_) {
    event_list_.clear();
    for (const auto& e : events_) event_list_.push_back(e);
    events_changed_ = false;
  }
  auto s = std::make_shared<Snapshot>(std::move(host_wide));
  s->checks = checks_;
  s->services = services_;
  s->peers = peers_;
  s->events = event_list_;
  return s;
}

}  // namespace poolkeeper
