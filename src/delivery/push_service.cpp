#include "webpushd/delivery/push_service.hpp"

#include "webpushd/delivery/endpoint_rules.hpp"

namespace webpushd::delivery {

const char* to_string(push_service s) noexcept {
  switch (s) {
    case push_service::fcm: return "fcm";
    case push_service::mozilla: return "mozilla";
    case push_service::apple: return "apple";
    case push_service::windows: return "windows";
    case push_service::other: return "other";
  }
  return "other";
}

push_service push_service_of_host(std::string_view host) noexcept {
  // The patterns of default_endpoint_rules(), grouped by operator.
  struct pattern {
    std::string_view host;
    push_service service;
  };
  static constexpr pattern patterns[] = {
      {"fcm.googleapis.com", push_service::fcm},
      {"android.googleapis.com", push_service::fcm},
      {"updates.push.services.mozilla.com", push_service::mozilla},
      {"*.push.services.mozilla.com", push_service::mozilla},
      {"*.push.apple.com", push_service::apple},
      {"*.notify.windows.com", push_service::windows},
  };
  for (const auto& p : patterns) {
    if (host_matches(host, p.host)) return p.service;
  }
  return push_service::other;
}

push_service push_service_of(std::string_view endpoint_url) noexcept {
  const auto scheme_end = endpoint_url.find("://");
  if (scheme_end == std::string_view::npos) return push_service::other;
  auto authority = endpoint_url.substr(scheme_end + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
  // An IPv6 literal is never one of the named services; a port is cut off.
  if (authority.empty() || authority.front() == '[') return push_service::other;
  return push_service_of_host(authority.substr(0, authority.find(':')));
}

}  // namespace webpushd::delivery
