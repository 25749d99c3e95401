// Recalls on a real SQLite file: which messages a journey exit or a campaign
// cancellation asks to recall, claiming with a lease, outcomes, and a claim
// that outlives its process.
#include "webpushd/storage/recall_store.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "test_support.hpp"
#include "webpushd/storage/campaign_store.hpp"

using namespace webpushd;
using namespace webpushd::storage;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t journey = 7;

struct fixture : testing::stores {
  std::unique_ptr<recall_store> recalls = make_sqlite_recall_store(db);
  std::int64_t sub = subscription("a");

  std::int64_t subscription(const std::string& name) {
    auto id = subs->upsert("https://push.example/" + name, "p256dh-" + name, "auth-" + name, clock.now());
    REQUIRE(id);
    return *id;
  }

  // A message of `journey` (or of `source`) in the outbox, still queued.
  std::int64_t queued(std::string source = "scenario:cart/first", std::optional<std::int64_t> of_journey = journey,
                      std::int32_t ttl = 3600) {
    new_outbox_message m;
    m.subscription_id = sub;
    m.payload = bytes(5, 'x');
    m.ttl_seconds = ttl;
    m.source = std::move(source);
    m.journey_id = of_journey;
    auto ids = outbox->enqueue({m}, clock.now());
    REQUIRE_MESSAGE(ids.has_value(), (ids ? "" : ids.error().message));
    return ids->front();
  }

  // Claims every due message and records `state` for it, with `location`.
  void deliver(outbox_state state, const std::string& location) {
    auto claimed = outbox->claim_due(clock.now(), 100);
    REQUIRE(claimed.has_value());
    std::vector<attempt_result> results;
    for (const auto& m : *claimed) {
      attempt_result r;
      r.message_id = m.id;
      r.new_state = state;
      r.location = location.empty() ? location : location + std::to_string(m.id);
      results.push_back(r);
    }
    REQUIRE(outbox->record(results, clock.now()).has_value());
  }

  // A message a push service accepted with a Location.
  std::int64_t sent(std::string source = "scenario:cart/first", std::optional<std::int64_t> of_journey = journey,
                    std::int32_t ttl = 3600) {
    const auto id = queued(std::move(source), of_journey, ttl);
    deliver(outbox_state::sent, "https://push.example/message/");
    return id;
  }

  std::optional<recall_status> recall_of(std::int64_t id) {
    auto r = recalls->get(id);
    REQUIRE(r.has_value());
    return *r;
  }

  std::vector<recall_job> claim(std::chrono::milliseconds lease = 60s, std::size_t limit = 100) {
    auto jobs = recalls->claim_due(clock.now(), lease, limit);
    REQUIRE_MESSAGE(jobs.has_value(), (jobs ? "" : jobs.error().message));
    return *jobs;
  }

  std::size_t request(std::int64_t of_journey = journey) {
    auto n = recalls->request_for_journey(of_journey, "journey exited: purchase", clock.now());
    REQUIRE(n.has_value());
    return *n;
  }

  void record(std::vector<recall_result> results) {
    auto r = recalls->record(results);
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
  }
};

recall_result outcome(std::int64_t id, recall_state state, std::string reason = "because") {
  return {id, state, std::move(reason), std::nullopt};
}

}  // namespace

TEST_CASE("recall states have stable text forms") {
  for (auto s : {recall_state::requested, recall_state::recalled, recall_state::too_late, recall_state::unsupported,
                 recall_state::failed}) {
    CHECK(parse_recall_state(to_string(s)) == s);
  }
  CHECK(std::string{to_string(recall_state::too_late)} == "too_late");
  CHECK_FALSE(parse_recall_state("Recalled"));
}

TEST_CASE_FIXTURE(fixture, "a journey's recall covers exactly its accepted, unexpired messages") {
  const auto accepted = sent();
  const auto short_lived = sent("scenario:cart/first", journey, /*ttl=*/60);
  const auto other_journey = sent("scenario:cart/first", journey + 1);
  const auto no_location = queued();
  deliver(outbox_state::sent, "");  // a push service that answered 201 without a Location
  const auto rejected = queued();
  deliver(outbox_state::failed, "");
  const auto waiting = queued();  // not sent yet: the exit cancels it instead
  clock.advance(61s);             // short_lived has expired: the push service dropped it

  CHECK(request() == 1);
  const auto r = recall_of(accepted);
  REQUIRE(r);
  CHECK(r->state == recall_state::requested);
  CHECK(r->reason == "journey exited: purchase");
  for (const auto id : {short_lived, other_journey, no_location, rejected, waiting}) CHECK_FALSE(recall_of(id));
  // A message keeps its first recall: asking again requests nothing.
  CHECK(request() == 0);
  CHECK(testing::scalar(db, "SELECT count(*) FROM outbox WHERE recall_state IS NOT NULL") == "1");
}

TEST_CASE_FIXTURE(fixture, "a campaign's recall covers the messages of that campaign") {
  const auto mine = sent(campaign_source("cmp_a"), std::nullopt);
  const auto other = sent(campaign_source("cmp_b"), std::nullopt);
  auto n = recalls->request_for_campaign("cmp_a", "campaign cancelled", clock.now());
  REQUIRE(n.has_value());
  CHECK(*n == 1);
  CHECK(recall_of(mine)->reason == "campaign cancelled");
  CHECK_FALSE(recall_of(other));
}

TEST_CASE_FIXTURE(fixture, "claim_due returns due recalls with the endpoint, and leases them") {
  const auto first = sent();
  const auto second = sent();
  REQUIRE(request() == 2);
  CHECK(recalls->next_due()->value() == clock.now());

  const auto jobs = claim(30s, 1);
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].message_id == first);
  CHECK(jobs[0].location == "https://push.example/message/" + std::to_string(first));
  CHECK(jobs[0].endpoint == "https://push.example/a");
  CHECK(jobs[0].expires_at == clock.now() + 3600s);
  // The lease keeps a claimed recall from being claimed again while its
  // DELETE is under way; the recall itself stays requested.
  const auto rest = claim();
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].message_id == second);
  CHECK(claim().empty());
  CHECK(recall_of(first)->state == recall_state::requested);
  CHECK(recalls->next_due()->value() == clock.now() + 30s);
  // An outcome never recorded (the dispatcher lost it) is claimed again once
  // the lease is over.
  clock.advance(30s);
  CHECK(claim().size() == 1);
}

TEST_CASE_FIXTURE(fixture, "record sets outcomes, schedules retries and ignores stale outcomes") {
  const auto done = sent();
  const auto retried = sent();
  REQUIRE(request() == 2);
  REQUIRE(claim().size() == 2);
  record({outcome(done, recall_state::recalled, "recalled (204)"),
          {retried, recall_state::requested, "retry 2/3 in 5000ms: push service error (503)", clock.now() + 5s}});
  CHECK(recall_of(done)->state == recall_state::recalled);
  CHECK(recall_of(done)->reason == "recalled (204)");
  CHECK(recall_of(retried)->state == recall_state::requested);
  CHECK(recall_of(retried)->reason == "retry 2/3 in 5000ms: push service error (503)");
  CHECK(recalls->next_due()->value() == clock.now() + 5s);
  CHECK(claim().empty());
  clock.advance(5s);
  CHECK(claim().size() == 1);

  // A second outcome for a finished recall (claimed twice) changes nothing.
  record({outcome(done, recall_state::too_late)});
  CHECK(recall_of(done)->state == recall_state::recalled);
  // The message's own delivery record is untouched by its recall.
  const auto row = outbox->get(done);
  REQUIRE(row.has_value());
  CHECK((*row)->state == outbox_state::sent);
  CHECK((*row)->attempts == 1);
}

TEST_CASE_FIXTURE(fixture, "record refuses a retry without a time and writes nothing") {
  const auto a = sent();
  const auto b = sent();
  REQUIRE(request() == 2);
  const auto r = recalls->record({outcome(a, recall_state::recalled), {b, recall_state::requested, "retry", {}}});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == "invalid_recall_result");
  CHECK(recall_of(a)->state == recall_state::requested);
}

TEST_CASE("a recall claimed when the process died is due again at the next start") {
  testing::temp_dir dir;
  manual_clock clock;
  std::int64_t id = 0;
  {
    // First process: the recall is requested and claimed; its DELETE never
    // gets an outcome recorded.
    auto db = testing::open_ok(dir.db_file());
    auto sub = make_sqlite_subscription_store(db)->upsert("https://push.example/a", "k", "a", clock.now());
    REQUIRE(sub.has_value());
    auto outbox = make_sqlite_outbox_store(db);
    new_outbox_message m;
    m.subscription_id = *sub;
    m.journey_id = journey;
    id = outbox->enqueue({m}, clock.now())->front();
    REQUIRE(outbox->claim_due(clock.now(), 1)->size() == 1);
    attempt_result accepted;
    accepted.message_id = id;
    accepted.location = "https://push.example/message/1";
    REQUIRE(outbox->record({accepted}, clock.now()).has_value());
    auto recalls = make_sqlite_recall_store(db);
    REQUIRE(*recalls->request_for_journey(journey, "journey exited: purchase", clock.now()) == 1);
    REQUIRE(recalls->claim_due(clock.now(), 10min, 10)->size() == 1);
  }
  clock.advance(1s);
  auto db = testing::open_ok(dir.db_file());
  auto recalls = make_sqlite_recall_store(db);
  CHECK(recalls->claim_due(clock.now(), 10min, 10)->empty());  // still leased
  auto released = recalls->release_claims(clock.now());
  REQUIRE(released.has_value());
  CHECK(*released == 1);
  const auto again = recalls->claim_due(clock.now(), 10min, 10);
  REQUIRE(again.has_value());
  REQUIRE(again->size() == 1);
  CHECK(again->front().message_id == id);
}

TEST_CASE_FIXTURE(fixture, "nothing requested: nothing due, nothing to claim") {
  sent();
  CHECK_FALSE(recalls->next_due()->has_value());
  CHECK(claim().empty());
  CHECK(*recalls->release_claims(clock.now()) == 0);
  CHECK_FALSE(recall_of(12345));
}
