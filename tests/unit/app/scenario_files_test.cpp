#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "webpushd/app/config.hpp"
#include "webpushd/app/scenario_files.hpp"

using namespace webpushd::app;

namespace {

const std::filesystem::path examples = std::filesystem::path(WEBPUSHD_SOURCE_DIR) / "examples";

std::string all(const scenario_files_result& r) {
  std::string out;
  for (const auto& f : r.findings) out += (f.is_error() ? "error " : "warning ") + f.to_string() + "\n";
  return out;
}

// A scratch folder, removed at the end of the test.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() / ("webpushd-scenarios-" + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::filesystem::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name, std::ios::binary) << text;
    return path / name;
  }
};

// The environment of the shipped example config (its categories).
webpushd::automation::scenario_environment example_environment() {
  const auto cfg = load_config_without_scenarios(examples / "shop.yaml");
  REQUIRE_MESSAGE(cfg.has_value(), (cfg ? "" : cfg.error().message));
  return scenario_environment_for(*cfg);
}

scenario_files_result check(const std::string& text) {
  return check_scenario_text(text, "promo.yaml", example_environment());
}

// The one finding whose FILE:LINE:COL: path: message starts as `where`.
void expect_finding(const scenario_files_result& r, const std::string& where, const std::string& message_part,
                    bool error = true) {
  bool found = false;
  for (const auto& f : r.findings) {
    const auto text = f.to_string();
    if (text.rfind(where, 0) == 0 && text.find(message_part) != std::string::npos && f.is_error() == error) found = true;
  }
  CHECK_MESSAGE(found, "expected '" << where << " … " << message_part << "'; got:\n" << all(r));
}

const std::string header = "version: 1\nscenarios:\n";

// A valid scenario to break one line at a time (line numbers below count from 1).
const std::string good =
    header +                                            // 1-2
    "  - name: promo\n"                                 // 3
    "    category: promotions\n"                        // 4
    "    trigger:\n"                                    // 5
    "      event: cart_updated\n"                       // 6
    "      when:\n"                                     // 7
    "        - cart.total >= 100\n"                     // 8
    "    steps:\n"                                      // 9
    "      - name: first\n"                             // 10
    "        after: 1h\n"                               // 11
    "        message:\n"                                // 12
    "          title: \"Your {{cart.total_text}}\"\n"   // 13
    "      - name: second\n"                            // 14
    "        after: 2h\n"                               // 15
    "        message:\n"                                // 16
    "          title: Still there\n";                   // 17

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, from);
  return text.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("every example scenario loads clean through the real loader") {
  const auto env = example_environment();
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(examples / "scenarios")) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 7);
  for (const auto& file : files) {
    CAPTURE(file);
    const auto one = load_scenario_files({file}, env);
    CHECK_MESSAGE(one.ok(), all(one));
    CHECK_MESSAGE(one.findings.empty(), all(one));
    CHECK(one.scenarios.size() >= 1);
    // Also without a config, as `webpushctl scenarios check FILE` runs.
    const auto builtin = load_scenario_files({file}, builtin_scenario_environment());
    CHECK_MESSAGE(builtin.findings.empty(), all(builtin));
  }
  const auto together = load_scenario_files(files, env);
  CHECK_MESSAGE(together.findings.empty(), all(together));
  CHECK(together.scenarios.size() == files.size());
}

TEST_CASE("the example config loads its scenarios, with the UTM settings") {
  const auto cfg = load_config(examples / "shop.yaml");
  REQUIRE_MESSAGE(cfg.has_value(), (cfg ? "" : cfg.error().message));
  REQUIRE(cfg->automation.scenarios != nullptr);
  const auto& set = *cfg->automation.scenarios;
  CHECK(set.scenarios.size() == cfg->automation.scenario_files.size());
  CHECK(cfg->automation.warnings.empty());
  for (const auto* name : {"abandoned_cart", "browse_abandonment", "review_request", "back_in_stock", "price_drop",
                           "welcome", "win_back"}) {
    CHECK_MESSAGE(set.find(name) != nullptr, name);
  }
  CHECK(set.find("abandoned_cart")->source_file == (examples / "scenarios" / "abandoned_cart.yaml").string());
  CHECK(set.utm.campaign == "{{scenario.name}}");
  CHECK(set.utm.source == "webpush");
  CHECK(cfg->automation.shop_url == "https://www.example-shop.com");
}

TEST_CASE("a config without scenario files has an empty set") {
  const auto cfg = parse_config("vapid:\n  subject: mailto:ops@shop.example\n", "shop.yaml", "/etc/webpushd");
  REQUIRE(cfg.has_value());
  REQUIRE(cfg->automation.scenarios != nullptr);
  CHECK(cfg->automation.scenarios->scenarios.empty());
}

TEST_CASE("the valid sample is valid") {
  const auto r = check(good);
  CHECK_MESSAGE(r.ok(), all(r));
  CHECK_MESSAGE(r.findings.empty(), all(r));
}

TEST_CASE("broken files: FILE:LINE:COL: path: message at the right line") {
  SUBCASE("a bad duration") {
    const auto r = check(replace(good, "after: 1h", "after: 1 hour"));
    expect_finding(r, "promo.yaml:11:16: scenarios.0.steps.0.after: ",
                   "'1 hour' is not valid: A duration: digits and a unit");
  }
  SUBCASE("a duration that is a number") {
    const auto r = check(replace(good, "after: 1h", "after: 60"));
    expect_finding(r, "promo.yaml:11:16: scenarios.0.steps.0.after: ", "expected text, found a number: A duration");
  }
  SUBCASE("an unknown key, at the key, with the keys allowed there") {
    const auto r = check(replace(good, "        after: 2h\n", "        after: 2h\n        delay: 2h\n"));
    expect_finding(r, "promo.yaml:16:9: scenarios.0.steps.1.delay: ", "unknown key (allowed here: after, category");
  }
  SUBCASE("an unknown key is reported beside other errors of the same object") {
    const auto r = check(replace(replace(good, "    category: promotions\n", "    category: promotions\n    priorty: 5\n"),
                                 "event: cart_updated", "event: 5"));
    expect_finding(r, "promo.yaml:5:5: scenarios.0.priorty: ", "unknown key");
    expect_finding(r, "promo.yaml:7:14: scenarios.0.trigger.event: ", "expected text, found a number");
  }
  SUBCASE("a missing required key, at its parent") {
    const auto r = check(replace(good, "          title: Still there\n", "          body: Still there\n"));
    expect_finding(r, "promo.yaml:17:11: scenarios.0.steps.1.message: ", "missing required key 'title'");
  }
  SUBCASE("a value out of a list") {
    const auto r = check(replace(good, "        after: 2h\n", "        after: 2h\n        urgency: asap\n"));
    expect_finding(r, "promo.yaml:16:18: scenarios.0.steps.1.urgency: ",
                   "'asap' is not one of: very-low, low, normal, high");
  }
  SUBCASE("a bad locale tag, at the key") {
    const auto r = check(good + "          locales:\n            pl_PL:\n              title: Nadal tu\n");
    expect_finding(r, "promo.yaml:19:13: scenarios.0.steps.1.message.locales.pl_PL: ", "'pl_PL' is not a valid key here");
  }
  SUBCASE("the version") {
    const auto r = check(replace(good, "version: 1", "version: 2"));
    expect_finding(r, "promo.yaml:1:10: version: ", "must be 1");
  }
  SUBCASE("an unknown consent category") {
    const auto r = check(replace(good, "category: promotions", "category: newsletter"));
    expect_finding(r, "promo.yaml:4:15: scenarios.0.category: ",
                   "consent category 'newsletter' is not in the config's consent.categories (they are: cart_reminders,");
  }
  SUBCASE("a condition's syntax, with the column inside the condition") {
    const auto r = check(replace(good, "cart.total >= 100", "cart.total => 100"));
    expect_finding(r, "promo.yaml:8:11: scenarios.0.trigger.when.0: ",
                   "condition 'cart.total => 100': column 12: expected an operator");
  }
  SUBCASE("a template field the trigger can never provide") {
    const auto r = check(replace(good, "title: Still there", "title: \"{{product.name}} is waiting\""));
    expect_finding(r, "promo.yaml:17:18: scenarios.0.steps.1.message.title: ",
                   "{{product.name}}: a cart_updated event never provides product.name");
  }
  SUBCASE("an optional field used bare is a warning, and the file still loads") {
    const auto r = check(replace(good, "title: Still there", "title: \"Back to {{cart.url}}\""));
    expect_finding(r, "promo.yaml:17:18: scenarios.0.steps.1.message.title: ", "{{cart.url}} may be missing", false);
    CHECK(r.ok());
    CHECK(r.scenarios.size() == 1);
  }
  SUBCASE("steps out of order") {
    const auto r = check(replace(good, "after: 2h", "after: 30m"));
    expect_finding(r, "promo.yaml:15:16: scenarios.0.steps.1.after: ",
                   "steps must be in order of time: 30m is not later than step 'first' (1h)");
  }
  SUBCASE("YAML syntax") {
    const auto r = check(replace(good, "      event: cart_updated\n", "      event: [cart_updated\n"));
    REQUIRE_FALSE(r.findings.empty());
    CHECK(r.findings[0].line > 0);
    CHECK(r.findings[0].path.empty());
    CHECK(r.findings[0].to_string().rfind("promo.yaml:", 0) == 0);
  }
  SUBCASE("an empty file") {
    const auto r = check("");
    expect_finding(r, "promo.yaml: ", "the file is empty");
  }
  SUBCASE("findings are in line order") {
    const auto r = check(replace(replace(good, "after: 2h", "after: 30m"), "category: promotions", "category: x"));
    REQUIRE(r.findings.size() == 2);
    CHECK(r.findings[0].line == 4);
    CHECK(r.findings[1].line == 15);
  }
}

// The sample with its second step as an A/B test (lines 1-15 as above).
const std::string with_variants =
    good.substr(0, good.rfind("        message:\n")) +
    "        variants:\n"                                   // 16
    "          - name: a\n"                                 // 17
    "            weight: 50\n"                              // 18
    "            message:\n"                                // 19
    "              title: Still there\n"                    // 20
    "          - name: b\n"                                 // 21
    "            weight: 50\n"                              // 22
    "            message:\n"                                // 23
    "              title: \"Still {{cart.total_text}}\"\n"  // 24
    "              url: \"https://shop.example/?v={{variant}}\"\n";  // 25

TEST_CASE("A/B variants: a step with variants loads them; every mistake is found at its line and column") {
  SUBCASE("valid: the variants in order, with their weights and messages; {{variant}} is a step field") {
    const auto r = check(with_variants);
    CHECK_MESSAGE(r.findings.empty(), all(r));
    REQUIRE(r.scenarios.size() == 1);
    const auto& step = r.scenarios[0].steps[1];
    REQUIRE(step.variants.size() == 2);
    CHECK(step.variants[0].name == "a");
    CHECK(step.variants[0].weight == 50);
    CHECK(step.variants[0].message.fields.title == "Still there");
    CHECK(step.variants[1].name == "b");
    CHECK(step.variants[1].message.fields.url == "https://shop.example/?v={{variant}}");
    CHECK(r.scenarios[0].steps[0].variants.empty());
  }
  SUBCASE("both a message and variants") {
    const auto r = check(replace(with_variants, "        after: 2h\n", "        after: 2h\n        message:\n          title: X\n"));
    expect_finding(r, "promo.yaml:19:11: scenarios.0.steps.1.variants: ", "either a message or variants, not both");
  }
  SUBCASE("neither a message nor variants") {
    const auto r = check(replace(good, "        message:\n          title: Still there\n", "        urgency: low\n"));
    expect_finding(r, "promo.yaml:14:9: scenarios.0.steps.1: ", "a step needs a message (or variants");
  }
  SUBCASE("one variant") {
    const auto at = with_variants.find("          - name: b\n");
    const auto r = check(with_variants.substr(0, at));
    expect_finding(r, "promo.yaml:17:11: scenarios.0.steps.1.variants: ", "1 entry, at least 2: An A/B test");
  }
  SUBCASE("eleven variants") {
    std::string text = replace(with_variants, "          - name: b\n", "          - name: b0\n");
    for (int i = 1; i < 10; ++i) {
      text += "          - name: b" + std::to_string(i) + "\n            weight: 1\n            message:\n              title: X\n";
    }
    expect_finding(check(text), "promo.yaml:17:11: scenarios.0.steps.1.variants: ", "11 entries, at most 10");
  }
  SUBCASE("a name used twice") {
    const auto r = check(replace(with_variants, "- name: b\n", "- name: a\n"));
    expect_finding(r, "promo.yaml:21:19: scenarios.0.steps.1.variants.1.name: ",
                   "variant name 'a' is already used by variant 0 of this step; names must be unique");
  }
  SUBCASE("a name that is not one") {
    const auto r = check(replace(with_variants, "- name: b\n", "- name: Variant B\n"));
    expect_finding(r, "promo.yaml:21:19: scenarios.0.steps.1.variants.1.name: ",
                   "'Variant B' is not valid: A variant's name: 1 to 32 lower-case letters");
  }
  SUBCASE("a weight of 0, a negative one, one too large, one that is text") {
    expect_finding(check(replace(with_variants, "- name: b\n            weight: 50", "- name: b\n            weight: 0")),
                   "promo.yaml:22:21: scenarios.0.steps.1.variants.1.weight: ",
                   "'0' is out of range: A variant's share of the journeys: a positive number");
    expect_finding(check(replace(with_variants, "weight: 50", "weight: -5")),
                   "promo.yaml:18:21: scenarios.0.steps.1.variants.0.weight: ", "'-5' is out of range");
    expect_finding(check(replace(with_variants, "weight: 50", "weight: 2000000")),
                   "promo.yaml:18:21: scenarios.0.steps.1.variants.0.weight: ", "'2000000' is out of range");
    expect_finding(check(replace(with_variants, "weight: 50", "weight: half")),
                   "promo.yaml:18:21: scenarios.0.steps.1.variants.0.weight: ", "expected a number, found text");
  }
  SUBCASE("a missing weight") {
    const auto r = check(replace(with_variants, "            weight: 50\n            message:\n              title: Still there",
                                 "            message:\n              title: Still there"));
    expect_finding(r, "promo.yaml:17:13: scenarios.0.steps.1.variants.0: ", "missing required key 'weight'");
  }
  SUBCASE("template errors inside a variant point at the variant's field") {
    const auto r = check(replace(with_variants, "title: \"Still {{cart.total_text}}\"",
                                 "title: \"Still {{product.name}} {{#cart}}\""));
    expect_finding(r, "promo.yaml:24:22: scenarios.0.steps.1.variants.1.message.title: ", "unclosed section");
    const auto lint = check(replace(with_variants, "title: \"Still {{cart.total_text}}\"", "title: \"Still {{product.name}}\""));
    expect_finding(lint, "promo.yaml:24:22: scenarios.0.steps.1.variants.1.message.title: ",
                   "{{product.name}}: a cart_updated event never provides product.name");
    const auto link = check(replace(with_variants, "url: \"https://shop.example/?v={{variant}}\"", "url: /cart"));
    expect_finding(link, "promo.yaml:25:20: scenarios.0.steps.1.variants.1.message.url: ", "'/cart' is not a link");
  }
  SUBCASE("an unknown key in a variant") {
    const auto r = check(replace(with_variants, "            weight: 50\n            message:\n              title: Still there",
                                 "            weight: 50\n            share: 3\n            message:\n              title: Still there"));
    expect_finding(r, "promo.yaml:19:13: scenarios.0.steps.1.variants.0.share: ", "unknown key (allowed here: message, name, weight)");
  }
  SUBCASE("{{variant}} in a step without variants is empty, not an error; in a trigger condition it is") {
    CHECK(check(replace(good, "title: Still there", "title: \"Still there{{variant}}\"")).findings.empty());
    const auto r = check(replace(good, "cart.total >= 100", "variant == \"b\""));
    expect_finding(r, "promo.yaml:8:11: scenarios.0.trigger.when.0: ", "variant is known only in a step");
  }
}

TEST_CASE("files on disk: unreadable ones, names unique across files") {
  temp_dir dir;
  const auto a = dir.write("a.yaml", good);
  const auto b = dir.write("b.yaml", "# the same name again\n" + good);
  SUBCASE("a missing file") {
    const auto r = load_scenario_files({dir.path / "nope.yaml"}, builtin_scenario_environment());
    CHECK(r.unreadable);
    CHECK_FALSE(r.ok());
    REQUIRE(r.findings.size() == 1);
    CHECK(r.findings[0].to_string() == (dir.path / "nope.yaml").string() + ": cannot be read (no such file)");
  }
  SUBCASE("a folder is not a file") {
    const auto r = load_scenario_files({dir.path}, builtin_scenario_environment());
    CHECK(r.unreadable);
  }
  SUBCASE("one name in two files") {
    const auto r = load_scenario_files({a, b}, builtin_scenario_environment());
    CHECK_FALSE(r.unreadable);
    expect_finding(r, b.string() + ":4:11: scenarios.0.name: ",
                   "scenario name 'promo' is already used in " + a.string() + ":3:11");
  }
}

TEST_CASE("load_config reads the scenario files it lists") {
  temp_dir dir;
  const std::string base = "vapid:\n  subject: mailto:ops@shop.example\n"
                           "consent:\n  categories:\n    - name: promotions\n      texts:\n        en:\n"
                           "          label: Promotions\n";
  SUBCASE("errors fail the load, each as FILE:LINE:COL: path: message") {
    dir.write("promo.yaml", replace(replace(good, "after: 2h", "after: 30m"), "title: Still there",
                                    "title: \"{{cart.url}}\""));
    const auto cfg = dir.write("shop.yaml", base + "automation:\n  scenario_files: [promo.yaml]\n");
    const auto c = load_config(cfg);
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().code == "config_invalid");
    const auto file = (dir.path / "promo.yaml").string();
    CHECK_MESSAGE(c.error().message == file + ":15:16: scenarios.0.steps.1.after: steps must be in order of time: 30m "
                                              "is not later than step 'first' (1h)",
                  c.error().message);
  }
  SUBCASE("warnings are kept in the config") {
    dir.write("promo.yaml", replace(good, "title: Still there", "title: \"{{cart.url}}\""));
    const auto cfg = dir.write("shop.yaml", base + "automation:\n  scenario_files: [promo.yaml]\n");
    const auto c = load_config(cfg);
    REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().message));
    REQUIRE(c->automation.warnings.size() == 1);
    CHECK(c->automation.warnings[0].find("promo.yaml:17:18: scenarios.0.steps.1.message.title: {{cart.url}} may be "
                                         "missing") != std::string::npos);
    CHECK(c->automation.scenarios->scenarios.size() == 1);
  }
  SUBCASE("categories come from the config; a file that is missing fails the load") {
    dir.write("promo.yaml", replace(good, "category: promotions", "category: cart_reminders"));
    const auto c = load_config(dir.write("shop.yaml", base + "automation:\n  scenario_files: [promo.yaml, gone.yaml]\n"));
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().message.find("promo.yaml:4:15: scenarios.0.category: consent category 'cart_reminders'") !=
          std::string::npos);
    CHECK(c.error().message.find("gone.yaml: cannot be read") != std::string::npos);
  }
  SUBCASE("custom event types from the config are known to scenarios") {
    dir.write("wish.yaml", header +
                               "  - name: wish\n    category: promotions\n    trigger:\n      event: wishlist_added\n"
                               "    steps:\n      - name: one\n        after: 1d\n        message:\n"
                               "          title: \"{{properties.sku}} is on your list\"\n");
    const auto c = load_config(dir.write(
        "shop.yaml", base + "events:\n  custom_types:\n    wishlist_added:\n      type: object\n"
                            "      required: [sku]\n      properties:\n        sku: {type: string}\n"
                            "automation:\n  scenario_files: [wish.yaml]\n"));
    REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().message));
    CHECK(c->automation.warnings.empty());
    CHECK(c->automation.scenarios->find("wish") != nullptr);
  }
  SUBCASE("a broken UTM template") {
    const auto c = load_config(dir.write("shop.yaml", base + "automation:\n  utm:\n    campaign: \"{{#scenario.name}}\"\n"));
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:11:15: automation.utm.campaign: ") != std::string::npos,
                  c.error().message);
  }
}

TEST_CASE("the embedded schema is the file in schemas/") {
  std::ifstream in(std::filesystem::path(WEBPUSHD_SOURCE_DIR) / "schemas" / "scenarios.schema.json", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(scenarios_schema_text() == text);
}
