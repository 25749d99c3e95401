#include "webpushd/app/daemon.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include <spdlog/spdlog.h>

#include "webpushd/api/dashboard_routes.hpp"
#include "webpushd/api/delivery_routes.hpp"
#include "webpushd/api/event_routes.hpp"
#include "webpushd/api/health.hpp"
#include "webpushd/api/http_server.hpp"
#include "webpushd/api/metrics_routes.hpp"
#include "webpushd/api/router.hpp"
#include "webpushd/api/static_assets.hpp"
#include "webpushd/api/subscriber_routes.hpp"
#include "webpushd/api/campaign_routes.hpp"
#include "webpushd/api/scenario_routes.hpp"
#include "webpushd/automation/campaigns.hpp"
#include "webpushd/automation/engine.hpp"
#include "webpushd/automation/scheduler.hpp"
#include "webpushd/consent/subscriber_service.hpp"
#include "webpushd/crypto/password.hpp"
#include "webpushd/crypto/primitives.hpp"
#include "webpushd/crypto/secret_file.hpp"
#include "webpushd/app/logging.hpp"
#include "webpushd/delivery/dispatcher.hpp"
#include "webpushd/delivery/endpoint_rules.hpp"
#include "webpushd/delivery/sender.hpp"
#include "webpushd/ingest/events.hpp"
#include "webpushd/metrics/registry.hpp"
#include "webpushd/pacing/adaptive.hpp"
#include "webpushd/pacing/gate.hpp"
#include "webpushd/storage/database.hpp"
#include "webpushd/storage/outbox_store.hpp"
#include "webpushd/storage/recall_store.hpp"
#include "webpushd/storage/write_queue.hpp"
#include "webpushd/tracking/attribution.hpp"
#include "webpushd/tracking/beacons.hpp"
#include "webpushd/webpush/vapid.hpp"
#include "metrics_wiring.hpp"

namespace webpushd::app {

result<std::string> ensure_vapid_key(const std::filesystem::path& path, bool& created) {
  created = false;
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    auto key = webpush::vapid_key::load_pem_file(path);
    if (!key) return tl::unexpected(key.error());
    return key->public_key_b64url();
  }
  auto key = webpush::vapid_key::generate();
  if (!key) return tl::unexpected(key.error());
  if (auto saved = key->save_pem_file(path); !saved) return tl::unexpected(saved.error());
  created = true;
  return key->public_key_b64url();
}

struct daemon::impl {
  config cfg;
  const clock* clk = nullptr;
  // Metrics: declared first, destroyed last — every part below reports to it
  // (from its own threads) until it stops.
  std::unique_ptr<metrics::registry> metrics;
  std::unique_ptr<delivery_metrics> delivery_observer;
  std::optional<storage::database> db;
  std::unique_ptr<storage::outbox_store> outbox;
  std::unique_ptr<storage::recall_store> recalls;  // on the outbox's connection: both are the dispatcher's
  std::unique_ptr<webpush::vapid_signer> signer;
  // Pacing: the gate every claim of the dispatcher's outbox passes (on the
  // dispatcher's connection); it holds the policy, swapped on reload.
  std::unique_ptr<pacing::send_gate> gate;
  std::unique_ptr<delivery::sender> sender;
  std::unique_ptr<delivery::dispatcher> dispatcher;
  bool stopped = false;
  // Subscribers, consent, beacons and shop events: the single writer (group commit) and
  // the services that submit to it. Declared after delivery and before the
  // server, so they outlive every handler that uses them.
  std::unique_ptr<storage::write_queue> writer;
  std::unique_ptr<consent::subscriber_service> subscribers;
  std::optional<tracking::delivery_signer> delivery_signer;
  std::unique_ptr<tracking::beacon_recorder> beacons;
  std::unique_ptr<ingest::event_ingestor> events;
  // Scenarios: the engine reacts inside the writer's transactions; the
  // scheduler fires due steps (its own thread and read connection).
  std::unique_ptr<automation::engine> engine;
  std::unique_ptr<automation::scheduler> scheduler;
  std::unique_ptr<automation::campaign_service> campaigns;
  std::unique_ptr<automation::campaign_runner> campaign_runner;  // made in start(): needs the real port
  std::unique_ptr<automation::scenario_stats_service> scenario_stats;
  // api: declared last so the server goes first when impl is destroyed.
  std::optional<storage::database> health_db;  // its own connection: database is one-thread
  std::optional<storage::database> metrics_db;  // the registry's scrape-time reads (one at a time)
  std::mutex health_mutex;
  std::unique_ptr<api::dashboard_auth> dashboard;  // before the router: its routes and session check use it
  std::unique_ptr<api::failure_limiter> key_limiter;  // before the router: it points here
  std::unique_ptr<api::router> router;
  std::unique_ptr<api::http_server> server;
};

daemon::daemon() : impl_(std::make_unique<impl>()) {}

daemon::~daemon() { stop(std::chrono::seconds{0}); }

namespace {

std::vector<std::string> scenario_names(const automation::scenario_set& set) {
  std::vector<std::string> names;
  for (const auto& sc : set.scenarios) names.push_back(sc.name);
  return names;
}

// One line an operator can check the shop's pacing by.
void log_pacing(const pacing_config& p) {
  if (!p.configured) {
    spdlog::warn("pacing: no pacing section: nothing is capped and there are no quiet hours (see examples/shop.yaml)");
    return;
  }
  std::string caps;
  for (const auto& c : p.policy.caps) caps += (caps.empty() ? "" : ", ") + pacing::describe(c);
  spdlog::info("pacing: every device at most {}; gap {}; quiet hours {}; {} category cap(s)",
               caps.empty() ? std::string{"uncapped"} : caps, format_duration(p.policy.min_gap),
               p.policy.quiet ? pacing::describe(*p.policy.quiet) : std::string{"none"}, p.policy.category_caps.size());
}

delivery::endpoint_rules rules_from(const endpoints_config& e) {
  delivery::endpoint_rules rules = delivery::default_endpoint_rules();
  if (!e.allowed_hosts.empty()) rules.allowed_hosts = e.allowed_hosts;
  rules.allow_http = e.allow_http;
  rules.allow_private_addresses = e.allow_private_addresses;
  return rules;
}

automation::campaign_options campaign_options_of(const config& cfg, std::string public_url) {
  automation::campaign_options o;
  for (const auto& c : cfg.consent.categories) o.categories.push_back(c.name);
  o.default_locale = cfg.consent.default_locale;
  o.default_timezone = cfg.consent.default_timezone;
  o.shop = {cfg.automation.shop_name, cfg.automation.shop_url};
  o.public_url = std::move(public_url);
  o.utm.enabled = cfg.automation.utm.enabled;
  o.utm.source = cfg.automation.utm.source;
  o.utm.medium = cfg.automation.utm.medium;
  return o;
}

// The base of report URLs in pushes: configured, else where we listen.
std::string public_url_of(const server_config& server) {
  if (!server.public_url.empty()) return server.public_url;
  const bool v6 = server.listen_host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + server.listen_host + "]" : server.listen_host) + ":" +
         std::to_string(server.listen_port);
}

// scheme://host[:port] of the public URL (its path dropped); "" when unset.
std::string origin_of(const std::string& url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return {};
  return url.substr(0, url.find('/', scheme_end + 3));
}

// The dashboard's users: the config's, or else one `admin` whose password
// is generated once into the data folder, so that a fresh install can log in
// without editing the config first (README, "Reading the dashboard").
result<std::vector<api::dashboard_user>> dashboard_users(const config& cfg) {
  std::vector<api::dashboard_user> users;
  for (const auto& u : cfg.dashboard.users) {
    auto parsed = crypto::parse_password_hash(u.password_hash);
    if (!parsed) return tl::unexpected(parsed.error());  // load_config checked it already
    users.push_back({u.name, std::move(*parsed), u.password_hash});
  }
  if (!users.empty()) return users;
  const auto file = cfg.data_dir / "dashboard_password";
  std::error_code ec;
  const bool existed = std::filesystem::exists(file, ec);
  if (!existed) {
    // 20 base64url characters: 120 random bits, typed or pasted once.
    if (auto ok = crypto::write_secret_file(file, crypto::random_token(15)); !ok) return tl::unexpected(ok.error());
  }
  auto password = crypto::read_secret_file(file);
  if (!password) return tl::unexpected(password.error());
  if (password->empty()) return fail("config_invalid", file.string() + " is empty: delete it to get a new password");
  // A fresh salt at each start; sessions are bound to the password itself
  // (a digest), so they survive a restart and end when the file changes.
  const auto hash = crypto::hash_password(*password);
  const auto binding = crypto::sha256(as_bytes("generated admin password\n" + *password));
  users.push_back({"admin", *crypto::parse_password_hash(hash), hex_encode(binding)});
  spdlog::warn("dashboard: no dashboard.users configured: log in at /dashboard as 'admin' with the password in {}{} "
               "(set dashboard.users to choose your own)",
               file.string(), existed ? "" : " (generated now, mode 0600)");
  return users;
}

}  // namespace

result<std::unique_ptr<daemon>> daemon::create(const config& cfg, const clock& clk) {
  std::unique_ptr<daemon> d(new daemon());
  auto& s = *d->impl_;
  s.cfg = cfg;
  s.clk = &clk;
  s.metrics = std::make_unique<metrics::registry>(clk);
  auto* m = s.metrics.get();

  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir, ec);
  if (ec) {
    return fail("data_dir_unusable", "cannot create data folder " + cfg.data_dir.string() + ": " + ec.message(),
                "storage.data_dir");
  }
  // The folder holds the private key and subscribers' data: owner only.
  ::chmod(cfg.data_dir.c_str(), 0700);
  // A read-only folder (a ro mount, or one the kernel remounted read-only
  // after disk errors) would otherwise show up later as SQLite's puzzling
  // "unable to open database file": say what and where at once.
  if (::access(cfg.data_dir.c_str(), W_OK) != 0) {
    const int err = errno;
    return fail(err == EROFS ? "storage_read_only" : "data_dir_unusable",
                "data folder " + cfg.data_dir.string() +
                    (err == EROFS ? " is on a read-only file system" : " is not writable") + ": " + std::strerror(err),
                "storage.data_dir");
  }

  const auto key_path = cfg.data_dir / cfg.vapid.private_key_file;
  bool created = false;
  const auto public_key = ensure_vapid_key(key_path, created);
  if (!public_key) return tl::unexpected(public_key.error());
  if (created) spdlog::info("generated a new VAPID key in {}", key_path.string());
  auto key = webpush::vapid_key::load_pem_file(key_path);
  if (!key) return tl::unexpected(key.error());
  auto signer = webpush::vapid_signer::create(std::move(*key), cfg.vapid.subject, clk, cfg.vapid.token_lifetime);
  if (!signer) return tl::unexpected(signer.error());
  s.signer = std::move(*signer);
  spdlog::info("VAPID public key (applicationServerKey): {}", s.signer->public_key_b64url());

  const auto db_path = cfg.data_dir / storage::default_database_file;
  auto db = storage::database::open(db_path);
  if (!db) return tl::unexpected(db.error());
  s.db.emplace(std::move(*db));
  s.outbox = storage::make_sqlite_outbox_store(*s.db);
  s.recalls = storage::make_sqlite_recall_store(*s.db);
  spdlog::info("storage: {} (schema version {})", db_path.string(), s.db->schema_version());
  s.gate = std::make_unique<pacing::send_gate>(*s.db, std::make_shared<const pacing::policy>(cfg.pacing.policy));
  s.outbox->set_gate(s.gate.get());
  s.gate->set_held_observer([m](bool deferred, std::string_view rule) { m->pacing_held(deferred, rule); });
  log_pacing(cfg.pacing);

  delivery::sender_options so;
  so.max_in_flight = cfg.delivery.max_in_flight;
  so.connect_timeout = cfg.delivery.connect_timeout;
  so.request_timeout = cfg.delivery.request_timeout;
  so.max_connections_per_host = cfg.delivery.max_connections_per_host;
  so.http2 = cfg.delivery.http2;
  so.rules = rules_from(cfg.delivery.endpoints);
  s.sender = std::make_unique<delivery::sender>(so);

  delivery::dispatcher_options dopt;
  dopt.workers = cfg.delivery.workers;
  dopt.max_outstanding = cfg.delivery.max_in_flight;
  dopt.poll_interval = cfg.delivery.poll_interval;
  dopt.retry.max_attempts = cfg.delivery.retry.max_attempts;
  dopt.retry.base = cfg.delivery.retry.base_delay;
  dopt.retry.cap = cfg.delivery.retry.max_delay;
  dopt.rules = so.rules;
  s.dispatcher = std::make_unique<delivery::dispatcher>(dopt, *s.outbox, *s.recalls, *s.signer, *s.sender, clk);
  s.delivery_observer = std::make_unique<delivery_metrics>(*m);
  s.dispatcher->set_observer(s.delivery_observer.get());

  // --- subscribers, consent ledger, beacons: one writer thread, group commit ---
  auto writer_db = storage::database::open(db_path);
  if (!writer_db) return tl::unexpected(writer_db.error());
  s.writer = std::make_unique<storage::write_queue>(std::move(*writer_db));
  auto reader_db = storage::database::open(db_path);
  if (!reader_db) return tl::unexpected(reader_db.error());
  auto subscribers =
      consent::subscriber_service::create(cfg.consent, so.rules, *s.writer, std::move(*reader_db), clk);
  if (!subscribers) return tl::unexpected(subscribers.error());
  s.subscribers = std::move(*subscribers);
  bool tracking_key_created = false;
  auto delivery_signer =
      tracking::delivery_signer::load_or_create(cfg.data_dir / "tracking.key", tracking_key_created);
  if (!delivery_signer) return tl::unexpected(delivery_signer.error());
  if (tracking_key_created) spdlog::info("generated a new delivery signing key in {}", (cfg.data_dir / "tracking.key").string());
  s.delivery_signer.emplace(std::move(*delivery_signer));
  s.beacons = std::make_unique<tracking::beacon_recorder>(*s.delivery_signer, *s.writer, clk);
  s.beacons->set_recorded_observer([m](std::string_view type) { m->beacon_recorded(type); });
  // Custom event types: a name that shadows a built-in or reserved type, or a
  // schema that does not compile, stops the start (config_invalid).
  auto custom_types = ingest::custom_event_types::compile(cfg.events.custom_types);
  if (!custom_types) return tl::unexpected(custom_types.error());
  m->declare_event_types(ingest::builtin_event_types());
  m->declare_event_types(custom_types->names());
  s.events = std::make_unique<ingest::event_ingestor>(
      *s.writer, clk, ingest::ingest_options{cfg.server.max_batch_events, std::move(*custom_types)});
  s.events->set_committed_observer([m](const ingest::ingest_outcome& out) {
    for (const auto& [type, n] : out.accepted_by_type) m->events_ingested(type, n);
  });

  // --- automation: journeys start and end in the same transaction as the
  // events (and subscriptions) that cause them ---
  automation::engine_options eo;
  eo.default_locale = cfg.consent.default_locale;
  eo.default_timezone = cfg.consent.default_timezone;
  eo.shop = {cfg.automation.shop_name, cfg.automation.shop_url};
  eo.public_url = public_url_of(cfg.server);
  s.engine = std::make_unique<automation::engine>(cfg.automation.scenarios, eo, *s.delivery_signer);
  s.engine->set_journey_observer(
      [m](std::string_view scenario, std::string_view outcome) { m->journey_logged(scenario, outcome); });
  m->declare_scenarios(scenario_names(*cfg.automation.scenarios));
  // A purchase is credited to the push clicked (or shown) before it in the
  // same transaction as its journeys: a 202 means it is attributed too.
  s.events->set_stored_hook([engine = s.engine.get(), windows = cfg.tracking, m](
                                storage::database& conn, const std::vector<storage::stored_event>& stored,
                                time_point now) -> result<void> {
    if (auto r = engine->on_events(conn, stored, now); !r) return r;
    auto attributed = tracking::attribute_purchases(conn, stored, windows, now);
    if (!attributed) return tl::unexpected(std::move(attributed.error()));
    m->purchases_attributed(attributed->converted, attributed->influenced);
    return {};
  });
  consent::lifecycle_hooks hooks;
  hooks.on_subscribed = [engine = s.engine.get()](storage::database& conn, const storage::subscriber_record& r,
                                                  time_point now) { return engine->on_subscribed(conn, r, now); };
  hooks.on_customer_linked = [engine = s.engine.get()](storage::database& conn, const storage::subscriber_record& r,
                                                       time_point now) {
    return engine->on_customer_linked(conn, r, now);
  };
  hooks.on_withdrawn = [&s](storage::database& conn, const storage::subscriber_record& r, std::string_view kind,
                            const std::vector<std::string>& withdrawn, time_point now) {
    return pacing::attribute_unsubscribe(conn, *s.gate->current_policy(), r.id, kind, withdrawn, now);
  };
  s.subscribers->set_lifecycle_hooks(std::move(hooks));
  auto scheduler_db = storage::database::open(db_path);
  if (!scheduler_db) return tl::unexpected(scheduler_db.error());
  automation::scheduler_options so_sched;
  so_sched.event_retention = cfg.events.retention;
  so_sched.unknown_event_retention = cfg.events.unknown_retention;
  s.scheduler = std::make_unique<automation::scheduler>(*s.engine, *s.writer, std::move(*scheduler_db), clk, so_sched,
                                                        [dispatcher = s.dispatcher.get()] { dispatcher->notify(); });
  s.scheduler->add_periodic("judging adaptive pacing", cfg.pacing.adaptive_interval,
                            [&s](storage::database& conn, time_point now) -> result<void> {
                              auto changed = pacing::adjust_levels(conn, *s.gate->current_policy(), now);
                              if (!changed) return tl::unexpected(std::move(changed.error()));
                              // Counted inside the writer's transaction (a
                              // failed commit would have been counted too).
                              for (const auto& c : *changed) {
                                s.metrics->pacing_level_changed(c.scenario, c.to_level > c.from_level);
                              }
                              return {};
                            });
  auto campaigns_db = storage::database::open(db_path);
  if (!campaigns_db) return tl::unexpected(campaigns_db.error());
  s.campaigns = std::make_unique<automation::campaign_service>(campaign_options_of(cfg, eo.public_url), *s.writer,
                                                               std::move(*campaigns_db), clk);
  s.campaigns->set_on_created([scheduler = s.scheduler.get()] { scheduler->notify(); });
  auto stats_db = storage::database::open(db_path);
  if (!stats_db) return tl::unexpected(stats_db.error());
  s.scenario_stats = std::make_unique<automation::scenario_stats_service>(
      std::move(*stats_db), [engine = s.engine.get()] { return engine->scenarios(); },
      [&s] { return s.gate->current_policy(); }, clk);
  for (const auto& warning : cfg.automation.warnings) spdlog::warn("scenarios: {}", warning);
  spdlog::info("automation: {} scenario(s) loaded", cfg.automation.scenarios->scenarios.size());

  // --- api: the HTTP listener (started in start(), stopped first in stop()) ---
  auto health_db = storage::database::open(db_path);
  if (!health_db) return tl::unexpected(health_db.error());
  s.health_db.emplace(std::move(*health_db));
  std::vector<api::api_key> keys;
  for (const auto& k : cfg.server.api_keys) keys.push_back({k.name, k.key});
  if (keys.empty()) spdlog::warn("no server.api_keys configured: backend endpoints refuse every request");
  auto users = dashboard_users(cfg);
  if (!users) return tl::unexpected(users.error());
  bool session_key_created = false;
  auto session_key = crypto::load_or_create_key(cfg.data_dir / "dashboard.key", 32, session_key_created);
  if (!session_key) return tl::unexpected(session_key.error());
  if (session_key_created) {
    spdlog::info("generated a new dashboard session key in {}", (cfg.data_dir / "dashboard.key").string());
  }
  api::dashboard_auth::options dopts;
  dopts.session_lifetime = std::chrono::duration_cast<std::chrono::seconds>(cfg.dashboard.session_lifetime);
  dopts.secure_cookie = cfg.server.public_url.starts_with("https://");
  s.dashboard = std::make_unique<api::dashboard_auth>(std::move(*users), std::move(*session_key), dopts, clk);
  s.router = std::make_unique<api::router>(
      api::cors_policy{cfg.server.cors_origins}, api::api_key_set{keys},
      [auth = s.dashboard.get()](const api::request& req) -> std::optional<std::string> {
        auto session = auth->session_of(req);
        if (!session) return std::nullopt;
        return std::move(session->user);
      });
  api::failure_limiter::limits key_limits;
  key_limits.max_failures = cfg.server.api_key_max_failures;
  key_limits.window = std::chrono::duration_cast<std::chrono::seconds>(cfg.server.api_key_window);
  s.key_limiter = std::make_unique<api::failure_limiter>(key_limits);
  s.router->set_key_limiter(*s.key_limiter, clk);
  s.router->set_observer([m](const api::answered_request& a) {
    m->http_request_answered(a.method, a.route, a.status, a.elapsed);
  });
  api::add_health_route(*s.router, [&s]() -> result<void> {
    std::lock_guard lock(s.health_mutex);
    return s.health_db->check();
  });
  api::add_vapid_public_key_route(*s.router, s.signer->public_key_b64url());
  api::add_subscriber_routes(*s.router, *s.subscribers, {cfg.server.identify_secret});
  api::add_gdpr_routes(*s.router, *s.subscribers);
  api::add_delivery_event_routes(*s.router, *s.beacons);
  api::add_event_routes(*s.router, *s.events);
  api::add_campaign_routes(*s.router, *s.campaigns);
  api::add_scenario_routes(*s.router, *s.scenario_stats);
  api::add_dashboard_routes(*s.router, *s.dashboard, {origin_of(cfg.server.public_url)});
  auto metrics_db = storage::database::open(db_path);
  if (!metrics_db) return tl::unexpected(metrics_db.error());
  s.metrics_db.emplace(std::move(*metrics_db));
  m->set_sources(database_figures(*s.metrics_db));
  api::add_metrics_routes(*s.router, *m);
  api::web_assets("sdk/").install(*s.router);
  api::server_options http;
  http.host = cfg.server.listen_host;
  http.port = cfg.server.listen_port;
  http.threads = cfg.server.threads;
  http.body_limit = cfg.server.body_limit;
  http.header_limit = cfg.server.header_limit;
  http.read_timeout = cfg.server.read_timeout;
  http.idle_timeout = cfg.server.idle_timeout;
  http.max_connections = cfg.server.max_connections;
  http.trust_forwarded_for = cfg.server.trust_forwarded_for;
  s.server = std::make_unique<api::http_server>(http, *s.router);
  return d;
}

result<void> daemon::start() {
  auto started = impl_->dispatcher->start();
  if (!started) return started;
  spdlog::info("delivering from the outbox");
  auto port = impl_->server->start();
  if (!port) return tl::unexpected(port.error());
  // Port 0 in the config: only now is the real one known.
  auto listening = impl_->cfg.server;
  listening.listen_port = *port;
  impl_->engine->set_public_url(public_url_of(listening));
  // The fan-out signs report URLs: made once the listener's port is known.
  impl_->campaign_runner = std::make_unique<automation::campaign_runner>(
      campaign_options_of(impl_->cfg, public_url_of(listening)), *impl_->delivery_signer);
  impl_->scheduler->set_campaigns(impl_->campaign_runner.get());
  impl_->scheduler->start();
  const auto& host = impl_->cfg.server.listen_host;
  const bool v6 = host.find(':') != std::string::npos;
  spdlog::info("listening on http://{}{}{}:{}", v6 ? "[" : "", host, v6 ? "]" : "", *port);
  return {};
}

void daemon::stop(std::chrono::milliseconds grace) {
  if (impl_->stopped || !impl_->dispatcher) return;
  impl_->stopped = true;
  // The listener first, so no new work arrives while delivery drains.
  if (impl_->server) impl_->server->stop(grace);
  // Scenarios next: a step fired now would only wait in the outbox.
  if (impl_->scheduler) impl_->scheduler->stop();
  impl_->dispatcher->stop(grace);
  // Everything accepted over HTTP is committed before this returns.
  if (impl_->writer) impl_->writer->stop();
  // Order matters: the dispatcher's completions point into the sender's
  // thread, the sender's requests were built from the signer's tokens.
  impl_->dispatcher.reset();
  impl_->sender.reset();
}

void daemon::reload(const config& next) {
  auto& cur = impl_->cfg;
  if (next.logging.format != cur.logging.format || next.logging.level != cur.logging.level) {
    if (auto ok = setup_logging(next.logging.format, next.logging.level); !ok) {
      spdlog::warn("reload: logging unchanged: {}", ok.error().message);
    } else {
      cur.logging = next.logging;
      spdlog::info("reload: logging is now format={} level={}", cur.logging.format, cur.logging.level);
    }
  }
  const bool restart_needed = next.data_dir != cur.data_dir || next.vapid.subject != cur.vapid.subject ||
                              next.vapid.private_key_file != cur.vapid.private_key_file ||
                              next.server != cur.server || next.dashboard != cur.dashboard ||
                              next.delivery.endpoints.allowed_hosts != cur.delivery.endpoints.allowed_hosts ||
                              next.delivery.max_in_flight != cur.delivery.max_in_flight ||
                              next.tracking != cur.tracking;
  // Scenarios take effect at once; running journeys continue by step name
  // (automation/engine.hpp says what happens to changed and removed ones).
  if (next.automation.scenarios) {
    impl_->engine->set_scenarios(next.automation.scenarios);
    impl_->metrics->declare_scenarios(scenario_names(*next.automation.scenarios));
    impl_->engine->set_shop({next.automation.shop_name, next.automation.shop_url});
    for (const auto& warning : next.automation.warnings) spdlog::warn("reload: scenarios: {}", warning);
    spdlog::info("reload: {} scenario(s) active", next.automation.scenarios->scenarios.size());
    impl_->cfg.automation = next.automation;
    impl_->scheduler->notify();
  }
  // Caps and quiet hours too: the next claim decides by the new policy.
  impl_->gate->set_policy(std::make_shared<const pacing::policy>(next.pacing.policy));
  log_pacing(next.pacing);
  impl_->cfg.pacing = next.pacing;
  if (restart_needed) {
    spdlog::warn(
        "reload: storage, VAPID, listener, delivery, dashboard and tracking changes take effect at restart");
  }
  spdlog::info("reload: configuration {} is valid", next.source.string());
}

const std::string& daemon::vapid_public_key() const { return impl_->signer->public_key_b64url(); }

const api::router& daemon::routes() const { return *impl_->router; }

const api::http_server& daemon::listener() const { return *impl_->server; }

}  // namespace webpushd::app
