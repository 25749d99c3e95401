// webpushctl bench seed: N consenting subscribers straight into a data folder.
//
// The campaign and scheduler benchmarks need a million subscribers; through
// the HTTP API (one consent ledger entry and one transaction per subscribe)
// that would take longer than the measurement. This writes them through the
// storage module's own subscriber_store, many per transaction, so the rows are
// exactly what the daemon's subscribe writes into `subscriptions` and
// `subscription_categories` — without the consent ledger entries, which no
// sending path reads.

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "webpushd/core/bytes.hpp"
#include "webpushd/core/clock.hpp"
#include "webpushd/crypto/primitives.hpp"
#include "webpushd/delivery/endpoint_rules.hpp"
#include "webpushd/storage/database.hpp"
#include "webpushd/storage/subscriber_store.hpp"
#include "webpushd/webpush/vapid.hpp"

namespace webpushctl {
namespace {

namespace fs = std::filesystem;
namespace storage = webpushd::storage;
namespace wp = webpushd::webpush;
using steady = std::chrono::steady_clock;
using std::chrono::duration;

struct seed_options {
  std::string data_dir;
  std::string endpoint;
  std::size_t subscribers = 100'000;
  std::size_t key_pairs = 8;
  std::size_t batch = 10'000;
  std::vector<std::string> categories;
  std::string locale = "en";
  std::string timezone = "Europe/Warsaw";
  std::string text_version = "v1";
  std::string id_prefix = "sub_bench_";
  bool json = false;
  bool quiet = false;
};

[[noreturn]] void stop(const std::string& message) {
  std::cerr << "error: " << message << '\n';
  throw CLI::RuntimeError(exit_usage);
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

void run_seed(const seed_options& opt) {
  if (opt.subscribers == 0) stop("--subscribers must be at least 1");
  if (opt.key_pairs == 0 || opt.key_pairs > 10'000) stop("--key-pairs must be in 1..10000");
  if (opt.batch == 0) stop("--batch must be at least 1");
  if (opt.categories.empty()) stop("--categories: at least one consent category the subscribers grant");

  // Seeded endpoints are for a local sink only: the same loopback allowlist
  // as bench deliver, so a typo can never aim a campaign at a real service.
  webpushd::delivery::endpoint_rules rules;
  rules.allowed_hosts = {"127.0.0.1", "localhost", "::1"};
  rules.allow_private_addresses = true;
  rules.allow_http = true;
  if (auto ep = webpushd::delivery::check_endpoint(opt.endpoint, rules); !ep) {
    stop("--endpoint must be a loopback http(s) URL: " + ep.error().message);
  }
  const std::string base = opt.endpoint.back() == '/' ? opt.endpoint : opt.endpoint + "/";
  std::vector<std::string> categories = opt.categories;
  std::sort(categories.begin(), categories.end());
  categories.erase(std::unique(categories.begin(), categories.end()), categories.end());

  std::error_code ec;
  fs::create_directories(opt.data_dir, ec);
  if (ec) stop("cannot create " + opt.data_dir + ": " + ec.message());
  auto db = storage::database::open(fs::path(opt.data_dir) / storage::default_database_file);
  if (!db) stop("database: " + db.error().message);
  auto store = storage::make_sqlite_subscriber_store(*db);

  // A handful of real P-256 key pairs, reused: the sender's ECDH needs a
  // valid point, not a distinct one per subscriber.
  struct keys {
    std::string p256dh, auth;
  };
  std::vector<keys> pairs;
  for (std::size_t k = 0; k < opt.key_pairs; ++k) {
    auto ua = wp::vapid_key::generate();
    if (!ua) stop("cannot generate a P-256 key: " + ua.error().message);
    webpushd::bytes auth(16);
    const auto digest = webpushd::crypto::sha256(webpushd::as_bytes("bench auth " + std::to_string(k)));
    std::copy_n(digest.begin(), auth.size(), auth.begin());
    pairs.push_back({ua->public_key_b64url(), webpushd::base64url_encode(auth)});
  }

  const webpushd::system_clock clk;
  const auto start = steady::now();
  auto last_report = start;
  std::size_t created = 0;
  for (std::size_t done = 0; done < opt.subscribers;) {
    const std::size_t n = std::min(opt.batch, opt.subscribers - done);
    storage::transaction tx{*db};
    if (auto r = tx.begun(); !r) stop("begin: " + r.error().message);
    const auto now = clk.now();
    for (std::size_t j = 0; j < n; ++j) {
      const std::size_t i = done + j;
      const auto& kp = pairs[i % pairs.size()];
      storage::subscriber_fields f;
      f.endpoint = base + std::to_string(i);
      f.p256dh = kp.p256dh;
      f.auth = kp.auth;
      f.timezone = opt.timezone;
      f.locale = opt.locale;
      f.text_version = opt.text_version;
      f.categories = categories;
      f.new_public_id = opt.id_prefix + std::to_string(i);
      // Nobody holds these subscribers' tokens: the hash of a known string
      // stands in for the random token's.
      f.token_hash = webpushd::crypto::sha256(webpushd::as_bytes(f.new_public_id));
      auto up = store->upsert(f, now);
      if (!up) stop("subscriber " + std::to_string(i) + ": " + up.error().message);
      if (up->created) ++created;
    }
    if (auto r = tx.commit(); !r) stop("commit: " + r.error().message);
    done += n;
    const auto t = steady::now();
    if (!opt.quiet && (t - last_report >= std::chrono::seconds{2} || done == opt.subscribers)) {
      const double s = duration<double>(t - start).count();
      std::cerr << "  " << done << "/" << opt.subscribers << " subscribers (" << fixed(100.0 * done / opt.subscribers, 0)
                << " %), " << fixed(static_cast<double>(done) / s, 0) << "/s\n";
      last_report = t;
    }
  }
  const double seconds = duration<double>(steady::now() - start).count();
  if (opt.json) {
    std::cout << nlohmann::json{{"subscribers", opt.subscribers},
                                {"created", created},
                                {"key_pairs", pairs.size()},
                                {"categories", categories},
                                {"endpoint_base", base},
                                {"public_id_prefix", opt.id_prefix},
                                {"seconds", seconds},
                                {"per_second", static_cast<double>(opt.subscribers) / seconds}}
                     .dump()
              << '\n';
  } else {
    std::cout << "seeded " << opt.subscribers << " subscribers (" << created << " new) in " << fixed(seconds, 1)
              << " s into " << opt.data_dir << "; endpoints " << base << "<0.." << opt.subscribers - 1
              << ">, public ids " << opt.id_prefix << "<i>\n";
  }
}

}  // namespace

void add_bench_seed_command(CLI::App& app) {
  CLI::App* bench = bench_group(app);
  auto opt = std::make_shared<seed_options>();
  CLI::App* cmd = bench->add_subcommand(
      "seed",
      "Write N consenting subscribers (valid P-256 keys, endpoints URL/<i> on a local sink) into a daemon's data "
      "folder through the storage module, for the campaign and scheduler benchmarks. Stop the daemon first.");
  cmd->add_option("--data-dir", opt->data_dir, "the daemon's data folder (storage.data_dir); created if missing")
      ->required();
  cmd->add_option("--endpoint", opt->endpoint, "sink base URL; subscriber i gets URL/i (loopback only)")->required();
  cmd->add_option("--subscribers", opt->subscribers, "how many")->capture_default_str();
  cmd->add_option("--categories", opt->categories, "consent categories they grant (comma-separated)")
      ->delimiter(',')
      ->required();
  cmd->add_option("--key-pairs", opt->key_pairs, "distinct P-256 key pairs, reused round-robin")->capture_default_str();
  cmd->add_option("--batch", opt->batch, "subscribers per transaction")->capture_default_str();
  cmd->add_option("--locale", opt->locale, "their locale")->capture_default_str();
  cmd->add_option("--timezone", opt->timezone, "their time zone")->capture_default_str();
  cmd->add_option("--text-version", opt->text_version, "consent text version they agreed to")->capture_default_str();
  cmd->add_option("--id-prefix", opt->id_prefix, "public id of subscriber i: PREFIX<i>")->capture_default_str();
  cmd->add_flag("--json", opt->json, "print one JSON object");
  cmd->add_flag("--quiet", opt->quiet, "no progress on stderr");
  cmd->callback([opt] { run_seed(*opt); });
}

}  // namespace webpushctl
