#include "webpushd/core/text.hpp"

#include <date/date.h>

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

std::string format_duration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  constexpr long long second = 1000, minute = 60 * second, hour = 60 * minute, day = 24 * hour;
  if (ms != 0 && ms % day == 0) return std::to_string(ms / day) + "d";
  if (ms != 0 && ms % hour == 0) return std::to_string(ms / hour) + "h";
  if (ms != 0 && ms % minute == 0) return std::to_string(ms / minute) + "m";
  if (ms % second == 0) return std::to_string(ms / second) + "s";
  return std::to_string(ms) + "ms";
}

std::string format_rfc3339(std::chrono::system_clock::time_point t) {
  return date::format("%FT%TZ", std::chrono::floor<std::chrono::milliseconds>(t));
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
