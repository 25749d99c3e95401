#pragma once
/// @file
/// @brief Which push service an endpoint belongs to, as a small fixed set:
/// what metrics and the status page group deliveries by. Never the raw host,
/// which is per-deployment (and, for other services, chosen by whoever made
/// the subscription), so it must not become a label.

#include <cstddef>
#include <string_view>

namespace webpushd::delivery {

/// @brief The push services browsers use, and everything else.
enum class push_service {
  fcm,      ///< Firebase Cloud Messaging (Chrome, Edge, Opera, Samsung Internet …)
  mozilla,  ///< Mozilla autopush (Firefox)
  apple,    ///< Apple's web push gateway (Safari)
  windows,  ///< Windows Push Notification Services (legacy Edge)
  other,    ///< any other host (a self-hosted or test push service)
};

/// @brief How many push_service values there are (for arrays indexed by it).
inline constexpr std::size_t push_service_count = 5;

/// @brief "fcm", "mozilla", "apple", "windows" or "other".
const char* to_string(push_service s) noexcept;

/// @brief The service a host name (lower or mixed case, no port) belongs to,
/// by the same host patterns as default_endpoint_rules().
push_service push_service_of_host(std::string_view host) noexcept;

/// @brief The service an endpoint URL belongs to; `other` for anything that
/// is not an absolute URL with a host.
push_service push_service_of(std::string_view endpoint_url) noexcept;

}  // namespace webpushd::delivery
