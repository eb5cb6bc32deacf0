// Bytes from outside (probe output, server replies, peers, etcd, admin requests) made
// into valid UTF-8 where they enter, so that no JSON serialization can throw on them.
// Pure functions, tested exhaustively.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace poolkeeper {

bool is_valid_utf8(std::string_view in);

// `in` with every ill-formed sequence (stray continuation bytes, overlongs, surrogates,
// code points above U+10FFFF, truncated sequences, 0xC0/0xC1/0xF5..0xFF) replaced by
// U+FFFD, one per maximal ill-formed subpart (as Unicode recommends). The result is at
// most `max_bytes` long and never ends in the middle of a character.
std::string valid_utf8(std::string_view in, size_t max_bytes = std::string_view::npos);

// The longest prefix of `in` of at most `max_bytes` that does not end in the middle of
// a multibyte character (for already valid text; invalid bytes are left as they are).
std::string cut_utf8(std::string_view in, size_t max_bytes);

// Replaces ill-formed UTF-8 in every string and object key of `j`, recursively.
void make_valid_utf8(nlohmann::json& j);

// j.dump(indent) that can never throw on bad bytes: any that slipped through become
// U+FFFD. Every JSON the agent sends (HTTP, admin socket, state files) goes through it.
std::string json_text(const nlohmann::json& j, int indent = -1);

}  // namespace poolkeeper
