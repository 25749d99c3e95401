// webpushctl vapid: create the application server's VAPID key and show its public half.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "commands.hpp"
#include "webpushd/core/error.hpp"
#include "webpushd/webpush/vapid.hpp"

namespace webpushctl {
namespace {

namespace fs = std::filesystem;

constexpr const char* key_file_name = "vapid_private.pem";

/// Reports an input error and stops the command with exit code 1.
[[noreturn]] void stop(const std::string& message) {
  // CLI11 prints nothing for a RuntimeError, only exits with its code.
  std::cerr << "error: " << message << '\n';
  throw CLI::RuntimeError(exit_usage);
}

struct generate_options {
  std::string out_dir;
  bool force = false;
};

void run_generate(const generate_options& opt) {
  const fs::path dir{opt.out_dir};
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) stop("cannot create directory " + dir.string() + ": " + ec.message());
  } else if (!fs::is_directory(dir, ec)) {
    stop(dir.string() + " is not a directory");
  }
  const fs::path file = dir / key_file_name;
  // Replacing a key silently would orphan every existing subscription, whose
  // applicationServerKey is the old public key; make the operator say so.
  if (fs::exists(file, ec) && !opt.force)
    stop(file.string() + " already exists; existing subscriptions depend on it (use --force to replace it)");
  auto key = webpushd::webpush::vapid_key::generate();
  if (!key) stop(key.error().message);
  if (auto saved = key->save_pem_file(file); !saved) stop(saved.error().message);
  std::cerr << "wrote " << file.string() << " (mode 0600); public key (applicationServerKey):\n";
  std::cout << key->public_key_b64url() << '\n';
}

void run_public_key(const std::string& key_path) {
  const auto key = webpushd::webpush::vapid_key::load_pem_file(key_path);
  if (!key) stop(key.error().message);
  std::cout << key->public_key_b64url() << '\n';
}

}  // namespace

void add_vapid_commands(CLI::App& app) {
  auto* vapid = app.add_subcommand("vapid", "Manage the VAPID key (RFC 8292) that identifies this server");
  vapid->require_subcommand(1);

  auto gen_opt = std::make_shared<generate_options>();
  auto* gen = vapid->add_subcommand(
      "generate", "Create a new P-256 key as DIR/vapid_private.pem (mode 0600) and print its public key");
  gen->add_option("--out", gen_opt->out_dir, "Directory for vapid_private.pem (created if missing)")->required();
  gen->add_flag("--force", gen_opt->force, "Replace an existing key (invalidates existing subscriptions)");
  gen->callback([gen_opt] { run_generate(*gen_opt); });

  auto key_path = std::make_shared<std::string>();
  auto* pub =
      vapid->add_subcommand("public-key", "Print the base64url public key (applicationServerKey) of a key file");
  pub->add_option("--key", *key_path, "PEM private key file (PKCS#8 or SEC1)")->required();
  pub->callback([key_path] { run_public_key(*key_path); });
}

}  // namespace webpushctl
