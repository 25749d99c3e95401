#include "webpushd/core/text.hpp"
#include "webpushd/automation/scenario_file.hpp"

#include <algorithm>
#include <optional>
#include <set>

#include "webpushd/automation/message.hpp"

namespace webpushd::automation {

const scenario_def* scenario_set::find(std::string_view name) const {
  for (const auto& s : scenarios) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

bool scenario_parse::ok() const {
  return std::none_of(findings.begin(), findings.end(),
                      [](const scenario_finding& f) { return f.severity == scenario_finding::level::error; });
}

namespace {

using nlohmann::json;

// The same form as the daemon's config durations (app::parse_duration; the
// app module sits above this one, so it cannot be called from here). The
// schema's pattern has already guaranteed the form.

std::string str(const json& obj, const char* key, std::string fallback = {}) {
  const auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : fallback;
}

const json& member(const json& obj, const char* key) {
  static const json empty = json::object();
  const auto it = obj.find(key);
  return it != obj.end() ? *it : empty;
}

const json& list(const json& obj, const char* key) {
  static const json empty = json::array();
  const auto it = obj.find(key);
  return it != obj.end() && it->is_array() ? *it : empty;
}

// Edits between two names, a swap of neighbours counting as one (the
// typical typo: nmae for name), for "did you mean" hints.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// What a context can hold, for one event type, as the linter asks about it.
class field_catalog {
 public:
  enum class presence { never, maybe, always };

  field_catalog(std::string event_type, std::map<std::string, bool> fields, bool with_step)
      : event_type_(std::move(event_type)), fields_(std::move(fields)), with_step_(with_step) {
    if (!with_step) {
      // Trigger and exit conditions are evaluated before any step exists.
      std::erase_if(fields_, [](const auto& f) { return is_step_field(f.first); });
    }
    for (const auto& [path, always] : fields_) roots_.insert(path.substr(0, path.find('.')));
  }

  static bool is_step_field(std::string_view path) {
    return path == "step" || path.starts_with("step.") || path == "journey.step" || path == "variant";
  }

  const std::string& event_type() const { return event_type_; }
  bool with_step() const { return with_step_; }

  presence lookup(const std::string& path) const {
    if (const auto it = fields_.find(path); it != fields_.end()) {
      return it->second ? presence::always : presence::maybe;
    }
    // An object the catalogue lists only by its members ("cart" of "cart.id").
    bool any = false;
    bool always = false;
    for (auto it = fields_.lower_bound(path + "."); it != fields_.end() && it->first.starts_with(path + "."); ++it) {
      any = true;
      always = always || it->second;
    }
    if (any) return always ? presence::always : presence::maybe;
    // Below a listed field without listed members: array items
    // ("cart.items.0.name") and free-form objects are not expanded, so
    // anything under them may be there. Members of an object whose members
    // are listed ("product") are known: anything else is never there.
    for (auto p = path.rfind('.'); p != std::string::npos; p = p == 0 ? std::string::npos : path.rfind('.', p - 1)) {
      const auto prefix = path.substr(0, p);
      if (fields_.count(prefix) == 0) continue;
      const auto child = fields_.lower_bound(prefix + ".");
      const bool has_members = child != fields_.end() && child->first.starts_with(prefix + ".");
      return has_members ? presence::never : presence::maybe;
    }
    return presence::never;
  }

  /// The root ("product", "cart", "event", …) is one a context has.
  bool has_root(const std::string& path) const { return roots_.count(path.substr(0, path.find('.'))) != 0; }

  std::string suggestion(const std::string& path) const {
    std::string best;
    std::size_t best_distance = 3;
    for (const auto& [candidate, always] : fields_) {
      const auto d = edit_distance(path, candidate);
      if (d < best_distance) {
        best_distance = d;
        best = candidate;
      }
    }
    return best;
  }

 private:
  std::string event_type_;
  std::map<std::string, bool> fields_;
  bool with_step_ = true;
  std::set<std::string> roots_;
};

// Fields a list of conditions guarantees: a condition that holds on a path
// (anything but `missing`) means the value is there, and so is its
// locale-formatted `_text` twin when it is a money field.
void add_implied(const std::vector<condition>& conditions, std::set<std::string>& implied) {
  for (const auto& c : conditions) {
    if (c.oper == condition::op::missing) continue;
    implied.insert(c.path);
    implied.insert(c.path + "_text");
    for (auto p = c.path.find('.'); p != std::string::npos; p = c.path.find('.', p + 1)) {
      implied.insert(c.path.substr(0, p));
    }
  }
}


class checker {
 public:
  checker(const scenario_environment& env, std::string source_file)
      : env_(env), source_file_(std::move(source_file)) {}

  scenario_parse run(const json& document) {
    scenario_parse out;
    const auto& scenarios = list(document, "scenarios");
    std::map<std::string, std::size_t> names;
    for (std::size_t i = 0; i < scenarios.size(); ++i) {
      const std::string at = "/scenarios/" + std::to_string(i);
      auto s = scenario(scenarios[i], at);
      if (const auto [it, fresh] = names.emplace(s.name, i); !fresh) {
        error(at + "/name", "scenario name '" + s.name + "' is already used by scenario " + std::to_string(it->second) +
                                " of this file; names must be unique");
      }
      out.scenarios.push_back(std::move(s));
    }
    out.findings = std::move(findings_);
    return out;
  }

 private:
  void error(std::string pointer, std::string message) {
    findings_.push_back({scenario_finding::level::error, std::move(pointer), std::move(message)});
  }
  void warning(std::string pointer, std::string message) {
    findings_.push_back({scenario_finding::level::warning, std::move(pointer), std::move(message)});
  }

  std::chrono::milliseconds duration(const json& obj, const char* key, std::chrono::milliseconds fallback,
                                     const std::string& at) {
    if (!obj.contains(key)) return fallback;
    const auto text = str(obj, key);
    const auto d = parse_duration(text);
    if (!d) {
      error(at + "/" + key, "'" + text + "' is not a duration: write a number and a unit, e.g. 30s, 5m, 1h, 7d");
      return fallback;
    }
    return *d;
  }

  void check_category(const std::string& category, const std::string& at) {
    // An environment without categories means "no config to check against"
    // (webpushctl scenarios check without --config says so).
    if (env_.categories.empty() || category.empty()) return;
    if (std::find(env_.categories.begin(), env_.categories.end(), category) != env_.categories.end()) return;
    std::string known;
    for (const auto& c : env_.categories) known += (known.empty() ? "" : ", ") + c;
    error(at, "consent category '" + category + "' is not in the config's consent.categories (they are: " + known +
                  ")");
  }

  // What contexts of an event type hold, or nullopt (and an error) when the type is unknown.
  std::optional<std::map<std::string, bool>> fields_of_type(const std::string& type, const std::string& at) {
    const auto it = env_.event_types.find(type);
    if (it == env_.event_types.end()) {
      std::string known;
      for (const auto& [name, schema] : env_.event_types) known += (known.empty() ? "" : ", ") + name;
      error(at, "unknown event type '" + type + "' (known: " + known +
                    "; declare your own under events.custom_types in the config)");
      return std::nullopt;
    }
    return context_fields(type, it->second);
  }

  std::optional<field_catalog> catalog(const std::string& type, bool with_step, const std::string& at) {
    auto fields = fields_of_type(type, at);
    if (!fields) return std::nullopt;
    return field_catalog(type, std::move(*fields), with_step);
  }

  std::string never_message(const field_catalog& fields, const std::string& path) {
    std::string m;
    if (field_catalog::is_step_field(path)) {
      m = path + " is known only in a step (its conditions and message), not when a trigger or exit is checked";
    } else {
      m = "a " + fields.event_type() + " event never provides " + path;
      if (const auto s = fields.suggestion(path); !s.empty()) m += " (did you mean " + s + "?)";
    }
    return m;
  }

  std::vector<condition> conditions(const json& items, const std::string& at, const std::optional<field_catalog>& fields) {
    std::vector<condition> out;
    for (std::size_t i = 0; i < items.size(); ++i) {
      const std::string here = at + "/" + std::to_string(i);
      const auto text = items[i].is_string() ? items[i].get<std::string>() : std::string();
      auto c = parse_condition(text);
      if (!c) {
        error(here, "condition '" + text + "': " + c.error().message);
        continue;
      }
      if (fields && fields->lookup(c->path) == field_catalog::presence::never) {
        error(here, "condition '" + c->text + "': " + never_message(*fields, c->path));
      } else if (fields && !fields->with_step() &&
                 (c->path == "subscriber.locale" || c->path == "subscriber.timezone")) {
        // Before a step runs, the engine does not know which device will
        // receive it: it evaluates with the shop's defaults.
        warning(here, "condition '" + c->text + "': " + c->path +
                          " is the shop's default when a trigger or exit is checked (the recipient is known only "
                          "in a step): put this condition on the steps");
      }
      out.push_back(std::move(*c));
    }
    return out;
  }

  // Where a journey key or exit key reads its value.
  void check_key_path(const std::string& path, const std::string& at, const field_catalog& fields,
                      const std::set<std::string>& implied, bool warn_if_optional) {
    const auto p = fields.lookup(path);
    if (p == field_catalog::presence::never) {
      error(at, never_message(fields, path));
    } else if (warn_if_optional && p == field_catalog::presence::maybe && implied.count(path) == 0) {
      warning(at, path + " may be missing from a " + fields.event_type() +
                      " event; require it with a trigger condition `" + path + " exists`");
    }
  }

  void check_link(const std::string& text, const std::string& at) {
    if (text.empty() || text.starts_with("{{")) return;
    if (text.starts_with("https://") || text.starts_with("http://")) return;
    error(at, "'" + text + "' is not a link: write an absolute https:// address or a template such as {{product.url}}");
  }

  void check_template_field(const std::string& text, const std::string& at, const field_catalog* fields,
                            const std::set<std::string>& implied) {
    if (text.empty()) return;
    if (auto ok = check_template(text); !ok) {
      error(at, ok.error().message);
      return;
    }
    if (fields == nullptr) return;
    std::set<std::string> reported;
    for (const auto& v : template_variables(text)) {
      if (v.name == "." || !reported.insert(v.name).second) continue;
      switch (fields->lookup(v.name)) {
        case field_catalog::presence::never:
          // Inside a section a bare name may be a member of the list item
          // being iterated ({{#cart.items}}{{name}}{{/cart.items}}).
          if (v.guarded && !fields->has_root(v.name)) break;
          error(at, "{{" + v.name + "}}: " + never_message(*fields, v.name));
          break;
        case field_catalog::presence::maybe:
          if (v.guarded || implied.count(v.name) != 0) break;
          warning(at, "{{" + v.name + "}} may be missing from a " + fields->event_type() +
                          " event, and then the message is held back (suppressed: missing field): give it a fallback ({{#" + v.name + "}}{{" +
                          v.name + "}}{{/" + v.name + "}}{{^" + v.name + "}}…{{/" + v.name +
                          "}}) or add the step condition `" + v.name + " exists`");
          break;
        case field_catalog::presence::always:
          break;
      }
    }
  }

  message_fields fields_of(const json& obj, const std::string& at, const field_catalog* fields,
                           const std::set<std::string>& implied) {
    message_fields m;
    m.title = str(obj, "title");
    m.body = str(obj, "body");
    m.icon = str(obj, "icon");
    m.image = str(obj, "image");
    m.badge = str(obj, "badge");
    m.url = str(obj, "url");
    const std::pair<const char*, const std::string*> parts[] = {{"title", &m.title}, {"body", &m.body},
                                                                {"icon", &m.icon},   {"image", &m.image},
                                                                {"badge", &m.badge}, {"url", &m.url}};
    for (const auto& [key, value] : parts) {
      const std::string here = at + "/" + key;
      check_template_field(*value, here, fields, implied);
      if (std::string_view(key) != "title" && std::string_view(key) != "body") check_link(*value, here);
    }
    const auto& actions = list(obj, "actions");
    std::set<std::string> action_ids;
    for (std::size_t k = 0; k < actions.size(); ++k) {
      const std::string here = at + "/actions/" + std::to_string(k);
      action_def a{str(actions[k], "action"), str(actions[k], "title"), str(actions[k], "url")};
      if (!action_ids.insert(a.action).second) {
        error(here + "/action", "action '" + a.action + "' appears twice in this message");
      }
      check_template_field(a.title, here + "/title", fields, implied);
      check_template_field(a.url, here + "/url", fields, implied);
      check_link(a.url, here + "/url");
      m.actions.push_back(std::move(a));
    }
    return m;
  }

  message_def message(const json& obj, const std::string& at, const field_catalog* fields,
                      const std::set<std::string>& implied) {
    message_def m;
    m.fields = fields_of(obj, at, fields, implied);
    for (const auto& [tag, variant] : member(obj, "locales").items()) {
      m.locales[tag] = fields_of(variant, at + "/locales/" + json_pointer_token(tag), fields, implied);
    }
    return m;
  }

  // A/B variants: the schema checked their number, names and weights; what
  // is left is that names are unique, and each message is checked like a
  // step's, its findings pointing into the variant.
  std::vector<variant_def> variants(const json& items, const std::string& at, const field_catalog* fields,
                                    const std::set<std::string>& implied) {
    std::vector<variant_def> out;
    std::map<std::string, std::size_t> names;
    for (std::size_t k = 0; k < items.size(); ++k) {
      const std::string here = at + "/" + std::to_string(k);
      variant_def v;
      v.name = str(items[k], "name");
      v.weight = items[k].value("weight", 1.0);
      if (const auto [it, fresh] = names.emplace(v.name, k); !fresh) {
        error(here + "/name", "variant name '" + v.name + "' is already used by variant " + std::to_string(it->second) +
                                  " of this step; names must be unique");
      }
      v.message = message(member(items[k], "message"), here + "/message", fields, implied);
      out.push_back(std::move(v));
    }
    return out;
  }

  pacing::scenario_pacing pacing_of(const json& obj, const std::string& at, const field_catalog* trigger_fields,
                                    const std::set<std::string>& implied) {
    pacing::scenario_pacing p;
    const auto& caps = list(obj, "caps");
    for (std::size_t i = 0; i < caps.size(); ++i) {
      // The schema checked the form; a zero window is what is left to refuse.
      if (const auto c = pacing::parse_cap(caps[i].get<std::string>())) {
        p.caps.push_back(*c);
      } else {
        error(at + "/caps/" + std::to_string(i), "'" + caps[i].get<std::string>() + "' is not a cap: write e.g. '2 per 1d'");
      }
    }
    p.quiet_hours = obj.value("quiet_hours", true);
    p.defer = str(obj, "on_cap", "defer") == "defer";
    p.defer_max = duration(obj, "defer_max", p.defer_max, at);
    p.value_field = str(obj, "value");
    if (!p.value_field.empty() && trigger_fields != nullptr) {
      check_key_path(p.value_field, at + "/value", *trigger_fields, implied, false);
    }
    if (obj.contains("adaptive")) {
      const json& a = obj["adaptive"];
      pacing::adaptive_policy ap;
      const auto rate = [&](const char* key, double fallback) {
        return a.contains(key) ? pacing::parse_percent(a[key].get<std::string>()).value_or(fallback) : fallback;
      };
      ap.tighten_above = rate("tighten_above", ap.tighten_above);
      ap.relax_below = rate("relax_below", ap.relax_below);
      ap.window = duration(a, "window", ap.window, at + "/adaptive");
      ap.min_sends = a.value("min_sends", ap.min_sends);
      ap.hold = duration(a, "hold", ap.hold, at + "/adaptive");
      ap.min_count = a.value("min_count", ap.min_count);
      if (p.caps.empty()) {
        error(at + "/adaptive", "adaptive throttling tightens the scenario's own caps, but it has none: add pacing.caps");
      }
      if (ap.relax_below > ap.tighten_above) {
        error(at + "/adaptive/relax_below", "must not be above tighten_above, or the caps would swing back and forth");
      }
      p.adaptive = ap;
    }
    return p;
  }

  scenario_def scenario(const json& obj, const std::string& at) {
    scenario_def s;
    s.source_file = source_file_;
    s.name = str(obj, "name");
    s.description = str(obj, "description");
    s.enabled = obj.value("enabled", true);
    s.category = str(obj, "category");
    check_category(s.category, at + "/category");
    s.priority = obj.value("priority", 50);
    s.topic_per_journey = obj.value("topic_per_journey", true);

    const json& trigger = member(obj, "trigger");
    s.trigger.event = str(trigger, "event");
    const auto all_fields = fields_of_type(s.trigger.event, at + "/trigger/event");
    std::optional<field_catalog> trigger_fields;
    std::optional<field_catalog> step_fields;
    if (all_fields) {
      trigger_fields.emplace(s.trigger.event, *all_fields, false);
      step_fields.emplace(s.trigger.event, *all_fields, true);
    }
    s.trigger.when = conditions(list(trigger, "when"), at + "/trigger/when", trigger_fields);
    const json& audience = member(trigger, "audience");
    s.trigger.audience.interested_within =
        duration(audience, "interested_within", std::chrono::milliseconds{0}, at + "/trigger/audience");
    if (trigger_fields && s.trigger.audience.interested_within.count() > 0 &&
        trigger_fields->lookup("properties.product_id") == field_catalog::presence::never) {
      // The engine finds the audience by the event's product_id property.
      error(at + "/trigger/audience/interested_within",
            "the audience is people who viewed or carted the event's product, but a " + s.trigger.event +
                " event has no product_id");
    }
    std::set<std::string> trigger_implied;
    add_implied(s.trigger.when, trigger_implied);

    const json& journey = member(obj, "journey");
    s.journey_key = str(journey, "key");
    if (!s.journey_key.empty() && trigger_fields) {
      check_key_path(s.journey_key, at + "/journey/key", *trigger_fields, trigger_implied, true);
    }
    s.on_retrigger = str(journey, "on_retrigger", "restart") == "ignore" ? retrigger_policy::ignore
                                                                          : retrigger_policy::restart;
    s.reentry_cooldown = duration(journey, "reentry_cooldown", std::chrono::milliseconds{0}, at + "/journey");

    const auto& exits = list(obj, "exit_on");
    for (std::size_t i = 0; i < exits.size(); ++i) {
      const std::string here = at + "/exit_on/" + std::to_string(i);
      exit_def e;
      e.event = str(exits[i], "event");
      e.key = str(exits[i], "key");
      const auto exit_fields = catalog(e.event, false, here + "/event");
      e.when = conditions(list(exits[i], "when"), here + "/when", exit_fields);
      if (!e.key.empty()) {
        if (s.journey_key.empty()) {
          error(here + "/key", "an exit key is compared with the journey's key, but this scenario has no journey.key");
        }
        if (exit_fields) check_key_path(e.key, here + "/key", *exit_fields, {}, false);
      }
      s.exits.push_back(std::move(e));
    }

    const json& late = member(obj, "late");
    s.late.max = duration(late, "max", s.late.max, at + "/late");
    s.pacing = pacing_of(member(obj, "pacing"), at + "/pacing",
                         trigger_fields ? &*trigger_fields : nullptr, trigger_implied);

    const auto& steps = list(obj, "steps");
    std::map<std::string, std::size_t> step_names;
    for (std::size_t j = 0; j < steps.size(); ++j) {
      const std::string here = at + "/steps/" + std::to_string(j);
      const json& st = steps[j];
      step_def step;
      step.name = str(st, "name");
      if (const auto [it, fresh] = step_names.emplace(step.name, j); !fresh) {
        error(here + "/name", "step name '" + step.name + "' is already used by step " + std::to_string(it->second) +
                                  " of this scenario; names must be unique");
      }
      step.after = duration(st, "after", std::chrono::milliseconds{0}, here);
      if (j > 0 && step.after <= s.steps.back().after) {
        error(here + "/after", "steps must be in order of time: " + str(st, "after") + " is not later than step '" +
                                   s.steps.back().name + "' (" + str(steps[j - 1], "after") + ")");
      }
      step.when = conditions(list(st, "when"), here + "/when", step_fields);
      step.category = str(st, "category", s.category);
      if (st.contains("category")) check_category(step.category, here + "/category");
      const auto ttl = duration(st, "ttl", std::chrono::hours{24}, here);
      if (ttl > std::chrono::hours{24 * 28}) {
        error(here + "/ttl", "at most 28d: push services keep a message at most four weeks");
      }
      step.ttl = std::chrono::duration_cast<std::chrono::seconds>(ttl);
      step.urgency = str(st, "urgency", "normal");
      std::set<std::string> implied = trigger_implied;
      add_implied(step.when, implied);
      const field_catalog* fields = step_fields ? &*step_fields : nullptr;
      const bool has_message = st.contains("message");
      const bool has_variants = st.contains("variants");
      if (has_message && has_variants) {
        error(here + "/variants", "a step has either a message or variants, not both: make the message the first "
                                  "variant (the baseline) or remove the variants");
      } else if (!has_message && !has_variants) {
        error(here, "a step needs a message (or variants: 2 to 10 messages to compare)");
      }
      if (has_message) step.message = message(member(st, "message"), here + "/message", fields, implied);
      step.variants = variants(list(st, "variants"), here + "/variants", fields, implied);
      s.steps.push_back(std::move(step));
    }
    if (s.steps.empty()) error(at + "/steps", "a scenario needs at least one step");
    return s;
  }

  const scenario_environment& env_;
  std::string source_file_;
  std::vector<scenario_finding> findings_;
};

}  // namespace

scenario_parse parse_scenario_document(const json& document, const scenario_environment& env,
                                       const std::string& source_file) {
  return checker(env, source_file).run(document);
}

}  // namespace webpushd::automation
