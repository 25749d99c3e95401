// The outbox dispatcher end to end inside one process: a real SQLite outbox,
// real encryption and VAPID signing, the real sender, and the project's
// push-sink child process answering each response class on loopback — and
// recalls of accepted messages (RFC 8030 §7.3) against the same sink.
#include "webpushd/delivery/dispatcher.hpp"

#include <algorithm>
#include <mutex>
#include <thread>

#include <doctest/doctest.h>

#include "../storage/test_support.hpp"
#include "sink_process.hpp"
#include "webpushd/crypto/primitives.hpp"

using namespace webpushd;
using namespace webpushd::delivery;
using namespace std::chrono_literals;
using storage::outbox_state;

namespace {

const test::sink_process& sink() {
  static test::sink_process instance({"--threads", "2"});
  return instance;
}

endpoint_rules loopback_rules() {
  endpoint_rules r;
  // localhost is the sink too: a Location there passes the rules, so only
  // the recall's origin check keeps a DELETE from reaching it.
  r.allowed_hosts = {"127.0.0.1", "localhost"};
  r.allow_http = true;
  r.allow_private_addresses = true;
  return r;
}

// A world: outbox and subscriptions in a real file, a signer, a sender and a
// dispatcher wired as the daemon wires them, on the real clock (the sink and
// the network run in real time). Connections are opened NOMUTEX, one thread
// each: the dispatcher's loop owns `dispatcher_db`, the test reads and writes
// through its own `db`, as the daemon's other threads do.
struct world {
  storage::testing::temp_dir dir;
  storage::database db = storage::testing::open_ok(dir.db_file());
  std::unique_ptr<storage::outbox_store> outbox = storage::make_sqlite_outbox_store(db);
  std::unique_ptr<storage::subscription_store> subs = storage::make_sqlite_subscription_store(db);
  std::unique_ptr<storage::recall_store> recalls = storage::make_sqlite_recall_store(db);
  storage::database dispatcher_db = storage::testing::open_ok(dir.db_file());
  std::unique_ptr<storage::outbox_store> dispatcher_outbox = storage::make_sqlite_outbox_store(dispatcher_db);
  std::unique_ptr<storage::recall_store> dispatcher_recalls = storage::make_sqlite_recall_store(dispatcher_db);
  webpushd::system_clock clock;
  std::unique_ptr<webpush::vapid_signer> signer;
  std::unique_ptr<sender> network;
  dispatcher_options dopt;
  std::unique_ptr<dispatcher> disp;

  explicit world(retry_policy retry = {}, std::chrono::milliseconds request_timeout = 3000ms) {
    auto key = webpush::vapid_key::generate();
    REQUIRE(key.has_value());
    auto s = webpush::vapid_signer::create(std::move(*key), "mailto:ops@shop.example", clock);
    REQUIRE(s.has_value());
    signer = std::move(*s);
    sender_options so;
    so.rules = loopback_rules();
    so.connect_timeout = 1000ms;
    so.request_timeout = request_timeout;
    so.shutdown_grace = 500ms;
    network = std::make_unique<sender>(so);
    dopt.workers = 2;
    dopt.poll_interval = 20ms;
    dopt.retry = retry;
    dopt.rules = loopback_rules();
    disp = std::make_unique<dispatcher>(dopt, *dispatcher_outbox, *dispatcher_recalls, *signer, *network, clock);
  }
  ~world() {
    disp->stop(1000ms);
    disp.reset();
    network.reset();
  }

  // A subscription whose endpoint is the sink path, with genuine keys.
  std::int64_t subscribe(const std::string& path) {
    auto ua = webpush::vapid_key::generate();  // any valid P-256 point will do as p256dh
    REQUIRE(ua.has_value());
    const auto id = subs->upsert(sink().url(path), ua->public_key_b64url(),
                                 base64url_encode(crypto::random_bytes(16)), clock.now());
    REQUIRE(id.has_value());
    return *id;
  }

  std::vector<std::int64_t> enqueue(std::int64_t subscription_id, int count = 1, std::int32_t ttl = 3600,
                                    std::optional<std::int64_t> journey = std::nullopt) {
    std::vector<storage::new_outbox_message> msgs;
    for (int i = 0; i < count; ++i) {
      storage::new_outbox_message m;
      m.subscription_id = subscription_id;
      m.payload = bytes(200, 'x');
      m.ttl_seconds = ttl;
      m.source = "test";
      m.journey_id = journey;
      msgs.push_back(m);
    }
    auto ids = outbox->enqueue(msgs, clock.now());
    REQUIRE(ids.has_value());
    return *ids;
  }

  storage::outbox_row row(std::int64_t id) {
    auto r = outbox->get(id);
    REQUIRE(r.has_value());
    REQUIRE(r->has_value());
    return **r;
  }

  // A process restart: the dispatcher stops, a new one starts on the same
  // connection, as the daemon would make it.
  void restart() {
    disp->stop(1000ms);
    disp = std::make_unique<dispatcher>(dopt, *dispatcher_outbox, *dispatcher_recalls, *signer, *network, clock);
    REQUIRE(disp->start().has_value());
  }

  // A message of `journey` that the sink at `path` accepted with a Location.
  // The dispatcher must be running.
  std::int64_t accepted(const std::string& path, std::int64_t journey, std::int32_t ttl = 3600) {
    const auto id = enqueue(subscribe(path), 1, ttl, journey).at(0);
    disp->notify();
    run_until_settled();
    REQUIRE(row(id).state == outbox_state::sent);
    return id;
  }

  // What a journey exit does: requests the recall of the journey's accepted messages.
  std::size_t request_recall(std::int64_t journey) {
    auto n = recalls->request_for_journey(journey, "journey exited: purchase", clock.now());
    REQUIRE(n.has_value());
    disp->notify();
    return *n;
  }

  // Waits (bounded) until the message's recall has an outcome.
  storage::recall_status recall_outcome(std::int64_t id, std::chrono::milliseconds limit = 15s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = recalls->get(id);
      REQUIRE(r.has_value());
      REQUIRE(r->has_value());
      if ((*r)->state != storage::recall_state::requested) return **r;
      std::this_thread::sleep_for(20ms);
    }
    FAIL("the recall did not settle in time");
    return {};
  }

  // The sink's path of a message's Location ("/message/<n>").
  std::string location_path(std::int64_t id) {
    const auto location = row(id).location;
    REQUIRE(location.rfind(sink().url("/message/"), 0) == 0);
    return location.substr(sink().url("").size());
  }

  // Waits (bounded) until nothing is queued or in flight.
  void run_until_settled(std::chrono::milliseconds limit = 15s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      auto c = outbox->counts();
      REQUIRE(c.has_value());
      if (c->queued == 0 && c->sending == 0) return;
      std::this_thread::sleep_for(20ms);
    }
    FAIL("the outbox did not settle in time");
  }
};

// Three attempts in all, close together: a test sees a failure through to the end quickly.
retry_policy three_quick_attempts() {
  retry_policy retry;
  retry.max_attempts = 3;
  retry.base = 50ms;
  retry.cap = 200ms;
  return retry;
}

}  // namespace

TEST_CASE("every response class ends in the right outbox state") {
  world w(three_quick_attempts());
  const auto ok = w.enqueue(w.subscribe("/push/ok/d1")).at(0);
  const auto gone = w.enqueue(w.subscribe("/push/gone/d1")).at(0);
  const auto large = w.enqueue(w.subscribe("/push/toolarge/d1")).at(0);
  const auto unauthorized = w.enqueue(w.subscribe("/push/unauthorized/d1")).at(0);
  const auto flaky = w.enqueue(w.subscribe("/push/error/d1?times=2")).at(0);
  const auto down = w.enqueue(w.subscribe("/push/error/d2")).at(0);
  const auto reset = w.enqueue(w.subscribe("/push/reset/d1")).at(0);
  REQUIRE(w.disp->start().has_value());
  w.run_until_settled();

  const auto r_ok = w.row(ok);
  CHECK(r_ok.state == outbox_state::sent);
  CHECK(r_ok.last_status == 201);
  CHECK(r_ok.location.rfind(sink().url("/message/"), 0) == 0);
  CHECK(r_ok.attempts == 1);

  const auto r_gone = w.row(gone);
  CHECK(r_gone.state == outbox_state::gone);
  CHECK(r_gone.last_status == 410);
  const auto sub = w.subs->find(r_gone.subscription_id);
  REQUIRE(sub.has_value());
  CHECK((*sub)->state == storage::subscription_state::gone);

  const auto r_large = w.row(large);
  CHECK(r_large.state == outbox_state::failed);
  CHECK(r_large.last_status == 413);
  CHECK(r_large.last_reason.find("4096") != std::string::npos);

  const auto r_unauth = w.row(unauthorized);
  CHECK(r_unauth.state == outbox_state::failed);
  CHECK(r_unauth.last_status == 401);
  CHECK(r_unauth.last_reason.find("VAPID") != std::string::npos);  // the body is kept for diagnosis

  const auto r_flaky = w.row(flaky);  // 503, 503, then 201
  CHECK(r_flaky.state == outbox_state::sent);
  CHECK(r_flaky.attempts == 3);
  CHECK(sink().count("/push/error/d1") == 3);

  const auto r_down = w.row(down);  // always 503: dead after max_attempts, with the reason
  CHECK(r_down.state == outbox_state::dead);
  CHECK(r_down.attempts == 3);
  CHECK(r_down.last_reason.find("gave up after 3 attempts") != std::string::npos);
  CHECK(sink().count("/push/error/d2") == 3);

  const auto r_reset = w.row(reset);  // connection reset every time: retried, then dead
  CHECK(r_reset.state == outbox_state::dead);
  CHECK(r_reset.attempts == 3);

  const auto c = w.disp->counters();
  CHECK(c.sent == 2);
  CHECK(c.dead == 2);
}

TEST_CASE("429 waits exactly Retry-After before the next attempt") {
  retry_policy retry;
  retry.base = 10ms;  // the back-off alone would retry at once
  world w(retry);
  const auto id = w.enqueue(w.subscribe("/push/ratelimit/d3?after=1&times=1")).at(0);
  REQUIRE(w.disp->start().has_value());
  w.run_until_settled();
  CHECK(w.row(id).state == outbox_state::sent);
  const auto recs = sink().records("/push/ratelimit/d3");
  REQUIRE(recs.size() == 2);
  const auto gap_us = recs[1]["since_start_us"].get<std::int64_t>() - recs[0]["since_start_us"].get<std::int64_t>();
  CHECK(gap_us >= 1'000'000);
  CHECK(gap_us < 3'000'000);
}

TEST_CASE("a retry that would land after the TTL expires the message instead") {
  retry_policy retry;
  retry.base = 3000ms;
  retry.jitter = 0;
  world w(retry);
  const auto id = w.enqueue(w.subscribe("/push/error/d4"), 1, /*ttl=*/2).at(0);
  REQUIRE(w.disp->start().has_value());
  w.run_until_settled();
  const auto r = w.row(id);
  CHECK(r.state == outbox_state::expired);
  CHECK(r.last_reason.find("TTL") != std::string::npos);
  CHECK(sink().count("/push/error/d4") == 1);
}

TEST_CASE("a retried message carries only what is left of its TTL") {
  retry_policy retry;
  retry.base = 1500ms;
  retry.jitter = 0;
  world w(retry);
  w.enqueue(w.subscribe("/push/error/d5?times=1"), 1, /*ttl=*/60);
  REQUIRE(w.disp->start().has_value());
  w.run_until_settled();
  const auto recs = sink().records("/push/error/d5");
  REQUIRE(recs.size() == 2);
  CHECK(recs[0]["ttl"] == "60");
  const int second = std::stoi(recs[1]["ttl"].get<std::string>());
  CHECK(second >= 57);
  CHECK(second <= 59);
}

TEST_CASE("a 410 finishes the subscription's other queued messages without more requests") {
  world w;
  const auto sub = w.subscribe("/push/gone/d6");
  const auto first = w.enqueue(sub).at(0);
  // Due later, so they are still queued when the 410 is recorded.
  std::vector<storage::new_outbox_message> later(19);
  for (auto& m : later) {
    m.subscription_id = sub;
    m.payload = bytes(10, 'y');
    m.not_before = w.clock.now() + 1s;
  }
  const auto ids = w.outbox->enqueue(later, w.clock.now());
  REQUIRE(ids.has_value());
  REQUIRE(w.disp->start().has_value());
  w.run_until_settled();
  CHECK(w.row(first).state == outbox_state::gone);
  for (const auto id : *ids) CHECK(w.row(id).state == outbox_state::gone);
  CHECK(sink().count("/push/gone/d6") == 1);
}

TEST_CASE("stop() lets requests in flight finish and records them; nothing is left claimed") {
  world w;
  const auto ids = w.enqueue(w.subscribe("/push/slow/d7?ms=300"), 10);
  REQUIRE(w.disp->start().has_value());
  std::this_thread::sleep_for(100ms);  // the first requests are in flight
  w.disp->stop(5000ms);
  auto c = w.outbox->counts();
  REQUIRE(c.has_value());
  CHECK(c->sending == 0);
  CHECK(c->sent + c->queued == 10);
  CHECK(c->sent >= 1);
}

TEST_CASE("messages left claimed by a crash are sent after the next start") {
  world w;
  const auto ids = w.enqueue(w.subscribe("/push/ok/d8"), 5);
  // What a crash leaves behind: claimed, never recorded.
  auto claimed = w.outbox->claim_due(w.clock.now(), 5);
  REQUIRE(claimed.has_value());
  REQUIRE(claimed->size() == 5);
  REQUIRE(w.disp->start().has_value());  // requeues, then delivers
  w.run_until_settled();
  for (const auto id : ids) CHECK(w.row(id).state == outbox_state::sent);
}

TEST_CASE("an endpoint the rules no longer allow is failed at send time, without a request") {
  world w;
  // Stored while allowed (e.g. before a config change): the subscription
  // store does not judge endpoints, the dispatcher does, at send time.
  const auto sub = w.subs->upsert("http://10.0.0.1/push/ok/d9", "BAAA", "AAAA", w.clock.now());
  REQUIRE(sub.has_value());
  const auto id = w.enqueue(*sub).at(0);
  REQUIRE(w.disp->start().has_value());
  w.run_until_settled();
  const auto r = w.row(id);
  CHECK(r.state == outbox_state::failed);
  CHECK_FALSE(r.last_status.has_value());
}

// ---------------------------------------------------------------------------
// Recalls (RFC 8030 §7.3)

namespace {

// The claims of the VAPID token in an Authorization header, and its key.
struct vapid_header {
  nlohmann::json claims;
  std::string key;
};

vapid_header read_vapid(const std::string& header) {
  // "vapid t=<header>.<claims>.<signature>, k=<public key>"
  const auto t = header.find("t=");
  const auto comma = header.find(", k=");
  REQUIRE(header.rfind("vapid ", 0) == 0);
  REQUIRE(t != std::string::npos);
  REQUIRE(comma != std::string::npos);
  const auto token = header.substr(t + 2, comma - t - 2);
  const auto first_dot = token.find('.');
  const auto second_dot = token.find('.', first_dot + 1);
  const auto claims = base64url_decode(token.substr(first_dot + 1, second_dot - first_dot - 1));
  REQUIRE(claims.has_value());
  return {nlohmann::json::parse(claims->begin(), claims->end()), header.substr(comma + 4)};
}

}  // namespace

TEST_CASE("a recall DELETEs the message's Location with a VAPID token for that origin") {
  world w;
  REQUIRE(w.disp->start().has_value());
  const auto id = w.accepted("/push/ok/recall-1", 101);
  const auto path = w.location_path(id);

  CHECK(w.request_recall(101) == 1);
  const auto outcome = w.recall_outcome(id);
  CHECK(outcome.state == storage::recall_state::recalled);
  CHECK(outcome.reason == "DELETE answered 204");
  CHECK(w.row(id).state == outbox_state::sent);  // its delivery record stays as it was

  const auto recs = sink().records(path);
  REQUIRE(recs.size() == 1);
  CHECK(recs[0]["method"] == "DELETE");
  CHECK(recs[0]["body_bytes"] == 0);
  const auto vapid = read_vapid(recs[0]["authorization_header"].get<std::string>());
  CHECK(vapid.claims["aud"] == sink().url(""));  // the Location's origin
  CHECK(vapid.claims["sub"] == "mailto:ops@shop.example");
  CHECK(vapid.key == w.signer->public_key_b64url());
  // The push itself carried the same token: one per origin, cached.
  CHECK(sink().records("/push/ok/recall-1").at(0)["authorization_header"] == recs[0]["authorization_header"]);
  CHECK(w.disp->counters().recalled == 1);
}

TEST_CASE("a recall too late (404) or not supported (405) is recorded as such") {
  world w;
  REQUIRE(w.disp->start().has_value());
  const auto delivered = w.accepted("/push/ok/recall-2?recall=404", 102);
  const auto unsupported = w.accepted("/push/ok/recall-3?recall=405", 102);

  CHECK(w.request_recall(102) == 2);
  const auto late = w.recall_outcome(delivered);
  CHECK(late.state == storage::recall_state::too_late);
  CHECK(late.reason == "already delivered or gone (404)");
  const auto refused = w.recall_outcome(unsupported);
  CHECK(refused.state == storage::recall_state::unsupported);
  CHECK(refused.reason.rfind("recall not supported: rejected (405)", 0) == 0);
  // Each was asked once: neither answer is worth a retry.
  CHECK(sink().count(w.location_path(delivered)) == 1);
  CHECK(sink().count(w.location_path(unsupported)) == 1);
  // A 404 to a recall says nothing about the subscription: it stays active.
  const auto sub = w.subs->find(w.row(delivered).subscription_id);
  REQUIRE(sub.has_value());
  CHECK((*sub)->state == storage::subscription_state::active);
}

TEST_CASE("a Location on another host than the endpoint is never requested") {
  world w;
  REQUIRE(w.disp->start().has_value());
  // The push service answers with a Location on "localhost": the same sink
  // and port, allowed by the rules, but not the endpoint's origin.
  const auto id = w.accepted("/push/ok/recall-4?location_host=localhost", 104);
  const auto location = w.row(id).location;
  REQUIRE(location.rfind("http://localhost:", 0) == 0);

  CHECK(w.request_recall(104) == 1);
  const auto outcome = w.recall_outcome(id);
  CHECK(outcome.state == storage::recall_state::failed);
  CHECK(outcome.reason == "Location on http://localhost:" + std::to_string(sink().port()) +
                              " is not on the endpoint's origin " + sink().url(""));
  CHECK(sink().count(location.substr(location.find("/message/"))) == 0);
}

TEST_CASE("a recall of a message that expired meanwhile is too late, without a request") {
  world w;
  REQUIRE(w.disp->start().has_value());
  const auto id = w.accepted("/push/ok/recall-5", 105, /*ttl=*/2);
  w.disp->stop();
  CHECK(w.request_recall(105) == 1);  // still within its TTL
  // Past its TTL, the push service has dropped it.
  std::this_thread::sleep_for(w.row(id).expires_at - w.clock.now() + 100ms);
  w.restart();
  const auto outcome = w.recall_outcome(id);
  CHECK(outcome.state == storage::recall_state::too_late);
  CHECK(outcome.reason == "expired before it could be recalled");
  CHECK(sink().count(w.location_path(id)) == 0);
}

TEST_CASE("a recall claimed when the process died is sent after the next start") {
  world w;
  REQUIRE(w.disp->start().has_value());
  const auto id = w.accepted("/push/ok/recall-6", 106);
  w.disp->stop();
  CHECK(w.request_recall(106) == 1);
  // What a crash leaves behind: claimed (leased), the DELETE's outcome never recorded.
  auto claimed = w.recalls->claim_due(w.clock.now(), 10min, 10);
  REQUIRE(claimed.has_value());
  REQUIRE(claimed->size() == 1);
  w.restart();
  CHECK(w.recall_outcome(id).state == storage::recall_state::recalled);
  CHECK(sink().count(w.location_path(id)) == 1);
}

TEST_CASE("a failing recall is retried with the retry policy, then failed with the reason") {
  world w(three_quick_attempts());
  REQUIRE(w.disp->start().has_value());
  const auto id = w.accepted("/push/ok/recall-7?recall=503", 107);
  CHECK(w.request_recall(107) == 1);
  const auto outcome = w.recall_outcome(id);
  CHECK(outcome.state == storage::recall_state::failed);
  CHECK(outcome.reason == "gave up after 3 attempts: push service error (503)");
  CHECK(sink().count(w.location_path(id)) == 3);
  CHECK(w.disp->counters().recalls_retried == 2);
}

namespace {

// Keeps what the dispatcher reports, by message id order of arrival.
struct recording_observer final : dispatcher_observer {
  std::mutex m;
  std::vector<delivery_report> reports;
  void on_recorded(std::span<const delivery_report> batch) override {
    std::lock_guard lock(m);
    reports.insert(reports.end(), batch.begin(), batch.end());
  }
  std::vector<delivery_report> taken() {
    std::lock_guard lock(m);
    return reports;
  }
};

std::size_t count_of(const std::vector<delivery_report>& rs, outbox_state state, std::string_view failure = "*") {
  return static_cast<std::size_t>(std::count_if(rs.begin(), rs.end(), [&](const delivery_report& r) {
    return r.state == state && (failure == "*" || failure == r.failure_class);
  }));
}

}  // namespace

TEST_CASE("the observer hears every recorded attempt: outcome, push service, latency and failure class") {
  world w(three_quick_attempts());
  recording_observer seen;
  w.disp->set_observer(&seen);
  w.enqueue(w.subscribe("/push/ok/o1"));
  w.enqueue(w.subscribe("/push/gone/o1"));
  w.enqueue(w.subscribe("/push/toolarge/o1"));
  w.enqueue(w.subscribe("/push/error/o1?times=1"));  // 503, then 201
  w.enqueue(w.subscribe("/push/reset/o1"));          // no answer, three times: dead
  REQUIRE(w.disp->start().has_value());
  w.run_until_settled();
  // The last reports follow the commit the test saw: wait for them too.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (seen.taken().size() < 8 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  const auto rs = seen.taken();
  REQUIRE(rs.size() == 8);  // ok, gone, 413, 503 + 201, reset ×3
  CHECK(count_of(rs, outbox_state::sent) == 2);
  CHECK(count_of(rs, outbox_state::gone) == 1);
  CHECK(count_of(rs, outbox_state::failed, "") == 1);
  CHECK(count_of(rs, outbox_state::queued, "server_error") == 1);
  CHECK(count_of(rs, outbox_state::queued, "network") == 2);
  CHECK(count_of(rs, outbox_state::dead, "network") == 1);
  for (const auto& r : rs) {
    CHECK(r.service == push_service::other);  // 127.0.0.1 is none of the named services
    CHECK(r.attempted);
    // Answered attempts have a latency from their due time; resets have none.
    CHECK(r.latency.has_value() == (r.failure_class != std::string_view{"network"}));
    if (r.latency) CHECK(*r.latency >= std::chrono::microseconds::zero());
  }
}
