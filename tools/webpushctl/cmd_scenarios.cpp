// webpushctl scenarios check: lint scenario files exactly as the daemon
// checks them at start-up and reload, with every finding at once.
#include <iostream>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "webpushd/app/scenario_files.hpp"

namespace webpushctl {
namespace {

// This command's own exit codes (documented in its --help).
constexpr int exit_findings = 1;    // errors in a scenario file or in the config
constexpr int exit_unreadable = 2;  // a file could not be read

struct check_options {
  std::vector<std::string> files;
  std::string config;
};

void run_check(const check_options& opts) {
  namespace app = webpushd::app;
  webpushd::automation::scenario_environment env;
  std::vector<std::filesystem::path> files(opts.files.begin(), opts.files.end());
  if (!opts.config.empty()) {
    const auto cfg = app::load_config_without_scenarios(opts.config);
    if (!cfg) {
      std::cerr << cfg.error().message << "\n";
      throw CLI::RuntimeError(cfg.error().code == "config_unreadable" ? exit_unreadable : exit_findings);
    }
    env = app::scenario_environment_for(*cfg);
    // No FILE: the config's own scenario files, as the daemon would load them.
    if (files.empty()) files = cfg->automation.scenario_files;
    if (files.empty()) {
      std::cout << opts.config << ": lists no automation.scenario_files; nothing to check\n";
      return;
    }
  } else {
    if (files.empty()) {
      std::cerr << "scenarios check: give at least one FILE, or --config to check the files it lists\n";
      throw CLI::RuntimeError(exit_usage);
    }
    env = app::builtin_scenario_environment();
    std::cout << "note: no --config: only the built-in event types and 'subscribed' are known, and consent "
                 "categories are not checked\n";
  }

  const auto result = app::load_scenario_files(files, env);
  std::size_t errors = 0;
  std::size_t warnings = 0;
  for (const auto& f : result.findings) {
    std::string where = f.file;
    if (f.line > 0) where += ":" + std::to_string(f.line) + ":" + std::to_string(f.column);
    std::cout << where << ": " << (f.is_error() ? "error" : "warning") << ": "
              << (f.path.empty() ? "" : f.path + ": ") << f.message << "\n";
    ++(f.is_error() ? errors : warnings);
  }
  const auto plural = [](std::size_t n, const char* word) {
    return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
  };
  std::cout << plural(files.size(), "file") << ", " << plural(result.scenarios.size(), "scenario") << ": "
            << plural(errors, "error") << ", " << plural(warnings, "warning") << "\n";
  if (result.unreadable) throw CLI::RuntimeError(exit_unreadable);
  if (errors > 0) throw CLI::RuntimeError(exit_findings);
}

}  // namespace

void add_scenarios_commands(CLI::App& app) {
  auto* scenarios = app.add_subcommand("scenarios", "check automation scenario files (docs/SCENARIOS.md)");
  scenarios->require_subcommand(1);
  auto* check = scenarios->add_subcommand(
      "check",
      "lint scenario files as the daemon does: shape (schemas/scenarios.schema.json), conditions, templates, "
      "names, step order, consent categories, and template fields the trigger's event can never provide");
  auto opts = std::make_shared<check_options>();
  check->add_option("FILE", opts->files, "scenario files (YAML); none: the files --config lists");
  check->add_option("--config", opts->config,
                    "the shop's config: its consent categories and custom event types are checked against "
                    "(without it: built-in event types only, categories unchecked)");
  check->footer(
      "Prints each finding as FILE:LINE:COL: error|warning: path: message, then a summary.\n"
      "Exit codes: 0 no errors (warnings allowed), 1 errors, 2 a file could not be read.");
  check->callback([opts] { run_check(*opts); });
}

}  // namespace webpushctl
