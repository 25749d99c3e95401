#pragma once
/// @file
/// @brief Which push endpoints the daemon may call.
///
/// A subscription's endpoint is user input: a browser (or anyone posing as
/// one) chooses the URL the daemon will POST to. These rules keep that URL
/// from turning the daemon into a proxy towards internal services. They are
/// checked twice: on the URL text (check_endpoint, before anything is stored
/// or sent) and on the resolved address at connect time (is_internal_address,
/// used by the sender), because DNS can point an allowed-looking name anywhere.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "webpushd/core/bytes.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::delivery {

/// @brief The allowlist and the two test-only relaxations.
struct endpoint_rules {
  /// @brief Exact host ("fcm.googleapis.com") or suffix pattern ("*.push.apple.com",
  /// which matches any proper subdomain but not "push.apple.com" itself).
  /// Compared case-insensitively. An empty list allows no host at all.
  std::vector<std::string> allowed_hosts;
  /// @brief Permit plain-http endpoints (tests and emulators only).
  bool allow_http = false;
  /// @brief Permit IP-literal hosts and loopback/private/link-local targets (tests only).
  bool allow_private_addresses = false;
};

/// @brief The push services browsers use: FCM (Chrome, Edge, Opera…), Mozilla
/// autopush (Firefox), Apple (Safari) and WNS (legacy Edge).
endpoint_rules default_endpoint_rules();

/// @brief A checked endpoint URL, split into the parts the sender and VAPID need.
struct endpoint {
  std::string url;     ///< the URL as given (already validated)
  std::string scheme;  ///< "https" or "http" (lower case)
  std::string host;    ///< lower case; an IPv6 literal without brackets
  std::uint16_t port = 0;  ///< explicit or the scheme's default
  std::string origin;  ///< scheme://host[:port], default port omitted (the VAPID audience)
};

/// @brief Largest endpoint URL accepted (FCM and Mozilla URLs are far shorter).
inline constexpr std::size_t max_endpoint_length = 2048;

/// @brief Parses `url` strictly and checks it against `rules`.
///
/// Accepts `http(s)://host[:port][/path][?query]` only: no userinfo, no
/// fragment, no percent-encoding or non-ASCII in the host, no spaces or
/// control characters anywhere. Host names that are IP literals in any form a
/// resolver might accept ("127.0.0.1", "[::1]", "0x7f.1", "2130706433") are
/// refused unless `allow_private_addresses`.
/// Errors (field "endpoint"): `invalid_endpoint` for a malformed URL,
/// `endpoint_not_allowed` for a well-formed URL the rules refuse.
result<endpoint> check_endpoint(std::string_view url, const endpoint_rules& rules);

/// @brief Whether `host` matches one allowlist entry (exact, or "*.suffix").
/// Both are compared case-insensitively.
bool host_matches(std::string_view host, std::string_view pattern) noexcept;

/// @brief Whether an IP address (4 bytes IPv4 or 16 bytes IPv6, network
/// order) is one the daemon must not connect to without
/// `allow_private_addresses`: unspecified, loopback, RFC 1918 private,
/// CGNAT 100.64/10, link-local (incl. 169.254.169.254 cloud metadata),
/// "this network" 0/8, benchmarking 198.18/15, IETF 192.0.0/24, documentation
/// ranges, multicast, reserved 240/4 and broadcast; IPv6 loopback,
/// unspecified, ULA fc00::/7, link-local fe80::/10, site-local fec0::/10,
/// multicast ff00::/8, documentation 2001:db8::/32, discard 100::/64, and
/// the IPv4 ranges above when embedded as IPv4-mapped (::ffff:0:0/96),
/// IPv4-compatible (::/96), NAT64 (64:ff9b::/96) or 6to4 (2002::/16).
/// Any other length counts as internal (refuse what we cannot judge).
bool is_internal_address(byte_view ip) noexcept;

/// @brief `scheme://authority` of an endpoint, for logs and CLI output.
/// The rest of an endpoint URL identifies one browser, so it is never
/// printed; this works on any text (stored rows may predate today's rules)
/// and gives "(invalid endpoint)" when there is no scheme.
std::string log_origin(std::string_view endpoint_url);

}  // namespace webpushd::delivery
