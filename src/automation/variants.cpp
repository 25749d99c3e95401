#include "webpushd/automation/variants.hpp"

#include <algorithm>
#include <cassert>
#include <cstdint>

#include "webpushd/core/bytes.hpp"
#include "webpushd/crypto/primitives.hpp"

namespace webpushd::automation {
namespace {

constexpr std::string_view domain = "webpushd.variant.v1";

void append_field(bytes& out, std::string_view text) {
  const auto n = static_cast<std::uint32_t>(text.size());
  for (const int shift : {24, 16, 8, 0}) out.push_back(static_cast<std::uint8_t>(n >> shift));
  out.insert(out.end(), text.begin(), text.end());
}

}  // namespace

double assignment_point(std::string_view source, std::string_view who, std::string_view key) {
  bytes input;
  input.reserve(16 + domain.size() + source.size() + who.size() + key.size());
  for (const auto field : {domain, source, who, key}) append_field(input, field);
  const auto digest = crypto::sha256(input);
  std::uint64_t x = 0;
  for (std::size_t i = 0; i < 8; ++i) x = (x << 8) | digest[i];
  // 53 bits fill a double's mantissa exactly: every value is representable,
  // so the point is the same on every IEEE 754 machine and in Python.
  return static_cast<double>(x >> 11) * 0x1p-53;
}

std::size_t pick_weighted(const std::vector<double>& weights, double point) {
  assert(!weights.empty());
  double total = 0;
  for (const double w : weights) total += std::max(w, 0.0);
  const double p = point * total;
  double cumulative = 0;
  std::size_t last_positive = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] <= 0) continue;
    cumulative += weights[i];
    last_positive = i;
    if (p < cumulative) return i;
  }
  // Only rounding of the sums gets here (p is below the total in exact arithmetic).
  return last_positive;
}

const variant_def& assign_variant(const std::vector<variant_def>& variants, std::string_view source,
                                  std::string_view who, std::string_view key) {
  assert(!variants.empty());
  std::vector<double> weights;
  weights.reserve(variants.size());
  for (const auto& v : variants) weights.push_back(v.weight);
  return variants[pick_weighted(weights, assignment_point(source, who, key))];
}

bool valid_variant_name(std::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

}  // namespace webpushd::automation
