#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "webpushd/api/http.hpp"

using namespace webpushd::api;

TEST_CASE("status_for is the one mapping from error codes to status") {
  CHECK(status_for("malformed_request") == 400);
  CHECK(status_for("invalid_json") == 400);
  CHECK(status_for("unauthorized") == 401);
  CHECK(status_for("forbidden") == 403);
  CHECK(status_for("not_found") == 404);
  CHECK(status_for("unknown_subscription") == 404);
  CHECK(status_for("method_not_allowed") == 405);
  CHECK(status_for("conflict") == 409);
  CHECK(status_for("already_subscribed") == 409);
  CHECK(status_for("gone") == 410);
  CHECK(status_for("payload_too_large") == 413);
  CHECK(status_for("input_too_large") == 413);
  CHECK(status_for("headers_too_large") == 431);
  CHECK(status_for("unsupported_media_type") == 415);
  CHECK(status_for("invalid_subscription") == 422);
  CHECK(status_for("invalid_p256dh") == 422);
  CHECK(status_for("timezone_invalid") == 422);
  CHECK(status_for("missing_field") == 422);
  CHECK(status_for("consent_required") == 422);
  CHECK(status_for("endpoint_not_allowed") == 422);
  CHECK(status_for("rate_limited") == 429);
  CHECK(status_for("storage_busy") == 503);
  CHECK(status_for("storage_error") == 503);
  CHECK(status_for("shutting_down") == 503);
  CHECK(status_for("crypto_error") == 500);
  CHECK(status_for("") == 500);
}

TEST_CASE("error bodies are exactly {error:{code,message,field}}, field always present") {
  const auto with_field = error_response("invalid_ttl", "ttl must be 0..2592000", "ttl");
  CHECK(with_field.status == 422);
  CHECK(with_field.content_type == "application/json");
  CHECK(nlohmann::json::parse(with_field.body) ==
        nlohmann::json{{"error", {{"code", "invalid_ttl"}, {"message", "ttl must be 0..2592000"}, {"field", "ttl"}}}});

  const auto without = error_response(webpushd::error{"not_found", "no such endpoint", ""});
  const auto j = nlohmann::json::parse(without.body);
  REQUIRE(j.at("error").contains("field"));
  CHECK(j["error"]["field"] == "");
  CHECK(j.size() == 1);
  CHECK(j["error"].size() == 3);
}

TEST_CASE("5xx bodies are generic: the detail is for the log only") {
  const auto internal = error_response("crypto_error", "EVP_PKEY_derive failed at /secret/path", "keys.p256dh");
  CHECK(internal.status == 500);
  CHECK(internal.body.find("EVP") == std::string::npos);
  CHECK(internal.body.find("secret") == std::string::npos);
  CHECK(nlohmann::json::parse(internal.body)["error"]["code"] == "internal_error");

  const auto busy = error_response("storage_busy", "database is locked (webpushd.db)");
  CHECK(busy.status == 503);
  CHECK(busy.body.find("webpushd.db") == std::string::npos);
  CHECK(nlohmann::json::parse(busy.body)["error"]["code"] == "storage_busy");
}

TEST_CASE("a full or read-only disk answers 503 with its own code and a Retry-After, without the file's name") {
  for (const auto& [code, words] : {std::pair{"storage_full", "full"}, std::pair{"storage_read_only", "read-only"}}) {
    const auto res = error_response(code, "statement failed: database or disk is full (/var/lib/webpushd/webpushd.db)");
    CHECK(res.status == 503);
    const auto body = nlohmann::json::parse(res.body);
    CHECK(body["error"]["code"] == code);
    CHECK(body["error"]["message"].get<std::string>().find(words) != std::string::npos);
    CHECK(res.body.find("/var/lib") == std::string::npos);
    bool retry_after = false;
    for (const auto& [name, value] : res.headers) retry_after = retry_after || (name == "Retry-After" && value == "30");
    CHECK(retry_after);
  }
}

TEST_CASE("untrusted bytes in a message never make the JSON encoder throw") {
  const std::string bad_utf8 = "bad \xff\xfe value";
  response r;
  CHECK_NOTHROW(r = error_response("invalid_locale", "unknown locale " + bad_utf8, "locale"));
  CHECK(nlohmann::json::parse(r.body)["error"]["field"] == "locale");
}

TEST_CASE("request headers are found case-insensitively") {
  request req;
  req.headers = {{"Content-Type", "application/json"}, {"X-Two", "a"}, {"x-two", "b"}};
  CHECK(req.header("content-type") == "application/json");
  CHECK(req.header("CONTENT-TYPE") == "application/json");
  CHECK(req.header("Absent").empty());
  CHECK(req.header("X-TWO") == "a");
  CHECK(req.header_count("x-two") == 2);
  CHECK(req.header_count("absent") == 0);
}
