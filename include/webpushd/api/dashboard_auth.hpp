#pragma once
/// @file
/// @brief Who may read the dashboard: users from the config, password checks
/// off the I/O threads, failed attempts limited per client address, and the
/// session cookie the login sets.
///
/// The session is a cookie, not server state:
///
///     webpushd_session=v1.<base64url(user)>.<expiry, Unix seconds>.<base64url(MAC)>
///
/// MAC = HMAC-SHA-256 under a key kept in data_dir (`dashboard.key`), over
/// the user, the expiry and a digest of the user's password hash. So a
/// cookie cannot be forged or extended, ends at its expiry whatever the
/// browser does, and stops working when the user is removed from the config
/// or their password changes. Logging out clears it in the browser; a copy
/// taken before stays valid until it expires (`dashboard.session_lifetime`).

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "webpushd/api/failure_limiter.hpp"
#include "webpushd/api/http.hpp"
#include "webpushd/core/bytes.hpp"
#include "webpushd/core/clock.hpp"
#include "webpushd/crypto/password.hpp"

namespace webpushd::api {

/// @brief The cookie's name.
inline constexpr std::string_view session_cookie_name = "webpushd_session";

/// @brief A valid session.
struct dashboard_session {
  std::string user;
  time_point expires_at;
};

/// @brief Signs and checks session cookie values (pure: no I/O, no clock).
class session_codec {
 public:
  /// @brief `key`: at least 32 bytes.
  explicit session_codec(bytes key);
  /// @brief The cookie value for `user` until `expires_at`; `binding` is what
  /// must stay the same for the session to stay valid (the password hash).
  std::string encode(std::string_view user, time_point expires_at, std::string_view binding) const;
  /// @brief The session in `value`, if it is well-formed, signed by this key
  /// for the binding `binding_of(user)` returns (nullopt: no such user), and
  /// not expired at `now`.
  std::optional<dashboard_session> decode(
      std::string_view value, const std::function<std::optional<std::string>(std::string_view user)>& binding_of,
      time_point now) const;

 private:
  std::string mac(std::string_view user, std::int64_t expiry, std::string_view binding) const;
  bytes key_;
};

/// @brief Failed logins per client address (see failure_limiter).
using login_limiter = failure_limiter;

/// @brief The value of cookie `name` in the request's Cookie headers, each
/// occurrence in order (a cookie may be sent twice, e.g. from two paths).
std::vector<std::string> cookie_values(const request& req, std::string_view name);

/// @brief A dashboard user as the daemon holds it.
struct dashboard_user {
  std::string name;
  crypto::password_hash password;  ///< what the password is checked against
  /// @brief What the user's sessions are bound to: when it changes, they end.
  /// The config's hash text (a new password is a new hash), or for the
  /// generated admin a digest of its password (its hash is made anew at each start).
  std::string session_binding;
};

/// @brief Users, sessions, login limits and the password-check thread.
class dashboard_auth {
 public:
  /// @brief Settings.
  struct options {
    std::chrono::seconds session_lifetime{std::chrono::hours{12}};
    bool secure_cookie = false;  ///< `Secure` (the daemon is reached over https)
    login_limiter::limits limits;
    std::size_t max_pending_checks = 16;  ///< password checks waiting at most (more: refused as busy)
  };
  /// @brief `key`: the session key (at least 32 bytes). `clk` must outlive this.
  dashboard_auth(std::vector<dashboard_user> users, bytes key, options o, const clock& clk);
  /// @brief Stops the password-check thread (pending checks are answered `false`).
  ~dashboard_auth();
  dashboard_auth(const dashboard_auth&) = delete;
  dashboard_auth& operator=(const dashboard_auth&) = delete;

  /// @brief The valid session in the request's cookie, if any.
  std::optional<dashboard_session> session_of(const request& req) const;

  /// @brief Checks `name` and `password` on the password-check thread and
  /// calls `done(true|false)` there. An unknown name costs the same as a
  /// wrong password (a hash of the same cost is computed), so the answer's
  /// timing does not tell which names exist. Returns false without calling
  /// `done` when too many checks are waiting.
  bool check_password(std::string name, std::string password, std::function<void(bool)> done);

  /// @brief `Set-Cookie` value starting a session for `user`; `expires_at` is set to its end.
  std::string session_cookie(std::string_view user, time_point& expires_at) const;
  /// @brief `Set-Cookie` value that removes the session cookie.
  std::string clearing_cookie() const;

  /// @brief The failed-login limits.
  login_limiter& limiter() { return limiter_; }
  /// @brief The clock.
  const clock& now_source() const { return clock_; }

 private:
  const dashboard_user* find(std::string_view name) const;
  std::string cookie_attributes() const;
  void run();

  std::vector<dashboard_user> users_;
  crypto::password_hash dummy_;  // checked against for unknown names
  session_codec codec_;
  options options_;
  const clock& clock_;
  login_limiter limiter_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace webpushd::api
