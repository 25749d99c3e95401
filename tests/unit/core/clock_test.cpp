#include <doctest/doctest.h>

#include "webpushd/core/clock.hpp"

using namespace webpushd;

TEST_CASE("manual_clock moves only when told") {
  manual_clock c{from_unix_millis(1'000)};
  CHECK(unix_millis(c.now()) == 1'000);
  c.advance(std::chrono::seconds{2});
  CHECK(unix_millis(c.now()) == 3'000);
  CHECK(unix_seconds(c.now()) == 3);
  c.set(from_unix_millis(42));
  CHECK(unix_millis(c.now()) == 42);
}
