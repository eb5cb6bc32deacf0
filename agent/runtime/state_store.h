// The operator's intent on disk (agent.state_dir/state.json). Every change is written
// atomically — temp file, fsync, rename, fsync of the directory — before the request
// is acknowledged, so it survives kill -9 and power loss, and a failed write never
// leaves a half-written file behind.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "agent/model/health.h"

namespace poolkeeper {

class StateStore {
 public:
  explicit StateStore(std::string dir);
  const std::string& path() const { return path_; }
  LoadedState load() const;
  // Returns an empty string on success, else the error (the old file is untouched).
  std::string save(const std::map<std::string, AdminIntent>& intents) const;

  // Exposed for tests and fuzzing: the file format.
  static std::string serialize(const std::map<std::string, AdminIntent>& intents);
  static LoadedState parse(const std::string& text);

 private:
  std::string dir_, path_;
};

// Writes `text` to `path` (inside `dir`, created if missing) the same way: temp file,
// fsync, rename, fsync of the directory. Returns "" or the error.
std::string write_file_atomically(const std::string& dir, const std::string& path, const std::string& text);

}  // namespace poolkeeper
