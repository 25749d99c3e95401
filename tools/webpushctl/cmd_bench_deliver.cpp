// webpushctl bench deliver: end-to-end delivery through the real pipeline.
//
// A throw-away data folder gets a real SQLite database (WAL, synchronous=FULL,
// exactly as the daemon opens it), K subscriptions with valid P-256 keys that
// point at a local sink, and N messages enqueued durably in batches. Then the
// real dispatcher (claim → encrypt on worker threads → curl multi sender →
// classify → group-commit record) drains the outbox, and the figures are
// taken from what the outbox itself recorded.

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "webpushd/core/bytes.hpp"
#include "webpushd/core/clock.hpp"
#include "webpushd/delivery/dispatcher.hpp"
#include "webpushd/delivery/endpoint_rules.hpp"
#include "webpushd/delivery/sender.hpp"
#include "webpushd/storage/database.hpp"
#include "webpushd/storage/outbox_store.hpp"
#include "webpushd/storage/recall_store.hpp"
#include "webpushd/storage/subscription_store.hpp"
#include "webpushd/webpush/vapid.hpp"

namespace webpushctl {
namespace {

namespace fs = std::filesystem;
namespace storage = webpushd::storage;
namespace delivery = webpushd::delivery;
namespace wp = webpushd::webpush;
using steady = std::chrono::steady_clock;
using std::chrono::duration;

struct deliver_options {
  std::string endpoint;
  std::size_t messages = 20'000;
  std::size_t subscribers = 100;
  unsigned workers = 0;
  std::size_t max_in_flight = 2000;
  std::size_t max_outstanding = 4000;
  long connections = 32;
  std::size_t payload_bytes = 200;
  std::size_t enqueue_batch = 1000;
  bool http1 = false;
  bool http2 = false;
  std::string ca_file;
  std::string data_parent;
  double timeout_seconds = 300;
  bool json = false;
  bool quiet = false;
};

[[noreturn]] void stop(const std::string& message) {
  std::cerr << "error: " << message << '\n';
  throw CLI::RuntimeError(exit_usage);
}

/// Owns the throw-away data folder: removed on every way out.
class temp_dir {
 public:
  explicit temp_dir(const fs::path& parent) {
    std::random_device rd;
    for (int i = 0; i < 16 && path_.empty(); ++i) {
      auto candidate = parent / ("webpushctl-bench-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
      std::error_code ec;
      if (fs::create_directory(candidate, ec)) path_ = std::move(candidate);
    }
    if (path_.empty()) stop("cannot create a temporary folder in " + parent.string());
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);  // best effort: a destructor must not throw
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

struct usage_sample {
  double cpu_seconds = 0;
  long peak_rss_kib = 0;
};

usage_sample sample_usage() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  const auto secs = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  return {secs(ru.ru_utime) + secs(ru.ru_stime), ru.ru_maxrss};
}

double percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(rank, sorted.size() - 1)];
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::uint64_t finished(const delivery::dispatcher_counters& c) { return c.sent + c.gone + c.failed + c.dead + c.expired; }

void run_deliver_bench(const deliver_options& opt) {
  if (opt.messages == 0 || opt.subscribers == 0) stop("--messages and --subscribers must be at least 1");
  if (opt.http1 && opt.http2) stop("--http1 and --http2 exclude each other");
  if (opt.payload_bytes == 0 || opt.payload_bytes > 3000) stop("--payload-bytes must be in 1..3000");

  // A load generator must only ever hit this machine: loopback names are the
  // whole allowlist, and loopback addresses need the private-address relaxation.
  delivery::endpoint_rules rules;
  rules.allowed_hosts = {"127.0.0.1", "localhost", "::1"};
  rules.allow_private_addresses = true;
  rules.allow_http = true;
  const auto ep = delivery::check_endpoint(opt.endpoint, rules);
  if (!ep) stop("--endpoint must be a loopback http(s) URL: " + ep.error().message);
  rules.allow_http = ep->scheme == "http";
  // Subscriber i gets URL/i: endpoints are unique in the store, as in life.
  const std::string base = opt.endpoint.back() == '/' ? opt.endpoint : opt.endpoint + "/";

  // The dispatcher logs one line per failed message: thousands against a dead
  // sink. Only errors (storage trouble) go through, on stderr so --json stays
  // one clean object; failures show in the final states and sample reasons.
  auto logger = spdlog::stderr_logger_mt("bench-deliver");
  logger->set_level(spdlog::level::err);
  spdlog::set_default_logger(logger);
  struct logger_reset {
    ~logger_reset() { spdlog::drop("bench-deliver"); }
  } reset_logger;

  const fs::path parent = opt.data_parent.empty() ? fs::temp_directory_path() : fs::path(opt.data_parent);
  temp_dir dir(parent);
  auto db = storage::database::open(dir.path() / storage::default_database_file);
  if (!db) stop("database: " + db.error().message);
  auto subscriptions = storage::make_sqlite_subscription_store(*db);
  auto outbox = storage::make_sqlite_outbox_store(*db);
  auto recalls = storage::make_sqlite_recall_store(*db);
  const webpushd::system_clock clk;
  const auto note = [&](const std::string& line) {
    if (!opt.quiet) std::cerr << line << '\n';
  };

  // 1. Subscribers: real P-256 public keys (the encryptor validates and uses
  // them for ECDH) and random 16-byte auth secrets.
  note("creating " + std::to_string(opt.subscribers) + " subscriptions in " + dir.path().string());
  std::mt19937_64 rng{std::random_device{}()};
  std::vector<std::int64_t> subscription_ids;
  subscription_ids.reserve(opt.subscribers);
  for (std::size_t i = 0; i < opt.subscribers; ++i) {
    auto ua = wp::vapid_key::generate();
    if (!ua) stop("cannot generate a P-256 key: " + ua.error().message);
    webpushd::bytes auth(16);
    for (auto& b : auth) b = static_cast<std::uint8_t>(rng());
    auto id = subscriptions->upsert(base + std::to_string(i), ua->public_key_b64url(), webpushd::base64url_encode(auth),
                                    clk.now());
    if (!id) stop("storing a subscription: " + id.error().message);
    subscription_ids.push_back(*id);
  }

  // 2. Messages, durably, in batches (each batch is one committed transaction).
  // Within a batch the messages are grouped by subscriber, as a campaign
  // fanning out over a segment would write them.
  webpushd::bytes payload(opt.payload_bytes);
  for (auto& b : payload) b = static_cast<std::uint8_t>('a' + rng() % 26);
  const auto enqueue_start = steady::now();
  std::size_t enqueued = 0;
  while (enqueued < opt.messages) {
    const std::size_t n = std::min(opt.enqueue_batch, opt.messages - enqueued);
    std::vector<storage::new_outbox_message> batch(n);
    for (std::size_t j = 0; j < n; ++j) {
      auto& m = batch[j];
      m.subscription_id = subscription_ids[(j * opt.subscribers / n + enqueued) % opt.subscribers];
      m.payload = payload;
      m.ttl_seconds = 3600;
      m.source = "bench";
    }
    auto ids = outbox->enqueue(batch, clk.now());
    if (!ids) stop("enqueue: " + ids.error().message);
    enqueued += n;
  }
  const double enqueue_seconds = duration<double>(steady::now() - enqueue_start).count();
  note("enqueued " + std::to_string(opt.messages) + " messages in " + fixed(enqueue_seconds, 2) + " s (" +
       fixed(static_cast<double>(opt.messages) / enqueue_seconds, 0) + "/s, batches of " +
       std::to_string(opt.enqueue_batch) + ")");

  // 3. The real pipeline.
  auto vapid = wp::vapid_key::generate();
  if (!vapid) stop("cannot generate the VAPID key");
  auto signer = wp::vapid_signer::create(std::move(*vapid), "mailto:bench@webpushd.invalid", clk);
  if (!signer) stop("VAPID signer: " + signer.error().message);

  delivery::sender_options so;
  so.max_in_flight = opt.max_in_flight;
  so.max_connections_per_host = opt.connections;
  so.http2 = !opt.http1;  // the daemon's default: h2 where TLS offers it
  so.rules = rules;
  so.ca_file = opt.ca_file;
  so.user_agent = "webpushctl-bench/0.1";

  delivery::dispatcher_options dopt;
  dopt.workers = opt.workers;
  dopt.max_outstanding = opt.max_outstanding;
  dopt.rules = rules;
  // A bench run must not hide failures behind long retry waits: one retry at
  // most, soon, so a broken sink shows up as failed/dead states at the end.
  dopt.retry.max_attempts = 2;
  dopt.retry.base = std::chrono::milliseconds{200};

  const unsigned workers = opt.workers != 0 ? opt.workers : std::max(1u, std::thread::hardware_concurrency());
  note("delivering to " + opt.endpoint + "/<0.." + std::to_string(opt.subscribers - 1) + "> over " +
       (ep->scheme == "https" ? (opt.http1 ? "HTTPS/1.1" : "TLS (h2 offered via ALPN)") : "plain HTTP/1.1") + ", " +
       std::to_string(workers) + " crypto workers, " + std::to_string(opt.max_in_flight) + " in flight at most, " +
       std::to_string(opt.connections) + " connections at most");

  const usage_sample before = sample_usage();
  bool completed = false;
  double wall_seconds = 0;
  delivery::dispatcher_counters totals;
  std::uint64_t tokens_signed = 0;
  {
    // Destroyed in reverse order: the dispatcher stops before its sender goes.
    delivery::sender out(so);
    delivery::dispatcher disp(dopt, *outbox, *recalls, **signer, out, clk);
    const auto start = steady::now();
    if (auto started = disp.start(); !started) stop("dispatcher: " + started.error().message);
    const auto deadline = start + std::chrono::duration_cast<steady::duration>(duration<double>(opt.timeout_seconds));
    auto last_report = start;
    std::uint64_t last_done = 0;
    for (;;) {
      // Polled finely: the end time is read from here, so the poll step bounds its error.
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
      totals = disp.counters();
      const auto now = steady::now();
      const std::uint64_t done = finished(totals);
      if (done >= opt.messages) {
        completed = true;
        wall_seconds = duration<double>(now - start).count();
        break;
      }
      if (now >= deadline) {
        wall_seconds = duration<double>(now - start).count();
        break;
      }
      if (now - last_report >= std::chrono::seconds{1}) {
        const double rate = static_cast<double>(done - last_done) / duration<double>(now - last_report).count();
        note("  " + std::to_string(done) + "/" + std::to_string(opt.messages) + " finished (" +
             std::to_string(totals.sent) + " sent, " + std::to_string(totals.retried) + " retried), " +
             fixed(rate, 0) + "/s now, " + std::to_string(disp.outstanding()) + " outstanding");
        last_report = now;
        last_done = done;
      }
    }
    disp.stop(std::chrono::seconds{5});
    totals = disp.counters();
    tokens_signed = (*signer)->tokens_signed();
  }
  const usage_sample after = sample_usage();

  // 4. What the outbox says: final states, and per-message claim → recorded
  // latency (both stamped by the store, in milliseconds).
  auto counts = outbox->counts();
  if (!counts) stop("counting states: " + counts.error().message);
  auto rows = outbox->list(storage::outbox_state::sent, opt.messages);
  if (!rows) stop("reading the outbox: " + rows.error().message);
  std::vector<double> latency_ms;
  latency_ms.reserve(rows->size());
  for (const auto& r : *rows) {
    if (r.claimed_at && r.finished_at) {
      latency_ms.push_back(duration<double, std::milli>(*r.finished_at - *r.claimed_at).count());
    }
  }
  std::sort(latency_ms.begin(), latency_ms.end());
  const double p50 = percentile(latency_ms, 0.50);
  const double p99 = percentile(latency_ms, 0.99);
  const double max_latency = latency_ms.empty() ? 0 : latency_ms.back();

  const bool all_sent = counts->sent == static_cast<std::int64_t>(opt.messages);
  // A few reasons from unsuccessful messages: enough to tell a refused
  // connection from a TLS or status problem.
  std::vector<std::string> sample_reasons;
  for (const auto state : {storage::outbox_state::dead, storage::outbox_state::failed, storage::outbox_state::gone,
                           storage::outbox_state::queued}) {
    if (all_sent) break;
    auto bad = outbox->list(state, 3);
    if (!bad) continue;
    for (const auto& r : *bad) {
      sample_reasons.push_back(std::string(storage::to_string(state)) + ": " +
                               (r.last_status ? "HTTP " + std::to_string(*r.last_status) + ", " : std::string{}) +
                               r.last_reason);
    }
  }
  const double rate = wall_seconds > 0 ? static_cast<double>(totals.sent) / wall_seconds : 0;
  const double cpu = after.cpu_seconds - before.cpu_seconds;
  const std::string protocol =
      ep->scheme == "https" ? (opt.http1 ? "https/1.1" : "https/h2-offered") : "http/1.1";

  if (opt.json) {
    nlohmann::json out{
        {"impl", "webpushd"},
        {"endpoint", opt.endpoint},
        {"protocol", protocol},
        {"messages", opt.messages},
        {"subscribers", opt.subscribers},
        {"payload_bytes", opt.payload_bytes},
        {"workers", workers},
        {"max_in_flight", opt.max_in_flight},
        {"max_outstanding", opt.max_outstanding},
        {"connections", opt.connections},
        {"enqueue_seconds", enqueue_seconds},
        {"enqueue_per_second", static_cast<double>(opt.messages) / enqueue_seconds},
        {"enqueue_batch", opt.enqueue_batch},
        {"completed", completed},
        {"wall_seconds", wall_seconds},
        {"messages_per_second", rate},
        {"latency_basis", "outbox claimed_at to finished_at (ms, stored by the outbox)"},
        {"latency_p50_ms", p50},
        {"latency_p99_ms", p99},
        {"latency_max_ms", max_latency},
        {"cpu_seconds", cpu},
        {"cpu_cores_busy", wall_seconds > 0 ? cpu / wall_seconds : 0},
        {"peak_rss_mib", static_cast<double>(after.peak_rss_kib) / 1024.0},
        {"vapid_tokens_signed", tokens_signed},
        {"all_sent", all_sent},
        {"states",
         {{"queued", counts->queued},
          {"sending", counts->sending},
          {"sent", counts->sent},
          {"gone", counts->gone},
          {"failed", counts->failed},
          {"dead", counts->dead},
          {"expired", counts->expired},
          {"cancelled", counts->cancelled}}},
        {"retried", totals.retried},
        {"sample_reasons", sample_reasons}};
    std::cout << out.dump() << '\n';
  } else {
    std::cout << "end-to-end delivery, " << protocol << ", " << opt.messages << " x " << opt.payload_bytes
              << "-byte messages to " << opt.subscribers << " subscribers\n"
              << "  enqueue:     " << fixed(static_cast<double>(opt.messages) / enqueue_seconds, 0)
              << " messages/s (durable, batches of " << opt.enqueue_batch << ")\n"
              << "  delivery:    " << fixed(rate, 0) << " messages/s (" << totals.sent << " sent in "
              << fixed(wall_seconds, 2) << " s, outbox to recorded 2xx)\n"
              << "  latency:     p50 " << fixed(p50, 1) << " ms, p99 " << fixed(p99, 1) << " ms, max "
              << fixed(max_latency, 1) << " ms (claimed_at to finished_at as the outbox stored them)\n"
              << "  cpu:         " << fixed(cpu, 2) << " s (" << fixed(wall_seconds > 0 ? cpu / wall_seconds : 0, 2)
              << " cores busy), peak RSS " << fixed(static_cast<double>(after.peak_rss_kib) / 1024.0, 1) << " MiB\n"
              << "  states:      " << counts->sent << " sent, " << counts->queued << " queued, " << counts->sending
              << " sending, " << counts->gone << " gone, " << counts->failed << " failed, " << counts->dead
              << " dead, " << counts->expired << " expired; " << totals.retried << " retries\n";
    if (!all_sent) {
      std::cout << "  NOT ALL SENT: the figures above do not describe a clean run\n";
      for (const auto& r : sample_reasons) std::cout << "    " << r << '\n';
    }
  }
  if (!completed) stop("the run did not finish within --timeout " + fixed(opt.timeout_seconds, 0) + " s");
  if (!all_sent) throw CLI::RuntimeError(exit_temporary);
}

}  // namespace

void add_bench_deliver_command(CLI::App& app) {
  CLI::App* bench = bench_group(app);
  auto opt = std::make_shared<deliver_options>();
  CLI::App* cmd = bench->add_subcommand(
      "deliver", "End-to-end delivery to a local sink: enqueue, then dispatch, encrypt, send and record");
  cmd->add_option("--endpoint", opt->endpoint, "sink base URL; subscriber i gets URL/i (loopback only)")->required();
  cmd->add_option("--messages", opt->messages, "messages to deliver")->capture_default_str();
  cmd->add_option("--subscribers", opt->subscribers, "distinct subscriptions (keys and endpoint paths)")
      ->capture_default_str();
  cmd->add_option("--workers", opt->workers, "encryption threads; 0: one per core")->capture_default_str();
  cmd->add_option("--max-in-flight", opt->max_in_flight, "sender: requests queued or in flight at most")
      ->capture_default_str();
  cmd->add_option("--max-outstanding", opt->max_outstanding, "dispatcher: claimed but not yet recorded at most")
      ->capture_default_str();
  cmd->add_option("--connections", opt->connections, "sender: connections per host at most")->capture_default_str();
  cmd->add_option("--payload-bytes", opt->payload_bytes, "plaintext size")->capture_default_str();
  cmd->add_option("--enqueue-batch", opt->enqueue_batch, "messages per enqueue transaction")->capture_default_str();
  cmd->add_flag("--http1", opt->http1, "speak HTTP/1.1 even where TLS offers h2");
  cmd->add_flag("--http2", opt->http2, "offer h2 over TLS (the default; plain http stays HTTP/1.1)");
  cmd->add_option("--ca-file", opt->ca_file, "extra CA bundle to trust (the sink's self-signed certificate)");
  cmd->add_option("--data-parent", opt->data_parent,
                  "folder for the throw-away database (default: the system temp folder); fsync speed matters")
      ->capture_default_str();
  cmd->add_option("--timeout", opt->timeout_seconds, "give up after this many seconds of delivery")
      ->capture_default_str();
  cmd->add_flag("--json", opt->json, "print one JSON object");
  cmd->add_flag("--quiet", opt->quiet, "no progress on stderr");
  cmd->callback([opt] { run_deliver_bench(*opt); });
}

}  // namespace webpushctl
