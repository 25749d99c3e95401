// A scenario or campaign message template over the context an event makes:
// the template's syntax check, its variable list and its rendering
// (kainjow/mustache), and the context built from fuzzed event properties
// (aliases, item counts, ICU money texts in the subscriber's locale).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include <fuzzer/FuzzedDataProvider.h>
#include <nlohmann/json.hpp>

#include "fuzz_check.hpp"
#include "webpushd/automation/message.hpp"

using nlohmann::json;
namespace automation = webpushd::automation;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static constexpr std::array<const char*, 9> types{"product_viewed", "cart_updated", "checkout_started",
                                                    "purchase",       "price_dropped", "product_back_in_stock",
                                                    "subscribed",     "wishlist_added", "customer_registered"};
  static constexpr std::array<const char*, 6> locales{"en", "pl-PL", "de-DE", "ja-JP", "ar-EG", "xx-Latn-ZZ"};
  FuzzedDataProvider in(data, size);
  automation::event_view event;
  event.type = in.PickValueInArray(types);
  event.id = "ev-fuzz";
  automation::subscriber_view subscriber;
  subscriber.locale = in.PickValueInArray(locales);
  subscriber.customer_id = in.ConsumeBool() ? "anna" : "";
  const std::string text = in.ConsumeRandomLengthString(1024);
  auto properties = json::parse(in.ConsumeRemainingBytesAsString(), nullptr, false);
  if (properties.is_object()) event.properties = std::move(properties);

  const auto context = automation::make_context(event, subscriber, {"Example Shop", "https://www.example-shop.com"},
                                                "fuzz", "step", 1, webpushd::time_point{});
  const auto checked = automation::check_template(text);
  const auto variables = automation::template_variables(text);
  const auto rendered = automation::render_template(text, context);
  if (!checked) {
    FUZZ_CHECK(checked.error().code == "invalid_template", checked.error().code);
    FUZZ_CHECK(!rendered && rendered.error().code == "invalid_template",
               "check_template refuses what render_template renders: " + text);
  } else if (!rendered) {
    FUZZ_CHECK(rendered.error().code == "missing_field", rendered.error().code + ": " + text);
    FUZZ_CHECK(!rendered.error().field.empty(), text);
    bool listed = false;
    for (const auto& v : variables) listed = listed || v.name == rendered.error().field;
    FUZZ_CHECK(listed, "missing field '" + rendered.error().field + "' is not among the template's variables: " + text);
  }
  return 0;
}
