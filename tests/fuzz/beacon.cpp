// A service worker's report, POST /v1/deliveries/{id}/events: the id in the
// path and the JSON body, through the real route (percent-decoding, field
// checks, HMAC verification) and the recorder. Half the inputs carry the
// daemon's real signature for their id, so the fuzzer gets past the check;
// the invariant is that no report is ever accepted without it.
#include <cstddef>
#include <cstdint>
#include <string>

#include <fuzzer/FuzzedDataProvider.h>
#include <nlohmann/json.hpp>

#include "fuzz_app.hpp"

using nlohmann::json;
using webpushd::fuzz::fixture;

namespace {

// Every byte but the unreserved ones escaped, so the router's decoded {id}
// is exactly `id`.
std::string percent_encode(const std::string& id) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : id) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& app = fixture::instance();
  FuzzedDataProvider in(data, size);
  const bool sign = in.ConsumeBool();
  std::string id = in.ConsumeRandomLengthString(64);
  if (id.empty()) id = "x";  // a route parameter is never empty
  std::string body = in.ConsumeRemainingBytesAsString();
  auto value = json::parse(body, nullptr, false);
  if (sign && value.is_object()) {
    value["sig"] = app.delivery_signer().sign(id);
    body = value.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  auto res = app.dispatch(fixture::make_request("POST", "/v1/deliveries/" + percent_encode(id) + "/events",
                                                {{"Content-Type", "application/json"}}, body));
  if (res.status == 202) {
    FUZZ_CHECK(value.is_object() && value["sig"].is_string(), "accepted without a signature: " + body);
    FUZZ_CHECK(app.delivery_signer().verify(id, value["sig"].get<std::string>()),
               "accepted a report whose signature is not the daemon's for id '" + id + "': " + body);
    const auto answer = json::parse(res.body, nullptr, false);
    FUZZ_CHECK(answer.is_object() && answer["recorded"].is_boolean(), res.body);
  } else {
    FUZZ_CHECK(res.status >= 400 && res.status < 500, res.body);
  }
  return 0;
}
