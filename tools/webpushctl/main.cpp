// webpushctl: the operator's command line for webpushd.
#include <CLI/CLI.hpp>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"webpushctl - operate webpushd: keys, one-off sends, the outbox, scenario checks, dashboard users, benchmarks"};
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 ok/accepted, 1 usage or input error, 2 rejected permanently,\n"
      "3 subscription gone (404/410), 4 temporary failure after retries;\n"
      "'scenarios check': 1 errors found, 2 a file could not be read.\n"
      "Run 'webpushctl COMMAND --help' for a command's options.");
  webpushctl::add_config_commands(app);
  webpushctl::add_scenarios_commands(app);
  webpushctl::add_simulate_command(app);
  webpushctl::add_vapid_commands(app);
  webpushctl::add_send_command(app);
  webpushctl::add_delivery_commands(app);
  webpushctl::add_outbox_commands(app);
  webpushctl::add_consent_commands(app);
  webpushctl::add_dashboard_commands(app);
  webpushctl::add_bench_commands(app);
  webpushctl::add_bench_deliver_command(app);
  webpushctl::add_bench_seed_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    // Commands end with a RuntimeError carrying their documented exit code.
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    // CLI11 reports --help as a "success" parse error; its own usage error
    // codes (100+) all become our documented 1.
    const int rc = app.exit(e);
    return rc == 0 ? 0 : webpushctl::exit_usage;
  }
  return 0;
}
