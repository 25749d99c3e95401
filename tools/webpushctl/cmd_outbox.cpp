// Placeholder: replaced by the module owner with the real 'outbox' command(s).
#include "commands.hpp"

namespace webpushctl {
void add_outbox_commands(CLI::App&) {}
}  // namespace webpushctl
