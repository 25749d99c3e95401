#include "webpushd/pacing/policy.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "webpushd/core/text.hpp"

namespace webpushd::pacing {

std::string describe(const cap& c) { return std::to_string(c.count) + " per " + format_duration(c.per); }

std::optional<cap> parse_cap(std::string_view text) {
  const auto space = text.find(" per ");
  if (space == std::string_view::npos || space == 0 || space > 4) return std::nullopt;
  int count = 0;
  const auto digits = text.substr(0, space);
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), count);
  if (ec != std::errc{} || end != digits.data() + digits.size() || count < 1) return std::nullopt;
  const auto per = parse_duration(text.substr(space + 5));
  if (!per || per->count() <= 0) return std::nullopt;
  return cap{count, *per};
}

std::string describe(const quiet_hours& q) {
  char text[64];
  std::snprintf(text, sizeof text, "%02d:%02d–%02d:%02d", q.from_minute / 60, q.from_minute % 60, q.to_minute / 60,
                q.to_minute % 60);
  return text;
}

std::optional<int> parse_clock_time(std::string_view text) {
  if (text.size() != 5 || text[2] != ':') return std::nullopt;
  const auto two = [&](std::size_t at) -> int {
    const char a = text[at], b = text[at + 1];
    if (a < '0' || a > '9' || b < '0' || b > '9') return -1;
    return (a - '0') * 10 + (b - '0');
  };
  const int h = two(0), m = two(3);
  if (h < 0 || h > 23 || m < 0 || m > 59) return std::nullopt;
  return h * 60 + m;
}

std::optional<double> parse_percent(std::string_view text) {
  if (text.size() < 2 || text.back() != '%') return std::nullopt;
  const auto number = text.substr(0, text.size() - 1);
  double value = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc{} || end != number.data() + number.size() || value < 0 || value > 100) return std::nullopt;
  return value / 100.0;
}

std::vector<cap> tightened(const std::vector<cap>& caps, int level, int min_count) {
  std::vector<cap> out = caps;
  for (auto& c : out) c.count = std::max({1, std::min(c.count, min_count), c.count - level});
  return out;
}

std::vector<cap> effective_caps(const scenario_pacing& s, int level) {
  return s.adaptive ? tightened(s.caps, level, s.adaptive->min_count) : s.caps;
}

int max_level(const std::vector<cap>& caps, int min_count) {
  int most = 0;
  for (const auto& c : caps) most = std::max(most, c.count - std::max(1, min_count));
  return most;
}

}  // namespace webpushd::pacing
