#include "json_body.hpp"

#include <set>
#include <string>
#include <vector>

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

// Finds a name repeated within one object. nlohmann keeps the last of
// them, while a proxy, a WAF or the shop's own code in front of the daemon
// may have checked the first: a body that means different things to
// different readers is refused instead (RFC 8259 §4: names SHOULD be unique).
class duplicate_key_finder final : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool found = false;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    names_.emplace_back();
    return true;
  }
  bool key(string_t& name) override {
    found = !names_.back().insert(name).second;
    return !found;  // stops the scan at the first repeat
  }
  bool end_object() override {
    names_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  std::vector<std::set<std::string>> names_;
};

}  // namespace

result<nlohmann::json> json_object_body(const request& req) {
  if (lower_media_type(req.header("Content-Type")) != "application/json") {
    return fail("unsupported_media_type", "send the body as Content-Type: application/json", "");
  }
  auto doc = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return fail("invalid_json", "the body is not valid JSON", "");
  if (!doc.is_object()) return fail("invalid_json", "the body must be a JSON object", "");
  duplicate_key_finder duplicates;
  nlohmann::json::sax_parse(req.body, &duplicates);
  if (duplicates.found) return fail("invalid_json", "the body repeats a name within one object", "");
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
