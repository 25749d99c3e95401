// webpushctl delivery sign: make a delivery id and the signature the daemon
// accepts on POST /v1/deliveries/{id}/events — what a push payload's
// "delivery" block carries. For producers outside the daemon and for tests.
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "webpushd/storage/database.hpp"
#include "webpushd/tracking/beacons.hpp"

namespace webpushctl {

void add_delivery_commands(CLI::App& app) {
  auto* delivery = app.add_subcommand("delivery", "signed delivery ids for push payloads");
  delivery->require_subcommand(1);
  auto* sign = delivery->add_subcommand(
      "sign", "print {\"id\",\"sig\"} for a new (or the given) delivery id, signed with the daemon's tracking.key");
  auto data_dir = std::make_shared<std::string>();
  auto id = std::make_shared<std::string>();
  auto api = std::make_shared<std::string>();
  sign->add_option("--data-dir", *data_dir, "the daemon's data directory (holds tracking.key)")->required();
  sign->add_option("--id", *id, "sign this delivery id instead of making a new one");
  sign->add_option("--api", *api, "the daemon's public URL: adds the \"report\" URL the service worker posts to");
  sign->callback([data_dir, id, api] {
    bool created = false;
    auto signer = webpushd::tracking::delivery_signer::load_or_create(std::filesystem::path(*data_dir) / "tracking.key",
                                                                     created);
    if (!signer) {
      std::cerr << "webpushctl delivery sign: " << signer.error().message << "\n";
      throw CLI::RuntimeError(exit_usage);
    }
    const std::string delivery_id = id->empty() ? webpushd::tracking::delivery_signer::new_delivery_id() : *id;
    nlohmann::json out{{"id", delivery_id}, {"sig", signer->sign(delivery_id)}};
    if (!api->empty()) out["report"] = *api + "/v1/deliveries/" + delivery_id + "/events";
    std::cout << out.dump() << "\n";
    if (created) std::cerr << "note: made a new tracking.key in " << *data_dir << "\n";
  });
}

}  // namespace webpushctl
