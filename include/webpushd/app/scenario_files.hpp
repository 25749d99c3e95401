#pragma once
/// @file
/// @brief Scenario files on disk → a checked scenario_set, with every finding
/// located as FILE:LINE:COL (docs/SCENARIOS.md).
///
/// Pass 1 (YAML syntax, schemas/scenarios.schema.json) happens here, where the
/// positions machinery lives; passes 2 and 3 are automation's
/// parse_scenario_document. Then names are checked across files. load_config
/// runs this for `automation.scenario_files`; `webpushctl scenarios check`
/// runs it for the files it is given.

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "webpushd/app/config.hpp"
#include "webpushd/automation/scenario.hpp"
#include "webpushd/automation/scenario_file.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::app {

/// @brief A finding of any pass, with where it is.
struct located_finding {
  automation::scenario_finding::level severity = automation::scenario_finding::level::error;
  std::string file;
  int line = 0;       ///< 1-based; 0 when the finding is about the whole file
  int column = 0;
  std::string path;   ///< dotted ("scenarios.0.steps.1.after"); empty for syntax errors and unreadable files
  std::string message;

  /// @brief `FILE:LINE:COL: path: message` (the form config errors use).
  std::string to_string() const;
  bool is_error() const { return severity == automation::scenario_finding::level::error; }
};

/// @brief The outcome of loading scenario files.
struct scenario_files_result {
  std::vector<automation::scenario_def> scenarios;  ///< complete only when ok()
  std::vector<located_finding> findings;            ///< in file order, then line order
  bool unreadable = false;                          ///< some file could not be read at all
  bool ok() const;
};

/// @brief What scenarios may refer to, from a loaded config: its consent
/// categories, the built-in event types (schemas/events/), its custom types,
/// and `subscribed`.
automation::scenario_environment scenario_environment_for(const config& cfg);

/// @brief The same without a config: built-in event types and `subscribed`,
/// no categories (so categories are not checked).
automation::scenario_environment builtin_scenario_environment();

/// @brief The properties schema of the `subscribed` event the daemon raises
/// when a browser subscribes: `subscription_id` (always), `categories`.
const nlohmann::json& subscribed_event_schema();

/// @brief Reads and checks each file; scenario names must be unique across all of them.
scenario_files_result load_scenario_files(const std::vector<std::filesystem::path>& files,
                                          const automation::scenario_environment& env);

/// @brief The same for one file's text already in memory (`source_name` in messages).
scenario_files_result check_scenario_text(std::string_view text, const std::string& source_name,
                                          const automation::scenario_environment& env);

/// @brief Everything load_config does except reading the scenario files:
/// for tools that check scenario files against a config whose own
/// scenario list may be what is being fixed.
result<config> load_config_without_scenarios(const std::filesystem::path& file);

/// @brief The JSON Schema scenario files are validated against (schemas/scenarios.schema.json).
std::string_view scenarios_schema_text();

}  // namespace webpushd::app
