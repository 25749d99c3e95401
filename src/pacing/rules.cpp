#include "webpushd/pacing/rules.hpp"

#include <algorithm>

#include <date/tz.h>

#include "webpushd/core/text.hpp"

namespace webpushd::pacing {

const char* to_string(hold_reason r) noexcept {
  switch (r) {
    case hold_reason::quiet_hours: return "quiet_hours";
    case hold_reason::min_gap: return "min_gap";
    case hold_reason::global_cap: return "global_cap";
    case hold_reason::scenario_cap: return "scenario_cap";
    case hold_reason::category_cap: return "category_cap";
  }
  return "global_cap";
}

std::optional<time_point> quiet_until(const quiet_hours& q, const date::time_zone* zone, time_point now) {
  if (q.from_minute == q.to_minute) return std::nullopt;
  using namespace std::chrono;
  const auto now_s = floor<seconds>(now);
  const auto local = zone != nullptr ? zone->to_local(now_s) : date::local_seconds{now_s.time_since_epoch()};
  const auto day = floor<date::days>(local);
  const int minute = static_cast<int>(duration_cast<minutes>(local - day).count());
  const bool spans_midnight = q.from_minute > q.to_minute;
  const bool quiet = spans_midnight ? (minute >= q.from_minute || minute < q.to_minute)
                                    : (minute >= q.from_minute && minute < q.to_minute);
  if (!quiet) return std::nullopt;
  // The end is today at `to` if that is still ahead, else tomorrow at `to`.
  const auto end_day = minute < q.to_minute ? day : day + date::days{1};
  const auto end_local = date::local_seconds{end_day} + minutes{q.to_minute};
  if (zone == nullptr) return time_point{end_local.time_since_epoch()};
  // choose::earliest: an end time that happens twice (clocks back) is its
  // first occurrence; one that never happens (clocks forward) is the change.
  return time_point{zone->to_sys(end_local, date::choose::earliest)};
}

void remember(std::vector<time_point>& newest_first, time_point now, const std::vector<cap>& caps) {
  newest_first.insert(newest_first.begin(), now);
  std::size_t keep = 1;  // the newest is what a minimum gap needs
  std::chrono::milliseconds longest{0};
  for (const auto& c : caps) {
    keep = std::max(keep, static_cast<std::size_t>(std::max(c.count, 1)));
    longest = std::max(longest, c.per);
  }
  if (newest_first.size() > keep) newest_first.resize(keep);
  while (newest_first.size() > 1 && newest_first.back() <= now - longest) newest_first.pop_back();
}

namespace {

// When a cap blocks at `t`: the moment its oldest counted push leaves the
// window. History is newest first, so the count-th entry is that push.
std::optional<time_point> cap_frees_at(const cap& c, const std::vector<time_point>& h, time_point t) {
  const auto count = static_cast<std::size_t>(std::max(c.count, 1));
  if (h.size() < count) return std::nullopt;
  const time_point oldest_counted = h[count - 1];
  if (oldest_counted <= t - c.per) return std::nullopt;
  return oldest_counted + c.per;
}

}  // namespace

std::optional<hold> check(const policy& p, const message_facts& m, const history& h, int level, time_point now) {
  const scenario_pacing* own = nullptr;
  if (!m.scenario.empty()) {
    if (const auto it = p.scenarios.find(m.scenario); it != p.scenarios.end()) own = &it->second;
  }
  const std::vector<cap> scenario = own != nullptr ? effective_caps(*own, level) : std::vector<cap>{};
  const std::vector<cap>* category = nullptr;
  if (!m.category.empty()) {
    if (const auto it = p.category_caps.find(m.category); it != p.category_caps.end()) category = &it->second;
  }
  const bool quiet_applies = p.quiet && (own == nullptr || own->quiet_hours);

  // The first rule that blocks at `t`, and when it stops blocking.
  const auto blocked_at = [&](time_point t) -> std::optional<hold> {
    if (quiet_applies) {
      if (const auto end = quiet_until(*p.quiet, m.zone, t)) {
        return hold{hold_reason::quiet_hours,
                    describe(*p.quiet) + " " + (m.zone != nullptr ? std::string{m.zone->name()} : "UTC"), *end};
      }
    }
    if (p.min_gap.count() > 0 && !h.every.empty() && t < h.every.front() + p.min_gap) {
      return hold{hold_reason::min_gap, format_duration(p.min_gap) + " between pushes", h.every.front() + p.min_gap};
    }
    const struct {
      hold_reason reason;
      const std::vector<cap>* caps;
      const std::vector<time_point>* history;
    } scopes[] = {{hold_reason::global_cap, &p.caps, &h.every},
                  {hold_reason::scenario_cap, &scenario, &h.scenario},
                  {hold_reason::category_cap, category, &h.category}};
    for (const auto& scope : scopes) {
      if (scope.caps == nullptr) continue;
      for (const auto& c : *scope.caps) {
        if (const auto free = cap_frees_at(c, *scope.history, t)) return hold{scope.reason, describe(c), *free};
      }
    }
    return std::nullopt;
  };

  auto first = blocked_at(now);
  if (!first) return std::nullopt;
  // The next allowed moment: from each blocking rule's end to the next, until
  // none blocks. Every jump moves forward, and past the longest window only
  // quiet hours can block (once), so a few rounds always settle.
  time_point t = first->until;
  for (int round = 0; round < 16; ++round) {
    const auto again = blocked_at(t);
    if (!again) break;
    t = again->until;
  }
  first->until = t;
  return first;
}

}  // namespace webpushd::pacing
