// webpushctl consent: the consent ledger, offline (verify the hash chain,
// show one subscriber's entries).
//
// Works directly on <data-dir>/webpushd.db; reading is safe while the daemon
// runs (WAL readers see the last commit).

#include <CLI/CLI.hpp>

#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>

#include "commands.hpp"
#include "webpushd/core/bytes.hpp"
#include "webpushd/core/clock.hpp"
#include "webpushd/storage/consent_ledger_store.hpp"
#include "webpushd/storage/database.hpp"

namespace webpushctl {
namespace {

namespace fs = std::filesystem;
namespace storage = webpushd::storage;

struct consent_options {
  std::string data_dir;
  std::string subscription;
};

// Opening never creates a database: a typo in --data-dir must not look like
// an empty, intact ledger.
webpushd::result<storage::database> open_existing(const std::string& data_dir) {
  const auto path = fs::path{data_dir} / storage::default_database_file;
  std::error_code ec;
  if (!fs::exists(path, ec)) return webpushd::fail("no_database", "no database at " + path.string(), "data-dir");
  return storage::database::open(path);
}

// Runs a command body; CLI11 carries a non-zero exit code out as an exception.
void run(int rc) {
  if (rc != exit_ok) throw CLI::RuntimeError(rc);
}

int failed(const webpushd::error& e) {
  std::cerr << "webpushctl consent: " << e.message << "\n";
  return exit_usage;
}

std::string utc(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  const auto millis = std::to_string(1000 + ms % 1000).substr(1);
  return std::string{text} + "." + millis + "Z";
}

int run_verify(const consent_options& o) {
  auto db = open_existing(o.data_dir);
  if (!db) return failed(db.error());
  const auto v = storage::make_sqlite_consent_ledger_store(*db)->verify();
  if (!v) return failed(v.error());
  if (v->intact()) {
    std::cout << "ok: " << v->entries << " entries, chain intact\n"
              << "head: " << webpushd::hex_encode(v->head) << "\n";
    return exit_ok;
  }
  std::cout << "BROKEN at seq " << *v->first_broken_seq << ": " << v->problem << "\n"
            << "(" << v->entries - 1 << " entries before it check out)\n";
  return exit_rejected;
}

int run_show(const consent_options& o) {
  auto db = open_existing(o.data_dir);
  if (!db) return failed(db.error());
  const auto entries = storage::make_sqlite_consent_ledger_store(*db)->for_subscription(o.subscription);
  if (!entries) return failed(entries.error());
  if (entries->empty()) {
    std::cerr << "webpushctl consent: no ledger entries for " << o.subscription << "\n";
    return exit_usage;
  }
  for (const auto& e : *entries) {
    std::cout << "seq " << e.seq << "  " << utc(e.at_ms) << "  " << e.action << "  " << e.categories_before
              << " -> " << e.categories_after << "\n"
              << "    source " << e.source << "  text " << (e.text_version.empty() ? "-" : e.text_version) << "  ip "
              << (e.ip_truncated.empty() ? "-" : e.ip_truncated) << "\n"
              << "    hash " << webpushd::hex_encode(e.hash) << "\n";
  }
  return exit_ok;
}

}  // namespace

void add_consent_commands(CLI::App& app) {
  auto* consent = app.add_subcommand("consent", "the consent ledger: verify its hash chain, show a subscriber's entries");
  consent->require_subcommand(1);
  auto options = std::make_shared<consent_options>();

  auto* verify = consent->add_subcommand(
      "verify", "check the whole hash chain; exit 0 when intact, 2 with the first broken entry");
  verify->add_option("--data-dir", options->data_dir, "the daemon's data directory (holds webpushd.db)")->required();
  verify->callback([options] { run(run_verify(*options)); });

  auto* show = consent->add_subcommand("show", "list one subscriber's ledger entries");
  show->add_option("--data-dir", options->data_dir, "the daemon's data directory (holds webpushd.db)")->required();
  show->add_option("SUBSCRIPTION_ID", options->subscription, "the subscriber's public id (sub_…)")->required();
  show->callback([options] { run(run_show(*options)); });
}

}  // namespace webpushctl
