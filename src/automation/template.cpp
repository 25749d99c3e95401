// Mustache templates for messages: the syntax check, the variable scanner the
// linter uses, and rendering through kainjow/mustache with webpushd's rules
// (no HTML escaping, missing_field for unguarded variables, list indexes in
// dotted names, empty strings falsy in sections).
//
// kainjow renders a variable only when it is a string, and looks names up
// through the same basic_context::get() for variables and sections. So the
// template is rewritten before kainjow parses it: every variable tag becomes
// `{{&<US>name}}` (US = U+001F, refused in names), and our context sees from
// the marker whether a name is printed (booleans print "true"/"false") or
// tested as a section (an empty string is falsy).
#include <cctype>
#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <mustache.hpp>
#include <nlohmann/json.hpp>

#include "webpushd/automation/message.hpp"

namespace webpushd::automation {
namespace {

namespace mst = kainjow::mustache;
using nlohmann::json;

constexpr char print_marker = '\x1f';

enum class tag_kind { variable, section, inverted, close, comment };

struct tag {
  tag_kind kind;
  std::string name;
  std::size_t begin;  // offset of "{{"
  std::size_t end;    // offset just past "}}" or "}}}"
};

struct scan_result {
  std::vector<tag> tags;  // every tag before the first fault
  std::string error;      // empty: the template is valid
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// "line 2, column 7" (1-based; columns count characters, not UTF-8 bytes),
// because marketers edit YAML files in editors that show lines and columns.
std::string where(std::string_view text, std::size_t offset) {
  std::size_t line = 1;
  std::size_t column = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      column = 1;
    } else if ((c & 0xC0) != 0x80) {
      ++column;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// A name is "." or dot-separated non-empty parts of letters, digits, '_',
// '-' and non-ASCII bytes. Spaces are refused on purpose: `{{product name}}`
// is a typo, not a name.
bool valid_name(std::string_view name) {
  if (name == ".") return true;
  if (name.empty() || name.front() == '.' || name.back() == '.') return false;
  char previous = 0;
  for (const char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == '.') {
      if (previous == '.') return false;
    } else if (!(std::isalnum(c) || ch == '_' || ch == '-' || c >= 0x80)) {
      return false;
    }
    previous = ch;
  }
  return true;
}

std::string shown(std::string_view text, const tag& t) { return std::string{text.substr(t.begin, t.end - t.begin)}; }

// Tokenises like kainjow's parser (a tag starts at "{{", "{{{" ends at "}}}",
// contents are trimmed, the first character picks the kind) and checks the
// nesting, so the messages can name the tag and its place.
scan_result scan(std::string_view text) {
  scan_result out;
  std::vector<std::size_t> open_index;  // indexes into out.tags of the open sections
  std::size_t pos = 0;
  for (;;) {
    const std::size_t begin = text.find("{{", pos);
    if (begin == std::string_view::npos) break;
    const bool triple = begin + 2 < text.size() && text[begin + 2] == '{';
    const std::size_t contents = begin + (triple ? 3 : 2);
    const std::string_view closing = triple ? "}}}" : "}}";
    const std::size_t stop = text.find(closing, contents);
    if (stop == std::string_view::npos) {
      out.error = "unclosed tag at " + where(text, begin) + ": no " + std::string{closing} + " follows";
      return out;
    }
    tag t{tag_kind::variable, {}, begin, stop + closing.size()};
    const std::string_view raw = trim(text.substr(contents, stop - contents));
    if (triple) {
      t.name = std::string{raw};
    } else if (raw.empty()) {
      out.error = "empty tag {{}} at " + where(text, begin);
      return out;
    } else {
      switch (raw.front()) {
        case '#': t.kind = tag_kind::section; break;
        case '^': t.kind = tag_kind::inverted; break;
        case '/': t.kind = tag_kind::close; break;
        case '!': t.kind = tag_kind::comment; break;
        case '&': t.kind = tag_kind::variable; break;
        case '>':
          out.error = "partials are not supported: " + shown(text, t) + " at " + where(text, begin);
          return out;
        case '=':
          out.error = "changing delimiters is not supported: " + shown(text, t) + " at " + where(text, begin);
          return out;
        default: break;
      }
      const bool sigil = std::string_view{"#^/!&"}.find(raw.front()) != std::string_view::npos;
      t.name = std::string{sigil ? trim(raw.substr(1)) : raw};
    }
    if (t.kind != tag_kind::comment && !valid_name(t.name)) {
      out.error = "invalid name \"" + t.name + "\" in " + shown(text, t) + " at " + where(text, begin) +
                  " (names are letters, digits, _ and -, joined by dots)";
      return out;
    }
    pos = t.end;

    if (t.kind == tag_kind::close) {
      if (open_index.empty()) {
        out.error = "unmatched {{/" + t.name + "}} at " + where(text, begin) + ": no section is open";
        return out;
      }
      const tag& top = out.tags[open_index.back()];
      if (top.name != t.name) {
        out.error = "unclosed section " + top.name + " (opened at " + where(text, top.begin) + "): {{/" + t.name +
                    "}} at " + where(text, begin) + " closes another";
        return out;
      }
      open_index.pop_back();
    }
    out.tags.push_back(std::move(t));
    if (out.tags.back().kind == tag_kind::section || out.tags.back().kind == tag_kind::inverted) {
      open_index.push_back(out.tags.size() - 1);
    }
  }
  if (!open_index.empty()) {
    const tag& top = out.tags[open_index.back()];
    out.error = "unclosed section " + top.name + " (opened at " + where(text, top.begin) + "): add {{/" + top.name +
                "}}";
  }
  return out;
}

// kainjow's own verdict, to quote beside ours ("" when it has none).
std::string kainjow_error(std::string_view text) {
  const mst::mustache parsed{std::string{text}};
  return parsed.is_valid() ? std::string{} : parsed.error_message();
}

tl::unexpected<error> invalid(std::string_view text, const std::string& why) {
  const std::string theirs = kainjow_error(text);
  return fail("invalid_template", theirs.empty() ? why : why + " (mustache: " + theirs + ")");
}

// ---- values

// Integers as integers; other numbers with at most two decimals and no
// trailing zeros, because "129.000000" is no text for a notification.
std::string number_text(const json& value) {
  if (value.is_number_integer()) return value.dump();
  const double d = value.get<double>();
  if (!std::isfinite(d)) return {};
  char buffer[400];  // %.2f of the largest double is 313 characters
  std::snprintf(buffer, sizeof buffer, "%.2f", d);
  std::string text{buffer};
  while (text.back() == '0') text.pop_back();
  if (text.back() == '.') text.pop_back();
  if (text == "-0") text = "0";
  return text;
}

// JSON → kainjow data. A null in an object is left out, so it reads as
// missing; in a list (where it cannot be left out) it is false.
mst::data to_data(const json& value) {
  switch (value.type()) {
    case json::value_t::object: {
      mst::data out{mst::data::type::object};
      for (const auto& [key, child] : value.items()) {
        if (!child.is_null()) out[key] = to_data(child);
      }
      return out;
    }
    case json::value_t::array: {
      mst::list items;
      items.reserve(value.size());  // no reallocation: kainjow's data has no noexcept move
      for (const auto& child : value) items.push_back(to_data(child));
      return mst::data{items};
    }
    case json::value_t::string: return mst::data{value.get<std::string>()};
    case json::value_t::boolean: return mst::data{value.get<bool>()};
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return mst::data{number_text(value)};
    default: return mst::data{false};
  }
}

// kainjow's name lookup with our rules: a dotted name resolves in the
// innermost context that has all of it (kainjow's behaviour), a numeric
// part indexes a list, and the print marker decides how booleans and empty
// strings read.
class lookup final : public mst::basic_context<std::string> {
 public:
  explicit lookup(const mst::data* root) { push(root); }

  void push(const mst::data* data) override { items_.insert(items_.begin(), data); }
  void pop() override { items_.erase(items_.begin()); }

  const mst::data* get(const std::string& name) const override {
    const bool printing = !name.empty() && name.front() == print_marker;
    const mst::data* found = find(printing ? std::string_view{name}.substr(1) : std::string_view{name});
    if (!found) return nullptr;
    if (printing) {
      if (found->is_true()) return &true_text();
      if (found->is_false()) return &false_text();
      return found;
    }
    if (found->is_string() && found->string_value().empty()) return &false_value();
    return found;
  }

  const mst::data* get_partial(const std::string&) const override { return nullptr; }

 private:
  static const mst::data& true_text() {
    static const mst::data d{std::string{"true"}};
    return d;
  }
  static const mst::data& false_text() {
    static const mst::data d{std::string{"false"}};
    return d;
  }
  static const mst::data& false_value() {
    static const mst::data d{false};
    return d;
  }

  static const mst::data* step(const mst::data* at, std::string_view part) {
    if (at->is_object()) return at->get(std::string{part});
    if (at->is_list()) {
      if (part.empty() || part.size() > 9) return nullptr;
      std::size_t index = 0;
      for (const char c : part) {
        if (c < '0' || c > '9') return nullptr;
        index = index * 10 + static_cast<std::size_t>(c - '0');
      }
      const auto& list = at->list_value();
      return index < list.size() ? &list[index] : nullptr;
    }
    return nullptr;
  }

  const mst::data* find(std::string_view name) const {
    if (name == ".") return items_.front();
    for (const auto* item : items_) {
      const mst::data* at = item;
      std::string_view rest = name;
      while (at) {
        const std::size_t dot = rest.find('.');
        at = step(at, rest.substr(0, dot));
        if (dot == std::string_view::npos) break;
        rest.remove_prefix(dot + 1);
      }
      if (at) return at;
    }
    return nullptr;
  }

  std::vector<const mst::data*> items_;
};

// A template made ready for kainjow: variable tags rewritten with the print
// marker, and the names that must resolve (those outside every section).
struct prepared {
  std::string text;
  std::vector<std::string> required;
};

result<prepared> prepare(std::string_view text) {
  scan_result scanned = scan(text);
  if (!scanned.error.empty()) return invalid(text, scanned.error);
  prepared out;
  out.text.reserve(text.size() + 8 * scanned.tags.size());
  std::size_t copied = 0;
  int depth = 0;
  for (const auto& t : scanned.tags) {
    switch (t.kind) {
      case tag_kind::section:
      case tag_kind::inverted: ++depth; break;
      case tag_kind::close: --depth; break;
      case tag_kind::comment: break;
      case tag_kind::variable:
        out.text.append(text.substr(copied, t.begin - copied));
        out.text.append("{{&").append(1, print_marker).append(t.name).append("}}");
        copied = t.end;
        if (depth == 0) out.required.push_back(t.name);
        break;
    }
  }
  out.text.append(text.substr(copied));
  return out;
}

result<std::string> render_prepared(const prepared& p, const mst::data& root) {
  lookup context{&root};
  for (const auto& name : p.required) {
    if (!context.get(print_marker + name)) return fail("missing_field", "missing field " + name, name);
  }
  mst::mustache tmpl{p.text};
  if (!tmpl.is_valid()) return fail("invalid_template", tmpl.error_message());
  // Variables are all `{{&…}}` already; identity escaping is the second lock.
  tmpl.set_custom_escape([](const std::string& s) { return s; });
  std::string out = tmpl.render(context);
  if (!tmpl.is_valid()) return fail("invalid_template", tmpl.error_message());
  return out;
}

std::string trimmed(const std::string& s) { return std::string{trim(s)}; }

}  // namespace

result<void> check_template(std::string_view text) {
  const scan_result scanned = scan(text);
  if (!scanned.error.empty()) return invalid(text, scanned.error);
  if (const std::string theirs = kainjow_error(text); !theirs.empty()) return fail("invalid_template", theirs);
  return {};
}

std::vector<template_variable> template_variables(std::string_view text) {
  const scan_result scanned = scan(text);
  std::vector<template_variable> out;
  std::vector<std::string> sections;
  const auto add = [&](const std::string& name, bool guarded) {
    for (const auto& v : out) {
      if (v.name == name && v.guarded == guarded && v.sections == sections) return;
    }
    out.push_back({name, guarded, sections});
  };
  for (const auto& t : scanned.tags) {
    switch (t.kind) {
      case tag_kind::section:
      case tag_kind::inverted:
        add(t.name, true);
        sections.push_back(t.name);
        break;
      case tag_kind::close:
        if (!sections.empty()) sections.pop_back();
        break;
      case tag_kind::variable: add(t.name, !sections.empty()); break;
      case tag_kind::comment: break;
    }
  }
  return out;
}

result<std::string> render_template(std::string_view text, const nlohmann::json& context) {
  auto p = prepare(text);
  if (!p) return tl::unexpected(std::move(p.error()));
  return render_prepared(*p, to_data(context));
}

result<rendered_message> render_message(const message_def& message, const nlohmann::json& context,
                                        std::string_view locale, std::string_view default_locale,
                                        const utm_def& utm) {
  const auto [fields, used] = pick_locale(message, locale, default_locale);
  const mst::data root = to_data(context);  // once for all the fields

  // One field: its template's errors name the field; missing_field keeps the
  // variable's name (the engine logs "missing field: product.name").
  const auto render = [&root](const std::string& text, const std::string& field) -> result<std::string> {
    auto p = prepare(text);
    if (!p) return fail(p.error().code, field + ": " + p.error().message, field);
    auto r = render_prepared(*p, root);
    if (!r) {
      if (r.error().code == "missing_field") return tl::unexpected(std::move(r.error()));
      return fail(r.error().code, field + ": " + r.error().message, field);
    }
    return trimmed(*r);
  };

  rendered_message out;
  out.locale = used.empty() ? std::string{default_locale} : used;
  const std::pair<const std::string*, std::string*> simple[] = {
      {&fields.title, &out.title}, {&fields.body, &out.body},   {&fields.icon, &out.icon},
      {&fields.image, &out.image}, {&fields.badge, &out.badge}, {&fields.url, &out.url},
  };
  const char* const names[] = {"title", "body", "icon", "image", "badge", "url"};
  for (std::size_t i = 0; i < std::size(simple); ++i) {
    auto r = render(*simple[i].first, names[i]);
    if (!r) return tl::unexpected(std::move(r.error()));
    *simple[i].second = std::move(*r);
  }
  if (out.title.empty()) return fail("missing_field", "the title is empty after rendering", "title");

  for (std::size_t i = 0; i < fields.actions.size(); ++i) {
    const auto& a = fields.actions[i];
    const std::string at = "actions[" + std::to_string(i) + "]";
    auto title = render(a.title, at + ".title");
    if (!title) return tl::unexpected(std::move(title.error()));
    if (title->empty()) continue;
    std::string url = out.url;
    if (!a.url.empty()) {
      auto u = render(a.url, at + ".url");
      if (!u) return tl::unexpected(std::move(u.error()));
      url = std::move(*u);
    }
    out.actions.push_back({a.action, std::move(*title), std::move(url)});
  }

  if (utm.enabled) {
    utm_values values;
    const std::pair<const std::string*, std::string*> parts[] = {
        {&utm.source, &values.source},
        {&utm.medium, &values.medium},
        {&utm.campaign, &values.campaign},
        {&utm.content, &values.content},
    };
    const char* const utm_names[] = {"utm.source", "utm.medium", "utm.campaign", "utm.content"};
    for (std::size_t i = 0; i < std::size(parts); ++i) {
      auto r = render(*parts[i].first, utm_names[i]);
      if (!r) return tl::unexpected(std::move(r.error()));
      *parts[i].second = std::move(*r);
    }
    out.url = add_utm(out.url, values);
    for (auto& a : out.actions) a.url = add_utm(a.url, values);
  }
  return out;
}

}  // namespace webpushd::automation
