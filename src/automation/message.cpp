// Choosing a message's translation, decorating its links, and the payload the
// service worker reads (web/sdk/sw.js, docs/API.md "The push payload").
// render_message lives in template.cpp, beside the rendering it drives.
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "webpushd/automation/message.hpp"

namespace webpushd::automation {
namespace {

// Tags compare case-insensitively and with "_" as "-", as consent texts do
// (consent/config.cpp): "pl_pl", "PL-pl" and "pl-PL" are one tag.
std::string normal_tag(std::string_view tag) {
  std::string out{tag};
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c == '_') c = '-';
  }
  return out;
}

std::string_view language(std::string_view tag) { return tag.substr(0, tag.find_first_of("-_")); }

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && normal_tag(s.substr(0, prefix.size())) == prefix;
}

// RFC 3986 unreserved characters stay; every other byte is %XX, so the value
// can neither end the parameter ('&', '#') nor be mangled by '+' decoding.
std::string percent_encode(std::string_view value) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size() * 3);
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                            c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0x0F]);
    }
  }
  return out;
}

bool has_parameter(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (pair.substr(0, pair.find('=')) == name) return true;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

}  // namespace

std::string add_utm(std::string_view url, const utm_values& utm) {
  if (!starts_with_ci(url, "http://") && !starts_with_ci(url, "https://")) return std::string{url};
  const std::size_t hash = url.find('#');
  const std::string_view fragment = hash == std::string_view::npos ? std::string_view{} : url.substr(hash);
  const std::string_view base = url.substr(0, hash);
  const std::size_t question = base.find('?');
  const std::string_view query = question == std::string_view::npos ? std::string_view{} : base.substr(question + 1);

  std::string out{base};
  bool has_query = question != std::string_view::npos;
  const std::pair<std::string_view, const std::string*> params[] = {
      {"utm_source", &utm.source},
      {"utm_medium", &utm.medium},
      {"utm_campaign", &utm.campaign},
      {"utm_content", &utm.content},
  };
  for (const auto& [name, value] : params) {
    if (value->empty() || has_parameter(query, name)) continue;
    if (!has_query) {
      out.push_back('?');
      has_query = true;
    } else if (out.back() != '?' && out.back() != '&') {
      out.push_back('&');
    }
    out.append(name).append("=").append(percent_encode(*value));
  }
  out.append(fragment);
  return out;
}

std::pair<message_fields, std::string> pick_locale(const message_def& message, std::string_view locale,
                                                   std::string_view default_locale) {
  const auto find = [&](std::string_view tag) -> const std::pair<const std::string, message_fields>* {
    if (tag.empty()) return nullptr;
    const std::string wanted = normal_tag(tag);
    for (const auto& entry : message.locales) {
      if (normal_tag(entry.first) == wanted) return &entry;
    }
    return nullptr;
  };
  for (const auto tag : {locale, language(locale), default_locale, language(default_locale)}) {
    const auto* found = find(tag);
    if (!found) continue;
    const message_fields& v = found->second;
    message_fields merged = message.fields;
    const auto take = [](std::string& into, const std::string& from) {
      if (!from.empty()) into = from;
    };
    take(merged.title, v.title);
    take(merged.body, v.body);
    take(merged.icon, v.icon);
    take(merged.image, v.image);
    take(merged.badge, v.badge);
    take(merged.url, v.url);
    if (!v.actions.empty()) merged.actions = v.actions;
    return {std::move(merged), found->first};
  }
  return {message.fields, std::string{}};
}

std::string to_payload(const rendered_message& message, const delivery_block& delivery, std::string_view tag) {
  // ordered_json keeps the documented key order, which makes payloads easy
  // to read in logs and stable in tests.
  nlohmann::ordered_json p = nlohmann::ordered_json::object();
  const auto put = [&p](const char* key, const std::string& value) {
    if (!value.empty()) p[key] = value;
  };
  p["title"] = message.title;
  put("body", message.body);
  put("icon", message.icon);
  put("image", message.image);
  put("badge", message.badge);
  put("tag", std::string{tag});
  put("url", message.url);
  if (!message.actions.empty()) {
    auto actions = nlohmann::ordered_json::array();
    for (const auto& a : message.actions) {
      nlohmann::ordered_json one = {{"action", a.action}, {"title", a.title}};
      if (!a.url.empty()) one["url"] = a.url;
      actions.push_back(std::move(one));
    }
    p["actions"] = std::move(actions);
  }
  p["delivery"] = {{"id", delivery.id}, {"sig", delivery.sig}, {"report", delivery.report}};
  // Invalid UTF-8 (a backend's broken product name) is replaced, not thrown:
  // the notification still goes out with U+FFFD where the bad bytes were.
  return p.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace webpushd::automation
