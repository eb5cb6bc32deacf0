// The agent's status page (GET /): one self-contained HTML page rendered from a
// snapshot — no external assets, no JavaScript, refreshes itself — that shows at a
// glance why each service is in or out. Pure: tested without a server.
#pragma once

#include <string>

#include "agent/model/snapshot.h"

namespace poolkeeper {

// Seconds between the page's own reloads (<meta http-equiv="refresh">).
inline constexpr int kStatusPageRefreshSeconds = 5;

// The whole page. Every piece of text that came from outside (reasons, names, peers'
// answers, conftool values) is HTML-escaped; relative times are measured from
// `s.generated`, so the same snapshot always gives the same page.
std::string render_status_page(const Snapshot& s);

// The page for `s`, rendered once per snapshot and kept in it (thread-safe): repeated
// requests against an unchanged snapshot cost a lookup.
std::shared_ptr<const std::string> cached_status_page(const Snapshot& s);

// For tests: `text` made safe as HTML text and attribute values.
std::string html_escape(std::string_view text);

}  // namespace poolkeeper
