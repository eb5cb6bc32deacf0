// Strict reading of one TOML table: typed getters that name FILE:LINE and the dotted
// key in every error, and finish() that rejects keys nobody asked for, so a typo in a
// config never passes silently. Check kinds use it to parse their own keys.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "agent/base/clock.h"

namespace poolkeeper {

// Message is always "FILE:LINE: what is wrong" (one line).
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class TableReader {
 public:
  // `prefix` is the dotted path of the table, e.g. "checks.web".
  TableReader(const toml::table& table, std::string file, std::string prefix);

  std::optional<std::string> string(std::string_view key);
  std::string require_string(std::string_view key);
  std::optional<int64_t> integer(std::string_view key, int64_t min, int64_t max);
  std::optional<bool> boolean(std::string_view key);
  std::optional<Duration> duration(std::string_view key, Duration min, Duration max);
  std::optional<std::vector<std::string>> strings(std::string_view key);
  std::optional<std::vector<int64_t>> integers(std::string_view key, int64_t min, int64_t max);
  const toml::table* table(std::string_view key);
  bool has(std::string_view key) const { return table_.contains(key); }

  // Throws ConfigError naming the key's line (or the table's when absent).
  [[noreturn]] void fail(std::string_view key, const std::string& what) const;
  // Throws for the first key (in file order) that no getter read.
  void finish() const;

  const std::string& file() const { return file_; }
  const std::string& prefix() const { return prefix_; }
  int line_of(std::string_view key) const;

 private:
  const toml::node* get(std::string_view key);
  std::string dotted(std::string_view key) const;

  const toml::table& table_;
  std::string file_;
  std::string prefix_;
  std::set<std::string, std::less<>> used_;
};

}  // namespace poolkeeper
