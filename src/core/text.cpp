#include "webpushd/core/text.hpp"

namespace webpushd {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 9) return std::nullopt;  // 9 digits: no overflow in any unit below
  long long n = 0;
  for (std::size_t i = 0; i < digits; ++i) n = n * 10 + (text[i] - '0');
  const auto unit = text.substr(digits);
  using namespace std::chrono;
  if (unit == "ms") return milliseconds{n};
  if (unit == "s") return duration_cast<milliseconds>(seconds{n});
  if (unit == "m") return duration_cast<milliseconds>(minutes{n});
  if (unit == "h") return duration_cast<milliseconds>(hours{n});
  if (unit == "d") return duration_cast<milliseconds>(hours{24 * n});
  return std::nullopt;
}

std::string json_pointer_token(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (const char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace webpushd
