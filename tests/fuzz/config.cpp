// Configuration and scenario files as an operator writes them, checked as
// `webpushctl config check` and the daemon's start-up do: YAML parsing, the
// JSON Schema, the conversion into the config structs, the scenario files
// it names (relative to examples/, so the example scenarios load), and a
// scenario file's own checks. In memory: no file is written.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "fuzz_check.hpp"
#include "webpushd/app/config.hpp"
#include "webpushd/app/scenario_files.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte picks the kind of file, so one corpus holds both.
  const bool scenario_file = (data[0] & 1) != 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (!scenario_file) {
    static const std::filesystem::path base = std::filesystem::path(WEBPUSHD_SOURCE_DIR) / "examples";
    const auto cfg = webpushd::app::parse_config(text, "fuzz.yaml", base);
    if (!cfg) {
      FUZZ_CHECK(cfg.error().code == "config_invalid", cfg.error().code);
      FUZZ_CHECK(!cfg.error().message.empty(), text);
    } else {
      FUZZ_CHECK(cfg->automation.scenarios != nullptr, text);
    }
    return 0;
  }
  static const auto env = webpushd::app::builtin_scenario_environment();
  const auto result = webpushd::app::check_scenario_text(text, "fuzz.yaml", env);
  for (const auto& f : result.findings) {
    FUZZ_CHECK(!f.message.empty(), f.to_string());
    FUZZ_CHECK(f.file == "fuzz.yaml", f.to_string());
  }
  return 0;
}
