// pk-stack: starts the real local stack (nfs-ganesha, nginx, rsync daemon over one
// data tree with a canary file) on free loopback ports, writes an agent config for
// it, prints where things are, and keeps it running until SIGTERM/SIGINT, then
// stops everything and removes its temp dir. Used by deploy/demo.sh.
//
//   pk-stack AGENT_CONFIG_PATH AGENT_PORT [PEER_PORT]
// With PEER_PORT every service names the agent on 127.0.0.1:PEER_PORT as its peer
// (the demo's second host), so the safety floor applies.
#include <signal.h>

#include <cstdio>
#include <iostream>

#include "tests/harness/servers.h"

using namespace pk_test;

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::cerr << "usage: pk-stack AGENT_CONFIG_PATH AGENT_PORT [PEER_PORT]\n";
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  try {
    Stack stack;
    stack.start();
    std::string peers = argc == 4 ? "peers = [\"http://127.0.0.1:" + std::string(argv[3]) + "\"]\n" : "";
    std::string cfg =
        "# Written by pk-stack for the demo: the real stack on loopback.\n"
        "[agent]\nlisten = \"127.0.0.1:" + std::string(argv[2]) + "\"\n"
        "hostname = \"demo1.example.org\"\nstate_dir = \"" + stack.dir() + "/state\"\n"
        "admin_socket = \"" + stack.dir() + "/admin.sock\"\ndrain_seconds = 2\n\n"
        "[services.nfs]\nchecks = [\"export\"]\nport = " + std::to_string(stack.ganesha->port()) + "\n" + peers +
        "[services.http]\nchecks = [\"web\", \"export\"]\nport = " + std::to_string(stack.nginx->port()) + "\n" + peers +
        "[services.rsync]\nchecks = [\"mirror\", \"export\"]\nport = " + std::to_string(stack.rsyncd->port()) + "\n" + peers + "\n"
        "[checks.export]\nkind = \"nfs\"\nserver = \"127.0.0.1\"\nport = " + std::to_string(stack.ganesha->port()) + "\n"
        "path = \"/dumps/canary.txt\"\nexpect = \"poolkeeper canary\"\nmax_age = \"26h\"\n\n"
        "[checks.web]\nkind = \"http\"\nurl = \"http://127.0.0.1:" + std::to_string(stack.nginx->port()) +
        "/canary.txt\"\nhost = \"dumps.example.org\"\nexpect_body = \"canary\"\n\n"
        "[checks.mirror]\nkind = \"rsync\"\naddress = \"127.0.0.1:" + std::to_string(stack.rsyncd->port()) +
        "\"\nmodule = \"dumps\"\npath = \"canary.txt\"\n";
    write_file(argv[1], cfg);
    std::printf("stack dir %s\ndata %s\nnfs-ganesha 127.0.0.1:%d\nnginx 127.0.0.1:%d\nrsync 127.0.0.1:%d\n",
                stack.dir().c_str(), stack.data_dir().c_str(), stack.ganesha->port(),
                stack.nginx->port(), stack.rsyncd->port());
    std::fflush(stdout);
    int sig;
    sigwait(&set, &sig);
  } catch (const std::exception& e) {
    std::cerr << "pk-stack: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
