# @summary Installs poolkeeper, writes its config and keeps the agent running.
#
# The config is rendered from templates/poolkeeper.toml.epp and checked with
# `poolkeeper --check-config` before it replaces the old one; a change reloads the
# agent (SIGHUP: a bad config is refused and the running one stays). The etcd
# password, when given, goes in its own file, mode 0600, owned by poolkeeper.
#
# @param services what the load balancer pools: name => {checks, port, peers, min_pooled, on_reboot}
# @param checks name => the check's keys (kind, and its own: url, server, path…)
# @param conftool the [conftool] keys (no password: see etcd_password)
# @param etcd_password the etcd password, written to etcd_password_file
# @param etcd_password_file where the password goes; named in the config as password_file
# @param admin_group members may pool and depool with poolctl
# @param listen the agent's HTTP endpoint
# @param drain_seconds how long the agent keeps answering after SIGTERM
# @param hostname the name the agent and its conftool keys use (default: the FQDN)
# @param haproxy_agent_listen where HAProxy's agent-check is answered (undef: off)
# @param package_ensure the package's ensure
# @param service_ensure the service's ensure
# @param service_enable whether the service starts at boot
class poolkeeper (
  Hash[String[1], Struct[{
    checks                => Array[String[1], 1],
    Optional[port]        => Integer[1, 65535],
    Optional[peers]       => Array[Pattern[/\Ahttps?:\/\//]],
    Optional[min_pooled]  => Integer[0],
    Optional[on_reboot]   => Enum['drain', 'hold'],
  }], 1] $services,
  Hash[String[1], Hash[String[1], Variant[String, Integer, Boolean, Array[Variant[String, Integer, Boolean]]]]] $checks,
  Optional[Hash[Enum['endpoints', 'prefix', 'lock_prefix', 'hostname', 'ca_file', 'cert_file', 'key_file',
    'username', 'create_missing', 'peer_dead_after', 'lock_ttl', 'liveness_prefix', 'liveness_ttl'],
    Variant[String, Integer, Boolean, Array[String]]]] $conftool = undef,
  Optional[Sensitive[String[1]]] $etcd_password = undef,
  Pattern[/\A\//] $etcd_password_file = '/etc/poolkeeper/etcd-password',
  Optional[String[1]] $admin_group = 'poolkeeper-admins',
  String[1] $listen = '127.0.0.1:9473',
  Integer[0, 3600] $drain_seconds = 10,
  Optional[String[1]] $hostname = undef,
  Optional[String[1]] $haproxy_agent_listen = undef,
  String[1] $package_ensure = 'installed',
  Enum['running', 'stopped'] $service_ensure = 'running',
  Boolean $service_enable = true,
) {
  if $etcd_password and !($conftool and $conftool['username']) {
    fail('poolkeeper: etcd_password needs conftool => {username => ...}')
  }

  $password_file = $etcd_password ? {
    undef   => undef,
    default => $etcd_password_file,
  }

  package { 'poolkeeper':
    ensure => $package_ensure,
  }

  if $etcd_password {
    file { $etcd_password_file:
      ensure    => file,
      owner     => 'poolkeeper',
      group     => 'poolkeeper',
      mode      => '0600',
      content   => $etcd_password,
      show_diff => false,
      require   => Package['poolkeeper'],
      before    => File['/etc/poolkeeper/poolkeeper.toml'],
      notify    => Service['poolkeeper'],
    }
  }

  file { '/etc/poolkeeper/poolkeeper.toml':
    ensure       => file,
    owner        => 'root',
    group        => 'poolkeeper',
    mode         => '0640',
    content      => epp('poolkeeper/poolkeeper.toml.epp', {
      'services'             => $services,
      'checks'               => $checks,
      'conftool'             => $conftool,
      'password_file'        => $password_file,
      'admin_group'          => $admin_group,
      'listen'               => $listen,
      'drain_seconds'        => $drain_seconds,
      'hostname'             => $hostname,
      'haproxy_agent_listen' => $haproxy_agent_listen,
    }),
    validate_cmd => '/usr/sbin/poolkeeper --check-config %',
    require      => Package['poolkeeper'],
    notify       => Service['poolkeeper'],
  }

  service { 'poolkeeper':
    ensure  => $service_ensure,
    enable  => $service_enable,
    restart => '/bin/systemctl reload poolkeeper',
    require => Package['poolkeeper'],
  }
}
