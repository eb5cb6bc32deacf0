#include "agent/base/utf8.h"

namespace poolkeeper {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// At `in[i]`: the length of one well-formed character (*ok = true), or of the maximal
// ill-formed subpart to replace by one U+FFFD (*ok = false, always >= 1).
// Table 3-7 of the Unicode standard: the allowed second byte depends on the first.
size_t scan(std::string_view in, size_t i, bool* ok) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(in[k]); };
  unsigned char c = b(i);
  *ok = true;
  if (c < 0x80) return 1;
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;         // no overlongs
    else if (c == 0xED) hi = 0x9F;    // no surrogates D800..DFFF
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;         // no overlongs
    else if (c == 0xF4) hi = 0x8F;    // nothing above U+10FFFF
  } else {
    *ok = false;  // 80..C1 (continuation or overlong lead), F5..FF
    return 1;
  }
  size_t k = 1;
  for (; k <= need; ++k) {
    if (i + k >= in.size()) break;
    unsigned char d = b(i + k);
    bool good = k == 1 ? (d >= lo && d <= hi) : (d >= 0x80 && d <= 0xBF);
    if (!good) break;
  }
  if (k > need) return need + 1;
  *ok = false;
  return k;
}

}  // namespace

bool is_valid_utf8(std::string_view in) {
  for (size_t i = 0; i < in.size();) {
    bool ok;
    size_t n = scan(in, i, &ok);
    if (!ok) return false;
    i += n;
  }
  return true;
}

std::string valid_utf8(std::string_view in, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(in.size(), max_bytes));
  for (size_t i = 0; i < in.size();) {
    bool ok;
    size_t n = scan(in, i, &ok);
    std::string_view piece = ok ? in.substr(i, n) : kReplacement;
    if (out.size() + piece.size() > max_bytes) break;
    out += piece;
    i += n;
  }
  return out;
}

std::string cut_utf8(std::string_view in, size_t max_bytes) {
  if (in.size() <= max_bytes) return std::string(in);
  size_t end = max_bytes;
  // Back off over continuation bytes (at most three) to the start of the character
  // that does not fit.
  for (int k = 0; k < 3 && end > 0 && (static_cast<unsigned char>(in[end]) & 0xC0) == 0x80; ++k) --end;
  if ((static_cast<unsigned char>(in[end]) & 0xC0) == 0x80) end = max_bytes;  // not UTF-8 here
  return std::string(in.substr(0, end));
}

void make_valid_utf8(nlohmann::json& j) {
  if (j.is_string()) {
    auto& s = j.get_ref<std::string&>();
    if (!is_valid_utf8(s)) s = valid_utf8(s);
  } else if (j.is_array()) {
    for (auto& e : j) make_valid_utf8(e);
  } else if (j.is_object()) {
    bool bad_key = false;
    for (auto it = j.begin(); it != j.end(); ++it) {
      bad_key = bad_key || !is_valid_utf8(it.key());
      make_valid_utf8(it.value());
    }
    if (bad_key) {
      nlohmann::json fixed = nlohmann::json::object();
      for (auto it = j.begin(); it != j.end(); ++it) fixed[valid_utf8(it.key())] = std::move(it.value());
      j = std::move(fixed);
    }
  }
}

std::string json_text(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace poolkeeper
