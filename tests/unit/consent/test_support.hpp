#pragma once
// Shared by the consent tests: a shop's consent configuration and a valid
// browser key pair (the RFC 8291 Appendix A user agent keys).

#include <string>
#include <string_view>

#include "webpushd/consent/config.hpp"

namespace webpushd::consent::testing {

inline constexpr std::string_view p256dh =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
inline constexpr std::string_view auth = "BTBZMqHH6r4Tts7J_aSIgg";

/// @brief Three categories with English and Polish texts, text version "2024-05".
inline consent_config shop_config() {
  consent_config c;
  c.text_version = "2024-05";
  for (const char* name : {"cart_reminders", "recommendations", "promotions"}) {
    c.categories.push_back({name, {{"en", {std::string{name}, "about " + std::string{name}}},
                                   {"pl", {"pl " + std::string{name}, ""}}}});
  }
  return c;
}

}  // namespace webpushd::consent::testing
