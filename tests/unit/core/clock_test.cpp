#include <doctest/doctest.h>

#include <limits>

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

TEST_CASE("from_unix_millis saturates instead of overflowing") {
  CHECK(from_unix_millis(9'999'999'999'999) == time_point::max());  // year 2286
  CHECK(from_unix_millis(std::numeric_limits<std::int64_t>::max()) == time_point::max());
  CHECK(from_unix_millis(std::numeric_limits<std::int64_t>::min()) == time_point::min());
  CHECK(unix_millis(from_unix_millis(4'102'444'800'000)) == 4'102'444'800'000);  // 2100 still exact
}
