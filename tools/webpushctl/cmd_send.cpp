// webpushctl send: encrypt, sign and deliver one message to one subscription,
// retrying temporary failures, and report what the push service said.
#include <CLI/CLI.hpp>

#include <chrono>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"
#include "webpushd/core/random.hpp"
#include "webpushd/delivery/classify.hpp"
#include "webpushd/delivery/endpoint_rules.hpp"
#include "webpushd/delivery/push_request.hpp"
#include "webpushd/delivery/retry.hpp"
#include "webpushd/delivery/sender.hpp"
#include "webpushd/webpush/content_encryption.hpp"
#include "webpushd/webpush/subscription_keys.hpp"
#include "webpushd/webpush/vapid.hpp"

namespace webpushctl {
namespace {

namespace delivery = webpushd::delivery;
namespace webpush = webpushd::webpush;
using webpushd::result;

struct send_options {
  std::string key_file;
  std::string subject;
  std::string subscription = "-";
  std::string payload;
  std::string payload_file;
  std::int64_t ttl = 86400;
  std::string urgency;
  std::string topic;
  bool insecure = false;
  std::vector<std::string> allow_hosts;
  int retries = 3;
  int max_wait = 60;
  int timeout_ms = 30000;
};

/// The parts of a browser's PushSubscription (its toJSON()) that sending needs.
struct subscription {
  std::string endpoint;
  std::string p256dh;
  std::string auth;
};

// Input files are small JSON or text; a cap keeps a wrong path (a log, a
// device) from being read whole.
constexpr std::size_t max_input_bytes = 1 << 20;

result<std::string> read_input(const std::string& name, const char* what) {
  std::ifstream file;
  if (name != "-") {
    file.open(name, std::ios::binary);
    if (!file) return webpushd::fail("unreadable_input", std::string("cannot read ") + what + " file " + name, what);
  }
  std::istream& in = name == "-" ? std::cin : file;
  std::string text;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_input_bytes) return webpushd::fail("input_too_large", std::string(what) + " is over 1 MiB", what);
  }
  return text;
}

result<subscription> parse_subscription(const std::string& text) {
  const auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return webpushd::fail("invalid_subscription", "the subscription is not a JSON object", "subscription");
  }
  const auto string_at = [&](const nlohmann::json& obj, const char* key) -> const std::string* {
    const auto it = obj.find(key);
    return it != obj.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
  };
  const auto* endpoint = string_at(json, "endpoint");
  if (!endpoint) return webpushd::fail("invalid_subscription", "the subscription has no \"endpoint\" string", "endpoint");
  const auto keys = json.find("keys");
  if (keys == json.end() || !keys->is_object()) {
    return webpushd::fail("invalid_subscription", "the subscription has no \"keys\" object", "keys");
  }
  const auto* p256dh = string_at(*keys, "p256dh");
  const auto* auth = string_at(*keys, "auth");
  if (!p256dh || !auth) {
    return webpushd::fail("invalid_subscription", "the subscription's keys need \"p256dh\" and \"auth\" strings", "keys");
  }
  return subscription{*endpoint, *p256dh, *auth};
}

int input_error(const webpushd::error& e) {
  std::cerr << "webpushctl send: " << e.message;
  if (!e.field.empty()) std::cerr << " (" << e.field << ")";
  std::cerr << "\n";
  return exit_usage;
}

std::string seconds_text(std::chrono::milliseconds d) {
  std::ostringstream out;
  out.precision(1);
  out << std::fixed << static_cast<double>(d.count()) / 1000.0 << " s";
  return out.str();
}

delivery::http_response send_once(delivery::sender& s, delivery::push_request req) {
  auto promise = std::make_shared<std::promise<delivery::http_response>>();
  auto future = promise->get_future();
  s.submit(std::move(req), [promise](delivery::http_response r) { promise->set_value(std::move(r)); });
  return future.get();
}

int run_send(const send_options& opt) {
  // Everything that can be wrong with the input is checked before any
  // network traffic, and reported with exit code 1.
  auto sub_text = read_input(opt.subscription, "subscription");
  if (!sub_text) return input_error(sub_text.error());
  auto sub = parse_subscription(*sub_text);
  if (!sub) return input_error(sub.error());

  std::string payload = opt.payload;
  if (!opt.payload_file.empty()) {
    auto text = read_input(opt.payload_file, "payload");
    if (!text) return input_error(text.error());
    payload = std::move(*text);
  }
  if (auto v = delivery::validate_ttl(opt.ttl); !v) return input_error(v.error());
  if (auto v = delivery::validate_urgency(opt.urgency); !v) return input_error(v.error());
  if (auto v = delivery::validate_topic(opt.topic); !v) return input_error(v.error());

  auto rules = delivery::default_endpoint_rules();
  rules.allowed_hosts.insert(rules.allowed_hosts.end(), opt.allow_hosts.begin(), opt.allow_hosts.end());
  rules.allow_http = opt.insecure;
  rules.allow_private_addresses = opt.insecure;
  auto ep = delivery::check_endpoint(sub->endpoint, rules);
  if (!ep) {
    input_error(ep.error());
    if (ep.error().code == "endpoint_not_allowed") {
      std::cerr << "hint: --allow-host HOST adds a push service; --insecure permits http and private addresses (tests only)\n";
    }
    return exit_usage;
  }

  auto keys = webpush::parse_subscription_keys(sub->p256dh, sub->auth);
  if (!keys) return input_error(keys.error());
  auto key = webpush::vapid_key::load_pem_file(opt.key_file);
  if (!key) return input_error(key.error());
  static const webpushd::system_clock wall_clock;
  auto signer = webpush::vapid_signer::create(std::move(*key), opt.subject, wall_clock);
  if (!signer) return input_error(signer.error());
  auto audience = webpush::audience_of(sub->endpoint);
  if (!audience) return input_error(audience.error());

  webpush::content_encryptor encryptor;
  auto body = encryptor.encrypt(*keys, webpushd::as_bytes(payload));
  if (!body) return input_error(body.error());

  delivery::sender_options sopt;
  sopt.rules = rules;
  sopt.max_in_flight = 1;
  sopt.request_timeout = std::chrono::milliseconds{opt.timeout_ms};
  delivery::sender sender(std::move(sopt));

  delivery::retry_policy policy;
  policy.max_attempts = opt.retries + 1;
  policy.base = std::chrono::milliseconds{1000};
  policy.cap = std::chrono::seconds{opt.max_wait};
  webpushd::prng_source rng;

  for (int attempt = 1;; ++attempt) {
    delivery::push_request req;
    req.endpoint = sub->endpoint;
    req.authorization = (*signer)->authorization(*audience);
    req.body = *body;
    req.ttl_seconds = static_cast<std::int32_t>(opt.ttl);
    req.urgency = opt.urgency;
    req.topic = opt.topic;
    const auto resp = send_once(sender, std::move(req));
    const auto c = delivery::classify(resp, wall_clock.now());
    switch (c.kind) {
      case delivery::outcome::accepted:
        std::cout << "accepted: HTTP " << resp.status << "\n";
        if (!resp.location.empty()) std::cout << "Location: " << resp.location << "\n";
        return exit_ok;
      case delivery::outcome::gone:
        std::cerr << "gone: " << c.reason << "; remove this subscription\n";
        return exit_gone;
      case delivery::outcome::payload_too_large:
      case delivery::outcome::rejected:
        std::cerr << "rejected: " << c.reason << "\n";
        if (resp.blocked) std::cerr << "detail: " << resp.transport_message << "\n";
        return exit_rejected;
      case delivery::outcome::rate_limited:
      case delivery::outcome::temporary_failure:
        break;
    }
    std::cerr << "attempt " << attempt << ": " << c.reason;
    if (resp.status == 0 && !resp.transport_message.empty()) std::cerr << " (" << resp.transport_message << ")";
    if (!policy.may_retry(attempt)) {
      std::cerr << "; giving up after " << attempt << (attempt == 1 ? " attempt\n" : " attempts\n");
      return exit_temporary;
    }
    const auto delay = policy.delay_for(c, attempt, rng);
    // A CLI waits interactively: a Retry-After beyond --max-wait ends the
    // command instead of hanging for hours.
    if (delay > std::chrono::seconds{opt.max_wait}) {
      std::cerr << "; the push service asks to wait " << seconds_text(delay) << ", more than --max-wait\n";
      return exit_temporary;
    }
    std::cerr << "; retrying in " << seconds_text(delay) << "\n";
    std::this_thread::sleep_for(delay);
  }
}

}  // namespace

void add_send_command(CLI::App& app) {
  auto opt = std::make_shared<send_options>();
  auto* cmd = app.add_subcommand("send", "Encrypt, sign and send one message to one subscription");
  cmd->footer(
      "The subscription is the JSON of a browser's PushSubscription: {\"endpoint\":…,\"keys\":{\"p256dh\":…,\"auth\":…}}.\n"
      "Endpoints must be https on a known push service (FCM, Mozilla, Apple, Windows) or a host given with\n"
      "--allow-host. --insecure additionally permits plain-http endpoints AND loopback/private/link-local\n"
      "target addresses: for local emulators and tests only, never against untrusted subscriptions.\n"
      "Temporary failures (5xx, 429, timeouts, connection errors) are retried with exponential backoff,\n"
      "honouring Retry-After.\n"
      "Exit codes: 0 accepted, 1 usage or input error, 2 rejected permanently (4xx, 413),\n"
      "3 subscription gone (404/410), 4 temporary failure after retries.");
  cmd->add_option("--key", opt->key_file, "VAPID private key (PEM), as written by 'vapid generate'")->required();
  cmd->add_option("--subject", opt->subject, "VAPID subject: mailto:address or https: URL")->required();
  cmd->add_option("--subscription", opt->subscription, "PushSubscription JSON file, or - for stdin")->required();
  auto* text = cmd->add_option("--payload", opt->payload, "message text (at most 3993 bytes)");
  auto* file = cmd->add_option("--payload-file", opt->payload_file, "read the message from a file");
  text->excludes(file);
  file->excludes(text);
  cmd->add_option("--ttl", opt->ttl, "seconds the push service keeps an undelivered message (0..2592000)")
      ->capture_default_str();
  cmd->add_option("--urgency", opt->urgency, "very-low | low | normal | high (omitted: the service's default)");
  cmd->add_option("--topic", opt->topic, "replaces an undelivered message with the same topic (≤ 32 base64url chars)");
  cmd->add_flag("--insecure", opt->insecure, "permit http:// endpoints and loopback/private addresses (tests only)");
  cmd->add_option("--allow-host", opt->allow_hosts, "also allow this push service host (exact, or *.suffix); repeatable");
  cmd->add_option("--retries", opt->retries, "retries after the first attempt for temporary failures")
      ->check(CLI::Range(0, 20))
      ->capture_default_str();
  cmd->add_option("--max-wait", opt->max_wait, "longest wait in seconds between attempts")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  cmd->add_option("--timeout-ms", opt->timeout_ms, "per-request timeout in milliseconds")
      ->check(CLI::Range(100, 600000))
      ->capture_default_str();
  cmd->callback([opt] {
    if (opt->payload_file.empty() && opt->payload.empty()) {
      std::cerr << "webpushctl send: one of --payload or --payload-file is required\n";
      throw CLI::RuntimeError(exit_usage);
    }
    // The sender and all OpenSSL state are gone before the exit code is raised.
    if (const int rc = run_send(*opt); rc != exit_ok) throw CLI::RuntimeError(rc);
  });
}

}  // namespace webpushctl
