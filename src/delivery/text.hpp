#pragma once
// Small ASCII helpers shared by the delivery sources (private header).

#include <algorithm>
#include <string_view>

namespace webpushd::delivery::text {

/// @brief ASCII lower case; other bytes unchanged.
inline char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

/// @brief ASCII case-insensitive equality (host names, header names).
inline bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

/// @brief Whether `c` is an ASCII decimal digit.
inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

/// @brief Strips HTTP optional whitespace and line ends from both sides.
inline std::string_view trim(std::string_view s) noexcept {
  const auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace webpushd::delivery::text
