// webpushd: the daemon. Parses flags, loads the config, wires the parts
// (app/daemon.cpp) and waits for signals: SIGTERM/SIGINT drain and exit 0,
// SIGHUP reloads the config (an invalid one is refused, the old one kept).
#include <csignal>
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "webpushd/app/config.hpp"
#include "webpushd/app/daemon.hpp"
#include "webpushd/app/logging.hpp"

namespace {

constexpr int exit_config = 2;  // invalid config or flags
constexpr int exit_start = 3;   // could not start (storage, key, …)

// Flags override the file.
webpushd::result<void> apply_overrides(webpushd::app::config& cfg, const std::string& listen,
                                       const std::string& data_dir) {
  if (!listen.empty()) {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) return webpushd::fail("invalid_listen", "--listen takes HOST:PORT", "listen");
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    int port = -1;
    try {
      port = std::stoi(listen.substr(colon + 1));
    } catch (...) {
    }
    if (host.empty() || port < 0 || port > 65535) {
      return webpushd::fail("invalid_listen", "--listen takes HOST:PORT with a port 0..65535", "listen");
    }
    cfg.server.listen_host = host;
    cfg.server.listen_port = static_cast<std::uint16_t>(port);
  }
  if (!data_dir.empty()) cfg.data_dir = data_dir;
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"webpushd - web push notifications for online shops, without driving shoppers away"};
  std::string config_file;
  std::string listen;
  std::string data_dir;
  bool check_only = false;
  cli.add_option("-c,--config", config_file, "Configuration file (YAML or JSON)")->required()->check(CLI::ExistingFile);
  cli.add_option("--listen", listen, "HOST:PORT to listen on (overrides server.listen)");
  cli.add_option("--data-dir", data_dir, "Folder for the database and VAPID key (overrides storage.data_dir)");
  cli.add_flag("--check", check_only, "Validate the configuration and exit");
  cli.footer(
      "Signals: SIGTERM or SIGINT drain and exit 0; SIGHUP reloads the configuration.\n"
      "Exit codes: 0 stopped cleanly, 2 invalid configuration or flags, 3 could not start.");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = cli.exit(e);
    return rc == 0 ? 0 : exit_config;
  }

  auto cfg = webpushd::app::load_config(config_file);
  if (!cfg) {
    std::cerr << "webpushd: invalid configuration:\n" << cfg.error().message << "\n";
    return exit_config;
  }
  if (auto ok = apply_overrides(*cfg, listen, data_dir); !ok) {
    std::cerr << "webpushd: " << ok.error().message << "\n";
    return exit_config;
  }
  if (check_only) {
    std::cout << config_file << ": valid\n";
    return 0;
  }
  if (auto ok = webpushd::app::setup_logging(cfg->logging.format, cfg->logging.level); !ok) {
    std::cerr << "webpushd: " << ok.error().message << "\n";
    return exit_config;
  }

  // Block the signals in every thread (they inherit the mask) and take them
  // synchronously here, so no handler runs in the middle of library code.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  webpushd::system_clock clock;
  auto daemon = webpushd::app::daemon::create(*cfg, clock);
  if (!daemon) {
    spdlog::critical("cannot start: {}", daemon.error().message);
    return exit_start;
  }
  if (auto ok = (*daemon)->start(); !ok) {
    spdlog::critical("cannot start: {}", ok.error().message);
    return exit_start;
  }
  spdlog::info("webpushd started (config {}, data {})", config_file, cfg->data_dir.string());

  while (true) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      auto next = webpushd::app::load_config(config_file);
      if (!next) {
        spdlog::error("reload refused, keeping the running configuration: {}", next.error().message);
        continue;
      }
      if (auto ok = apply_overrides(*next, listen, data_dir); !ok) continue;
      (*daemon)->reload(*next);
      continue;
    }
    spdlog::info("received {}, draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    break;
  }
  (*daemon)->stop(std::chrono::seconds{10});
  spdlog::info("webpushd stopped");
  return 0;
}
