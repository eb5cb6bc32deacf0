# Compiles the class for a clouddumps-like pair (NFS held through reboots, HTTP and
# rsync drained; conftool with a password) and writes each host's rendered config
# to $PK_RENDER_DIR, where the test script runs `poolkeeper --check-config` on it.
require 'spec_helper'

PAIR = %w[clouddumps1001.example.org clouddumps1002.example.org].freeze
PASSWORD_FILE = ENV.fetch('PK_PASSWORD_FILE', '/etc/poolkeeper/etcd-password')

def pair_params(me)
  peers = (PAIR - [me]).map { |h| "http://#{h}:9473" }
  {
    'hostname' => me,
    'services' => {
      'nfs' => { 'checks' => %w[export lvs], 'port' => 2049, 'peers' => peers, 'min_pooled' => 1, 'on_reboot' => 'hold' },
      'http' => { 'checks' => %w[web export lvs], 'port' => 443, 'peers' => peers },
      'rsync' => { 'checks' => %w[mirror export lvs], 'port' => 873, 'peers' => peers },
    },
    'checks' => {
      'export' => { 'kind' => 'nfs', 'server' => '127.0.0.1', 'path' => '/dumps/canary.txt', 'max_age' => '26h',
                    'interval' => '2s', 'timeout' => '1s', 'rise' => 2, 'fall' => 2 },
      'web' => { 'kind' => 'http', 'url' => 'https://127.0.0.1/canary.txt', 'host' => 'dumps.example.org',
                 'tls_verify' => false, 'expect_status' => [200], 'expect_body' => 'dumps "canary" \\ 1' },
      'mirror' => { 'kind' => 'rsync', 'address' => '127.0.0.1:873', 'module' => 'dumps' },
      'lvs' => { 'kind' => 'vip', 'addresses' => ['198.51.100.10'], 'interface' => 'lo' },
      'disk' => { 'kind' => 'exec', 'command' => ['/usr/lib/nagios/plugins/check_disk', '-w', '10%', '-p', '/srv'],
                  'critical' => false, 'interval' => '30s', 'timeout' => '10s' },
    },
    'conftool' => {
      'endpoints' => ['https://etcd1001.example.org:2379'],
      'prefix' => '/conftool/v1/pools/eqiad/dumps',
      'username' => 'poolkeeper',
      'peer_dead_after' => '3m',
    },
    'etcd_password' => sensitive('s3cret "quoted"'),
    'etcd_password_file' => PASSWORD_FILE,
    'haproxy_agent_listen' => '127.0.0.1:9474',
  }
end

describe 'poolkeeper' do
  PAIR.each do |host|
    context "on #{host}" do
      let(:node) { host }
      let(:facts) { { 'networking' => { 'fqdn' => host }, 'os' => { 'family' => 'Debian' } } }
      let(:params) { pair_params(host) }

      it { is_expected.to compile.with_all_deps }
      it { is_expected.to contain_package('poolkeeper') }
      it {
        is_expected.to contain_service('poolkeeper').with(ensure: 'running', enable: true)
      }
      it {
        is_expected.to contain_file(PASSWORD_FILE)
          .with(owner: 'poolkeeper', group: 'poolkeeper', mode: '0600', show_diff: false)
          .that_notifies('Service[poolkeeper]')
      }
      it 'keeps the password out of the config and renders the pair' do
        file = catalogue.resource('File', '/etc/poolkeeper/poolkeeper.toml')
        expect(file[:validate_cmd]).to eq('/usr/sbin/poolkeeper --check-config %')
        expect(file[:mode]).to eq('0640')
        content = file[:content]
        expect(content).not_to include('s3cret')
        expect(content).to include(%(password_file = "#{PASSWORD_FILE}"))
        expect(content).to include(%(hostname = "#{host}"))
        other = (PAIR - [host]).first
        expect(content).to include(%(peers = ["http://#{other}:9473"]))
        expect(content).to include(%(on_reboot = "hold"))
        expect(content).to include(%(expect_body = "dumps \\"canary\\" \\\\ 1"))
        expect(content).to include(%(command = ["/usr/lib/nagios/plugins/check_disk", "-w", "10%", "-p", "/srv"]))
        dir = ENV['PK_RENDER_DIR']
        File.write(File.join(dir, "#{host}.toml"), content) if dir
      end
      it 'writes the password as given' do
        pw = catalogue.resource('File', PASSWORD_FILE)[:content]
        pw = pw.unwrap if pw.respond_to?(:unwrap)
        expect(pw).to eq('s3cret "quoted"')
      end
    end
  end

  context 'without conftool' do
    let(:params) do
      { 'services' => { 'http' => { 'checks' => ['web'] } },
        'checks' => { 'web' => { 'kind' => 'http', 'url' => 'http://127.0.0.1/' } } }
    end

    it { is_expected.to compile.with_all_deps }
    it { is_expected.not_to contain_file('/etc/poolkeeper/etcd-password') }
  end

  context 'with a password but no etcd username' do
    let(:params) do
      { 'services' => { 'http' => { 'checks' => ['web'] } },
        'checks' => { 'web' => { 'kind' => 'http', 'url' => 'http://127.0.0.1/' } },
        'conftool' => { 'endpoints' => ['http://127.0.0.1:2379'], 'prefix' => '/conftool/v1/pools/x/y' },
        'etcd_password' => sensitive('x') }
    end

    it { is_expected.to compile.and_raise_error(%r{etcd_password needs conftool}) }
  end

  context 'with an unknown service key' do
    let(:params) do
      { 'services' => { 'http' => { 'checks' => ['web'], 'prot' => 80 } },
        'checks' => { 'web' => { 'kind' => 'http', 'url' => 'http://127.0.0.1/' } } }
    end

    it { is_expected.to compile.and_raise_error(%r{prot}) }
  end
end
