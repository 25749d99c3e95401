// webpushctl config check: validate a configuration file exactly as the
// daemon does at start-up, without starting anything.
#include <iostream>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "webpushd/app/config.hpp"

namespace webpushctl {

void add_config_commands(CLI::App& app) {
  auto* config = app.add_subcommand("config", "check configuration files");
  config->require_subcommand(1);
  auto* check = config->add_subcommand(
      "check", "validate a configuration file against the schema the daemon uses; errors name file:line:column");
  auto file = std::make_shared<std::string>();
  check->add_option("FILE", *file, "configuration file (YAML or JSON)")->required();
  check->callback([file] {
    const auto cfg = webpushd::app::load_config(*file);
    if (!cfg) {
      std::cerr << cfg.error().message << "\n";
      throw CLI::RuntimeError(exit_usage);
    }
    std::cout << *file << ": valid\n";
  });
}

}  // namespace webpushctl
