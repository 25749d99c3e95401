#include "webpushd/consent/validation.hpp"

#include <arpa/inet.h>
#include <date/tz.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <exception>
#include <set>

#include "webpushd/webpush/subscription_keys.hpp"

namespace webpushd::consent {
namespace {

bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return is_lower(c) || (c >= 'A' && c <= 'Z'); }
bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }
bool is_base64url(char c) { return is_alnum(c) || c == '-' || c == '_'; }

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7f;
  });
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// The characters IANA zone names use ("America/Argentina/Buenos_Aires",
// "Etc/GMT+5"); anything else is refused before the tz database is asked.
bool plausible_zone_name(std::string_view zone) {
  if (zone.empty() || zone.size() > 64 || zone.front() == '/' || zone.find("..") != std::string_view::npos) {
    return false;
  }
  return std::all_of(zone.begin(), zone.end(),
                     [](char c) { return is_alnum(c) || c == '/' || c == '_' || c == '-' || c == '+'; });
}

}  // namespace

result<push_subscription> validate_push_subscription(std::string_view endpoint, std::string_view p256dh,
                                                     std::string_view auth, const delivery::endpoint_rules& rules,
                                                     std::string_view prefix) {
  const std::string base = prefix.empty() ? std::string{} : std::string{prefix} + ".";
  auto checked = delivery::check_endpoint(endpoint, rules);
  if (!checked) return fail(checked.error().code, checked.error().message, base + "endpoint");
  auto keys = webpush::parse_subscription_keys(p256dh, auth);
  if (!keys) {
    const bool is_auth = keys.error().code == "invalid_auth";
    return fail(keys.error().code, keys.error().message, base + (is_auth ? "keys.auth" : "keys.p256dh"));
  }
  return push_subscription{std::string{endpoint}, std::string{p256dh}, std::string{auth}};
}

bool is_valid_category_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64 || !is_lower(name.front())) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return is_lower(c) || is_digit(c) || c == '_'; });
}

result<std::vector<std::string>> validate_categories(const std::vector<std::string>& categories,
                                                     const consent_config& config, bool allow_empty,
                                                     std::string_view field) {
  if (categories.empty() && !allow_empty) {
    return fail("invalid_categories", "at least one consent category is required", std::string{field});
  }
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < categories.size(); ++i) {
    const std::string path = std::string{field} + "[" + std::to_string(i) + "]";
    if (!is_known_category(config, categories[i])) {
      // The name is not echoed: it is client input and may be anything.
      return fail("unknown_category", "not a consent category this shop offers", path);
    }
    if (!seen.insert(categories[i]).second) return fail("duplicate_category", "category listed twice", path);
  }
  std::vector<std::string> sorted(categories);
  std::sort(sorted.begin(), sorted.end());
  return sorted;
}

result<std::string> validate_text_version(std::string_view version, std::string_view field) {
  const bool printable = std::all_of(version.begin(), version.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c > 0x20 && c < 0x7f;
  });
  if (version.empty() || version.size() > max_text_version_length || !printable) {
    return fail("invalid_text_version", "the consent text version must be 1 to 64 printable characters",
                std::string{field});
  }
  return std::string{version};
}

result<std::string> validate_timezone(std::string_view zone, std::string_view fallback) {
  if (zone.empty()) zone = fallback;
  if (plausible_zone_name(zone)) {
    try {
      // date's API reports an unknown zone by throwing; it stops here.
      return std::string{date::locate_zone(zone)->name()};
    } catch (const std::exception&) {
    }
  }
  return fail("invalid_timezone", "not an IANA time zone name (like Europe/Warsaw)", "timezone");
}

result<std::string> validate_locale(std::string_view locale, std::string_view fallback) {
  if (locale.empty()) locale = fallback;
  const auto bad = [] { return fail("invalid_locale", "not a language tag (like pl-PL)", "locale"); };
  if (locale.empty() || locale.size() > 35) return bad();
  std::size_t start = 0;
  bool first = true;
  for (;;) {
    const std::size_t dash = locale.find('-', start);
    const std::string_view part = locale.substr(start, dash == std::string_view::npos ? dash : dash - start);
    if (first) {
      if (part.size() < 2 || part.size() > 3 || !std::all_of(part.begin(), part.end(), is_alpha)) return bad();
    } else if (part.empty() || part.size() > 8 || !std::all_of(part.begin(), part.end(), is_alnum)) {
      return bad();
    }
    first = false;
    if (dash == std::string_view::npos) break;
    start = dash + 1;
  }
  return std::string{locale};
}

result<std::string> normalise_source(std::string_view source) {
  if (source.empty()) return std::string{"backend"};
  const auto bad = [](std::string message) { return fail("invalid_source", std::move(message), "source"); };
  if (starts_with_ci(source, "https://") || starts_with_ci(source, "http://")) {
    if (source.size() > max_source_length) return bad("the source URL is longer than 2048 characters");
    if (has_control(source) || source.find(' ') != std::string_view::npos) {
      return bad("the source URL contains spaces or control characters");
    }
    // Query strings and fragments carry e-mail addresses, session ids and
    // campaign ids; the ledger needs the page, not the visit.
    const std::size_t cut = source.find_first_of("?#");
    const std::string_view page = source.substr(0, cut);
    const std::size_t scheme_end = page.find("://") + 3;
    if (page.size() <= scheme_end) return bad("the source URL has no host");
    return std::string{page};
  }
  // A subscriber's browser that named no page (no source_url, no usable
  // Origin): still the subscriber acting, never to be mistaken for the shop.
  if (source == "backend" || source == "browser") return std::string{source};
  if (source.size() > 8 + 64 || source.substr(0, 8) != "backend:" || source.size() == 8) {
    return bad("the source must be a page URL, 'browser' or 'backend[:label]'");
  }
  const std::string_view label = source.substr(8);
  if (!std::all_of(label.begin(), label.end(), [](char c) { return is_alnum(c) || c == '.' || c == '_' || c == '-'; })) {
    return bad("the source must be a page URL, 'browser' or 'backend[:label]'");
  }
  return std::string{source};
}

result<std::string> truncate_ip(std::string_view ip) {
  if (ip.empty()) return std::string{};
  const auto bad = [] { return fail("invalid_ip", "not an IPv4 or IPv6 address", "ip"); };
  if (ip.size() > 45) return bad();
  const std::string text{ip};
  std::array<unsigned char, 16> raw{};
  char out[64];
  if (inet_pton(AF_INET, text.c_str(), raw.data()) == 1) {
    std::snprintf(out, sizeof out, "%u.%u.%u.0/24", raw[0], raw[1], raw[2]);
    return std::string{out};
  }
  if (inet_pton(AF_INET6, text.c_str(), raw.data()) != 1) return bad();
  const bool v4_mapped = std::all_of(raw.begin(), raw.begin() + 10, [](unsigned char b) { return b == 0; }) &&
                         raw[10] == 0xff && raw[11] == 0xff;
  if (v4_mapped) {
    std::snprintf(out, sizeof out, "%u.%u.%u.0/24", raw[12], raw[13], raw[14]);
    return std::string{out};
  }
  std::fill(raw.begin() + 6, raw.end(), 0);
  char printed[INET6_ADDRSTRLEN];
  if (inet_ntop(AF_INET6, raw.data(), printed, sizeof printed) == nullptr) return bad();
  return std::string{printed} + "/48";
}

result<std::string> validate_customer_id(std::string_view customer_id) {
  if (customer_id.empty() || customer_id.size() > max_customer_id_length || has_control(customer_id)) {
    return fail("invalid_customer_id", "the customer id must be 1 to 128 characters without control characters",
                "customer_id");
  }
  return std::string{customer_id};
}

bool is_public_id(std::string_view id) noexcept {
  return id.size() == 26 && id.substr(0, 4) == "sub_" && std::all_of(id.begin() + 4, id.end(), is_base64url);
}

}  // namespace webpushd::consent
