#pragma once
// Shared by the tracking tests: a shop on a real SQLite file — subscribers
// and outbox messages made by their stores, beacons through the recorder
// and purchases through the event ingestor (with attribution as the daemon
// hooks it), both on the single writer — and what the counters then hold.

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <future>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../storage/test_support.hpp"
#include "webpushd/core/text.hpp"
#include "webpushd/ingest/events.hpp"
#include "webpushd/storage/event_store.hpp"
#include "webpushd/storage/subscriber_store.hpp"
#include "webpushd/storage/write_queue.hpp"
#include "webpushd/tracking/attribution.hpp"
#include "webpushd/tracking/beacons.hpp"

namespace webpushd::tracking::testing {

using namespace std::chrono_literals;

/// @brief The instant an RFC 3339 text names; fails the test if it names none.
inline time_point at(const std::string& rfc3339) {
  auto t = ingest::parse_rfc3339(rfc3339);
  REQUIRE_MESSAGE(t.has_value(), rfc3339);
  return *t;
}

/// @brief A push as a test makes it: which device, and its delivery id.
struct push {
  std::int64_t outbox_id = 0;
  std::string delivery_id;
};

struct shop {
  storage::testing::temp_dir dir;
  // The setup's own connection (stores made before the writer starts work).
  storage::database setup = storage::testing::open_ok(dir.db_file());
  storage::write_queue writer{storage::testing::open_ok(dir.db_file())};
  manual_clock clock{at("2026-03-20T12:00:00Z")};
  delivery_signer signer{bytes(32, 7)};
  beacon_recorder beacons{signer, writer, clock};
  ingest::event_ingestor events{writer, clock};
  attribution_windows windows;

  shop() {
    events.set_stored_hook([this](storage::database& db, const std::vector<storage::stored_event>& stored,
                                  time_point now) -> result<void> {
      auto tally = attribute_purchases(db, stored, windows, now);
      if (!tally) return tl::unexpected(std::move(tally.error()));
      return {};
    });
  }
  ~shop() { writer.stop(); }

  /// @brief An active subscriber granting "promotions", linked to `customer` unless empty.
  std::int64_t device(const std::string& public_id, const std::string& customer = "") {
    auto subscribers = storage::make_sqlite_subscriber_store(setup);
    storage::subscriber_fields f;
    f.endpoint = "https://push.example/" + public_id;
    f.p256dh = "k";
    f.auth = "a";
    f.categories = {"promotions"};
    f.new_public_id = public_id;
    auto up = subscribers->upsert(f, at("2026-03-01T00:00:00Z"));
    REQUIRE(up.has_value());
    if (!customer.empty()) REQUIRE(subscribers->link_customer(up->subscriber.id, customer, at("2026-03-01T00:00:00Z")));
    return up->subscriber.id;
  }

  /// @brief A message to `device` from `source` (and variant), with a delivery id.
  push message(std::int64_t device, const std::string& source, const std::string& variant = "") {
    storage::new_outbox_message m;
    m.subscription_id = device;
    m.payload = bytes{'{', '}'};
    m.source = source;
    m.variant = variant;
    m.category = "promotions";
    m.delivery_id = delivery_signer::new_delivery_id();
    auto ids = storage::make_sqlite_outbox_store(setup)->enqueue({m}, at("2026-03-01T00:00:00Z"));
    REQUIRE(ids.has_value());
    return push{ids->front(), m.delivery_id};
  }

  /// @brief The service worker's report, signed as the push carried it, at `when`.
  result<bool> report(const push& p, const std::string& type, time_point when, const std::string& action = "") {
    return report_signed(p.delivery_id, type, when, action, signer.sign(p.delivery_id));
  }

  result<bool> report_signed(const std::string& delivery_id, const std::string& type, time_point when,
                             const std::string& action, const std::string& sig) {
    clock.set(when);
    std::promise<result<bool>> done;
    auto f = done.get_future();
    beacons.record(beacon{delivery_id, type, action, sig}, [&done](result<bool> r) { done.set_value(std::move(r)); });
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    return f.get();
  }

  /// @brief POST /v1/events with one purchase.
  ingest::ingest_outcome purchase(const std::string& id, const std::string& customer, const std::string& subscription,
                                  time_point occurred_at, double total, const std::string& currency = "PLN") {
    nlohmann::json e{{"id", id},
                     {"type", "purchase"},
                     {"occurred_at", format_rfc3339(occurred_at)},
                     {"properties",
                      {{"order_id", "order-" + id},
                       {"items", {{{"product_id", "mug"}, {"quantity", 1}}}},
                       {"total", total},
                       {"currency", currency}}}};
    if (!customer.empty()) e["customer_id"] = customer;
    if (!subscription.empty()) e["subscription_id"] = subscription;
    std::promise<result<ingest::ingest_outcome>> done;
    auto f = done.get_future();
    events.ingest(e, [&done](result<ingest::ingest_outcome> r) { done.set_value(std::move(r)); });
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    auto out = f.get();
    REQUIRE_MESSAGE(out.has_value(), (out ? "" : out.error().code + ": " + out.error().message));
    REQUIRE_MESSAGE(out->rejected.empty(), (out->rejected.empty() ? "" : out->rejected.front().reason.message));
    return *out;
  }

  /// @brief Every counter as "source|step|variant|metric=n", sorted (all hours together).
  std::vector<std::string> counters() {
    return rows("SELECT source || '|' || step || '|' || variant || '|' || metric || '=' || sum(n) FROM pacing_counters "
                "GROUP BY source, step, variant, metric ORDER BY 1");
  }

  /// @brief The rows of a one-column query, as text.
  std::vector<std::string> rows(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(setup.handle(), sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    std::vector<std::string> out;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      const auto* text = sqlite3_column_text(stmt, 0);
      out.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text) : "");
    }
    sqlite3_finalize(stmt);
    return out;
  }

  std::string scalar(const std::string& sql) { return storage::testing::scalar(setup, sql); }
};

}  // namespace webpushd::tracking::testing
