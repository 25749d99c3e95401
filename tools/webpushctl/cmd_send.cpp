// Placeholder: replaced by the module owner with the real 'send' command(s).
#include "commands.hpp"

namespace webpushctl {
void add_send_command(CLI::App&) {}
}  // namespace webpushctl
