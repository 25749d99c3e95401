#pragma once
/// @file
/// @brief Field validation for the subscriber API, as pure functions: each
/// takes already-parsed input and returns the normalised value or an
/// `error{code, message, field}` whose field is the JSON path of the input
/// at fault ("subscription.keys.p256dh", "consent.categories[2]",
/// "timezone"). Nothing here throws or touches storage.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "webpushd/consent/config.hpp"
#include "webpushd/core/error.hpp"
#include "webpushd/delivery/endpoint_rules.hpp"

namespace webpushd::consent {

/// @brief Longest consent text version accepted.
inline constexpr std::size_t max_text_version_length = 64;
/// @brief Longest source URL accepted (before query and fragment are cut).
inline constexpr std::size_t max_source_length = 2048;
/// @brief Longest customer id accepted.
inline constexpr std::size_t max_customer_id_length = 128;

/// @brief A browser PushSubscription, checked.
struct push_subscription {
  std::string endpoint;
  std::string p256dh;  ///< base64url as given (validated: a P-256 point)
  std::string auth;    ///< base64url as given (validated: 16 bytes)
};

/// @brief Checks the endpoint against the delivery rules (codes
/// `invalid_endpoint`, `endpoint_not_allowed`; field "<prefix>.endpoint") and
/// the keys (codes `invalid_p256dh`, `invalid_auth`; fields
/// "<prefix>.keys.p256dh", "<prefix>.keys.auth").
result<push_subscription> validate_push_subscription(std::string_view endpoint, std::string_view p256dh,
                                                     std::string_view auth, const delivery::endpoint_rules& rules,
                                                     std::string_view prefix = "subscription");

/// @brief Whether `name` matches `^[a-z][a-z0-9_]{0,63}$`.
bool is_valid_category_name(std::string_view name) noexcept;

/// @brief Checks that every category is known and listed once; returns them
/// sorted. Codes `unknown_category`, `duplicate_category` with field
/// "<field>[i]"; `invalid_categories` (field "<field>") when empty and
/// `allow_empty` is false.
result<std::vector<std::string>> validate_categories(const std::vector<std::string>& categories,
                                                     const consent_config& config, bool allow_empty,
                                                     std::string_view field = "consent.categories");

/// @brief Non-empty, at most max_text_version_length printable ASCII
/// characters. Code `invalid_text_version`.
result<std::string> validate_text_version(std::string_view version, std::string_view field = "consent.text_version");

/// @brief An IANA time zone name the OS tz database knows ("Europe/Warsaw");
/// empty gives `fallback`. Code `invalid_timezone`, field "timezone".
result<std::string> validate_timezone(std::string_view zone, std::string_view fallback);

/// @brief A BCP 47-like tag: a 2–3 letter language, then subtags of 1–8
/// letters or digits separated by '-' ("pl-PL", "zh-Hant-TW"), at most 35
/// characters; empty gives `fallback`. Code `invalid_locale`, field "locale".
result<std::string> validate_locale(std::string_view locale, std::string_view fallback);

/// @brief Where a consent action came from, as the ledger keeps it: an
/// http(s) page URL with its query and fragment removed (they may carry
/// personal data), at most max_source_length characters; or a backend label
/// (`^backend(:[A-Za-z0-9._-]{1,64})?$`). Empty gives "backend". Code
/// `invalid_source`, field "source".
result<std::string> normalise_source(std::string_view source);

/// @brief Truncates an IP address for the ledger: IPv4 to its /24
/// ("203.0.113.0/24"), IPv6 to its /48 ("2001:db8:1::/48"); an IPv4-mapped
/// IPv6 address counts as IPv4. Empty stays empty (no address known). Code
/// `invalid_ip`, field "ip".
result<std::string> truncate_ip(std::string_view ip);

/// @brief A shop's customer id: 1 to max_customer_id_length characters, no
/// control characters. Code `invalid_customer_id`, field "customer_id".
result<std::string> validate_customer_id(std::string_view customer_id);

/// @brief Whether `id` has the shape of a public subscriber id
/// ("sub_" + 22 base64url characters).
bool is_public_id(std::string_view id) noexcept;

}  // namespace webpushd::consent
