#include "webpushd/automation/simulation.hpp"

#include <algorithm>
#include <iomanip>
#include <limits>
#include <map>
#include <sstream>

#include "webpushd/ingest/events.hpp"
#include "webpushd/pacing/gate.hpp"
#include "webpushd/storage/pacing_store.hpp"
#include "webpushd/storage/event_store.hpp"
#include "webpushd/storage/journey_store.hpp"
#include "webpushd/storage/outbox_store.hpp"
#include "webpushd/storage/subscriber_store.hpp"

namespace webpushd::automation {
namespace {

using nlohmann::json;

error trace_error(std::size_t line, const std::string& field, const std::string& message) {
  return error{"invalid_trace", "line " + std::to_string(line) + ": " + message, field};
}

std::string format_time(time_point t) {
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  const std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  std::ostringstream out;
  out << std::put_time(&tm, "%Y-%m-%d %H:%M");
  return out.str();
}

}  // namespace

struct simulation::impl {
  storage::database db;
  tracking::delivery_signer signer;
  engine eng;
  ingest::custom_event_types custom;
  engine_options options;
  std::shared_ptr<const pacing::policy> pacing;
  std::unique_ptr<pacing::send_gate> gate;  // nullptr: no pacing
  std::unique_ptr<storage::outbox_store> outbox;
  time_point now{};
  bool started = false;

  impl(storage::database d, std::shared_ptr<const scenario_set> s, engine_options o, ingest::custom_event_types c,
       std::shared_ptr<const pacing::policy> p)
      // The simulation never delivers, so any key signs its delivery ids.
      : db(std::move(d)),
        signer(bytes(32, std::uint8_t{7})),
        eng(std::move(s), o, signer),
        custom(std::move(c)),
        options(std::move(o)),
        pacing(std::move(p)),
        outbox(storage::make_sqlite_outbox_store(db)) {
    if (pacing) {
      gate = std::make_unique<pacing::send_gate>(db, pacing);
      outbox->set_gate(gate.get());
    }
  }

  result<void> in_transaction(const std::function<result<void>()>& work) {
    storage::transaction tx{db};
    if (auto r = tx.begun(); !r) return r;
    if (auto r = work(); !r) return r;
    return tx.commit();
  }

  result<void> advance_to(time_point t) {
    while (true) {
      // The next thing to happen: a journey step, or a message a cap or
      // quiet hours deferred.
      auto step = eng.next_due(db);
      if (!step) return tl::unexpected(std::move(step.error()));
      auto deferred = outbox->next_due();
      if (!deferred) return tl::unexpected(std::move(deferred.error()));
      std::optional<time_point> next = *step;
      if (*deferred && (!next || **deferred < *next)) next = *deferred;
      if (!next || *next > t) break;
      // At its own due time: what the scheduler and dispatcher do in real time.
      now = std::max(now, *next);
      if (auto r = in_transaction([&]() -> result<void> {
            auto fired = eng.fire_due(db, now, 1000);
            if (!fired) return tl::unexpected(fired.error());
            return deliver_due();
          });
          !r) {
        return r;
      }
    }
    if (t != time_point::max()) now = std::max(now, t);  // run_to_end leaves the clock at the last step
    return {};
  }

  // What reached the outbox is taken as delivered at once (a push service
  // answering 201), so a later exit does not "cancel" a message the
  // shopper would already have seen.
  result<void> deliver_due() {
    while (true) {
      auto claimed = outbox->claim_due(now, 1000);
      if (!claimed) return tl::unexpected(std::move(claimed.error()));
      if (claimed->empty()) return {};
      std::vector<storage::attempt_result> results;
      results.reserve(claimed->size());
      for (const auto& m : *claimed) {
        storage::attempt_result a;
        a.message_id = m.id;
        a.new_state = storage::outbox_state::sent;
        a.http_status = 201;
        a.reason = "simulated";
        results.push_back(std::move(a));
      }
      if (auto r = outbox->record(results, now); !r) return r;
    }
  }

  result<time_point> time_of(const json& item, std::size_t line) {
    if (!item.contains("at") || !item.at("at").is_string()) return tl::unexpected(trace_error(line, "at", "`at` (RFC 3339) is required"));
    auto t = ingest::parse_rfc3339(item.at("at").get<std::string>());
    if (!t) return tl::unexpected(trace_error(line, "at", "`at` is not an RFC 3339 date-time"));
    return *t;
  }

  result<storage::subscriber_record> find_subscriber(const std::string& public_id, std::size_t line) {
    auto found = storage::make_sqlite_subscriber_store(db)->find_by_public_id(public_id);
    if (!found) return tl::unexpected(std::move(found.error()));
    if (!*found) return tl::unexpected(trace_error(line, "subscription_id", "unknown subscription " + public_id));
    return std::move(**found);
  }

  result<void> subscribe(const json& s, std::size_t line) {
    if (!s.is_object() || !s.contains("subscription_id") || !s.at("subscription_id").is_string()) {
      return tl::unexpected(trace_error(line, "subscribe.subscription_id", "subscribe needs a subscription_id"));
    }
    const auto id = s.at("subscription_id").get<std::string>();
    storage::subscriber_fields f;
    f.endpoint = "https://simulated.invalid/" + id;
    f.p256dh = "simulated";
    f.auth = "simulated";
    f.timezone = s.value("timezone", options.default_timezone);
    f.locale = s.value("locale", options.default_locale);
    f.text_version = "simulated";
    if (s.contains("categories") && s.at("categories").is_array()) {
      for (const auto& c : s.at("categories")) {
        if (c.is_string()) f.categories.push_back(c.get<std::string>());
      }
    }
    std::sort(f.categories.begin(), f.categories.end());
    f.new_public_id = id;
    const auto customer = s.value("customer_id", std::string{});
    return in_transaction([&]() -> result<void> {
      auto store = storage::make_sqlite_subscriber_store(db);
      auto up = store->upsert(f, now);
      if (!up) return tl::unexpected(std::move(up.error()));
      auto record = up->subscriber;
      if (!customer.empty()) {
        if (auto r = store->link_customer(record.id, customer, now); !r) return r;
        record.customer_id = customer;
      }
      if (up->created || !up->was_active) {
        if (auto r = eng.on_subscribed(db, record, now); !r) return r;
      }
      if (!customer.empty()) {
        if (auto r = eng.on_customer_linked(db, record, now); !r) return r;
      }
      return deliver_due();
    });
  }

  result<void> apply(const json& item, std::size_t line) {
    if (!item.is_object()) return tl::unexpected(trace_error(line, "", "each line must be a JSON object"));
    if (item.contains("type")) {
      auto e = ingest::validate_event(item, "", custom);
      if (!e) {
        auto err = e.error();
        err.message = "line " + std::to_string(line) + ": " + err.message;
        return tl::unexpected(std::move(err));
      }
      if (started && e->occurred_at < now) {
        return tl::unexpected(trace_error(line, "occurred_at", "lines must be in time order"));
      }
      if (auto r = advance_to(e->occurred_at); !r) return r;
      started = true;
      const storage::stored_event stored{e->id, e->type, e->customer_id, e->subscription_id,
                                         e->occurred_at, now, e->properties};
      return in_transaction([&]() -> result<void> {
        auto fresh = storage::make_sqlite_event_store(db)->insert_if_new(stored);
        if (!fresh) return tl::unexpected(std::move(fresh.error()));
        if (!*fresh) return {};  // a duplicate id: the daemon would not react either
        if (auto r = eng.on_events(db, {stored}, now); !r) return r;
        return deliver_due();
      });
    }
    auto at = time_of(item, line);
    if (!at) return tl::unexpected(std::move(at.error()));
    if (started && *at < now) return tl::unexpected(trace_error(line, "at", "lines must be in time order"));
    if (auto r = advance_to(*at); !r) return r;
    started = true;
    if (item.contains("subscribe")) return subscribe(item.at("subscribe"), line);
    if (item.contains("consent")) {
      const auto& c = item.at("consent");
      auto who = find_subscriber(c.value("subscription_id", ""), line);
      if (!who) return tl::unexpected(std::move(who.error()));
      std::vector<std::string> categories = c.value("categories", std::vector<std::string>{});
      std::sort(categories.begin(), categories.end());
      std::vector<std::string> withdrawn;
      std::set_difference(who->categories.begin(), who->categories.end(), categories.begin(), categories.end(),
                          std::back_inserter(withdrawn));
      return in_transaction([&]() -> result<void> {
        if (auto r = storage::make_sqlite_subscriber_store(db)->set_categories(who->id, categories, "simulated", now); !r) {
          return r;
        }
        if (!pacing || withdrawn.empty()) return {};
        return pacing::attribute_unsubscribe(db, *pacing, who->id, "withdraw", withdrawn, now);
      });
    }
    if (item.contains("unsubscribe")) {
      auto who = find_subscriber(item.at("unsubscribe").is_string() ? item.at("unsubscribe").get<std::string>() : "", line);
      if (!who) return tl::unexpected(std::move(who.error()));
      return in_transaction([&]() -> result<void> {
        auto removed = storage::make_sqlite_subscriber_store(db)->mark_unsubscribed(who->id, now);
        if (!removed) return tl::unexpected(std::move(removed.error()));
        if (!pacing) return {};
        return pacing::attribute_unsubscribe(db, *pacing, who->id, "unsubscribe", removed->categories_before, now);
      });
    }
    if (item.contains("link")) {
      const auto& l = item.at("link");
      auto who = find_subscriber(l.value("subscription_id", ""), line);
      if (!who) return tl::unexpected(std::move(who.error()));
      const auto customer = l.value("customer_id", std::string{});
      if (customer.empty()) return tl::unexpected(trace_error(line, "link.customer_id", "link needs a customer_id"));
      return in_transaction([&]() -> result<void> {
        if (auto r = storage::make_sqlite_subscriber_store(db)->link_customer(who->id, customer, now); !r) return r;
        who->customer_id = customer;
        return eng.on_customer_linked(db, *who, now);
      });
    }
    return tl::unexpected(
        trace_error(line, "", "expected an event (with \"type\") or one of subscribe, consent, unsubscribe, link"));
  }
};

namespace {

// A step's message after the engine made it: sent when the push service
// would have had it (later than made, when a cap or quiet hours deferred
// it), suppressed by pacing, cancelled while it waited, or still waiting.
void describe_fate(simulated_line& l, const storage::outbox_row& row) {
  switch (row.state) {
    case storage::outbox_state::sent:
      if (row.finished_at) l.at = *row.finished_at;
      return;
    case storage::outbox_state::suppressed:
    case storage::outbox_state::cancelled:
      l.outcome = storage::to_string(row.state);
      l.reason = row.last_reason;
      return;
    case storage::outbox_state::queued:
      l.outcome = "deferred";
      l.reason = "still waiting at the end of the trace: " + row.last_reason;
      return;
    default:
      return;
  }
}

// The trace's unsubscribes and withdrawals, each with the push it is
// attributed to (none when no push came within the window).
result<void> append_unsubscribes(storage::database& db, std::vector<simulated_line>& out) {
  auto attributed = storage::make_sqlite_pacing_store(db)->attributions("", time_point::min(), time_point::max(),
                                                                         std::numeric_limits<std::int64_t>::max());
  if (!attributed) return tl::unexpected(std::move(attributed.error()));
  auto subscribers = storage::make_sqlite_subscriber_store(db);
  for (const auto& a : *attributed) {
    auto who = subscribers->find(a.subscription_id);
    if (!who) return tl::unexpected(std::move(who.error()));
    simulated_line l;
    l.at = a.at;
    if (*who) {
      l.person = (*who)->customer_id.empty() ? "s:" + (*who)->public_id : "c:" + (*who)->customer_id;
      l.subscription = (*who)->public_id;
    }
    l.scenario = a.source.starts_with("scenario:") ? a.source.substr(9) : a.source;
    l.step = a.step;
    l.variant = a.variant;
    l.outcome = "unsubscribed";
    l.reason = a.kind + (a.category.empty() ? "" : " " + a.category) + ", attributed to the push of " +
               format_time(a.sent_at);
    out.push_back(std::move(l));
  }
  return {};
}

}  // namespace

simulation::simulation() = default;
simulation::~simulation() = default;

result<std::unique_ptr<simulation>> simulation::create(std::shared_ptr<const scenario_set> scenarios,
                                                       engine_options options,
                                                       std::map<std::string, nlohmann::json> custom_event_types,
                                                       const std::filesystem::path& path,
                                                       std::shared_ptr<const pacing::policy> pacing) {
  auto custom = ingest::custom_event_types::compile(custom_event_types);
  if (!custom) return tl::unexpected(std::move(custom.error()));
  auto db = storage::database::open(path);
  if (!db) return tl::unexpected(std::move(db.error()));
  std::unique_ptr<simulation> sim(new simulation());
  sim->impl_ = std::make_unique<impl>(std::move(*db), std::move(scenarios), std::move(options), std::move(*custom),
                                      std::move(pacing));
  return sim;
}

result<void> simulation::apply(const nlohmann::json& item, std::size_t line_number) {
  return impl_->apply(item, line_number);
}

result<void> simulation::apply_trace(std::istream& in, std::optional<time_point> until) {
  std::string text;
  std::size_t line = 0;
  while (std::getline(in, text)) {
    ++line;
    const auto first = text.find_first_not_of(" \t\r");
    if (first == std::string::npos || text[first] == '#') continue;
    const json item = json::parse(text, nullptr, false);
    if (item.is_discarded()) return tl::unexpected(trace_error(line, "", "not valid JSON"));
    if (until && item.is_object()) {
      const char* key = item.contains("type") ? "occurred_at" : "at";
      if (item.contains(key) && item.at(key).is_string()) {
        const auto when = ingest::parse_rfc3339(item.at(key).get<std::string>());
        if (when && *when > *until) break;
      }
    }
    if (auto r = apply(item, line); !r) return r;
  }
  return {};
}

result<void> simulation::advance_to(time_point t) { return impl_->advance_to(t); }

result<void> simulation::run_to_end() { return impl_->advance_to(time_point::max()); }

time_point simulation::now() const { return impl_->now; }

storage::database& simulation::db() { return impl_->db; }

result<std::vector<simulated_line>> simulation::lines() {
  auto log = storage::make_sqlite_journey_store(impl_->db)->log_entries("", std::numeric_limits<std::int64_t>::max());
  if (!log) return tl::unexpected(std::move(log.error()));
  auto outbox = storage::make_sqlite_outbox_store(impl_->db);
  auto subscribers = storage::make_sqlite_subscriber_store(impl_->db);
  std::map<std::int64_t, std::string> public_ids;
  std::vector<simulated_line> out;
  out.reserve(log->size());
  for (const auto& e : *log) {
    // The gate's suppressions are told by the message's own line below.
    if (e.outcome == "suppressed" && e.outbox_id) continue;
    simulated_line l;
    l.at = e.at;
    l.person = e.person;
    l.scenario = e.scenario;
    l.step = e.step;
    l.outcome = e.outcome;
    l.reason = e.reason;
    if (e.subscription_id) {
      auto it = public_ids.find(*e.subscription_id);
      if (it == public_ids.end()) {
        auto s = subscribers->find(*e.subscription_id);
        if (!s) return tl::unexpected(std::move(s.error()));
        it = public_ids.emplace(*e.subscription_id, *s ? (*s)->public_id : std::string{}).first;
      }
      l.subscription = it->second;
    }
    if (e.outbox_id) {
      auto rows = outbox->list_for_subscription(e.subscription_id.value_or(0));
      if (!rows) return tl::unexpected(std::move(rows.error()));
      for (const auto& row : *rows) {
        if (row.id != *e.outbox_id) continue;
        l.variant = row.variant;
        l.message = json::parse(std::string(row.payload.begin(), row.payload.end()), nullptr, false);
        if (l.message.is_object()) l.message.erase("delivery");  // ids and signatures: noise in a report
        if (e.outcome == "sent") describe_fate(l, row);
      }
    }
    out.push_back(std::move(l));
  }
  if (auto r = append_unsubscribes(impl_->db, out); !r) return tl::unexpected(std::move(r.error()));
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.at < b.at; });
  return out;
}

std::string format_simulation(const std::vector<simulated_line>& lines) {
  // Grouped by person, in time order within each; persons in order of first appearance.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const simulated_line*>> by_person;
  for (const auto& l : lines) {
    const auto key = l.person.empty() ? std::string{"(no person)"} : l.person;
    if (!by_person.count(key)) order.push_back(key);
    by_person[key].push_back(&l);
  }
  std::ostringstream out;
  for (const auto& person : order) {
    const bool customer = person.rfind("c:", 0) == 0;
    out << (customer ? "customer " + person.substr(2) : person.rfind("s:", 0) == 0 ? "subscription " + person.substr(2) : person)
        << "\n";
    for (const auto* l : by_person[person]) {
      out << "  " << format_time(l->at) << "  " << l->scenario;
      if (!l->step.empty()) out << "/" << l->step;
      out << "  ";
      if (l->outcome == "sent") {
        out << "SENT";
        if (!l->subscription.empty()) out << " to " << l->subscription;
        if (!l->reason.empty()) out << " (" << l->reason << ")";
        if (l->message.is_object()) {
          out << ": \"" << l->message.value("title", "") << "\"";
          const auto body = l->message.value("body", "");
          if (!body.empty()) out << " — \"" << body << "\"";
          const auto url = l->message.value("url", "");
          if (!url.empty()) out << " → " << url;
        }
      } else {
        // A sent line's reason names its variant; the others say it here.
        out << l->outcome;
        if (!l->subscription.empty() || !l->variant.empty()) {
          out << " (" << l->subscription << (l->subscription.empty() || l->variant.empty() ? "" : ", ")
              << (l->variant.empty() ? "" : "variant " + l->variant) << ")";
        }
        if (!l->reason.empty()) out << ": " << l->reason;
      }
      out << "\n";
    }
  }
  return out.str();
}

}  // namespace webpushd::automation
