// Stand-in for a test binary, for harness_kill_test: starts servers through the
// harness (nginx with its worker, and a shell with a background job), writes their
// process groups and its temp dir to argv[1], then waits to be killed.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>

#include "tests/harness/harness.h"
#include "tests/harness/servers.h"

using namespace pk_test;

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto* d = new TempDir();  // never destroyed: this process is meant to die by SIGKILL
  std::filesystem::create_directories(d->file("www"));
  std::filesystem::create_directories(d->file("nginx"));
  write_file(d->file("www/index.html"), "ok\n");
  auto* nginx = new Nginx(d->file("nginx"), d->file("www"));
  nginx->start();
  auto* sh = new Process({"/bin/sh", "-c", "sleep 1000 & exec sleep 1001"}, d->file("sh.log"));
  std::string master;
  if (!wait_for([&] {
        master = read_file(d->file("nginx/nginx.pid"));
        return !master.empty() && master.back() == '\n';
      }, 10000ms))
    return 3;
  master.pop_back();
  write_file(argv[1], master + " " + std::to_string(sh->pid()) + " " + d->path() + "\n");
  for (int i = 0; i < 600; ++i) std::this_thread::sleep_for(100ms);  // bounded: 60 s
  return 0;
}
