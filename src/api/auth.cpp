#include "webpushd/api/auth.hpp"

#include "text.hpp"

namespace webpushd::api {

api_key_set::api_key_set(const std::vector<api_key>& keys) {
  entries_.reserve(keys.size());
  for (const auto& k : keys) entries_.push_back({k.name, crypto::sha256(as_bytes(k.key))});
}

std::optional<std::string> api_key_set::find(std::string_view presented) const {
  // Digests make every comparison 32 bytes long whatever was presented, and
  // the loop visits every key: the time taken says nothing about which key,
  // if any, came close.
  const auto digest = crypto::sha256(as_bytes(presented));
  const std::string_view d{reinterpret_cast<const char*>(digest.data()), digest.size()};
  const entry* match = nullptr;
  for (const auto& e : entries_) {
    const bool equal =
        crypto::constant_time_equal(d, std::string_view{reinterpret_cast<const char*>(e.digest.data()), e.digest.size()});
    match = equal ? &e : match;
  }
  if (match == nullptr) return std::nullopt;
  return match->name;
}

std::optional<std::string> authorization_credential(const request& req, std::string_view scheme) {
  // Two Authorization headers are ambiguous (which one did a proxy check?): refuse.
  if (req.header_count("Authorization") != 1) return std::nullopt;
  const std::string header = req.header("Authorization");
  const auto value = trim(header);
  if (value.size() <= scheme.size() || value[scheme.size()] != ' ' || !iequals(value.substr(0, scheme.size()), scheme)) {
    return std::nullopt;
  }
  const auto credential = trim(value.substr(scheme.size() + 1));
  if (credential.empty()) return std::nullopt;
  return std::string(credential);
}

result<std::string> authenticate_backend(const api_key_set& keys, const request& req) {
  const auto key = authorization_credential(req, "Bearer");
  if (!key) return fail("unauthorized", "this endpoint needs an API key: Authorization: Bearer <key>");
  auto name = keys.find(*key);
  if (!name) return fail("unauthorized", "the API key is not valid");
  return std::move(*name);
}

result<reader_identity> authenticate_reader(const api_key_set& keys, const session_check& sessions,
                                            const request& req) {
  if (req.header_count("Authorization") > 0) {
    auto name = authenticate_backend(keys, req);
    if (!name) return tl::unexpected(name.error());
    return reader_identity{std::move(*name), {}};
  }
  if (sessions) {
    if (auto user = sessions(req)) return reader_identity{{}, std::move(*user)};
  }
  return fail("unauthorized",
              "this endpoint needs an API key (Authorization: Bearer <key>) or a dashboard session (log in at /dashboard)");
}

result<std::string> subscriber_token(const request& req) {
  auto token = authorization_credential(req, "Subscriber");
  if (!token) return fail("unauthorized", "this endpoint needs the subscription's token: Authorization: Subscriber <token>");
  return std::move(*token);
}

response unauthorized_response(const error& e, std::string_view scheme) {
  auto res = error_response(e);
  res.set_header("WWW-Authenticate", std::string(scheme) + " realm=\"webpushd\"");
  return res;
}

}  // namespace webpushd::api
