#pragma once
// YAML → JSON with the source position of every value, so that a schema
// error found in the JSON can point at the line of the YAML file.

#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "webpushd/core/error.hpp"

namespace webpushd::app {

/// @brief 1-based line and column of a value in its file.
struct source_position {
  int line = 0;
  int column = 0;
};

/// @brief A document and the position of every value, keyed by JSON Pointer
/// ("" for the root, "/delivery/retry/max_attempts", "/a/0").
struct located_json {
  nlohmann::json value;
  std::map<std::string, source_position> positions;
  /// @brief Where the key of each object member stands (for "unknown key").
  std::map<std::string, source_position> key_positions;
};

/// @brief Parses YAML (JSON is valid YAML). Plain scalars become null, bool,
/// integer, float or string as YAML 1.2's core schema says; quoted scalars
/// stay strings. Duplicate keys are errors, and so is text that is not
/// UTF-8 (at its first bad byte). Error code `config_syntax`.
result<located_json> parse_yaml_located(std::string_view text, const std::string& source_name);

}  // namespace webpushd::app
