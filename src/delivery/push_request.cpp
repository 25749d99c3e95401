// Checks on RFC 8030 request header values.
#include "webpushd/delivery/push_request.hpp"

#include <algorithm>

namespace webpushd::delivery {

result<urgency> parse_urgency(std::string_view text) {
  if (text == "very-low") return urgency::very_low;
  if (text == "low") return urgency::low;
  if (text == "normal") return urgency::normal;
  if (text == "high") return urgency::high;
  return fail("invalid_urgency", "urgency must be one of very-low, low, normal, high", "urgency");
}

const char* to_string(urgency u) noexcept {
  switch (u) {
    case urgency::very_low: return "very-low";
    case urgency::low: return "low";
    case urgency::normal: return "normal";
    case urgency::high: return "high";
  }
  return "normal";
}

result<void> validate_ttl(std::int64_t seconds) {
  if (seconds < 0 || seconds > max_ttl_seconds) {
    return fail("invalid_ttl", "ttl must be between 0 and 2592000 seconds", "ttl");
  }
  return {};
}

result<void> validate_topic(std::string_view topic) {
  // RFC 8030 §5.4: at most 32 characters from the URL- and filename-safe
  // base64 alphabet, so it can travel in a header without escaping.
  const auto b64url = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  };
  if (topic.size() > max_topic_length || !std::all_of(topic.begin(), topic.end(), b64url)) {
    return fail("invalid_topic", "topic must be at most 32 base64url characters", "topic");
  }
  return {};
}

result<void> validate_urgency(std::string_view text) {
  if (text.empty()) return {};
  auto parsed = parse_urgency(text);
  if (!parsed) return tl::unexpected(parsed.error());
  return {};
}

result<void> validate(const push_request& req) {
  if (auto r = validate_ttl(req.ttl_seconds); !r) return r;
  if (auto r = validate_urgency(req.urgency); !r) return r;
  return validate_topic(req.topic);
}

}  // namespace webpushd::delivery
