#include "webpushd/webpush/subscription_keys.hpp"

#include <algorithm>

#include "openssl_util.hpp"
#include "webpushd/core/bytes.hpp"

namespace webpushd::webpush {

result<subscription_keys> parse_subscription_keys(std::string_view p256dh_b64url, std::string_view auth_b64url) {
  static constexpr const char* p256dh_field = "keys.p256dh";
  static constexpr const char* auth_field = "keys.auth";
  subscription_keys keys;

  const auto p256dh = base64url_decode(p256dh_b64url);
  if (!p256dh) return fail("invalid_p256dh", "p256dh is not base64url", p256dh_field);
  if (p256dh->size() != keys.p256dh.size())
    return fail("invalid_p256dh", "p256dh must be a 65-byte uncompressed P-256 point", p256dh_field);
  if ((*p256dh)[0] != 0x04)
    return fail("invalid_p256dh", "p256dh must be an uncompressed point (first byte 0x04)", p256dh_field);

  const detail::bn_ctx_ptr bn_ctx{BN_CTX_new()};
  const detail::ec_point_ptr point{EC_POINT_new(detail::p256_group())};
  if (!bn_ctx || !point) return fail("internal_error", "out of memory while checking p256dh", p256dh_field);
  if (!detail::decode_p256_point(*p256dh, point.get(), bn_ctx.get()))
    return fail("invalid_p256dh", "p256dh is not a point on P-256", p256dh_field);

  const auto auth = base64url_decode(auth_b64url);
  if (!auth) return fail("invalid_auth", "auth is not base64url", auth_field);
  if (auth->size() != keys.auth.size()) return fail("invalid_auth", "auth must be exactly 16 bytes", auth_field);

  std::copy(p256dh->begin(), p256dh->end(), keys.p256dh.begin());
  std::copy(auth->begin(), auth->end(), keys.auth.begin());
  return keys;
}

}  // namespace webpushd::webpush
