# @summary A value as TOML: strings quoted with backslash and quote escaped,
#   integers and booleans as they are, arrays of these.
# @param value the value to render
# @return [String] the TOML text
function poolkeeper::toml_value(Variant[String, Integer, Boolean, Array[Variant[String, Integer, Boolean]]] $value) >> String {
  $value ? {
    String  => sprintf('"%s"', $value.regsubst('\\\\', '\\\\\\\\', 'G').regsubst('"', '\\\\"', 'G')),
    Array   => sprintf('[%s]', $value.map |$v| { poolkeeper::toml_value($v) }.join(', ')),
    default => String($value),
  }
}
