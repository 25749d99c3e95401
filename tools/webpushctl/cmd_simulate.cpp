// webpushctl simulate: replay a trace of shop events against the scenarios
// of a config in virtual time, and print what each person would have
// received, when, and what was held back and why. Nothing is sent: the run
// uses a scratch database that is removed afterwards.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "webpushd/app/config.hpp"
#include "webpushd/automation/simulation.hpp"
#include "webpushd/core/text.hpp"
#include "webpushd/ingest/events.hpp"

namespace webpushctl {
namespace {

struct simulate_options {
  std::string config;
  std::string events;
  std::string until;
  bool json = false;
};

// A scratch folder for the simulation's database, removed on every exit path.
class scratch_dir {
 public:
  scratch_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "webpushctl-simulate-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("cannot create a scratch folder");
    path_ = tmpl;
  }
  ~scratch_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Per scenario: how many entered, were sent (and how many of those late,
// deferred by a cap or quiet hours), what held the rest back, and the
// unsubscribes attributed to it — what a cap costs and what it saves; and
// for steps with A/B variants, the sends per variant.
nlohmann::json summarize(const std::vector<webpushd::automation::simulated_line>& lines) {
  std::map<std::string, nlohmann::json> by;
  for (const auto& l : lines) {
    auto& s = by[l.scenario];
    if (s.is_null()) {
      s = {{"entered", 0},  {"sent", 0},         {"deferred", 0},
           {"exited", 0},   {"completed", 0},    {"unsubscribed", 0},
           {"held_back", nlohmann::json::object()}, {"sent_by_variant", nlohmann::json::object()}};
    }
    if (l.outcome == "sent" && !l.variant.empty()) {
      auto& n = s["sent_by_variant"][l.step][l.variant];
      n = n.is_null() ? 1 : n.get<int>() + 1;
    }
    if (l.outcome == "entered" || l.outcome == "sent" || l.outcome == "exited" || l.outcome == "completed" ||
        l.outcome == "deferred" || l.outcome == "unsubscribed") {
      s[l.outcome] = s[l.outcome].get<int>() + 1;
    } else if (l.outcome == "suppressed" || l.outcome == "skipped" || l.outcome == "cancelled") {
      // "missed: 10h late (limit 6h)" and "missed: 7h late …" are one reason.
      std::string reason = l.outcome + ": " + l.reason.substr(0, l.reason.find(':') == std::string::npos ? l.reason.size() : l.reason.find(':'));
      if (l.reason.rfind("condition not met", 0) == 0 || l.reason.rfind("consent missing", 0) == 0 ||
          l.reason.rfind("missing field", 0) == 0) {
        reason = l.outcome + ": " + l.reason;
      }
      auto& held = s["held_back"];
      held[reason] = held.value(reason, 0) + 1;
    }
  }
  nlohmann::json out = nlohmann::json::object();
  for (auto& [name, s] : by) out[name] = std::move(s);
  return out;
}

int run(const simulate_options& o) {
  const auto cfg = webpushd::app::load_config(o.config);
  if (!cfg) {
    std::cerr << cfg.error().message << "\n";
    return exit_usage;
  }
  for (const auto& w : cfg->automation.warnings) std::cerr << "warning: " << w << "\n";
  std::ifstream trace(o.events);
  if (!trace) {
    std::cerr << o.events << ": cannot be read\n";
    return exit_usage;
  }
  webpushd::automation::engine_options eo;
  eo.default_locale = cfg->consent.default_locale;
  eo.default_timezone = cfg->consent.default_timezone;
  eo.shop = {cfg->automation.shop_name, cfg->automation.shop_url};
  eo.public_url = cfg->server.public_url.empty() ? "http://localhost" : cfg->server.public_url;

  scratch_dir scratch;
  auto sim = webpushd::automation::simulation::create(
      cfg->automation.scenarios, eo, cfg->events.custom_types, scratch.path() / "simulation.db",
      std::make_shared<const webpushd::pacing::policy>(cfg->pacing.policy));
  if (!sim) {
    std::cerr << "simulate: " << sim.error().message << "\n";
    return exit_usage;
  }
  std::optional<webpushd::time_point> until;
  if (!o.until.empty()) {
    until = webpushd::ingest::parse_rfc3339(o.until);
    if (!until) {
      std::cerr << "--until: not an RFC 3339 date-time: " << o.until << "\n";
      return exit_usage;
    }
  }
  if (auto r = (*sim)->apply_trace(trace, until); !r) {
    std::cerr << o.events << ": " << r.error().message << (r.error().field.empty() ? "" : " (" + r.error().field + ")")
              << "\n";
    return exit_usage;
  }
  if (until) {
    if (auto r = (*sim)->advance_to(*until); !r) {
      std::cerr << "simulate: " << r.error().message << "\n";
      return exit_usage;
    }
  } else if (auto r = (*sim)->run_to_end(); !r) {
    std::cerr << "simulate: " << r.error().message << "\n";
    return exit_usage;
  }
  auto lines = (*sim)->lines();
  if (!lines) {
    std::cerr << "simulate: " << lines.error().message << "\n";
    return exit_usage;
  }
  if (o.json) {
    nlohmann::json out{{"timeline", nlohmann::json::array()}, {"summary", summarize(*lines)}};
    for (const auto& l : *lines) {
      nlohmann::json j{{"at", webpushd::format_rfc3339(l.at)}, {"person", l.person}, {"scenario", l.scenario},
                       {"outcome", l.outcome}};
      if (!l.step.empty()) j["step"] = l.step;
      if (!l.reason.empty()) j["reason"] = l.reason;
      if (!l.subscription.empty()) j["subscription_id"] = l.subscription;
      if (!l.variant.empty()) j["variant"] = l.variant;
      if (!l.message.is_null()) j["message"] = l.message;
      out["timeline"].push_back(std::move(j));
    }
    std::cout << out.dump(2) << "\n";
    return exit_ok;
  }
  std::cout << webpushd::automation::format_simulation(*lines);
  std::cout << "\nsummary\n";
  const auto summary = summarize(*lines);  // named: items() of a temporary would dangle
  for (const auto& [name, s] : summary.items()) {
    std::cout << "  " << name << ": " << s["entered"] << " entered, " << s["sent"] << " sent, " << s["deferred"]
              << " deferred, " << s["exited"] << " exited, " << s["completed"] << " completed, " << s["unsubscribed"]
              << " unsubscribes attributed\n";
    for (const auto& [reason, n] : s["held_back"].items()) std::cout << "    " << n << " × " << reason << "\n";
    for (const auto& [step, by_variant] : s["sent_by_variant"].items()) {
      std::cout << "    " << step << " sent by variant:";
      std::string separator = " ";
      for (const auto& [variant, n] : by_variant.items()) {
        std::cout << separator << variant << " " << n;
        separator = ", ";
      }
      std::cout << "\n";
    }
  }
  std::cout << "(times are UTC; nothing was sent)\n";
  return exit_ok;
}

}  // namespace

void add_simulate_command(CLI::App& app) {
  auto o = std::make_shared<simulate_options>();
  auto* cmd = app.add_subcommand(
      "simulate",
      "replay a trace of shop events against a config's scenarios in virtual time and print, per person, which\n"
      "messages would be sent when, and which were held back and why (consent, conditions, exits, lateness,\n"
      "frequency caps and quiet hours: the config's pacing), and which unsubscribes count against which push.\n"
      "Nothing is sent. Trace format (JSON Lines): docs/SCENARIOS.md, 'Trying a scenario'.");
  cmd->add_option("--config", o->config, "the daemon's configuration (its scenario files are used)")->required();
  cmd->add_option("--events", o->events, "the trace: one JSON object per line (events as POST /v1/events takes them, "
                                         "plus subscribe/consent/unsubscribe/link lines)")
      ->required();
  cmd->add_option("--until", o->until, "stop the clock here (RFC 3339); default: run every pending step to its end");
  cmd->add_flag("--json", o->json, "print the timeline and summary as JSON");
  cmd->callback([o] {
    const int rc = run(*o);
    if (rc != exit_ok) throw CLI::RuntimeError(rc);
  });
}

}  // namespace webpushctl
