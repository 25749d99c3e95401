// Campaign stats: the counters of one campaign's source by variant and by
// day, and one indexed count of its queued messages. Separate statements,
// not one snapshot (as scenario stats).
#include "webpushd/automation/campaign_stats.hpp"

#include "webpushd/core/text.hpp"
#include "webpushd/storage/campaign_store.hpp"
#include "webpushd/storage/pacing_store.hpp"

namespace webpushd::automation {
namespace {

// The campaign's variants as its stored definition gives them, baseline
// first; none for a campaign without variants.
std::vector<variant_config> configured_variants(const storage::campaign_row& row) {
  std::vector<variant_config> out;
  const auto doc = nlohmann::json::parse(row.definition, nullptr, false);
  const auto variants = doc.is_object() ? doc.find("variants") : doc.end();
  if (doc.is_object() && variants != doc.end() && variants->is_array()) {
    for (const auto& v : *variants) {
      if (v.is_object()) out.push_back(variant_config{v.value("name", ""), v.value("weight", 0.0)});
    }
  }
  return out;
}

}  // namespace

result<campaign_stats> read_campaign_stats(storage::database& db, std::string_view id, const stats_query& query,
                                           time_point now) {
  auto campaigns = storage::make_sqlite_campaign_store(db);
  auto row = campaigns->get(id);
  if (!row) return tl::unexpected(std::move(row.error()));
  if (!*row) return fail("unknown_campaign", "no campaign " + std::string{id}, "id");
  auto range = parse_stats_range(query, now, (*row)->created_at);
  if (!range) return tl::unexpected(std::move(range.error()));

  campaign_stats out;
  out.campaign = std::move(**row);
  out.range = *range;
  out.generated_at = now;
  const auto source = storage::campaign_source(out.campaign.id);
  auto counters = storage::make_sqlite_pacing_store(db);
  auto totals = counters->totals(source, range->from, range->to);
  if (!totals) return tl::unexpected(std::move(totals.error()));
  std::map<std::string, stats_figures, std::less<>> by_variant;
  for (const auto& c : *totals) {
    out.totals.add(c.metric, c.n);
    by_variant[c.variant].add(c.metric, c.n);
  }
  out.variants = variants_of(configured_variants(out.campaign), std::move(by_variant));
  auto queued = campaigns->messages_queued(out.campaign.id, range->from, range->to);
  if (!queued) return tl::unexpected(std::move(queued.error()));
  out.totals.entered = *queued;
  auto daily = counters->daily_totals(source, range->from, range->to);
  if (!daily) return tl::unexpected(std::move(daily.error()));
  out.per_day = days_of(*range, *daily);
  return out;
}

nlohmann::json to_json(const campaign_stats& s) {
  nlohmann::json per_day = nlohmann::json::array();
  for (const auto& d : s.per_day) per_day.push_back(day_json(d));
  nlohmann::json variants = nlohmann::json::array();
  for (const auto& v : s.variants) variants.push_back(variant_json(v));
  return {{"campaign", s.campaign.id},
          {"name", s.campaign.name},
          {"status", storage::to_string(s.campaign.state)},
          {"created_at", format_rfc3339(s.campaign.created_at)},
          {"range", {{"from", format_rfc3339(s.range.from)}, {"to", format_rfc3339(s.range.to)}}},
          {"generated_at", format_rfc3339(s.generated_at)},
          {"totals", figures_json(s.totals, false)},
          {"per_day", std::move(per_day)},
          {"variants", std::move(variants)}};
}

}  // namespace webpushd::automation
