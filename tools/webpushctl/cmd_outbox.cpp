// webpushctl outbox: the daemon's outbox, offline (enqueue, list, show, stats),
// recalls included.
//
// Works directly on <data-dir>/webpushd.db. SQLite in WAL mode lets this run
// while the daemon is up: an enqueue here is a normal transaction, and the
// daemon's dispatcher picks the messages up when they are due.

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"
#include "webpushd/delivery/endpoint_rules.hpp"
#include "webpushd/storage/database.hpp"
#include "webpushd/storage/outbox_store.hpp"
#include "webpushd/storage/recall_store.hpp"
#include "webpushd/storage/subscription_store.hpp"
#include "webpushd/webpush/content_encryption.hpp"
#include "webpushd/webpush/subscription_keys.hpp"

namespace webpushctl {
namespace {

namespace fs = std::filesystem;
namespace storage = webpushd::storage;
using webpushd::fail;
using webpushd::result;

/// @brief Mozilla autopush's TTL ceiling (30 days); others accept less or equal.
constexpr int max_ttl_seconds = 2'592'000;
/// @brief RFC 8030 §5.4: a Topic is at most 32 base64url characters.
constexpr std::size_t max_topic_length = 32;
/// @brief Enough for a load test, small enough for one transaction.
constexpr int max_count = 100'000;

struct enqueue_options {
  std::string data_dir;
  std::string subscription;  // file name, or "-" for stdin
  std::string payload;
  std::string payload_file;
  int ttl = 86'400;
  std::string urgency = "normal";
  std::string topic;
  int count = 1;
  std::vector<std::string> test_hosts;
};

struct list_options {
  std::string data_dir;
  std::string state;
  int limit = 50;
};

struct show_options {
  std::string data_dir;
  std::int64_t id = 0;
};

/// @brief The parts of a browser's PushSubscription the outbox needs.
struct push_subscription {
  std::string endpoint;
  std::string p256dh;
  std::string auth;
};

// Prints the error for the operator and gives the exit code for it.
int failed(const webpushd::error& e) {
  std::cerr << "webpushctl outbox: " << e.message;
  if (!e.field.empty()) std::cerr << " (" << e.field << ")";
  std::cerr << "\n";
  return exit_usage;
}

result<std::string> read_input(const std::string& name, const char* what) {
  if (name == "-") {
    return std::string{std::istreambuf_iterator<char>{std::cin}, std::istreambuf_iterator<char>{}};
  }
  std::ifstream in{name, std::ios::binary};
  if (!in) return fail("unreadable_file", std::string{"cannot read "} + what + " " + name);
  std::string text{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  if (in.bad()) return fail("unreadable_file", std::string{"cannot read "} + what + " " + name);
  return text;
}

result<std::string> string_member(const nlohmann::json& object, const char* key, const std::string& field) {
  const auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return fail("invalid_subscription", field + " must be a string", field);
  return it->get<std::string>();
}

// Parses without exceptions: the subscription JSON is untrusted input.
result<push_subscription> parse_push_subscription(const std::string& text) {
  const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return fail("invalid_subscription", "the subscription is not valid JSON");
  if (!json.is_object()) return fail("invalid_subscription", "the subscription must be a JSON object");
  push_subscription sub;
  auto endpoint = string_member(json, "endpoint", "endpoint");
  if (!endpoint) return tl::unexpected(std::move(endpoint.error()));
  sub.endpoint = std::move(*endpoint);
  const auto keys = json.find("keys");
  if (keys == json.end() || !keys->is_object()) {
    return fail("invalid_subscription", "keys must be an object with p256dh and auth", "keys");
  }
  auto p256dh = string_member(*keys, "p256dh", "keys.p256dh");
  if (!p256dh) return tl::unexpected(std::move(p256dh.error()));
  auto auth = string_member(*keys, "auth", "keys.auth");
  if (!auth) return tl::unexpected(std::move(auth.error()));
  sub.p256dh = std::move(*p256dh);
  sub.auth = std::move(*auth);
  return sub;
}

// Reasons may quote a push service's response body: keep the terminal safe.
std::string printable(std::string text, std::size_t max_length = std::string::npos) {
  for (auto& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  if (text.size() > max_length) text = text.substr(0, max_length - 3) + "...";
  return text;
}

std::string format_time(webpushd::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string format_time(const std::optional<webpushd::time_point>& t) { return t ? format_time(*t) : "-"; }

// "recalled (DELETE answered 204)": where a message's recall (RFC 8030 §7.3) is.
std::string recall_text(const storage::recall_status& recall) {
  std::string text = storage::to_string(recall.state);
  if (!recall.reason.empty()) text += " (" + printable(recall.reason) + ")";
  return text;
}

fs::path database_path(const std::string& data_dir) { return fs::path{data_dir} / storage::default_database_file; }

// Reading commands never create a database: a typo in --data-dir should be
// an error, not an empty outbox.
result<storage::database> open_existing(const std::string& data_dir) {
  const auto path = database_path(data_dir);
  std::error_code ec;
  if (!fs::exists(path, ec)) return fail("no_database", "no database at " + path.string(), "data-dir");
  return storage::database::open(path);
}

int run_enqueue(const enqueue_options& o) {
  auto text = read_input(o.subscription, "subscription");
  if (!text) return failed(text.error());
  auto sub = parse_push_subscription(*text);
  if (!sub) return failed(sub.error());

  auto rules = webpushd::delivery::default_endpoint_rules();
  if (!o.test_hosts.empty()) {
    rules.allowed_hosts.insert(rules.allowed_hosts.end(), o.test_hosts.begin(), o.test_hosts.end());
    rules.allow_http = true;
    rules.allow_private_addresses = true;
  }
  if (auto endpoint = webpushd::delivery::check_endpoint(sub->endpoint, rules); !endpoint) {
    return failed(endpoint.error());
  }
  if (auto keys = webpushd::webpush::parse_subscription_keys(sub->p256dh, sub->auth); !keys) {
    return failed(keys.error());
  }

  std::string payload = o.payload;
  if (!o.payload_file.empty()) {
    auto file = read_input(o.payload_file, "payload file");
    if (!file) return failed(file.error());
    payload = std::move(*file);
  }
  if (payload.size() > webpushd::webpush::max_plaintext_size) {
    return failed({"payload_too_large",
            "the payload is " + std::to_string(payload.size()) + " bytes; at most " +
                std::to_string(webpushd::webpush::max_plaintext_size) + " fit one push message",
            "payload"});
  }

  std::error_code ec;
  fs::create_directories(o.data_dir, ec);
  if (ec) return failed({"no_database", "cannot create " + o.data_dir + ": " + ec.message(), "data-dir"});
  auto db = storage::database::open(database_path(o.data_dir));
  if (!db) return failed(db.error());

  const auto now = webpushd::system_clock{}.now();
  // Upsert and enqueue are two transactions: a subscription left behind by a
  // failed enqueue is harmless (the browser's subscription is real).
  auto subscription_id = storage::make_sqlite_subscription_store(*db)->upsert(sub->endpoint, sub->p256dh, sub->auth, now);
  if (!subscription_id) return failed(subscription_id.error());

  storage::new_outbox_message m;
  m.subscription_id = *subscription_id;
  m.payload = webpushd::bytes(payload.begin(), payload.end());
  m.ttl_seconds = o.ttl;
  m.urgency = o.urgency;
  m.topic = o.topic;
  m.source = "cli";
  const std::vector<storage::new_outbox_message> messages(static_cast<std::size_t>(o.count), m);
  auto ids = storage::make_sqlite_outbox_store(*db)->enqueue(messages, now);
  if (!ids) return failed(ids.error());
  for (const auto id : *ids) std::cout << id << "\n";
  return exit_ok;
}

int run_list(const list_options& o) {
  std::optional<storage::outbox_state> state;
  if (!o.state.empty()) {
    state = storage::parse_outbox_state(o.state);
    if (!state) {
      return failed({"invalid_state",
              "unknown state '" + o.state + "'; use queued, sending, sent, gone, failed, dead, expired, cancelled or suppressed",
              "state"});
    }
  }
  auto db = open_existing(o.data_dir);
  if (!db) return failed(db.error());
  auto rows = storage::make_sqlite_outbox_store(*db)->list(state, static_cast<std::size_t>(o.limit));
  if (!rows) return failed(rows.error());
  auto subs = storage::make_sqlite_subscription_store(*db);
  auto recalls = storage::make_sqlite_recall_store(*db);
  std::map<std::int64_t, std::string> origins;  // a list often repeats one subscription

  std::cout << std::left << std::setw(10) << "ID" << std::setw(10) << "STATE" << std::setw(9) << "ATTEMPTS"
            << std::setw(7) << "STATUS" << std::setw(22) << "CREATED" << std::setw(22) << "NEXT ATTEMPT"
            << std::setw(36) << "ENDPOINT ORIGIN" << "REASON\n";
  for (const auto& r : *rows) {
    auto origin = origins.find(r.subscription_id);
    if (origin == origins.end()) {
      auto found = subs->find(r.subscription_id);
      const std::string text = found && *found ? webpushd::delivery::log_origin((*found)->endpoint) : "?";
      origin = origins.emplace(r.subscription_id, text).first;
    }
    // A recall says more about a sent message than the push service's 201 did.
    auto recall = recalls->get(r.id);
    if (!recall) return failed(recall.error());
    const std::string reason = *recall ? "recall " + recall_text(**recall) : r.last_reason;
    std::cout << std::setw(10) << r.id << std::setw(10) << storage::to_string(r.state) << std::setw(9) << r.attempts
              << std::setw(7) << (r.last_status ? std::to_string(*r.last_status) : "-") << std::setw(22)
              << format_time(r.created_at) << std::setw(22)
              << (r.state == storage::outbox_state::queued ? format_time(r.next_attempt_at) : "-") << std::setw(36)
              << origin->second << printable(reason, 60) << "\n";
  }
  return exit_ok;
}

int run_show(const show_options& o) {
  auto db = open_existing(o.data_dir);
  if (!db) return failed(db.error());
  auto row = storage::make_sqlite_outbox_store(*db)->get(o.id);
  if (!row) return failed(row.error());
  if (!*row) return failed({"not_found", "no message " + std::to_string(o.id), "id"});
  const auto& r = **row;
  auto sub = storage::make_sqlite_subscription_store(*db)->find(r.subscription_id);
  const char* sub_states[] = {"active", "gone", "erased"};
  auto recall = storage::make_sqlite_recall_store(*db)->get(r.id);
  if (!recall) return failed(recall.error());

  std::cout << "id:               " << r.id << "\n"
            << "state:            " << storage::to_string(r.state) << "\n"
            << "attempts:         " << r.attempts << "\n"
            << "last status:      " << (r.last_status ? std::to_string(*r.last_status) : "-") << "\n"
            << "last reason:      " << (r.last_reason.empty() ? "-" : printable(r.last_reason)) << "\n"
            << "subscription:     " << r.subscription_id;
  if (sub && *sub) {
    std::cout << " (" << sub_states[static_cast<int>((*sub)->state)] << ", " << webpushd::delivery::log_origin((*sub)->endpoint) << ")";
  }
  std::cout << "\n"
            << "source:           " << (r.source.empty() ? "-" : printable(r.source)) << "\n"
            << "variant:          " << (r.variant.empty() ? "-" : printable(r.variant)) << "\n"
            << "payload:          " << r.payload_size << " bytes\n"
            << "ttl:              " << r.ttl_seconds << " s\n"
            << "urgency:          " << r.urgency << "\n"
            << "topic:            " << (r.topic.empty() ? "-" : r.topic) << "\n"
            << "created:          " << format_time(r.created_at) << "\n"
            << "next attempt:     "
            << (r.state == storage::outbox_state::queued ? format_time(r.next_attempt_at) : std::string{"-"}) << "\n"
            << "expires:          " << format_time(r.expires_at) << "\n"
            << "claimed:          " << format_time(r.claimed_at) << "\n"
            << "finished:         " << format_time(r.finished_at) << "\n"
            << "location:         " << (r.location.empty() ? "-" : printable(r.location)) << "\n"
            << "recall:           " << (*recall ? recall_text(**recall) : std::string{"-"}) << "\n";
  return exit_ok;
}

int run_stats(const std::string& data_dir) {
  auto db = open_existing(data_dir);
  if (!db) return failed(db.error());
  auto c = storage::make_sqlite_outbox_store(*db)->counts();
  if (!c) return failed(c.error());
  const std::pair<const char*, std::int64_t> lines[] = {
      {"queued", c->queued}, {"sending", c->sending}, {"sent", c->sent},       {"gone", c->gone},
      {"failed", c->failed}, {"dead", c->dead},       {"expired", c->expired}, {"cancelled", c->cancelled}, {"suppressed", c->suppressed}};
  for (const auto& [name, n] : lines) std::cout << std::left << std::setw(10) << name << n << "\n";
  return exit_ok;
}

// Runs a command body and turns a failure exit code into CLI11's silent
// RuntimeError, after the body's database and stores have been closed.
template <class F>
void run(F body) {
  if (const int rc = body(); rc != exit_ok) throw CLI::RuntimeError(rc);
}

std::string check_topic(const std::string& topic) {
  if (topic.size() > max_topic_length) return "a topic is at most 32 characters (RFC 8030)";
  for (const char c : topic) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return "a topic may use only base64url characters (A-Z a-z 0-9 - _)";
  }
  return {};
}

void add_data_dir(CLI::App& cmd, std::string& data_dir) {
  cmd.add_option("--data-dir", data_dir, "the daemon's data directory (holds webpushd.db)")->required();
}

}  // namespace

void add_outbox_commands(CLI::App& app) {
  auto* outbox = app.add_subcommand("outbox", "inspect the daemon's outbox or add messages to it");
  outbox->require_subcommand(1);

  auto eo = std::make_shared<enqueue_options>();
  auto* enqueue = outbox->add_subcommand("enqueue", "store a subscription and queue messages for it; prints the ids");
  add_data_dir(*enqueue, eo->data_dir);
  enqueue
      ->add_option("--subscription", eo->subscription,
                   "a browser PushSubscription as JSON {\"endpoint\",\"keys\":{\"p256dh\",\"auth\"}}: a file, or - for stdin")
      ->required();
  auto* payload = enqueue->add_option("--payload", eo->payload, "the message text");
  auto* payload_file = enqueue->add_option("--payload-file", eo->payload_file, "read the message from a file");
  payload->excludes(payload_file);
  enqueue->add_option("--ttl", eo->ttl, "seconds the push service keeps it for an offline device")
      ->check(CLI::Range(0, max_ttl_seconds))
      ->capture_default_str();
  enqueue->add_option("--urgency", eo->urgency, "very-low, low, normal or high")
      ->check(CLI::IsMember({"very-low", "low", "normal", "high"}))
      ->capture_default_str();
  enqueue->add_option("--topic", eo->topic, "replaces an undelivered message with the same topic (<= 32 base64url chars)")
      ->check(CLI::Validator(check_topic, "TOPIC"));
  enqueue->add_option("--count", eo->count, "how many copies to queue (all or none are stored)")
      ->check(CLI::Range(1, max_count))
      ->capture_default_str();
  enqueue->add_option("--test-endpoint-host", eo->test_hosts,
                      "also allow this push host, over http and on private addresses (emulators and tests only)");
  enqueue->callback([eo, payload, payload_file] {
    if (payload->count() == 0 && payload_file->count() == 0) {
      throw CLI::RequiredError("--payload or --payload-file");
    }
    run([&] { return run_enqueue(*eo); });
  });

  auto lo = std::make_shared<list_options>();
  auto* list = outbox->add_subcommand("list", "list messages, newest first");
  add_data_dir(*list, lo->data_dir);
  list->add_option("--state", lo->state, "only messages in this state (queued, sending, sent, gone, failed, ...)");
  list->add_option("--limit", lo->limit, "at most this many")->check(CLI::Range(1, 1'000'000))->capture_default_str();
  list->callback([lo] { run([&] { return run_list(*lo); }); });

  auto so = std::make_shared<show_options>();
  auto* show = outbox->add_subcommand("show", "show one message");
  add_data_dir(*show, so->data_dir);
  show->add_option("id", so->id, "the message id")->required();
  show->callback([so] { run([&] { return run_show(*so); }); });

  auto data_dir = std::make_shared<std::string>();
  auto* stats = outbox->add_subcommand("stats", "count messages by state");
  add_data_dir(*stats, *data_dir);
  stats->callback([data_dir] { run([&] { return run_stats(*data_dir); }); });
}

}  // namespace webpushctl
