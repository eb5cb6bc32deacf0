// kind = "exec": runs a command (argv, no shell) with an empty environment. Exit 0
// passes; anything else fails with the first line of its output as the reason. At the
// deadline its whole process group gets SIGTERM, then SIGKILL 100 ms later. Leftover
// processes of the group are killed after the command exits, so a check never leaks.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "checks/check.h"

namespace poolkeeper {

class ExecCheck final : public Check {
 public:
  explicit ExecCheck(std::vector<std::string> argv);
  Result run(Deadline deadline, const Clock& clock) override;
  std::string target() const override;

 private:
  std::vector<std::string> argv_;
};

std::unique_ptr<Check> make_exec_check(TableReader& reader);

}  // namespace poolkeeper
