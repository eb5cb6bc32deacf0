// `poolctl pybal-config`: the pybal.conf service stanzas and conftool-data entries for
// this host's services, as PyBal reads them (ConfigParser, so '%' is written '%%';
// monitors and ProxyFetch.url as Python list literals). HTTP is watched by ProxyFetch
// through the web server's health location; NFS gets no monitor at all (a TCP monitor
// would depool a holding host mid-reboot) and `sh` scheduling so clients stay on their
// host; rsync gets IdleConnection. Pure: unit-tested, and parsed by Python in a test.
#pragma once

#include <string>
#include <vector>

namespace poolkeeper {

struct PybalService {
  std::string name;
  std::string ip;           // the LVS service IP (from the service's vip check)
  int port = 0;
  std::string health_host;  // Host for the ProxyFetch URL (the http check's host)
  bool hold_on_reboot = false;
};

struct PybalInput {
  std::string hostname;
  std::string etcd_url;     // first conftool endpoint
  std::string prefix;       // /conftool/v1/pools/<dc>/<cluster>
  std::vector<PybalService> services;
};

// Returns the text, or throws std::runtime_error naming what is missing.
std::string render_pybal_config(const PybalInput& in);
// ConfigParser interpolation: every '%' becomes '%%'.
std::string pybal_escape(const std::string& s);

}  // namespace poolkeeper
