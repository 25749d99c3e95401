#include "webpushd/automation/condition.hpp"

#include <cstdint>
#include <optional>

namespace webpushd::automation {
namespace {

using nlohmann::json;

constexpr std::string_view operator_list = "==, !=, >, >=, <, <=, in, contains, exists, missing";

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word_char(char c) {
  return is_name_char(c) || (c >= 'A' && c <= 'Z') || c == '-' || c == '.';
}

// A hand-written scanner: the grammar is tiny, and the messages must say
// which column is wrong and what was expected there, which a regex cannot.
class parser {
 public:
  explicit parser(std::string_view text) : text_(text) {}

  result<condition> parse() {
    condition c;
    skip_space();
    if (at_end()) return error("expected a condition such as cart.total >= 100");
    auto path = parse_path();
    if (!path) return tl::unexpected(path.error());
    c.path = std::move(*path);

    skip_space();
    if (at_end()) return error("expected an operator (" + std::string(operator_list) + ")");
    const auto op_column = pos_;
    auto op = parse_operator();
    if (!op) return tl::unexpected(op.error());
    c.oper = *op;

    skip_space();
    if (c.oper == condition::op::exists || c.oper == condition::op::missing) {
      if (!at_end()) return error("unexpected text after '" + std::string(text_.substr(op_column, op_end_ - op_column)) +
                                  "' (it takes no value)");
      c.text = trimmed();
      return c;
    }
    if (at_end()) return error("expected a value after the operator: a number, a \"string\", true, false, null or a [list]");
    const auto value_column = pos_;
    auto value = parse_literal();
    if (!value) return tl::unexpected(value.error());
    c.value = std::move(*value);

    switch (c.oper) {
      case condition::op::gt:
      case condition::op::ge:
      case condition::op::lt:
      case condition::op::le:
        if (!c.value.is_number()) {
          return error_at(value_column, "'" + std::string(text_.substr(op_column, op_end_ - op_column)) +
                                            "' compares numbers: expected a number");
        }
        break;
      case condition::op::in:
        if (!c.value.is_array()) return error_at(value_column, "'in' needs a list, e.g. [\"pl\", \"cs\"]");
        break;
      case condition::op::contains:
        if (c.value.is_array()) return error_at(value_column, "'contains' needs a single value, not a list");
        break;
      default:
        break;
    }

    skip_space();
    if (!at_end()) {
      return error("unexpected text after the value (write each condition as its own list item: all of them must hold)");
    }
    c.text = trimmed();
    return c;
  }

 private:
  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }
  void skip_space() {
    while (!at_end() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  std::string trimmed() const {
    std::size_t b = 0;
    std::size_t e = text_.size();
    while (b < e && (text_[b] == ' ' || text_[b] == '\t')) ++b;
    while (e > b && (text_[e - 1] == ' ' || text_[e - 1] == '\t' || text_[e - 1] == '\n' || text_[e - 1] == '\r')) --e;
    return std::string(text_.substr(b, e - b));
  }

  tl::unexpected<webpushd::error> error_at(std::size_t column0, const std::string& what) const {
    return fail("invalid_condition", "column " + std::to_string(column0 + 1) + ": " + what);
  }
  tl::unexpected<webpushd::error> error(const std::string& what) const { return error_at(pos_, what); }

  result<std::string> parse_path() {
    std::string path;
    while (true) {
      if (is_name_start(peek())) {
        while (is_name_char(peek())) path += text_[pos_++];
      } else if (is_digit(peek()) && !path.empty()) {
        while (is_digit(peek())) path += text_[pos_++];
        if (is_name_char(peek())) return error("a list index is digits only (cart.items.0.name)");
      } else if (path.empty()) {
        if (peek() >= 'A' && peek() <= 'Z') return error("field names are lower case (cart.total)");
        return error("expected a field path such as cart.total");
      } else {
        if (peek() >= 'A' && peek() <= 'Z') return error("field names are lower case (cart.total)");
        return error("expected a field name after '.'");
      }
      if (peek() != '.') break;
      path += text_[pos_++];
    }
    if (peek() >= 'A' && peek() <= 'Z') return error("field names are lower case (cart.total)");
    return path;
  }

  result<condition::op> parse_operator() {
    const auto start = pos_;
    const auto rest = text_.substr(pos_);
    const auto take = [&](std::size_t n, condition::op op) -> result<condition::op> {
      pos_ += n;
      op_end_ = pos_;
      return op;
    };
    if (rest.starts_with("==")) return take(2, condition::op::eq);
    if (rest.starts_with("!=")) return take(2, condition::op::ne);
    if (rest.starts_with(">=")) return take(2, condition::op::ge);
    if (rest.starts_with("<=")) return take(2, condition::op::le);
    if (rest.starts_with(">")) return take(1, condition::op::gt);
    if (rest.starts_with("<")) return take(1, condition::op::lt);
    if (rest.starts_with("=")) return error("expected an operator (" + std::string(operator_list) + "); did you mean ==?");
    std::size_t end = pos_;
    while (end < text_.size() && is_word_char(text_[end])) ++end;
    const auto word = text_.substr(start, end - start);
    if (word == "in") return take(2, condition::op::in);
    if (word == "contains") return take(8, condition::op::contains);
    if (word == "exists") return take(6, condition::op::exists);
    if (word == "missing") return take(7, condition::op::missing);
    return error("expected an operator (" + std::string(operator_list) + ")");
  }

  result<json> parse_literal() {
    const char c = peek();
    if (c == '"') return parse_string();
    if (c == '[') return parse_list();
    if (c == '-' || is_digit(c)) return parse_number();
    if (c == '\'') return error("strings are written in double quotes (\"shoes\")");
    std::size_t end = pos_;
    while (end < text_.size() && is_word_char(text_[end])) ++end;
    const auto word = text_.substr(pos_, end - pos_);
    if (word == "true" || word == "false" || word == "null") {
      pos_ = end;
      if (word == "null") return json(nullptr);
      return json(word == "true");
    }
    if (!word.empty()) {
      return error("expected a value; text is written in double quotes (\"" + std::string(word) + "\")");
    }
    return error("expected a value: a number, a \"string\", true, false, null or a [list]");
  }

  result<json> parse_string() {
    const auto start = pos_;
    ++pos_;
    while (!at_end() && text_[pos_] != '"') {
      if (text_[pos_] == '\\') ++pos_;
      ++pos_;
    }
    if (at_end()) return error_at(start, "unterminated string (a closing \" is missing)");
    ++pos_;
    // JSON's own parser does the escapes (\n, \", \u00e9): the grammar says
    // strings are JSON strings, so they mean exactly what JSON says.
    const auto parsed = json::parse(text_.substr(start, pos_ - start), nullptr, false);
    if (parsed.is_discarded() || !parsed.is_string()) return error_at(start, "invalid escape in string");
    return parsed;
  }

  result<json> parse_number() {
    const auto start = pos_;
    if (peek() == '-') ++pos_;
    if (!is_digit(peek())) return error_at(start, "expected a number");
    while (is_digit(peek())) ++pos_;
    if (peek() == '.') {
      ++pos_;
      if (!is_digit(peek())) return error("expected digits after the decimal point");
      while (is_digit(peek())) ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!is_digit(peek())) return error("expected digits of the exponent");
      while (is_digit(peek())) ++pos_;
    }
    if (peek() == ',' && pos_ + 1 < text_.size() && is_digit(text_[pos_ + 1])) {
      return error("numbers use a decimal point (99.5), without thousands separators");
    }
    if (is_word_char(peek())) return error("unexpected text in a number (write amounts without a currency)");
    const auto parsed = json::parse(text_.substr(start, pos_ - start), nullptr, false);
    if (parsed.is_discarded()) return error_at(start, "number out of range");
    return parsed;
  }

  result<json> parse_list() {
    ++pos_;  // '['
    auto list = json::array();
    skip_space();
    if (peek() == ']') {
      ++pos_;
      return list;
    }
    while (true) {
      skip_space();
      if (at_end()) return error("unterminated list (a closing ] is missing)");
      auto item = parse_literal();
      if (!item) return item;
      list.push_back(std::move(*item));
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        return list;
      }
      if (at_end()) return error("unterminated list (a closing ] is missing)");
      return error("expected , or ] in the list");
    }
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  std::size_t op_end_ = 0;
};

// Numbers compare by value whatever their JSON kind (7 == 7.0); integers
// are compared exactly so large ids do not lose precision through double.
std::optional<int> compare_numbers(const json& a, const json& b) {
  const auto order = [](auto x, auto y) { return x < y ? -1 : (x > y ? 1 : 0); };
  if (a.is_number_integer() && b.is_number_integer()) {
    const bool a_unsigned = a.is_number_unsigned();
    const bool b_unsigned = b.is_number_unsigned();
    if (!a_unsigned && !b_unsigned) return order(a.get<std::int64_t>(), b.get<std::int64_t>());
    if (!a_unsigned && a.get<std::int64_t>() < 0) return -1;
    if (!b_unsigned && b.get<std::int64_t>() < 0) return 1;
    return order(a.get<std::uint64_t>(), b.get<std::uint64_t>());
  }
  const double x = a.get<double>();
  const double y = b.get<double>();
  if (x < y) return -1;
  if (x > y) return 1;
  if (x == y) return 0;
  return std::nullopt;  // NaN never compares
}

bool values_equal(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) {
    const auto c = compare_numbers(a, b);
    return c && *c == 0;
  }
  if (a.type() != b.type()) return false;
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!values_equal(a[i], b[i])) return false;
    }
    return true;
  }
  return a == b;
}

// Whether == / != may compare the two at all: a number against a string is
// "not comparable", so neither == nor != holds.
bool comparable(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) return true;
  return a.type() == b.type();
}

}  // namespace

result<condition> parse_condition(std::string_view text) { return parser(text).parse(); }

const json* resolve_path(const json& context, std::string_view path) {
  const json* node = &context;
  while (true) {
    const auto dot = path.find('.');
    const auto part = path.substr(0, dot);
    if (part.empty()) return nullptr;
    if (node->is_object()) {
      const auto it = node->find(std::string(part));
      if (it == node->end()) return nullptr;
      node = &*it;
    } else if (node->is_array()) {
      std::size_t index = 0;
      for (const char c : part) {
        if (!is_digit(c)) return nullptr;
        index = index * 10 + static_cast<std::size_t>(c - '0');
        if (index > node->size()) return nullptr;
      }
      if (index >= node->size()) return nullptr;
      node = &(*node)[index];
    } else {
      return nullptr;
    }
    if (dot == std::string_view::npos) return node;
    path.remove_prefix(dot + 1);
  }
}

bool holds(const condition& c, const json& context) {
  const json* v = resolve_path(context, c.path);
  const bool present = v != nullptr && !v->is_null();
  switch (c.oper) {
    case condition::op::exists:
      return present;
    case condition::op::missing:
      return !present;
    default:
      break;
  }
  if (v == nullptr) return false;
  switch (c.oper) {
    case condition::op::eq:
      return comparable(*v, c.value) && values_equal(*v, c.value);
    case condition::op::ne:
      return comparable(*v, c.value) && !values_equal(*v, c.value);
    case condition::op::gt:
    case condition::op::ge:
    case condition::op::lt:
    case condition::op::le: {
      if (!v->is_number() || !c.value.is_number()) return false;
      const auto cmp = compare_numbers(*v, c.value);
      if (!cmp) return false;
      if (c.oper == condition::op::gt) return *cmp > 0;
      if (c.oper == condition::op::ge) return *cmp >= 0;
      if (c.oper == condition::op::lt) return *cmp < 0;
      return *cmp <= 0;
    }
    case condition::op::in:
      if (!c.value.is_array()) return false;
      for (const auto& item : c.value) {
        if (comparable(*v, item) && values_equal(*v, item)) return true;
      }
      return false;
    case condition::op::contains:
      if (v->is_string() && c.value.is_string()) {
        return v->get_ref<const std::string&>().find(c.value.get_ref<const std::string&>()) != std::string::npos;
      }
      if (v->is_array()) {
        for (const auto& item : *v) {
          if (comparable(item, c.value) && values_equal(item, c.value)) return true;
        }
      }
      return false;
    default:
      return false;
  }
}

}  // namespace webpushd::automation
