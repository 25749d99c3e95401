// Placeholder: replaced by the module owner with the real 'bench' command(s).
#include "commands.hpp"

namespace webpushctl {
void add_bench_commands(CLI::App&) {}
}  // namespace webpushctl
