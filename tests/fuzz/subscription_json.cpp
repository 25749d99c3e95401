// The body of POST /v1/subscriptions from a browser: consent validation,
// endpoint rules and p256dh/auth decoding, through the real handler and
// subscriber service. What it accepts must be a subscription that reads
// back (GET /v1/subscriptions/{id} with the token it gave) as sent, and
// whose keys webpush::parse_subscription_keys accepts.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_app.hpp"
#include "webpushd/webpush/subscription_keys.hpp"

using nlohmann::json;
using webpushd::fuzz::fixture;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& app = fixture::instance();
  std::string body(reinterpret_cast<const char*>(data), size);
  auto res = app.dispatch(fixture::make_request(
      "POST", "/v1/subscriptions",
      {{"Content-Type", "application/json"}, {"Origin", "https://www.example-shop.com"}}, body));
  if (res.status != 200 && res.status != 201) {
    FUZZ_CHECK(res.status >= 400 && res.status < 500, res.body);
    return 0;
  }
  const auto sent = json::parse(body, nullptr, false);
  FUZZ_CHECK(sent.is_object(), "accepted a body that is not a JSON object: " + body);
  const auto& keys = sent.at("subscription").at("keys");
  const auto parsed_keys = webpushd::webpush::parse_subscription_keys(keys.at("p256dh").get<std::string>(),
                                                                      keys.at("auth").get<std::string>());
  FUZZ_CHECK(parsed_keys.has_value(), "accepted keys parse_subscription_keys refuses: " + body);

  const auto answer = json::parse(res.body, nullptr, false);
  FUZZ_CHECK(answer.is_object() && answer["id"].is_string() && answer["token"].is_string(), res.body);
  const auto id = answer["id"].get<std::string>();
  auto state = app.dispatch(fixture::make_request(
      "GET", "/v1/subscriptions/" + id, {{"Authorization", "Subscriber " + answer["token"].get<std::string>()}}, ""));
  FUZZ_CHECK(state.status == 200, "an accepted subscription does not read back: " + state.body);
  const auto read = json::parse(state.body, nullptr, false);
  FUZZ_CHECK(read.is_object() && read["id"] == id && read["state"] == "active", state.body);
  auto categories = sent.at("consent").at("categories").get<std::vector<std::string>>();
  std::sort(categories.begin(), categories.end());
  FUZZ_CHECK(read["categories"] == json(categories), state.body + " for " + body);
  FUZZ_CHECK(read["text_version"] == sent.at("consent").at("text_version"), state.body + " for " + body);
  return 0;
}
