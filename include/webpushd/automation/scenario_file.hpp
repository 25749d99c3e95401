#pragma once
/// @file
/// @brief Scenario files → scenario_set, with errors a marketer can act on.
///
/// A file is checked in three passes; each reports every problem it finds,
/// one per line, as `FILE:LINE:COL: PATH: what is wrong`:
/// 1. syntax (YAML) and shape, against schemas/scenarios.schema.json;
/// 2. meaning: conditions parse, templates parse, names unique, steps in
///    increasing `after` order, categories exist in the consent config,
///    trigger/exit event types exist (built-in, custom, or `subscribed`);
/// 3. lint: template variables and condition paths the trigger's event can
///    never provide (message.hpp context_fields) are errors; fields the event
///    may lack, used outside a section, are warnings (they suppress the step
///    when missing).
///
/// The YAML parsing and schema validation live in the app module (it owns
/// the positions machinery shared with the daemon's config); this header is
/// what it hands the checked document to.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "webpushd/automation/scenario.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::automation {

/// @brief What the checker needs to know about the rest of the config.
struct scenario_environment {
  std::vector<std::string> categories;  ///< consent categories that exist
  /// @brief Event types that exist and their properties JSON Schema (built-in
  /// ones from schemas/events/, custom ones from config, and "subscribed").
  std::map<std::string, nlohmann::json> event_types;
};

/// @brief A finding of the checker.
struct scenario_finding {
  enum class level { error, warning };
  level severity = level::error;
  std::string pointer;  ///< JSON Pointer into the file ("/scenarios/0/steps/1/message/title")
  std::string message;  ///< what is wrong, in a marketer's words
};

/// @brief The outcome of reading one schema-valid document.
struct scenario_parse {
  std::vector<scenario_def> scenarios;  ///< complete only when there is no error finding
  std::vector<scenario_finding> findings;
  bool ok() const;
};

/// @brief Passes 2 and 3 over a document that already matched the schema.
/// `source_file` goes into each scenario_def.
scenario_parse parse_scenario_document(const nlohmann::json& document, const scenario_environment& env,
                                       const std::string& source_file);

}  // namespace webpushd::automation
