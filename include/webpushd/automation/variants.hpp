#pragma once
/// @file
/// @brief A/B message variants: which variant of a scenario step a journey
/// gets, and which variant of a campaign a subscription gets.
///
/// A step (or a campaign) may carry 2–10 variants instead of one message,
/// each with a name and a weight (scenario.hpp, variant_def). The first is
/// the baseline (control). Assignment is a pure function of names and
/// identifiers, with no state and no randomness: the same journey gets the
/// same variant of a step after a restart or a reload that keeps the
/// weights, every device of the person in that journey gets the same one,
/// and anyone can recompute an assignment from the rule below.
///
/// ## The rule (for analysts)
///
///     h = SHA-256( F("webpushd.variant.v1") ‖ F(source) ‖ F(who) ‖ F(key) )
///     u = (the first 8 bytes of h as an unsigned big-endian integer >> 11) / 2^53     (in [0, 1))
///     p = u × (w_1 + w_2 + … + w_n)                   (weights in the order written, summed left to right)
///     variant = the first i with p < w_1 + … + w_i     (the last one if rounding leaves none)
///
/// F(x) is the byte length of x as a 4-byte big-endian unsigned integer
/// followed by the bytes of x (UTF-8), as in the consent ledger's chain.
/// - scenario step: source = "scenario:<scenario name>/<step name>" (the
///   outbox message's source), who = the journey's person ("c:<customer
///   id>" or "s:<subscription public id>"), key = the journey's key ("" when
///   the scenario has no journey.key);
/// - campaign: source = "campaign:<campaign id>", who = the subscription's
///   public id, key = "".
///
/// In Python:
///
///     F = lambda s: len(s.encode()).to_bytes(4, "big") + s.encode()
///     h = hashlib.sha256(F("webpushd.variant.v1") + F(source) + F(who) + F(key)).digest()
///     p = (int.from_bytes(h[:8], "big") >> 11) / 2**53 * sum(weights)
///
/// Each step draws on its own (the step name is part of the source): a
/// journey that got variant b of the first reminder may get either variant
/// of the second. Changing weights moves only the journeys whose point lies
/// between the old and the new boundaries, and only for steps they have not
/// reached yet: a message already made keeps its variant.

#include <cstddef>
#include <string_view>
#include <vector>

#include "webpushd/automation/scenario.hpp"

namespace webpushd::automation {

/// @brief u of the rule above: where (source, who, key) falls in [0, 1).
double assignment_point(std::string_view source, std::string_view who, std::string_view key);

/// @brief The index of the variant `point` (in [0, 1)) falls into, by the
/// cumulative weights. `weights` must not be empty; weights are positive
/// (the checks refuse others; a non-positive one is never chosen).
std::size_t pick_weighted(const std::vector<double>& weights, double point);

/// @brief The variant of `variants` (not empty) that (source, who, key)
/// gets by the rule above.
const variant_def& assign_variant(const std::vector<variant_def>& variants, std::string_view source,
                                  std::string_view who, std::string_view key);

/// @brief Whether `name` is a valid variant name: `^[a-z0-9_-]{1,32}$`.
bool valid_variant_name(std::string_view name);

/// @brief Bounds shared by scenario files and campaigns.
inline constexpr std::size_t min_variants = 2;
inline constexpr std::size_t max_variants = 10;
inline constexpr double max_variant_weight = 1'000'000;

}  // namespace webpushd::automation
