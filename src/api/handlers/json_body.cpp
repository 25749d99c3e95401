#include "json_body.hpp"

namespace webpushd::api::handlers {
namespace {

std::string lower_media_type(std::string_view content_type) {
  std::string out;
  for (const char c : content_type.substr(0, content_type.find(';'))) {
    if (c != ' ' && c != '\t') out += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  return out;
}

error missing(const std::string& field) { return error{"missing_field", field + " is required", field}; }
error wrong_type(const std::string& field, const char* type) {
  return error{"invalid_type", field + " must be " + type, field};
}

}  // namespace

result<nlohmann::json> json_object_body(const request& req) {
  if (lower_media_type(req.header("Content-Type")) != "application/json") {
    return fail("unsupported_media_type", "send the body as Content-Type: application/json", "");
  }
  auto doc = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return fail("invalid_json", "the body is not valid JSON", "");
  if (!doc.is_object()) return fail("invalid_json", "the body must be a JSON object", "");
  return doc;
}

result<std::string> required_string(const nlohmann::json& obj, std::string_view name, const std::string& field) {
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return tl::unexpected(missing(field));
  if (!it->is_string()) return tl::unexpected(wrong_type(field, "a string"));
  return it->get<std::string>();
}

result<std::string> optional_string(const nlohmann::json& obj, std::string_view name, const std::string& field) {
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return std::string{};
  if (!it->is_string()) return tl::unexpected(wrong_type(field, "a string"));
  return it->get<std::string>();
}

result<const nlohmann::json*> required_object(const nlohmann::json& obj, std::string_view name,
                                              const std::string& field) {
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return tl::unexpected(missing(field));
  if (!it->is_object()) return tl::unexpected(wrong_type(field, "an object"));
  return &*it;
}

result<std::vector<std::string>> required_string_array(const nlohmann::json& obj, std::string_view name,
                                                       const std::string& field) {
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return tl::unexpected(missing(field));
  if (!it->is_array()) return tl::unexpected(wrong_type(field, "an array of strings"));
  std::vector<std::string> out;
  for (std::size_t i = 0; i < it->size(); ++i) {
    const auto& v = (*it)[i];
    if (!v.is_string()) return tl::unexpected(wrong_type(field + "[" + std::to_string(i) + "]", "a string"));
    out.push_back(v.get<std::string>());
  }
  return out;
}

std::optional<std::string> query_value(const request& req, const char* name) {
  const auto it = req.query.find(name);
  if (it == req.query.end()) return std::nullopt;
  return it->second;
}

}  // namespace webpushd::api::handlers
