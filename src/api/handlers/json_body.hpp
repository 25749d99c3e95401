#pragma once
// Reading request bodies as JSON for the handlers: one place that decides
// what a readable body is (400 otherwise) and names the field at fault.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "webpushd/api/http.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::api::handlers {

/// @brief The body as a JSON object. `unsupported_media_type` (415) unless
/// Content-Type is application/json; `invalid_json` (400) if it does not
/// parse, is not an object, or repeats a name within one object.
result<nlohmann::json> json_object_body(const request& req);

/// @brief A required string member `name` of `obj`, at path `field`.
/// `missing_field` / `invalid_type` (422).
result<std::string> required_string(const nlohmann::json& obj, std::string_view name, const std::string& field);
/// @brief An optional string member (empty when absent or null).
result<std::string> optional_string(const nlohmann::json& obj, std::string_view name, const std::string& field);
/// @brief A required object member.
result<const nlohmann::json*> required_object(const nlohmann::json& obj, std::string_view name,
                                              const std::string& field);
/// @brief A required array of strings.
result<std::vector<std::string>> required_string_array(const nlohmann::json& obj, std::string_view name,
                                                       const std::string& field);

/// @brief A query parameter as sent; nullopt when absent.
std::optional<std::string> query_value(const request& req, const char* name);

}  // namespace webpushd::api::handlers
