#include "webpushd/app/scenario_files.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "schema_validation.hpp"
#include "webpushd/automation/message.hpp"
#include "webpushd/ingest/event_schemas.hpp"
#include "yaml_to_json.hpp"

namespace webpushd::app {
namespace {

using nlohmann::json;
using level = automation::scenario_finding::level;

const compiled_schema& scenarios_schema() {
  static const compiled_schema schema(scenarios_schema_text(), "schemas/scenarios.schema.json");
  return schema;
}

// parse_yaml_located says "FILE:LINE:COL: what"; take the place apart again
// so a syntax error is a finding like any other.
located_finding syntax_finding(const std::string& source, const std::string& message) {
  located_finding f;
  f.file = source;
  f.message = message;
  if (message.rfind(source + ":", 0) == 0) {
    std::istringstream in(message.substr(source.size() + 1));
    int line = 0;
    int column = 0;
    char colon1 = 0;
    char colon2 = 0;
    if (in >> line >> colon1 >> column >> colon2 && colon1 == ':' && colon2 == ':') {
      f.line = line;
      f.column = column;
      std::string rest;
      std::getline(in, rest);
      f.message = rest.substr(rest.find_first_not_of(' ') == std::string::npos ? rest.size()
                                                                                : rest.find_first_not_of(' '));
    }
  }
  return f;
}

struct checked_file {
  std::vector<automation::scenario_def> scenarios;
  std::vector<located_finding> findings;
  std::map<std::string, source_position> name_positions;  // scenario name → where it is written
};

checked_file check_text(std::string_view text, const std::string& source, const automation::scenario_environment& env) {
  checked_file out;
  auto doc = parse_yaml_located(text, source);
  if (!doc) {
    out.findings.push_back(syntax_finding(source, doc.error().message));
    return out;
  }
  if (doc->value.is_null()) {
    out.findings.push_back({level::error, source, 0, 0, "", "the file is empty (it needs version: 1 and scenarios:)"});
    return out;
  }
  const auto violations = schema_violations(*doc, scenarios_schema());
  for (const auto& v : violations) {
    out.findings.push_back({level::error, source, v.position.line, v.position.column, pointer_to_dotted(v.pointer),
                            v.message});
  }
  if (!violations.empty()) return out;  // passes 2 and 3 rely on the shape

  auto parsed = automation::parse_scenario_document(doc->value, env, source);
  for (auto& f : parsed.findings) {
    const auto position = position_of(f.pointer, doc->positions);
    out.findings.push_back(
        {f.severity, source, position.line, position.column, pointer_to_dotted(f.pointer), std::move(f.message)});
  }
  for (std::size_t i = 0; i < parsed.scenarios.size(); ++i) {
    out.name_positions.emplace(parsed.scenarios[i].name,
                               position_of("/scenarios/" + std::to_string(i) + "/name", doc->positions));
  }
  out.scenarios = std::move(parsed.scenarios);
  std::stable_sort(out.findings.begin(), out.findings.end(), [](const located_finding& a, const located_finding& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  return out;
}

}  // namespace

std::string located_finding::to_string() const {
  std::string out = location_text(file, {line, column}) + ": ";
  if (!path.empty()) out += path + ": ";
  return out + message;
}

bool scenario_files_result::ok() const {
  return !unreadable && std::none_of(findings.begin(), findings.end(), [](const auto& f) { return f.is_error(); });
}


automation::scenario_environment builtin_scenario_environment() {
  automation::scenario_environment env;
  constexpr std::string_view suffix = ".schema.json";
  for (const auto& file : ingest::embedded_event_schemas()) {
    if (!file.path.ends_with(suffix)) continue;
    const std::string type(file.path.substr(0, file.path.size() - suffix.size()));
    env.event_types.emplace(type, json::parse(file.text));
  }
  env.event_types.emplace("subscribed", automation::builtin_properties_schema("subscribed"));
  return env;
}

automation::scenario_environment scenario_environment_for(const config& cfg) {
  auto env = builtin_scenario_environment();
  for (const auto& c : cfg.consent.categories) env.categories.push_back(c.name);
  // A custom type cannot redefine a built-in one (the ingestor validates
  // built-in types against their own schemas whatever the config says).
  for (const auto& [name, schema] : cfg.events.custom_types) env.event_types.emplace(name, schema);
  return env;
}

scenario_files_result check_scenario_text(std::string_view text, const std::string& source_name,
                                          const automation::scenario_environment& env) {
  auto checked = check_text(text, source_name, env);
  scenario_files_result out;
  out.scenarios = std::move(checked.scenarios);
  out.findings = std::move(checked.findings);
  return out;
}

scenario_files_result load_scenario_files(const std::vector<std::filesystem::path>& files,
                                          const automation::scenario_environment& env) {
  scenario_files_result out;
  struct first_use {
    std::string file;
    source_position position;
  };
  std::map<std::string, first_use> names;
  for (const auto& path : files) {
    const std::string source = path.string();
    std::error_code ec;
    const bool exists = std::filesystem::exists(path, ec);
    std::ifstream in;
    if (exists && std::filesystem::is_regular_file(path, ec)) in.open(path, std::ios::binary);
    if (!in.is_open()) {
      out.unreadable = true;
      out.findings.push_back({level::error, source, 0, 0, "",
                              exists ? "cannot be read (not a readable file)" : "cannot be read (no such file)"});
      continue;
    }
    std::ostringstream text;
    text << in.rdbuf();  // an empty file leaves `text` failed and empty: reported as empty below
    auto checked = check_text(text.str(), source, env);
    std::vector<located_finding> duplicates;
    for (std::size_t i = 0; i < checked.scenarios.size(); ++i) {
      const auto& name = checked.scenarios[i].name;
      const auto here = checked.name_positions.count(name) != 0 ? checked.name_positions.at(name) : source_position{};
      const auto [it, fresh] = names.emplace(name, first_use{source, here});
      // Duplicates inside one file are the checker's; here only across files.
      if (!fresh && it->second.file != source) {
        duplicates.push_back({level::error, source, here.line, here.column,
                              "scenarios." + std::to_string(i) + ".name",
                              "scenario name '" + name + "' is already used in " +
                                  location_text(it->second.file, it->second.position) +
                                  "; names must be unique across all scenario files"});
      }
    }
    checked.findings.insert(checked.findings.end(), duplicates.begin(), duplicates.end());
    std::stable_sort(checked.findings.begin(), checked.findings.end(),
                     [](const located_finding& a, const located_finding& b) {
                       return std::pair(a.line, a.column) < std::pair(b.line, b.column);
                     });
    out.findings.insert(out.findings.end(), std::make_move_iterator(checked.findings.begin()),
                        std::make_move_iterator(checked.findings.end()));
    for (auto& s : checked.scenarios) out.scenarios.push_back(std::move(s));
  }
  return out;
}

}  // namespace webpushd::app
