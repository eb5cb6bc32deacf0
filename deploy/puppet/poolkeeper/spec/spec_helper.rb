# rspec-puppet setup: the module is put on a temporary modulepath under its own name.
require 'rspec-puppet'
require 'tmpdir'

module_root = File.expand_path('..', __dir__)
modulepath = Dir.mktmpdir('poolkeeper-modules')
File.symlink(module_root, File.join(modulepath, 'poolkeeper'))
at_exit { FileUtils.rm_rf(modulepath) }

RSpec.configure do |c|
  c.module_path = modulepath
  c.manifest = File.join(modulepath, 'site.pp')
  File.write(c.manifest, '')
end
