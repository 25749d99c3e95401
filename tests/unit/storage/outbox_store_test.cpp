#include <doctest/doctest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <latch>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "webpushd/storage/database.hpp"
#include "webpushd/storage/outbox_store.hpp"
#include "webpushd/storage/pacing_store.hpp"
#include "webpushd/storage/subscription_store.hpp"

using namespace webpushd;
using namespace webpushd::storage;
using webpushd::storage::testing::open_ok;
using webpushd::storage::testing::temp_dir;
using namespace std::chrono_literals;

namespace {

struct fixture : webpushd::storage::testing::stores {
  std::int64_t subscription(const std::string& name = "a") {
    auto id = subs->upsert("https://push.example/" + name, "p256dh-" + name, "auth-" + name, clock.now());
    REQUIRE(id);
    return *id;
  }

  static new_outbox_message message(std::int64_t sub, std::string text = "hello", std::int32_t ttl = 3600) {
    new_outbox_message m;
    m.subscription_id = sub;
    m.payload = bytes(text.begin(), text.end());
    m.ttl_seconds = ttl;
    m.source = "test";
    return m;
  }

  std::vector<std::int64_t> enqueue(std::vector<new_outbox_message> ms) {
    auto ids = outbox->enqueue(ms, clock.now());
    REQUIRE_MESSAGE(ids.has_value(), (ids ? "" : ids.error().message));
    return *ids;
  }

  std::vector<outbox_message> claim(std::size_t limit = 100) {
    auto claimed = outbox->claim_due(clock.now(), limit);
    REQUIRE_MESSAGE(claimed.has_value(), (claimed ? "" : claimed.error().message));
    return *claimed;
  }

  outbox_row row(std::int64_t id) {
    auto r = outbox->get(id);
    REQUIRE(r);
    REQUIRE(r->has_value());
    return **r;
  }

  void record(std::vector<attempt_result> results) {
    auto r = outbox->record(results, clock.now());
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
  }

  outbox_counts counts() {
    auto c = outbox->counts();
    REQUIRE(c);
    return *c;
  }
};

attempt_result outcome(std::int64_t id, outbox_state state, std::optional<std::int32_t> status = std::nullopt) {
  attempt_result r;
  r.message_id = id;
  r.new_state = state;
  r.http_status = status;
  return r;
}

std::vector<std::int64_t> ids_of(const std::vector<outbox_message>& ms) {
  std::vector<std::int64_t> ids;
  for (const auto& m : ms) ids.push_back(m.id);
  return ids;
}

}  // namespace

TEST_CASE("states have stable text forms") {
  for (auto s : {outbox_state::queued, outbox_state::sending, outbox_state::sent, outbox_state::gone,
                 outbox_state::failed, outbox_state::dead, outbox_state::expired, outbox_state::cancelled}) {
    CHECK(parse_outbox_state(to_string(s)) == s);
  }
  CHECK(std::string{to_string(outbox_state::cancelled)} == "cancelled");
  CHECK_FALSE(parse_outbox_state("Queued"));
}

TEST_CASE_FIXTURE(fixture, "enqueue stores queued messages and returns their ids in order") {
  const auto sub = subscription();
  auto m = message(sub, "hi", 60);
  m.urgency = "high";
  m.topic = "cart";
  const auto ids = enqueue({m, message(sub, "second")});
  REQUIRE(ids.size() == 2);
  CHECK(ids[0] < ids[1]);
  const auto r = row(ids[0]);
  CHECK(r.state == outbox_state::queued);
  CHECK(r.subscription_id == sub);
  CHECK(r.attempts == 0);
  CHECK(r.source == "test");
  CHECK(r.urgency == "high");
  CHECK(r.topic == "cart");
  CHECK(r.ttl_seconds == 60);
  CHECK(r.payload_size == 2);
  CHECK(r.created_at == clock.now());
  CHECK(r.next_attempt_at == clock.now());
  CHECK(r.expires_at == clock.now() + 60s);
  CHECK_FALSE(r.finished_at);
  CHECK_FALSE(r.last_status);
  CHECK(counts().queued == 2);
  CHECK_FALSE(outbox->get(ids[1] + 100).value().has_value());
}

TEST_CASE_FIXTURE(fixture, "enqueue is all or nothing") {
  const auto sub = subscription();
  SUBCASE("an unknown subscription") {
    auto r = outbox->enqueue({message(sub), message(sub), message(sub + 42)}, clock.now());
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "unknown_subscription");
    CHECK(r.error().field == "subscription_id");
  }
  SUBCASE("a gone subscription") {
    const auto gone = subscription("b");
    REQUIRE(subs->mark_gone(gone, "410", clock.now()));
    auto r = outbox->enqueue({message(sub), message(gone)}, clock.now());
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "unknown_subscription");
  }
  SUBCASE("a bad urgency") {
    auto bad = message(sub);
    bad.urgency = "urgent";
    auto r = outbox->enqueue({message(sub), bad}, clock.now());
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "invalid_urgency");
  }
  SUBCASE("a negative ttl") {
    auto r = outbox->enqueue({message(sub), message(sub, "x", -1)}, clock.now());
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "invalid_ttl");
  }
  const auto c = counts();
  CHECK(c.queued == 0);
  CHECK(outbox->next_due().value() == std::nullopt);
}

TEST_CASE_FIXTURE(fixture, "an empty payload is stored as an empty message") {
  const auto sub = subscription();
  const auto ids = enqueue({message(sub, "")});
  const auto claimed = claim();
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].id == ids[0]);
  CHECK(claimed[0].payload.empty());
}

TEST_CASE_FIXTURE(fixture, "claim_due returns due messages oldest first, joined with the subscription") {
  const auto a = subscription("a");
  const auto b = subscription("b");
  auto later = message(a, "later");
  later.not_before = clock.now() + 10s;
  auto earlier = message(b, "earlier");
  earlier.not_before = clock.now() - 5s;
  const auto ids = enqueue({later, message(a, "now"), earlier});

  auto first = claim();
  REQUIRE(first.size() == 2);
  CHECK(first[0].id == ids[2]);  // not_before in the past: due first
  CHECK(first[1].id == ids[1]);
  CHECK(first[0].endpoint == "https://push.example/b");
  CHECK(first[0].p256dh == "p256dh-b");
  CHECK(first[0].auth == "auth-b");
  CHECK(first[0].payload == bytes{'e', 'a', 'r', 'l', 'i', 'e', 'r'});
  CHECK(first[0].attempts == 0);
  CHECK(first[0].urgency == "normal");
  CHECK(first[0].expires_at == first[0].created_at + 3600s);
  CHECK(row(ids[1]).state == outbox_state::sending);
  CHECK(row(ids[1]).claimed_at == clock.now());

  CHECK(claim().empty());  // claimed rows are not claimed twice
  CHECK(outbox->next_due().value() == clock.now() + 10s);
  clock.advance(10s);
  auto second = claim();
  REQUIRE(second.size() == 1);
  CHECK(second[0].id == ids[0]);
  CHECK(outbox->next_due().value() == std::nullopt);
}

TEST_CASE_FIXTURE(fixture, "claim_due honours the limit") {
  const auto sub = subscription();
  std::vector<new_outbox_message> ms(5, message(sub));
  const auto ids = enqueue(ms);
  CHECK(outbox->claim_due(clock.now(), 0).value().empty());
  CHECK(ids_of(claim(2)) == std::vector<std::int64_t>{ids[0], ids[1]});
  CHECK(ids_of(claim(2)) == std::vector<std::int64_t>{ids[2], ids[3]});
  CHECK(ids_of(claim(2)) == std::vector<std::int64_t>{ids[4]});
}

TEST_CASE_FIXTURE(fixture, "record applies every outcome to a sending message") {
  const auto sub = subscription();
  const auto ids = enqueue(std::vector<new_outbox_message>(6, message(sub)));
  REQUIRE(claim().size() == 6);
  clock.advance(1s);

  auto sent = outcome(ids[0], outbox_state::sent, 201);
  sent.location = "https://push.example/m/1";
  auto failed = outcome(ids[1], outbox_state::failed, 413);
  failed.reason = "payload too large";
  auto dead = outcome(ids[2], outbox_state::dead, 503);
  dead.reason = "retries exhausted";
  auto expired = outcome(ids[3], outbox_state::expired);
  expired.count_attempt = false;
  auto retry = outcome(ids[4], outbox_state::queued, 429);
  retry.reason = "Retry-After 30s";
  retry.retry_at = clock.now() + 30s;
  auto cancelled = outcome(ids[5], outbox_state::cancelled);
  cancelled.count_attempt = false;
  record({sent, failed, dead, expired, retry, cancelled});

  const auto s = row(ids[0]);
  CHECK(s.state == outbox_state::sent);
  CHECK(s.attempts == 1);
  CHECK(s.last_status == 201);
  CHECK(s.location == "https://push.example/m/1");
  CHECK(s.finished_at == clock.now());

  const auto f = row(ids[1]);
  CHECK(f.state == outbox_state::failed);
  CHECK(f.last_status == 413);
  CHECK(f.last_reason == "payload too large");
  CHECK(f.finished_at == clock.now());

  CHECK(row(ids[2]).state == outbox_state::dead);
  CHECK(row(ids[2]).last_reason == "retries exhausted");

  const auto e = row(ids[3]);
  CHECK(e.state == outbox_state::expired);
  CHECK(e.attempts == 0);  // no request was made
  CHECK(e.finished_at == clock.now());

  const auto q = row(ids[4]);
  CHECK(q.state == outbox_state::queued);
  CHECK(q.attempts == 1);
  CHECK(q.last_status == 429);
  CHECK(q.next_attempt_at == clock.now() + 30s);
  CHECK_FALSE(q.finished_at);

  CHECK(row(ids[5]).state == outbox_state::cancelled);

  // The retry is not due before retry_at, then comes back with its attempt count.
  CHECK(claim().empty());
  clock.advance(30s);
  const auto again = claim();
  REQUIRE(again.size() == 1);
  CHECK(again[0].id == ids[4]);
  CHECK(again[0].attempts == 1);

  const auto c = counts();
  CHECK(c.sent == 1);
  CHECK(c.failed == 1);
  CHECK(c.dead == 1);
  CHECK(c.expired == 1);
  CHECK(c.cancelled == 1);
  CHECK(c.sending == 1);
  CHECK(c.queued == 0);
}

TEST_CASE_FIXTURE(fixture, "a stale result never changes a message that is not sending") {
  const auto sub = subscription();
  const auto ids = enqueue({message(sub), message(sub)});
  REQUIRE(claim(1).size() == 1);
  record({outcome(ids[0], outbox_state::sent, 201)});
  const auto before = row(ids[0]);

  clock.advance(1s);
  auto resurrect = outcome(ids[0], outbox_state::queued, 503);
  resurrect.retry_at = clock.now();
  auto gone = outcome(ids[0], outbox_state::gone, 410);
  gone.subscription_gone = true;
  // ids[1] was never claimed: a result for it is stale as well.
  record({resurrect, outcome(ids[0], outbox_state::failed, 400), gone, outcome(ids[1], outbox_state::sent, 201),
          outcome(ids[0] + 1000, outbox_state::sent)});

  const auto after = row(ids[0]);
  CHECK(after.state == outbox_state::sent);
  CHECK(after.attempts == before.attempts);
  CHECK(after.last_status == 201);
  CHECK(after.finished_at == before.finished_at);
  CHECK(row(ids[1]).state == outbox_state::queued);
  CHECK(row(ids[1]).attempts == 0);
  // The stale 410 did not mark the subscription gone either.
  CHECK(subs->find(sub).value()->state == subscription_state::active);
}

TEST_CASE_FIXTURE(fixture, "record rejects 'sending' as an outcome and writes nothing") {
  const auto sub = subscription();
  const auto ids = enqueue({message(sub), message(sub)});
  REQUIRE(claim().size() == 2);
  auto r = outbox->record({outcome(ids[0], outbox_state::sent, 201), outcome(ids[1], outbox_state::sending)},
                          clock.now());
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "invalid_attempt_result");
  CHECK(row(ids[0]).state == outbox_state::sending);
}

TEST_CASE_FIXTURE(fixture, "a gone subscription finishes its queued messages in the same transaction") {
  const auto sub = subscription("a");
  const auto other = subscription("b");
  const auto ids = enqueue({message(sub), message(sub), message(other)});
  auto later = message(sub);
  later.not_before = clock.now() + 1h;
  const auto later_id = enqueue({later})[0];
  REQUIRE(claim(1).size() == 1);  // ids[0]

  auto gone = outcome(ids[0], outbox_state::gone, 410);
  gone.reason = "410 Gone";
  gone.subscription_gone = true;
  record({gone});

  CHECK(row(ids[0]).state == outbox_state::gone);
  CHECK(row(ids[0]).last_status == 410);
  for (const auto id : {ids[1], later_id}) {
    const auto r = row(id);
    CHECK(r.state == outbox_state::gone);
    CHECK(r.last_reason == subscription_gone_reason);
    CHECK(r.attempts == 0);
    CHECK(r.finished_at == clock.now());
  }
  CHECK(row(ids[2]).state == outbox_state::queued);  // another subscription's message is untouched
  const auto s = subs->find(sub).value().value();
  CHECK(s.state == subscription_state::gone);
  CHECK(s.gone_reason == "410 Gone");
  CHECK(s.gone_at == clock.now());

  auto again = outbox->enqueue({message(sub)}, clock.now());
  REQUIRE_FALSE(again);
  CHECK(again.error().code == "unknown_subscription");
}

TEST_CASE_FIXTURE(fixture, "claim_due finishes a message whose subscription is no longer active") {
  const auto sub = subscription("a");
  const auto ok = subscription("b");
  const auto ids = enqueue({message(sub), message(ok)});
  // Erasure (a later module) changes the state without touching the outbox.
  REQUIRE(db.exec("UPDATE subscriptions SET state = 'erased' WHERE id = " + std::to_string(sub)));
  const auto claimed = claim();
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].id == ids[1]);
  const auto r = row(ids[0]);
  CHECK(r.state == outbox_state::gone);
  CHECK(r.last_reason == subscription_gone_reason);
  CHECK(r.finished_at == clock.now());
}

TEST_CASE_FIXTURE(fixture, "messages past their TTL expire instead of being claimed") {
  const auto sub = subscription();
  const auto ids = enqueue({message(sub, "short", 60), message(sub, "long", 3600)});
  clock.advance(60s);
  SUBCASE("exactly at expires_at it is still sent") { CHECK(claim().size() == 2); }
  SUBCASE("after expires_at it expires") {
    clock.advance(1ms);
    const auto claimed = claim();
    REQUIRE(claimed.size() == 1);
    CHECK(claimed[0].id == ids[1]);
    const auto r = row(ids[0]);
    CHECK(r.state == outbox_state::expired);
    CHECK(r.last_reason == ttl_expired_reason);
    CHECK(r.attempts == 0);
    CHECK(counts().expired == 1);
  }
}

TEST_CASE_FIXTURE(fixture, "ttl 0 is sent once, however late its first claim, and never retried") {
  const auto sub = subscription();
  const auto id = enqueue({message(sub, "now or never", 0)})[0];
  CHECK(row(id).expires_at == row(id).created_at);
  clock.advance(250ms);
  const auto claimed = claim();
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].ttl_seconds == 0);
  auto retry = outcome(id, outbox_state::queued, 503);
  retry.retry_at = clock.now() + 1s;
  record({retry});
  clock.advance(1s);
  CHECK(claim().empty());
  CHECK(row(id).state == outbox_state::expired);
}

TEST_CASE_FIXTURE(fixture, "rows finished at claim time don't count against the limit") {
  const auto sub = subscription();
  std::vector<new_outbox_message> ms(3, message(sub, "stale", 1));
  ms.push_back(message(sub, "fresh-1"));
  ms.push_back(message(sub, "fresh-2"));
  ms.push_back(message(sub, "fresh-3"));
  const auto ids = enqueue(ms);
  clock.advance(2s);
  CHECK(ids_of(claim(2)) == std::vector<std::int64_t>{ids[3], ids[4]});
  CHECK(counts().expired == 3);
  CHECK(counts().queued == 1);
}

TEST_CASE("after a crash, requeue_inflight makes claimed messages due again (at least once)") {
  temp_dir dir;
  manual_clock clock;
  std::vector<std::int64_t> ids;
  {
    auto db = open_ok(dir.db_file());
    auto outbox = make_sqlite_outbox_store(db);
    const auto sub = make_sqlite_subscription_store(db)->upsert("https://push.example/a", "p", "a", clock.now());
    REQUIRE(sub);
    ids = outbox->enqueue(std::vector<new_outbox_message>(3, fixture::message(*sub)), clock.now()).value();
    REQUIRE(outbox->claim_due(clock.now(), 2).value().size() == 2);
    // The process "dies" here: no record, the connection just goes away.
  }
  clock.advance(1min);
  auto db = open_ok(dir.db_file());
  auto outbox = make_sqlite_outbox_store(db);
  CHECK(outbox->counts().value().sending == 2);
  CHECK(outbox->requeue_inflight(clock.now()).value() == 2);
  CHECK(outbox->requeue_inflight(clock.now()).value() == 0);
  const auto counts = outbox->counts().value();
  CHECK(counts.sending == 0);
  CHECK(counts.queued == 3);
  const auto claimed = outbox->claim_due(clock.now(), 10).value();
  CHECK(ids_of(claimed) == ids);  // original order kept
  for (const auto& m : claimed) CHECK(m.attempts == 0);
}

TEST_CASE("two connections claiming at once never get the same message, and together get all") {
  temp_dir dir;
  manual_clock clock;
  std::set<std::int64_t> all;
  {
    auto db = open_ok(dir.db_file());
    const auto sub = make_sqlite_subscription_store(db)->upsert("https://push.example/a", "p", "a", clock.now());
    REQUIRE(sub);
    const auto ids =
        make_sqlite_outbox_store(db)->enqueue(std::vector<new_outbox_message>(600, fixture::message(*sub)), clock.now());
    REQUIRE(ids);
    all.insert(ids->begin(), ids->end());
  }
  std::vector<std::int64_t> got[2];
  std::string errors[2];
  std::latch both_open{2};
  auto worker = [&](int w) {
    // One connection per thread, as in two processes.
    auto db = database::open(dir.db_file());
    both_open.count_down();
    if (!db) {
      errors[w] = db.error().message;
      return;
    }
    auto outbox = make_sqlite_outbox_store(*db);
    both_open.wait();  // start claiming together, not one after the other
    for (;;) {
      auto batch = outbox->claim_due(clock.now(), 7);
      if (!batch) {
        errors[w] = batch.error().code + ": " + batch.error().message;
        return;
      }
      if (batch->empty()) return;
      for (const auto& m : *batch) got[w].push_back(m.id);
      // Stand-in for sending the batch. Without it one connection re-takes
      // the lock at once while the other sleeps in its busy handler, and the
      // test would prove nothing about interleaved claims.
      std::this_thread::sleep_for(1ms);
    }
  };
  std::thread t0{worker, 0};
  std::thread t1{worker, 1};
  t0.join();
  t1.join();
  CHECK_MESSAGE(errors[0].empty(), errors[0]);
  CHECK_MESSAGE(errors[1].empty(), errors[1]);
  std::set<std::int64_t> seen;
  for (const auto& g : got) {
    for (const auto id : g) CHECK_MESSAGE(seen.insert(id).second, "message " << id << " claimed twice");
  }
  CHECK(seen == all);
  // Not a requirement (the scheduler decides), but a split shows the claims
  // really interleaved.
  MESSAGE("claims split " << got[0].size() << " / " << got[1].size());
}

TEST_CASE_FIXTURE(fixture, "a batch of 1000 results is recorded in one transaction") {
  const auto sub = subscription();
  const auto ids = enqueue(std::vector<new_outbox_message>(1000, message(sub)));
  REQUIRE(claim(1000).size() == 1000);
  std::vector<attempt_result> results;
  for (const auto id : ids) results.push_back(outcome(id, outbox_state::sent, 201));

  int commits = 0;
  sqlite3_commit_hook(
      db.handle(),
      [](void* n) {
        ++*static_cast<int*>(n);
        return 0;
      },
      &commits);
  record(results);
  sqlite3_commit_hook(db.handle(), nullptr, nullptr);
  CHECK(commits == 1);
  CHECK(counts().sent == 1000);
  CHECK(counts().sending == 0);
}

TEST_CASE_FIXTURE(fixture, "counts, next_due and list reflect the outbox") {
  CHECK(counts().queued == 0);
  CHECK(outbox->next_due().value() == std::nullopt);
  const auto sub = subscription();
  auto later = message(sub);
  later.not_before = clock.now() + 5min;
  const auto ids = enqueue({message(sub), message(sub), later});
  CHECK(outbox->next_due().value() == clock.now());
  REQUIRE(claim(1).size() == 1);
  record({outcome(ids[0], outbox_state::sent, 201)});
  CHECK(outbox->next_due().value() == clock.now());
  const auto c = counts();
  CHECK(c.queued == 2);
  CHECK(c.sent == 1);
  CHECK(c.sending == 0);

  const auto everything = outbox->list(std::nullopt, 10).value();
  REQUIRE(everything.size() == 3);
  CHECK(everything[0].id == ids[2]);  // newest first
  const auto queued = outbox->list(outbox_state::queued, 1).value();
  REQUIRE(queued.size() == 1);
  CHECK(queued[0].id == ids[2]);
  const auto sent = outbox->list(outbox_state::sent, 10).value();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].id == ids[0]);
  CHECK(outbox->list(outbox_state::dead, 10).value().empty());
}

TEST_CASE("an enqueue that returned survives the process being killed") {
  temp_dir dir;
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Child: no doctest assertions here, only the exit status and the pipe.
    ::close(ready[0]);
    auto db = database::open(dir.db_file());
    if (!db) ::_exit(2);
    const auto now = system_clock{}.now();
    const auto sub = make_sqlite_subscription_store(*db)->upsert("https://push.example/k", "p", "a", now);
    if (!sub) ::_exit(3);
    const auto ids = make_sqlite_outbox_store(*db)->enqueue(
        std::vector<new_outbox_message>(5, fixture::message(*sub, "durable")), now);
    if (!ids) ::_exit(4);
    // Tell the parent how many were acknowledged, then wait to be killed
    // with the connection still open.
    const auto n = static_cast<char>(ids->size());
    if (::write(ready[1], &n, 1) != 1) ::_exit(5);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char acknowledged = 0;
  const auto got = ::read(ready[0], &acknowledged, 1);
  ::close(ready[0]);
  ::kill(child, SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(got == 1);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);

  auto db = open_ok(dir.db_file());
  auto outbox = make_sqlite_outbox_store(db);
  CHECK(outbox->counts().value().queued == acknowledged);
  const auto claimed = outbox->claim_due(system_clock{}.now() + 1s, 10).value();
  REQUIRE(claimed.size() == 5);
  CHECK(claimed[0].payload == bytes{'d', 'u', 'r', 'a', 'b', 'l', 'e'});
}

TEST_CASE_FIXTURE(fixture, "a message's A/B variant is stored, and its sends and unsubscribes count under it") {
  const auto sub = subscription();
  auto a = message(sub);
  a.source = "scenario:cart/first";
  a.variant = "a";
  auto b = message(sub);
  b.source = "scenario:cart/first";
  b.variant = "b";
  auto plain = message(sub);
  plain.source = "scenario:cart/second";
  const auto ids = enqueue({a, b, plain});
  CHECK(row(ids[0]).variant == "a");
  CHECK(row(ids[1]).variant == "b");
  CHECK(row(ids[2]).variant.empty());
  // A listing with payloads reads the payload after the row's columns, the
  // variant among them.
  auto listed = outbox->list_for_subscription(sub);
  REQUIRE(listed);
  REQUIRE(listed->size() == 3);
  CHECK((*listed)[1].variant == "b");
  CHECK((*listed)[1].payload == bytes{'h', 'e', 'l', 'l', 'o'});

  REQUIRE(claim().size() == 3);
  record({outcome(ids[0], outbox_state::sent, 201), outcome(ids[1], outbox_state::sent, 201),
          outcome(ids[2], outbox_state::sent, 201)});
  auto pacing = make_sqlite_pacing_store(db);
  clock.advance(1min);
  // The latest accepted push is blamed: the three finished together, so the
  // highest id (the step without variants) — then b once that one is gone.
  REQUIRE(pacing->attribute_unsubscribe(sub, "unsubscribe", "", clock.now(), 24h).has_value());
  auto totals = pacing->totals("scenario:cart", clock.now() - 1h, clock.now() + 1h);
  REQUIRE(totals);
  std::vector<std::string> seen;
  for (const auto& t : *totals) seen.push_back(t.step + "/" + t.variant + " " + t.metric + "=" + std::to_string(t.n));
  CHECK(seen == std::vector<std::string>{"first/a sent=1", "first/b sent=1", "second/ sent=1",
                                         "second/ unsubscribed:unsubscribe=1"});

  CHECK(db.exec("DELETE FROM outbox WHERE id = " + std::to_string(ids[2])).has_value());
  REQUIRE(pacing->attribute_unsubscribe(sub, "gone", "", clock.now(), 24h).has_value());
  auto blamed = pacing->attributions("scenario:cart", clock.now() - 1h, clock.now() + 1h, 10);
  REQUIRE(blamed);
  REQUIRE(blamed->size() == 2);
  CHECK(blamed->front().kind == "gone");
  CHECK(blamed->front().variant == "b");
}

TEST_CASE_FIXTURE(fixture, "backlog: queued, due, sending and the oldest due, from the partial indexes only") {
  auto empty = outbox->backlog(clock.now());
  REQUIRE(empty.has_value());
  CHECK(empty->queued == 0);
  CHECK_FALSE(empty->oldest_due.has_value());

  const auto sub = subscription();
  const auto first_due = clock.now();
  enqueue({message(sub), message(sub)});
  clock.advance(10s);
  auto later = message(sub);
  later.not_before = clock.now() + 1h;
  enqueue({message(sub), later});
  const auto finished = enqueue({message(sub)}).at(0);
  clock.advance(5s);
  // The oldest two (due first) are claimed: sending, and what remains due is 10 s younger.
  const auto claimed = claim(2);
  REQUIRE(claimed.size() == 2);
  CHECK(claimed[0].due_at == first_due);  // the claim tells when the attempt fell due
  auto b = outbox->backlog(clock.now());
  REQUIRE(b.has_value());
  CHECK(b->queued == 3);
  CHECK(b->due == 2);
  CHECK(b->sending == 2);
  REQUIRE(b->oldest_due.has_value());
  CHECK(*b->oldest_due == first_due + 10s);

  // Finished rows do not count however many there are; the not-yet-due one is queued, not due.
  const auto third = claim(2);
  record({outcome(claimed[0].id, outbox_state::sent), outcome(claimed[1].id, outbox_state::gone),
          outcome(third[0].id, outbox_state::sent), outcome(third[1].id, outbox_state::failed)});
  CHECK(third[1].id == finished);
  b = outbox->backlog(clock.now());
  REQUIRE(b.has_value());
  CHECK(b->queued == 1);
  CHECK(b->due == 0);
  CHECK(b->sending == 0);
  CHECK_FALSE(b->oldest_due.has_value());
}
