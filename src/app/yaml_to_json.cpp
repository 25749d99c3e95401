#include "yaml_to_json.hpp"

#include <cerrno>
#include <cstdlib>
#include <regex>

#include <yaml-cpp/yaml.h>

#include "webpushd/core/text.hpp"

namespace webpushd::app {
namespace {

std::string where(const std::string& source, const YAML::Mark& mark) {
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

// YAML 1.2 core schema resolution for plain (unquoted) scalars.
nlohmann::json resolve_plain_scalar(const std::string& s) {
  static const std::regex null_re("^(~|null|Null|NULL|)$");
  static const std::regex true_re("^(true|True|TRUE)$");
  static const std::regex false_re("^(false|False|FALSE)$");
  static const std::regex int_re("^[-+]?[0-9]+$");
  static const std::regex float_re(R"(^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$)");
  if (std::regex_match(s, null_re)) return nullptr;
  if (std::regex_match(s, true_re)) return true;
  if (std::regex_match(s, false_re)) return false;
  if (std::regex_match(s, int_re)) {
    errno = 0;
    const long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno != ERANGE) return v;
  }
  if (std::regex_match(s, float_re)) return std::strtod(s.c_str(), nullptr);
  return s;
}

class converter {
 public:
  explicit converter(const std::string& source) : source_(source) {}

  result<nlohmann::json> convert(const YAML::Node& node, const std::string& pointer) {
    positions_[pointer] = {node.Mark().line + 1, node.Mark().column + 1};
    switch (node.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        return nlohmann::json(nullptr);
      case YAML::NodeType::Scalar:
        // yaml-cpp tags quoted scalars "!" and plain ones "?".
        if (node.Tag() == "!") return nlohmann::json(node.Scalar());
        return resolve_plain_scalar(node.Scalar());
      case YAML::NodeType::Sequence: {
        auto array = nlohmann::json::array();
        std::size_t i = 0;
        for (const auto& item : node) {
          auto v = convert(item, pointer + "/" + std::to_string(i++));
          if (!v) return v;
          array.push_back(std::move(*v));
        }
        return array;
      }
      case YAML::NodeType::Map: {
        auto object = nlohmann::json::object();
        for (const auto& kv : node) {
          if (!kv.first.IsScalar()) {
            return fail("config_syntax", where(source_, kv.first.Mark()) + ": keys must be plain names");
          }
          const std::string key = kv.first.Scalar();
          if (object.contains(key)) {
            return fail("config_syntax", where(source_, kv.first.Mark()) + ": duplicate key '" + key + "'");
          }
          const std::string member = pointer + "/" + json_pointer_token(key);
          key_positions_[member] = {kv.first.Mark().line + 1, kv.first.Mark().column + 1};
          auto v = convert(kv.second, member);
          if (!v) return v;
          object[key] = std::move(*v);
        }
        return object;
      }
    }
    return nlohmann::json(nullptr);
  }

  std::map<std::string, source_position> take_positions() { return std::move(positions_); }
  std::map<std::string, source_position> take_key_positions() { return std::move(key_positions_); }

 private:
  const std::string& source_;
  std::map<std::string, source_position> positions_;
  std::map<std::string, source_position> key_positions_;
};

// The length of the well-formed UTF-8 sequence at the start of `s`
// (Unicode's table 3-7: no overlong forms, no surrogates, nothing past
// U+10FFFF); 0 if there is none.
std::size_t utf8_sequence_length(std::string_view s) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char b0 = byte(0);
  if (b0 < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < n || byte(1) < lo || byte(1) > hi) return 0;
  for (std::size_t i = 2; i < n; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return n;
}

// YAML files are UTF-8 here. yaml-cpp passes other bytes through into
// strings, and valijson's string-length checks (minLength, maxLength) read
// past their own table on them (found by the config fuzzer), so text that is
// not UTF-8 stops at the first bad byte, with its line and column.
result<void> check_utf8(std::string_view text, const std::string& source_name) {
  int line = 1, column = 1;
  for (std::size_t i = 0; i < text.size();) {
    const auto n = utf8_sequence_length(text.substr(i));
    if (n == 0) {
      return fail("config_syntax", source_name + ":" + std::to_string(line) + ":" + std::to_string(column) +
                                       ": not valid UTF-8 (the file must be UTF-8 text)");
    }
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
    i += n;
  }
  return {};
}

}  // namespace

result<located_json> parse_yaml_located(std::string_view text, const std::string& source_name) {
  if (auto ok = check_utf8(text, source_name); !ok) return tl::unexpected(ok.error());
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    return fail("config_syntax", where(source_name, e.mark) + ": " + e.msg);
  }
  converter conv(source_name);
  auto value = conv.convert(root, "");
  if (!value) return tl::unexpected(value.error());
  return located_json{std::move(*value), conv.take_positions(), conv.take_key_positions()};
}

}  // namespace webpushd::app
