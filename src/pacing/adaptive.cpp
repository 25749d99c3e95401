#include "webpushd/pacing/adaptive.hpp"

#include <algorithm>
#include <cstdio>

#include <spdlog/spdlog.h>

#include "webpushd/core/text.hpp"
#include "webpushd/pacing/rules.hpp"

namespace webpushd::pacing {
namespace {

std::string percent(double rate) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f%%", rate * 100.0);
  return text;
}

std::string caps_text(const std::vector<cap>& caps) {
  std::string out;
  for (const auto& c : caps) out += (out.empty() ? "" : ", ") + describe(c);
  return out;
}

}  // namespace

result<std::vector<storage::level_change>> adjust_levels(storage::database& connection, const policy& p,
                                                         time_point now) {
  auto store = storage::make_sqlite_pacing_store(connection);
  std::vector<storage::level_change> changes;
  for (const auto& [name, own] : p.scenarios) {
    if (!own.adaptive || own.caps.empty()) continue;
    const adaptive_policy& a = *own.adaptive;
    auto state = store->level(name);
    if (!state) return tl::unexpected(std::move(state.error()));
    if (state->changed_at && now - *state->changed_at < a.hold) continue;

    // Judge the current level on its own effect: nothing from before it.
    time_point since = now - a.window;
    if (state->changed_at) since = std::max(since, *state->changed_at);
    auto totals = store->totals("scenario:" + name, since, now + std::chrono::hours{1});
    if (!totals) return tl::unexpected(std::move(totals.error()));
    std::int64_t sends = 0;
    std::int64_t unsubscribes = 0;
    for (const auto& t : *totals) {
      if (t.metric == "sent") sends += t.n;
      if (t.metric.starts_with("unsubscribed:")) unsubscribes += t.n;
    }
    if (sends < a.min_sends) continue;
    const double rate = static_cast<double>(unsubscribes) / static_cast<double>(sends);
    const int top = max_level(own.caps, a.min_count);
    int next = state->level;
    std::string verdict;
    if (rate > a.tighten_above && state->level < top) {
      next = state->level + 1;
      verdict = "above " + percent(a.tighten_above) + ": tightened";
    } else if (rate < a.relax_below && state->level > 0) {
      next = state->level - 1;
      verdict = "below " + percent(a.relax_below) + ": relaxed";
    } else {
      continue;
    }
    storage::level_change c;
    c.scenario = name;
    c.at = now;
    c.from_level = state->level;
    c.to_level = next;
    c.sends = sends;
    c.unsubscribes = unsubscribes;
    c.reason = "unsubscribe rate " + percent(rate) + " (" + std::to_string(unsubscribes) + " of " +
               std::to_string(sends) + " sends since " + format_rfc3339(since) + ") " + verdict + " to " +
               caps_text(tightened(own.caps, next, a.min_count));
    if (auto r = store->change_level(c); !r) return tl::unexpected(std::move(r.error()));
    if (next > state->level) {
      spdlog::warn("pacing: scenario {}: {}", name, c.reason);
    } else {
      spdlog::info("pacing: scenario {}: {}", name, c.reason);
    }
    changes.push_back(std::move(c));
  }
  return changes;
}

}  // namespace webpushd::pacing
