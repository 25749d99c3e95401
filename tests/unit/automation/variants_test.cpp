// variants.hpp: the A/B assignment rule — the documented hash (checked
// against values computed independently with Python's hashlib), the split
// over many journeys against the weights (a chi-square bound: the hash is
// deterministic, so the statistic is a fixed number, printed on failure),
// extreme weights, and what changing weights does.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "webpushd/automation/variants.hpp"

namespace webpushd::automation {
namespace {

std::vector<variant_def> variants(std::vector<std::pair<std::string, double>> arms) {
  std::vector<variant_def> out;
  for (auto& [name, weight] : arms) out.push_back({std::move(name), weight, {}});
  return out;
}

constexpr std::string_view source = "scenario:abandoned_cart/first_reminder";

std::string person(int i) { return "c:customer-" + std::to_string(i); }

// How many of `n` journeys (persons customer-0 …, no key) get each variant.
std::vector<int> split(const std::vector<variant_def>& vs, int n) {
  std::vector<int> counts(vs.size(), 0);
  for (int i = 0; i < n; ++i) {
    const auto& v = assign_variant(vs, source, person(i), "");
    ++counts[static_cast<std::size_t>(&v - vs.data())];
  }
  return counts;
}

double chi_square(const std::vector<int>& counts, const std::vector<variant_def>& vs) {
  double total_weight = 0;
  for (const auto& v : vs) total_weight += v.weight;
  int n = 0;
  for (const int c : counts) n += c;
  double chi = 0;
  for (std::size_t i = 0; i < vs.size(); ++i) {
    const double expected = n * vs[i].weight / total_weight;
    chi += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi;
}

}  // namespace

TEST_CASE("variants: the point is the documented SHA-256 rule (values from an independent Python implementation)") {
  // F = lambda s: len(s.encode()).to_bytes(4, "big") + s.encode()
  // h = sha256(F("webpushd.variant.v1") + F(source) + F(who) + F(key)); (int(h[:8]) >> 11) / 2**53
  CHECK(assignment_point("scenario:abandoned_cart/first_reminder", "c:anna", "cart-1") == 0.3773401818275498);
  CHECK(assignment_point("scenario:abandoned_cart/first_reminder", "c:dan", "cart-2") == 0.5765622148165284);
  CHECK(assignment_point("campaign:cmp_spring", "sub_ABC", "") == 0.6924262371520237);
  CHECK(assignment_point("", "", "") == 0.6120368287773889);
  CHECK(assignment_point("scenario:x/y", "s:zażółć", "") == 0.4881490382045076);  // UTF-8 bytes counted
  // The fields are length-prefixed: moving a character across a boundary is another input.
  CHECK(assignment_point("ab", "c", "") != assignment_point("a", "bc", ""));
}

TEST_CASE("variants: the same journey always gets the same variant; the person and the key both count") {
  const auto vs = variants({{"a", 50}, {"b", 50}});
  const auto& first = assign_variant(vs, source, "c:anna", "cart-1");
  for (int i = 0; i < 5; ++i) CHECK(&assign_variant(vs, source, "c:anna", "cart-1") == &first);
  CHECK(first.name == "a");  // 0.377… × 100 < 50
  CHECK(assign_variant(vs, source, "c:dan", "cart-2").name == "b");  // 0.576… × 100 ≥ 50
  // Another step of the same journey draws on its own.
  int differs_by_step = 0;
  int differs_by_key = 0;
  for (int i = 0; i < 200; ++i) {
    const auto& here = assign_variant(vs, source, person(i), "k");
    if (&assign_variant(vs, "scenario:abandoned_cart/second_reminder", person(i), "k") != &here) ++differs_by_step;
    if (&assign_variant(vs, source, person(i), "other-key") != &here) ++differs_by_key;
  }
  CHECK(differs_by_step > 50);
  CHECK(differs_by_key > 50);
}

TEST_CASE("variants: 20,000 journeys split close to the weights (chi-square below the 0.1 % critical value)") {
  constexpr int n = 20'000;
  SUBCASE("50/50") {
    const auto vs = variants({{"a", 50}, {"b", 50}});
    const auto counts = split(vs, n);
    const double chi = chi_square(counts, vs);
    INFO("a=" << counts[0] << " b=" << counts[1] << " chi²=" << chi);
    CHECK(chi < 10.83);  // 1 degree of freedom
    CHECK(counts[0] > 9'700);
    CHECK(counts[1] > 9'700);
  }
  SUBCASE("70/20/10, written as fractions") {
    const auto vs = variants({{"control", 0.7}, {"short", 0.2}, {"emoji", 0.1}});
    const auto counts = split(vs, n);
    const double chi = chi_square(counts, vs);
    INFO("control=" << counts[0] << " short=" << counts[1] << " emoji=" << counts[2] << " chi²=" << chi);
    CHECK(chi < 13.82);  // 2 degrees of freedom
  }
  SUBCASE("ten equal variants") {
    std::vector<std::pair<std::string, double>> arms;
    for (int i = 0; i < 10; ++i) arms.emplace_back("v" + std::to_string(i), 1);
    const auto vs = variants(arms);
    const auto counts = split(vs, n);
    const double chi = chi_square(counts, vs);
    INFO("chi²=" << chi);
    CHECK(chi < 27.88);  // 9 degrees of freedom
  }
}

TEST_CASE("variants: extreme weights") {
  constexpr int n = 20'000;
  SUBCASE("1 : 999 — about 20 of 20,000 get the rare one, and not none") {
    const auto counts = split(variants({{"rare", 1}, {"common", 999}}), n);
    INFO("rare=" << counts[0]);
    CHECK(counts[0] > 0);
    CHECK(counts[0] < 60);
  }
  SUBCASE("1,000,000 : 0.001 — a share of one in a billion reaches none of 20,000") {
    const auto counts = split(variants({{"huge", 1'000'000}, {"tiny", 0.001}}), n);
    CHECK(counts[1] == 0);
  }
  SUBCASE("a weight of 0 (refused by the checks) is never chosen, wherever it stands") {
    CHECK(split(variants({{"off", 0}, {"on", 1}}), 2'000)[0] == 0);
    CHECK(split(variants({{"on", 1}, {"off", 0}}), 2'000)[1] == 0);
  }
  SUBCASE("pick_weighted at the edges of [0, 1)") {
    CHECK(pick_weighted({1, 1}, 0.0) == 0);
    CHECK(pick_weighted({1, 1}, 0.5) == 1);  // a boundary belongs to the next variant
    CHECK(pick_weighted({1, 1}, 0x1.fffffffffffffp-1) == 1);
    CHECK(pick_weighted({3}, 0.99) == 0);
    CHECK(pick_weighted({0.1, 0.2, 0.3}, 0x1.fffffffffffffp-1) == 2);  // rounding never runs past the last
  }
}

TEST_CASE("variants: only the ratios of the weights count; raising a weight moves journeys one way only") {
  constexpr int n = 5'000;
  const auto percent = variants({{"a", 50}, {"b", 50}});
  const auto units = variants({{"a", 1}, {"b", 1}});
  const auto more_a = variants({{"a", 60}, {"b", 40}});
  int moved_to_a = 0;
  for (int i = 0; i < n; ++i) {
    const auto before = assign_variant(percent, source, person(i), "").name;
    CHECK(assign_variant(units, source, person(i), "").name == before);
    const auto after = assign_variant(more_a, source, person(i), "").name;
    if (before == "a") CHECK(after == "a");  // a's share grew: nobody leaves it
    if (before == "b" && after == "a") ++moved_to_a;
  }
  // About a tenth of everyone (b's lost share) moved.
  CHECK(moved_to_a > n / 10 - 150);
  CHECK(moved_to_a < n / 10 + 150);
}

TEST_CASE("variants: names") {
  CHECK(valid_variant_name("a"));
  CHECK(valid_variant_name("short-text_2"));
  CHECK(valid_variant_name(std::string(32, 'x')));
  CHECK_FALSE(valid_variant_name(""));
  CHECK_FALSE(valid_variant_name(std::string(33, 'x')));
  CHECK_FALSE(valid_variant_name("B"));
  CHECK_FALSE(valid_variant_name("a b"));
  CHECK_FALSE(valid_variant_name("ä"));
}

}  // namespace webpushd::automation
