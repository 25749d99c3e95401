// Endpoint URL checks and the internal-address test used at connect time.
#include "webpushd/delivery/endpoint_rules.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include <arpa/inet.h>

#include "text.hpp"

namespace webpushd::delivery {

endpoint_rules default_endpoint_rules() {
  // Host names as browsers hand them out in PushSubscription.endpoint:
  // Chrome/Edge/Opera via FCM (android.googleapis.com for old GCM-era
  // subscriptions), Firefox via autopush, Safari via Apple's web push
  // gateway (web.push.apple.com, api.push.apple.com …), legacy Edge via WNS
  // (wns2-*.notify.windows.com).
  endpoint_rules rules;
  rules.allowed_hosts = {
      "fcm.googleapis.com",
      "android.googleapis.com",
      "updates.push.services.mozilla.com",
      "*.push.services.mozilla.com",
      "*.push.apple.com",
      "*.notify.windows.com",
  };
  return rules;
}

namespace {

using text::iequals;
using text::is_digit;
using text::lower;
bool is_hex(char c) noexcept { return is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'f'); }
bool is_alpha(char c) noexcept { return lower(c) >= 'a' && lower(c) <= 'z'; }

// Characters allowed in path and query: RFC 3986 unreserved, sub-delims,
// ':' '@' '/' '?' and '%' (percent-encoding, checked below). Everything else,
// including spaces, '\\', '#', quotes and non-ASCII, is refused.
bool is_path_char(char c) noexcept {
  if (is_alpha(c) || is_digit(c)) return true;
  return std::strchr("-._~!$&'()*+,;=:@/?%", c) != nullptr && c != '\0';
}

// A host a resolver would read as an IPv4 address. Following the WHATWG URL
// rule ("ends in a number"), a last label made only of digits or 0x-hex makes
// the whole host numeric: inet_aton accepts "127.1", "0x7f.1", "2130706433".
bool looks_like_ipv4(std::string_view host) noexcept {
  const auto dot = host.rfind('.');
  std::string_view last = dot == std::string_view::npos ? host : host.substr(dot + 1);
  if (last.empty()) return false;
  if (last.size() >= 2 && last[0] == '0' && lower(last[1]) == 'x') {
    return std::all_of(last.begin() + 2, last.end(), is_hex);
  }
  return std::all_of(last.begin(), last.end(), is_digit);
}

bool valid_hostname(std::string_view host) noexcept {
  if (host.empty() || host.size() > 253) return false;
  std::size_t start = 0;
  while (start <= host.size()) {
    auto end = host.find('.', start);
    if (end == std::string_view::npos) end = host.size();
    const auto label = host.substr(start, end - start);
    // Empty labels ("a..b", a trailing dot) and leading/trailing hyphens are refused.
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!(is_alpha(c) || is_digit(c) || c == '-')) return false;
    }
    start = end + 1;
  }
  return true;
}

tl::unexpected<error> invalid(std::string message) {
  return fail("invalid_endpoint", std::move(message), "endpoint");
}
tl::unexpected<error> not_allowed(std::string message) {
  return fail("endpoint_not_allowed", std::move(message), "endpoint");
}

bool in_v4(const std::uint8_t* a, std::uint32_t net, int prefix) noexcept {
  const std::uint32_t v = (std::uint32_t{a[0]} << 24) | (std::uint32_t{a[1]} << 16) | (std::uint32_t{a[2]} << 8) | a[3];
  const std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
  return (v & mask) == (net & mask);
}

constexpr std::uint32_t v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return (std::uint32_t{a} << 24) | (std::uint32_t{b} << 16) | (std::uint32_t{c} << 8) | d;
}

bool internal_v4(const std::uint8_t* a) noexcept {
  struct range {
    std::uint32_t net;
    int prefix;
  };
  static constexpr std::array<range, 15> ranges{{
      {v4(0, 0, 0, 0), 8},        // "this network", unspecified
      {v4(10, 0, 0, 0), 8},       // RFC 1918
      {v4(100, 64, 0, 0), 10},    // CGNAT (RFC 6598)
      {v4(127, 0, 0, 0), 8},      // loopback
      {v4(169, 254, 0, 0), 16},   // link-local, cloud metadata
      {v4(172, 16, 0, 0), 12},    // RFC 1918
      {v4(192, 0, 0, 0), 24},     // IETF protocol assignments
      {v4(192, 0, 2, 0), 24},     // TEST-NET-1
      {v4(192, 88, 99, 0), 24},   // 6to4 relay anycast
      {v4(192, 168, 0, 0), 16},   // RFC 1918
      {v4(198, 18, 0, 0), 15},    // benchmarking
      {v4(198, 51, 100, 0), 24},  // TEST-NET-2
      {v4(203, 0, 113, 0), 24},   // TEST-NET-3
      {v4(224, 0, 0, 0), 4},      // multicast
      {v4(240, 0, 0, 0), 4},      // reserved, broadcast
  }};
  return std::any_of(ranges.begin(), ranges.end(), [a](const range& r) { return in_v4(a, r.net, r.prefix); });
}

bool all_zero(const std::uint8_t* p, std::size_t n) noexcept {
  return std::all_of(p, p + n, [](std::uint8_t b) { return b == 0; });
}

bool internal_v6(const std::uint8_t* a) noexcept {
  // ::/96 covers ::, ::1 and the deprecated IPv4-compatible form; the
  // embedded IPv4 part is judged like a plain IPv4 address.
  if (all_zero(a, 12)) return all_zero(a + 12, 3) ? true : internal_v4(a + 12);
  // ::ffff:0:0/96 IPv4-mapped: the kernel connects to the embedded IPv4 address.
  if (all_zero(a, 10) && a[10] == 0xff && a[11] == 0xff) return internal_v4(a + 12);
  // 64:ff9b::/96 NAT64: translated to the embedded IPv4 address.
  static constexpr std::uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::memcmp(a, nat64, 12) == 0) return internal_v4(a + 12);
  // 2002::/16 6to4: bytes 2..5 are an IPv4 address.
  if (a[0] == 0x20 && a[1] == 0x02) return internal_v4(a + 2);
  if ((a[0] & 0xfe) == 0xfc) return true;                    // ULA fc00::/7
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return true;    // link-local fe80::/10
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) return true;    // site-local fec0::/10 (deprecated)
  if (a[0] == 0xff) return true;                             // multicast
  if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) return true;  // documentation
  if (a[0] == 0x01 && all_zero(a + 1, 7)) return true;       // discard-only 100::/64
  return false;
}

}  // namespace

bool is_internal_address(byte_view ip) noexcept {
  if (ip.size() == 4) return internal_v4(ip.data());
  if (ip.size() == 16) return internal_v6(ip.data());
  return true;
}

bool host_matches(std::string_view host, std::string_view pattern) noexcept {
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    const auto suffix = pattern.substr(1);  // ".push.apple.com"
    // At least one character before the suffix, and the suffix begins at a
    // label boundary (it starts with '.'), so "xpush.apple.com" and
    // "push.apple.com.evil.io" do not match.
    return host.size() > suffix.size() && iequals(host.substr(host.size() - suffix.size()), suffix);
  }
  return iequals(host, pattern);
}

result<endpoint> check_endpoint(std::string_view url, const endpoint_rules& rules) {
  if (url.empty()) return invalid("endpoint is empty");
  if (url.size() > max_endpoint_length) return invalid("endpoint is longer than 2048 characters");
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return invalid("endpoint contains spaces, control or non-ASCII characters");
  }

  endpoint ep;
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) return invalid("endpoint is not an absolute http(s) URL");
  const auto scheme = url.substr(0, sep);
  if (iequals(scheme, "https")) {
    ep.scheme = "https";
    ep.port = 443;
  } else if (iequals(scheme, "http")) {
    ep.scheme = "http";
    ep.port = 80;
  } else {
    return invalid("endpoint scheme must be https");
  }

  auto rest = url.substr(sep + 3);
  const auto authority_end = rest.find_first_of("/?#");
  const auto authority = rest.substr(0, authority_end);
  const auto tail = authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) return invalid("endpoint must not contain user information");
  if (authority.find('\\') != std::string_view::npos) return invalid("endpoint host is malformed");
  if (tail.find('#') != std::string_view::npos) return invalid("endpoint must not contain a fragment");
  for (std::size_t i = 0; i < tail.size(); ++i) {
    if (!is_path_char(tail[i])) return invalid("endpoint path contains characters that must be percent-encoded");
    if (tail[i] == '%' && (i + 2 >= tail.size() || !is_hex(tail[i + 1]) || !is_hex(tail[i + 2]))) {
      return invalid("endpoint path contains a malformed percent-encoding");
    }
  }

  std::string_view host_text;
  std::string_view port_text;
  bool has_port = false;
  bool ip_literal = false;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return invalid("endpoint host is malformed");
    host_text = authority.substr(1, close - 1);
    const auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return invalid("endpoint host is malformed");
      has_port = true;
      port_text = after.substr(1);
    }
    std::string copy(host_text);
    in6_addr addr{};
    if (inet_pton(AF_INET6, copy.c_str(), &addr) != 1) return invalid("endpoint host is malformed");
    ip_literal = true;
  } else {
    const auto colon = authority.find(':');
    host_text = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
  }
  if (host_text.empty()) return invalid("endpoint has no host");
  if (has_port) {
    if (port_text.empty() || port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), is_digit)) {
      return invalid("endpoint port is malformed");
    }
    unsigned value = 0;
    std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (value == 0 || value > 65535) return invalid("endpoint port is out of range");
    ep.port = static_cast<std::uint16_t>(value);
  }

  ep.host.reserve(host_text.size());
  for (char c : host_text) ep.host.push_back(lower(c));
  if (!ip_literal) {
    if (looks_like_ipv4(ep.host)) {
      ip_literal = true;
      // Only the canonical dotted-quad form is accepted even when IP literals
      // are allowed: other spellings exist only to slip past filters.
      in_addr addr{};
      if (inet_pton(AF_INET, ep.host.c_str(), &addr) != 1) return not_allowed("endpoint host is a non-canonical IP address");
    } else if (!valid_hostname(ep.host)) {
      return invalid("endpoint host is not a valid host name");
    }
  }

  if (ep.scheme == "http" && !rules.allow_http) return not_allowed("endpoint must use https");
  if (ip_literal && !rules.allow_private_addresses) return not_allowed("endpoint host must be a name, not an IP address");
  const bool listed = std::any_of(rules.allowed_hosts.begin(), rules.allowed_hosts.end(),
                                  [&](const std::string& p) { return host_matches(ep.host, p); });
  if (!listed) return not_allowed("endpoint host is not a known push service");

  ep.url = std::string(url);
  // Scheme and host lower-cased, default port omitted: the form RFC 6454
  // serialises and VAPID (RFC 8292 §2) uses as the audience.
  ep.origin = ep.scheme + "://" + (ep.host.find(':') != std::string::npos ? "[" + ep.host + "]" : ep.host);
  const bool default_port = (ep.scheme == "https" && ep.port == 443) || (ep.scheme == "http" && ep.port == 80);
  if (!default_port) ep.origin += ":" + std::to_string(ep.port);
  return ep;
}

std::string log_origin(std::string_view endpoint_url) {
  const auto scheme_end = endpoint_url.find("://");
  if (scheme_end == std::string_view::npos) return "(invalid endpoint)";
  const auto rest = endpoint_url.find_first_of("/?#", scheme_end + 3);
  return std::string(endpoint_url.substr(0, rest));
}

}  // namespace webpushd::delivery
