// Adaptive caps on a synthetic population, in virtual time on a real SQLite
// file: every day a scenario tries to push each subscriber once; the gate
// applies the scenario's caps at its current level; each push received is
// followed by an unsubscribe with a probability that rises with how many
// pushes that subscriber got in the last week. A shop whose subscribers
// are sensitive sees its scenario tighten itself; when they become less
// sensitive (better content), it relaxes again — every change logged with
// the figures behind it.
#include "webpushd/pacing/adaptive.hpp"

#include <random>

#include <doctest/doctest.h>

#include "../storage/test_support.hpp"
#include "webpushd/pacing/gate.hpp"
#include "webpushd/pacing/rules.hpp"
#include "webpushd/storage/pacing_store.hpp"

using namespace webpushd;
using namespace webpushd::pacing;
using namespace std::chrono_literals;

namespace {

struct population : storage::testing::stores {
  std::shared_ptr<const policy> rules;
  std::unique_ptr<send_gate> gate;
  std::vector<std::int64_t> active;                      // subscription ids
  std::map<std::int64_t, std::vector<time_point>> got;  // pushes received, per subscription
  std::mt19937 random{20261123};
  int next_name = 0;
  std::int64_t sent = 0, unsubscribed = 0;

  explicit population(std::shared_ptr<const policy> p, int size) : rules(std::move(p)) {
    clock.set(time_point{std::chrono::hours{24 * 20'000}});  // a midnight, UTC
    gate = std::make_unique<send_gate>(db, rules);
    outbox->set_gate(gate.get());
    for (int i = 0; i < size; ++i) active.push_back(subscribe());
  }

  std::int64_t subscribe() {
    const auto id = subs->upsert("https://fcm.googleapis.com/fcm/send/p" + std::to_string(next_name++), "BAAA",
                                 "AAAA", clock.now());
    REQUIRE(id.has_value());
    return *id;
  }

  // One day at noon: the scenario tries everyone; what the gate admits is
  // delivered; some who received one leave, by `chance(pushes this week)`,
  // and as many new subscribers arrive.
  template <class Chance>
  void day(Chance chance) {
    clock.advance(24h);
    std::vector<storage::new_outbox_message> msgs;
    for (const auto id : active) {
      storage::new_outbox_message m;
      m.subscription_id = id;
      m.payload = bytes(4, 'x');
      m.source = "scenario:promo/daily";
      msgs.push_back(std::move(m));
    }
    REQUIRE(outbox->enqueue(msgs, clock.now()).has_value());
    for (;;) {
      auto claimed = outbox->claim_due(clock.now(), 5000);
      REQUIRE(claimed.has_value());
      if (claimed->empty()) break;
      std::vector<storage::attempt_result> results;
      for (const auto& m : *claimed) {
        results.push_back({m.id, storage::outbox_state::sent, 201, "", "", std::nullopt, false, true});
        got[m.subscription_id].push_back(clock.now());
      }
      REQUIRE(outbox->record(results, clock.now()).has_value());
      sent += static_cast<std::int64_t>(results.size());
    }
    clock.advance(1h);
    std::uniform_real_distribution<double> coin(0, 1);
    std::vector<std::int64_t> staying;
    for (const auto id : active) {
      auto& pushes = got[id];
      const bool pushed_today = !pushes.empty() && pushes.back() > clock.now() - 2h;
      const auto this_week = std::count_if(pushes.begin(), pushes.end(), [&](auto t) { return t > clock.now() - 7 * 24h; });
      if (pushed_today && coin(random) < chance(static_cast<int>(this_week))) {
        REQUIRE(attribute_unsubscribe(db, *rules, id, "unsubscribe", {}, clock.now()).has_value());
        REQUIRE(db.exec("UPDATE subscriptions SET state = 'gone' WHERE id = " + std::to_string(id)).has_value());
        ++unsubscribed;
        staying.push_back(subscribe());
      } else {
        staying.push_back(id);
      }
    }
    active = std::move(staying);
    clock.advance(11h);  // to the next midnight
  }

  int level() { return storage::make_sqlite_pacing_store(db)->level("promo").value().level; }
};

std::shared_ptr<const policy> adaptive_promo() {
  auto p = std::make_shared<policy>();
  scenario_pacing promo;
  promo.caps = {{4, 7 * 24h}};
  adaptive_policy a;
  a.tighten_above = 0.01;
  a.relax_below = 0.005;
  a.window = 7 * 24h;
  a.min_sends = 200;
  a.hold = 2 * 24h;
  a.min_count = 1;
  promo.adaptive = a;
  p->scenarios["promo"] = promo;
  return p;
}

}  // namespace

TEST_CASE("a scenario that drives people away tightens its caps by itself, and relaxes when it stops") {
  population world(adaptive_promo(), 1000);
  // Sensitive subscribers: the more pushes this week, the likelier they leave.
  const auto sensitive = [](int pushes_this_week) { return 0.0015 * pushes_this_week * pushes_this_week; };
  const auto tolerant = [](int pushes_this_week) { return 0.0001 * pushes_this_week; };

  std::vector<int> levels;
  for (int d = 0; d < 21; ++d) {
    world.day(sensitive);
    REQUIRE(adjust_levels(world.db, *world.rules, world.clock.now()).has_value());
    levels.push_back(world.level());
  }
  const int tightest = *std::max_element(levels.begin(), levels.end());
  CHECK(tightest >= 2);  // 4 per week, at 1.5‰·f² people leave: it must come down to 2 or fewer
  CHECK(levels.front() == 0);  // nothing judged before a first full day of sends

  auto store = storage::make_sqlite_pacing_store(world.db);
  auto log = store->level_log("promo", 100);
  REQUIRE(log.has_value());
  REQUIRE(log->size() >= 2);
  const auto& first_change = log->back();  // newest first
  CHECK(first_change.from_level == 0);
  CHECK(first_change.to_level == 1);
  CHECK(first_change.sends >= 200);
  CHECK(static_cast<double>(first_change.unsubscribes) / static_cast<double>(first_change.sends) > 0.01);
  CHECK_MESSAGE(first_change.reason.find("above 1.00%: tightened to 3 per 7d") != std::string::npos, first_change.reason);

  // One step at a time, never two changes within the hold.
  for (std::size_t i = 1; i < log->size(); ++i) {
    CHECK(std::abs((*log)[i - 1].to_level - (*log)[i - 1].from_level) == 1);
    CHECK((*log)[i - 1].at - (*log)[i].at >= 2 * 24h);
  }
  const std::int64_t sent_sensitive = world.sent, gone_sensitive = world.unsubscribed;

  // Better content: people tolerate pushes; the caps relax step by step.
  for (int d = 0; d < 30; ++d) {
    world.day(tolerant);
    REQUIRE(adjust_levels(world.db, *world.rules, world.clock.now()).has_value());
    levels.push_back(world.level());
  }
  CHECK(levels.back() == 0);
  auto after = store->level_log("promo", 100);
  REQUIRE(after.has_value());
  CHECK(after->front().to_level < after->front().from_level);
  CHECK(after->front().reason.find(": relaxed to") != std::string::npos);
  MESSAGE("levels by day: ", [&] {
    std::string s;
    for (const int l : levels) s += std::to_string(l);
    return s;
  }());
  MESSAGE("sensitive phase: ", gone_sensitive, " unsubscribes in ", sent_sensitive, " sends");
}

TEST_CASE("too few sends to judge: the level stays, however bad the day") {
  population world(adaptive_promo(), 100);  // 100 subscribers: under min_sends a day
  world.day([](int) { return 0.5; });       // half of them leave: a terrible day, but too few sends to judge
  auto changes = adjust_levels(world.db, *world.rules, world.clock.now());
  REQUIRE(changes.has_value());
  CHECK(changes->empty());
  CHECK(world.level() == 0);
}
