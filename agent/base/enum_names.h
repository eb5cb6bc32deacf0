// One table of names for an enum: name() where a value leaves as text (logs, JSON, the
// wire), parse() at the border where text comes in (a request, a config key, the state
// file), so the two ways cannot disagree.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>

namespace poolkeeper {

template <typename E, size_t N>
struct EnumNames {
  std::pair<E, const char*> names[N];

  // `e`'s name; `otherwise` for a value the table does not hold.
  constexpr const char* name(E e, const char* otherwise) const {
    for (const auto& [value, text] : names)
      if (value == e) return text;
    return otherwise;
  }
  // The value named `text` exactly; nullopt for any other text.
  constexpr std::optional<E> parse(std::string_view text) const {
    for (const auto& [value, name] : names)
      if (text == name) return value;
    return std::nullopt;
  }
};

}  // namespace poolkeeper
