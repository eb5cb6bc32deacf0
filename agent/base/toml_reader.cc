#include "agent/base/toml_reader.h"

#include "agent/base/duration.h"

#include <algorithm>
#include <vector>

namespace poolkeeper {

TableReader::TableReader(const toml::table& table, std::string file, std::string prefix)
    : table_(table), file_(std::move(file)), prefix_(std::move(prefix)) {}

std::string TableReader::dotted(std::string_view key) const {
  return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
}

int TableReader::line_of(std::string_view key) const {
  if (const toml::node* n = table_.get(key)) return static_cast<int>(n->source().begin.line);
  return static_cast<int>(table_.source().begin.line);
}

namespace {
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}
}  // namespace

void TableReader::fail(std::string_view key, const std::string& what) const {
  std::string hint;
  if (!table_.contains(key)) {
    // A missing key is most often a typo'd one: point at it.
    for (const auto& [k, v] : table_) {
      if (used_.count(k.str()) || edit_distance(k.str(), key) > 2) continue;
      hint = " (found \"" + std::string(k.str()) + "\" at line " + std::to_string(v.source().begin.line) +
             ": a typo?)";
      break;
    }
  }
  throw ConfigError(file_ + ":" + std::to_string(line_of(key)) + ": " + dotted(key) + ": " + what + hint);
}

const toml::node* TableReader::get(std::string_view key) {
  used_.emplace(key);
  return table_.get(key);
}

std::optional<std::string> TableReader::string(std::string_view key) {
  const toml::node* n = get(key);
  if (!n) return std::nullopt;
  if (!n->is_string()) fail(key, "must be a string");
  return n->as_string()->get();
}

std::string TableReader::require_string(std::string_view key) {
  auto v = string(key);
  if (!v) fail(key, "is required");
  if (v->empty()) fail(key, "must not be empty");
  return *v;
}

std::optional<int64_t> TableReader::integer(std::string_view key, int64_t min, int64_t max) {
  const toml::node* n = get(key);
  if (!n) return std::nullopt;
  if (!n->is_integer()) fail(key, "must be an integer");
  int64_t v = n->as_integer()->get();
  if (v < min || v > max)
    fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                  ", not " + std::to_string(v));
  return v;
}

std::optional<bool> TableReader::boolean(std::string_view key) {
  const toml::node* n = get(key);
  if (!n) return std::nullopt;
  if (!n->is_boolean()) fail(key, "must be true or false");
  return n->as_boolean()->get();
}

std::optional<Duration> TableReader::duration(std::string_view key, Duration min, Duration max) {
  const toml::node* n = get(key);
  if (!n) return std::nullopt;
  if (!n->is_string()) fail(key, "must be a duration string such as \"500ms\" or \"2s\"");
  std::string err;
  auto d = parse_duration(n->as_string()->get(), &err);
  if (!d) fail(key, err);
  if (*d < min || *d > max)
    fail(key, "must be between " + format_duration(min) + " and " + format_duration(max));
  return d;
}

std::optional<std::vector<std::string>> TableReader::strings(std::string_view key) {
  const toml::node* n = get(key);
  if (!n) return std::nullopt;
  const toml::array* a = n->as_array();
  if (!a) fail(key, "must be a list of strings");
  std::vector<std::string> out;
  for (const toml::node& e : *a) {
    if (!e.is_string()) fail(key, "must be a list of strings");
    out.push_back(e.as_string()->get());
  }
  return out;
}

std::optional<std::vector<int64_t>> TableReader::integers(std::string_view key, int64_t min,
                                                          int64_t max) {
  const toml::node* n = get(key);
  if (!n) return std::nullopt;
  const toml::array* a = n->as_array();
  if (!a) fail(key, "must be a list of integers");
  std::vector<int64_t> out;
  for (const toml::node& e : *a) {
    if (!e.is_integer()) fail(key, "must be a list of integers");
    int64_t v = e.as_integer()->get();
    if (v < min || v > max)
      fail(key, "values must be between " + std::to_string(min) + " and " + std::to_string(max));
    out.push_back(v);
  }
  return out;
}

const toml::table* TableReader::table(std::string_view key) {
  const toml::node* n = get(key);
  if (!n) return nullptr;
  if (!n->is_table()) fail(key, "must be a table");
  return n->as_table();
}

void TableReader::finish() const {
  const toml::node* first = nullptr;
  std::string first_key;
  for (const auto& [k, v] : table_) {
    if (used_.count(k.str())) continue;
    if (!first || v.source().begin < first->source().begin) {
      first = &v;
      first_key = std::string(k.str());
    }
  }
  if (first) {
    int line = static_cast<int>(first->source().begin.line);
    throw ConfigError(file_ + ":" + std::to_string(line) + ": " + dotted(first_key) +
                      ": unknown key");
  }
}

}  // namespace poolkeeper
