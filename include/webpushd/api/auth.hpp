#pragma once
/// @file
/// @brief The credential schemes, kept apart by construction.
///
/// - Backend (shop servers): `Authorization: Bearer <api key>`, keys from the
///   config, checked here against every configured key in constant time.
/// - Subscriber (a shopper's browser, for its own subscription):
///   `Authorization: Subscriber <token>`; the token is minted when the
///   subscription is created and verified by the consent handlers against
///   the subscription it names.
/// - Dashboard session (a marketer's browser on GET /dashboard): the
///   `webpushd_session` cookie set by POST /dashboard/login, HMAC-signed with
///   an expiry (dashboard_auth.hpp). It opens only `reader` routes — the
///   read-only figures — never a backend route, and a Bearer key opens those
///   too. Reader routes never answer CORS, and the cookie is SameSite=Strict,
///   so another site's page can neither send it nor read the answer.
///
/// The router applies them by route (see access in router.hpp): a backend
/// route accepts only Bearer and only a configured key, so a subscriber token
/// can never open it (it is not in the key set, and sent as Subscriber it is
/// not even looked at); a subscriber route accepts only the Subscriber scheme,
/// so an API key sent as Bearer is refused before the handler runs.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "webpushd/api/http.hpp"
#include "webpushd/crypto/primitives.hpp"

namespace webpushd::api {

/// @brief One configured API key.
struct api_key {
  std::string name;  ///< shown in logs, e.g. "shop-backend"
  std::string key;   ///< the secret; never logged
};

/// @brief The configured backend keys. Keeps only SHA-256 digests, so every
/// comparison is over 32 bytes and leaks neither content nor length.
class api_key_set {
 public:
  /// @brief From the config entries.
  explicit api_key_set(const std::vector<api_key>& keys = {});
  /// @brief The name of the key equal to `presented`, or nullopt. Compares
  /// against every key, without stopping at a match.
  std::optional<std::string> find(std::string_view presented) const;
  /// @brief Whether no key is configured (then backend routes refuse everything).
  bool empty() const { return entries_.empty(); }
  /// @brief How many keys are configured.
  std::size_t size() const { return entries_.size(); }

 private:
  struct entry {
    std::string name;
    crypto::digest256 digest;
  };
  std::vector<entry> entries_;
};

/// @brief The credential of `scheme` in the request's single Authorization
/// header (`<scheme> <credential>`, scheme case-insensitive), or nullopt if the
/// header is absent, repeated, of another scheme, or empty.
std::optional<std::string> authorization_credential(const request& req, std::string_view scheme);

/// @brief Checks `Authorization: Bearer <key>` against `keys`; the key's name
/// on success. Error `unauthorized` (401) otherwise.
result<std::string> authenticate_backend(const api_key_set& keys, const request& req);

/// @brief Checks a request's dashboard session cookie: the user's name, or
/// nullopt when there is no valid session.
using session_check = std::function<std::optional<std::string>(const request&)>;

/// @brief Who a reader route is serving.
struct reader_identity {
  std::string api_key_name;  ///< set when a Bearer API key was presented
  std::string user;          ///< set when a dashboard session was
};

/// @brief The `reader` rule: with an `Authorization` header it must be a
/// valid Bearer key (a wrong key is refused even if a session cookie is
/// there: the caller meant the key); without one, a valid session cookie.
/// Error `unauthorized` (401) otherwise.
result<reader_identity> authenticate_reader(const api_key_set& keys, const session_check& sessions,
                                            const request& req);

/// @brief The token from `Authorization: Subscriber <token>` (unverified).
/// Error `unauthorized` (401) if absent or of another scheme.
result<std::string> subscriber_token(const request& req);

/// @brief A 401 response for `e` with `WWW-Authenticate: <scheme>`.
response unauthorized_response(const error& e, std::string_view scheme);

}  // namespace webpushd::api
