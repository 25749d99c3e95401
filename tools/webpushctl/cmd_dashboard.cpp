// webpushctl dashboard hash-password: the password_hash for a user of the
// dashboard (config `dashboard.users`). The password is read from standard
// input when it is not a terminal (`printf '%s' "$PW" | webpushctl …`), else
// asked twice at a prompt that does not echo; it is never an argument (argv
// is visible to every user of the machine).
#include <termios.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "webpushd/crypto/password.hpp"

namespace webpushctl {
namespace {

constexpr std::size_t min_length = 8;
constexpr std::size_t max_length = 1024;

[[noreturn]] void stop(const std::string& message) {
  std::cerr << "error: " << message << '\n';
  throw CLI::RuntimeError(exit_usage);
}

// One line from the terminal with echo off; echo is restored whatever happens.
std::string prompt(const char* question) {
  std::cerr << question << std::flush;
  termios saved{};
  const bool tty = ::tcgetattr(STDIN_FILENO, &saved) == 0;
  if (tty) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  const bool ok = static_cast<bool>(std::getline(std::cin, line));
  if (tty) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
  std::cerr << '\n';
  if (!ok) stop("no password given");
  return line;
}

std::string read_password() {
  if (::isatty(STDIN_FILENO) == 0) {
    // Piped: the whole of standard input up to the first line break.
    std::string line;
    if (!std::getline(std::cin, line)) stop("no password on standard input");
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }
  auto first = prompt("Password: ");
  if (prompt("Again: ") != first) stop("the two passwords differ");
  return first;
}

}  // namespace

void add_dashboard_commands(CLI::App& app) {
  auto* dashboard = app.add_subcommand("dashboard", "the dashboard's users");
  dashboard->require_subcommand(1);
  auto* hash = dashboard->add_subcommand(
      "hash-password",
      "Print the password_hash of a dashboard user (config dashboard.users) for a password read from standard "
      "input, or asked twice without echo on a terminal (scrypt, N=2^15, r=8, p=1; a fresh salt each time)");
  hash->footer(
      "Example:\n"
      "  webpushctl dashboard hash-password            # asks for the password\n"
      "  printf '%s' \"$PASSWORD\" | webpushctl dashboard hash-password\n"
      "then in the config:\n"
      "  dashboard:\n"
      "    users:\n"
      "      - name: marketing\n"
      "        password_hash: '$scrypt$ln=15,r=8,p=1$…'\n"
      "Exit codes: 0 printed, 1 no password, too short (under 8 characters) or the two differ.");
  hash->callback([] {
    const auto password = read_password();
    if (password.size() < min_length) stop("the password is shorter than 8 characters");
    if (password.size() > max_length) stop("the password is longer than 1024 characters");
    std::cout << webpushd::crypto::hash_password(password) << '\n';
  });
}

}  // namespace webpushctl
