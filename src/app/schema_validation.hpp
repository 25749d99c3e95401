#pragma once
// JSON Schema validation of a located document (yaml_to_json.hpp), shared by
// the daemon's config and the scenario files: every violation with the
// position in the file it comes from and a message a person can act on.

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "yaml_to_json.hpp"

namespace valijson {
class Schema;
}

namespace webpushd::app {

/// @brief A JSON Schema, compiled once (valijson) and kept as a document too
/// (the messages quote its descriptions and enums).
class compiled_schema {
 public:
  /// @brief `text` must be a valid draft-7 schema (the embedded ones are;
  /// a broken one is a build error caught by the tests).
  /// `file_name` names it in messages ("schemas/scenarios.schema.json").
  compiled_schema(std::string_view text, std::string file_name);

  const valijson::Schema& schema() const { return *schema_; }
  const nlohmann::json& document() const { return document_; }
  const std::string& file_name() const { return file_name_; }

 private:
  nlohmann::json document_;
  std::shared_ptr<const valijson::Schema> schema_;
  std::string file_name_;
};

/// @brief One thing the document does wrong.
struct schema_violation {
  std::string pointer;        ///< JSON Pointer of the offending value or key
  source_position position;   ///< where in the file (0:0 if unknown)
  std::string message;        ///< what is wrong, without the location
};

/// @brief Every violation of `schema` in `doc`, deepest first per branch
/// (valijson also reports each enclosing object; those are dropped), in
/// file order. Empty: the document is valid.
std::vector<schema_violation> schema_violations(const located_json& doc, const compiled_schema& schema);

/// @brief Where `pointer` is in the file: the value's position, or its
/// nearest parent's when it has none (a missing key). 0:0 if none at all.
source_position position_of(const std::string& pointer, const std::map<std::string, source_position>& positions);

/// @brief "FILE:LINE:COL" (or "FILE" when the position is unknown).
std::string location_text(const std::string& source, source_position position);

/// @brief "/delivery/retry" → "delivery.retry"; "" → "(top level)".
std::string pointer_to_dotted(const std::string& pointer);

}  // namespace webpushd::app
