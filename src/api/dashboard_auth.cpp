#include "webpushd/api/dashboard_auth.hpp"

#include <algorithm>
#include <charconv>

#include "text.hpp"
#include "webpushd/crypto/primitives.hpp"

namespace webpushd::api {

namespace {

constexpr std::string_view version_tag = "v1";

}  // namespace

// ---------------------------------------------------------------- session_codec

session_codec::session_codec(bytes key) : key_(std::move(key)) {}

std::string session_codec::mac(std::string_view user, std::int64_t expiry, std::string_view binding) const {
  // Length-prefixed fields: no two (user, expiry, binding) give the same input.
  std::string input = "webpushd dashboard session v1";
  const std::string expiry_text = std::to_string(expiry);
  for (const std::string_view field : {user, std::string_view(expiry_text), binding}) {
    input += '\n' + std::to_string(field.size()) + ':';
    input += field;
  }
  const auto digest = crypto::hmac_sha256(key_, as_bytes(input));
  return base64url_encode(digest);
}

std::string session_codec::encode(std::string_view user, time_point expires_at, std::string_view binding) const {
  const auto expiry = unix_seconds(expires_at);
  return std::string(version_tag) + "." + base64url_encode(as_bytes(user)) + "." + std::to_string(expiry) + "." +
         mac(user, expiry, binding);
}

std::optional<dashboard_session> session_codec::decode(
    std::string_view value, const std::function<std::optional<std::string>(std::string_view)>& binding_of,
    time_point now) const {
  const auto parts = split(value, '.');
  if (parts.size() != 4 || parts[0] != version_tag) return std::nullopt;
  const auto user_bytes = base64url_decode(parts[1]);
  if (!user_bytes || user_bytes->empty()) return std::nullopt;
  const std::string user(user_bytes->begin(), user_bytes->end());
  std::int64_t expiry = 0;
  const auto [end, ec] = std::from_chars(parts[2].data(), parts[2].data() + parts[2].size(), expiry);
  if (ec != std::errc{} || end != parts[2].data() + parts[2].size()) return std::nullopt;
  const auto binding = binding_of(user);
  if (!binding) return std::nullopt;
  if (!crypto::constant_time_equal(mac(user, expiry, *binding), parts[3])) return std::nullopt;
  const time_point expires_at{std::chrono::seconds{expiry}};
  if (expires_at <= now) return std::nullopt;
  return dashboard_session{user, expires_at};
}

// ---------------------------------------------------------------- cookies

std::vector<std::string> cookie_values(const request& req, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& [header, value] : req.headers) {
    if (!iequals(header, "Cookie")) continue;
    for (const auto piece : split(value, ';')) {
      const auto pair = trim(piece);
      const auto eq = pair.find('=');
      if (eq == std::string_view::npos || trim(pair.substr(0, eq)) != name) continue;
      auto v = trim(pair.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      out.emplace_back(v);
    }
  }
  return out;
}

// ---------------------------------------------------------------- dashboard_auth

dashboard_auth::dashboard_auth(std::vector<dashboard_user> users, bytes key, options o, const clock& clk)
    : users_(std::move(users)), codec_(std::move(key)), options_(o), clock_(clk), limiter_(o.limits) {
  // Unknown names are checked against a hash of the same cost as a real
  // user's (no need to compute one: a random key simply never matches).
  dummy_.params = users_.empty() ? crypto::scrypt_params{} : users_.front().password.params;
  dummy_.salt = crypto::random_bytes(16);
  dummy_.key = crypto::random_bytes(32);
  worker_ = std::thread([this] { run(); });
}

dashboard_auth::~dashboard_auth() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
}

void dashboard_auth::run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

const dashboard_user* dashboard_auth::find(std::string_view name) const {
  const auto it = std::find_if(users_.begin(), users_.end(), [&](const auto& u) { return u.name == name; });
  return it == users_.end() ? nullptr : &*it;
}

std::optional<dashboard_session> dashboard_auth::session_of(const request& req) const {
  const auto binding_of = [this](std::string_view user) -> std::optional<std::string> {
    const auto* u = find(user);
    if (u == nullptr) return std::nullopt;
    return u->session_binding;
  };
  const auto now = clock_.now();
  for (const auto& value : cookie_values(req, session_cookie_name)) {
    if (auto s = codec_.decode(value, binding_of, now)) return s;
  }
  return std::nullopt;
}

bool dashboard_auth::check_password(std::string name, std::string password, std::function<void(bool)> done) {
  std::lock_guard lock(mutex_);
  if (stopping_ || jobs_.size() >= options_.max_pending_checks) return false;
  jobs_.push_back([this, name = std::move(name), password = std::move(password), done = std::move(done)] {
    const auto* user = find(name);
    const bool match = crypto::verify_password(user != nullptr ? user->password : dummy_, password);
    done(user != nullptr && match);
  });
  wake_.notify_one();
  return true;
}

std::string dashboard_auth::cookie_attributes() const {
  return std::string("; Path=/; HttpOnly; SameSite=Strict") + (options_.secure_cookie ? "; Secure" : "");
}

std::string dashboard_auth::session_cookie(std::string_view user, time_point& expires_at) const {
  const auto* u = find(user);
  expires_at = std::chrono::floor<std::chrono::seconds>(clock_.now()) + options_.session_lifetime;
  const auto value = codec_.encode(user, expires_at, u != nullptr ? u->session_binding : std::string{});
  return std::string(session_cookie_name) + "=" + value +
         "; Max-Age=" + std::to_string(options_.session_lifetime.count()) + cookie_attributes();
}

std::string dashboard_auth::clearing_cookie() const {
  return std::string(session_cookie_name) + "=; Max-Age=0" + cookie_attributes();
}

}  // namespace webpushd::api
