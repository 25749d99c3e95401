// Placeholder: replaced by the module owner with the real 'vapid' command(s).
#include "commands.hpp"

namespace webpushctl {
void add_vapid_commands(CLI::App&) {}
}  // namespace webpushctl
