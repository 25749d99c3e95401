#pragma once
/// @file
/// @brief Sub-command registration for webpushctl. Each group lives in its
/// own cmd_*.cpp and adds itself to the CLI11 app; main() only wires them.

namespace CLI {
class App;
}

namespace webpushctl {

/// @brief Exit codes shared by all sub-commands (documented in `--help` and README).
enum exit_code : int {
  exit_ok = 0,              ///< done / accepted
  exit_usage = 1,           ///< usage or input error
  exit_rejected = 2,        ///< the push service rejected the message permanently
  exit_gone = 3,            ///< the subscription is gone (404/410)
  exit_temporary = 4,       ///< temporary failure after retries
};

/// @brief `delivery sign`.
void add_delivery_commands(CLI::App& app);
/// @brief `config check`.
void add_config_commands(CLI::App& app);
/// @brief `vapid generate`, `vapid public-key`.
void add_vapid_commands(CLI::App& app);
/// @brief `send`: one message to one subscription.
void add_send_command(CLI::App& app);
/// @brief The `bench` command group, made on first use.
CLI::App* bench_group(CLI::App& app);
/// @brief `bench encrypt`.
void add_bench_commands(CLI::App& app);
/// @brief `bench deliver`: end-to-end delivery to a local sink (call after add_bench_commands).
void add_bench_deliver_command(CLI::App& app);
/// @brief `bench seed`: N consenting subscribers into a data folder (call after add_bench_commands).
void add_bench_seed_command(CLI::App& app);
/// @brief `outbox enqueue|list|show`: the daemon's outbox, offline.
void add_outbox_commands(CLI::App& app);
/// @brief `consent verify|show`: the consent ledger, offline.
void add_consent_commands(CLI::App& app);
/// @brief `scenarios check`: lint automation scenario files.
void add_scenarios_commands(CLI::App& app);
/// @brief `simulate`: replay an event trace against the scenarios in virtual time.
void add_simulate_command(CLI::App& app);
/// @brief `dashboard hash-password`: a password hash for config `dashboard.users`.
void add_dashboard_commands(CLI::App& app);

}  // namespace webpushctl
