#include "webpushd/delivery/retry.hpp"

#include <algorithm>
#include <cmath>

#include <doctest/doctest.h>

using namespace webpushd;
using namespace webpushd::delivery;
using std::chrono::milliseconds;

namespace {

/// Always the same draw: makes the jitter's bounds observable.
class fixed_source final : public random_source {
 public:
  explicit fixed_source(double v) : v_(v) {}
  double uniform() override { return v_; }

 private:
  double v_;
};

}  // namespace

TEST_CASE("without jitter, delays double up to the cap") {
  retry_policy p;
  p.base = milliseconds{1000};
  p.cap = milliseconds{60'000};
  p.jitter = 0.0;
  prng_source rng(1);
  CHECK(p.delay_after(1, rng) == milliseconds{1000});
  CHECK(p.delay_after(2, rng) == milliseconds{2000});
  CHECK(p.delay_after(3, rng) == milliseconds{4000});
  CHECK(p.delay_after(6, rng) == milliseconds{32'000});
  CHECK(p.delay_after(7, rng) == milliseconds{60'000});
  CHECK(p.delay_after(1000, rng) == milliseconds{60'000});
  CHECK(p.delay_after(0, rng) == milliseconds{1000});
  CHECK(p.delay_after(-3, rng) == milliseconds{1000});
}

TEST_CASE("jitter stays within [(1-j)d, d] and never exceeds the cap") {
  retry_policy p;  // defaults: 1 s base, 1 h cap, jitter 0.5
  prng_source rng(42);
  for (int attempt = 1; attempt <= 40; ++attempt) {
    const double full = std::min(1000.0 * std::ldexp(1.0, std::min(attempt - 1, 62)), 3'600'000.0);
    for (int i = 0; i < 50; ++i) {
      const auto d = p.delay_after(attempt, rng);
      CAPTURE(attempt);
      CHECK(d.count() <= static_cast<long long>(full));
      CHECK(d.count() >= static_cast<long long>(full * 0.5) - 1);
      CHECK(d <= p.cap);
    }
  }
  fixed_source low(0.0), high(0.999999);
  CHECK(p.delay_after(3, low) == milliseconds{4000});
  CHECK(p.delay_after(3, high) == milliseconds{2000});
}

TEST_CASE("delays grow on average with the attempt count") {
  retry_policy p;
  prng_source rng(7);
  double previous = 0;
  for (int attempt = 1; attempt <= 10; ++attempt) {
    double sum = 0;
    for (int i = 0; i < 200; ++i) sum += static_cast<double>(p.delay_after(attempt, rng).count());
    CHECK(sum / 200 > previous);
    previous = sum / 200;
  }
}

TEST_CASE("the same seed gives the same delays") {
  retry_policy p;
  prng_source a(99), b(99);
  for (int attempt = 1; attempt < 10; ++attempt) CHECK(p.delay_after(attempt, a) == p.delay_after(attempt, b));
}

TEST_CASE("Retry-After wins over backoff; the attempt budget") {
  retry_policy p;
  fixed_source rng(0.0);
  classification c{outcome::rate_limited, std::chrono::seconds{7}, "rate limited"};
  CHECK(p.delay_for(c, 5, rng) == milliseconds{7000});
  c.retry_after.reset();
  CHECK(p.delay_for(c, 2, rng) == milliseconds{2000});
  CHECK(p.may_retry(1));
  CHECK(p.may_retry(7));
  CHECK_FALSE(p.may_retry(8));
  CHECK(is_retryable(outcome::rate_limited));
  CHECK(is_retryable(outcome::temporary_failure));
  CHECK_FALSE(is_retryable(outcome::gone));
  CHECK_FALSE(is_retryable(outcome::rejected));
  CHECK_FALSE(is_retryable(outcome::payload_too_large));
  CHECK_FALSE(is_retryable(outcome::accepted));
}
