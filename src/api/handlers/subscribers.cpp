// The subscriber, consent and GDPR routes (docs/API.md). Each handler reads
// the body, builds the consent module's request, and answers from the
// service's callback — which runs after the change is committed.
#include "webpushd/api/subscriber_routes.hpp"

#include <nlohmann/json.hpp>

#include "json_body.hpp"
#include "webpushd/core/bytes.hpp"
#include "webpushd/crypto/primitives.hpp"

namespace webpushd::api {
namespace {

using nlohmann::json;
using handlers::json_object_body;
using handlers::optional_string;
using handlers::required_object;
using handlers::required_string;
using handlers::required_string_array;

// Turns an error result into its response; nullopt when it holds a value.
template <class T>
bool answer_error(const result<T>& r, const respond_fn& respond) {
  if (r) return false;
  respond(error_response(r.error()));
  return true;
}

// The consent module names fields as POST /v1/subscriptions and its own
// records do ("consent.categories", "source", "subscription_id"); an error
// must name the field of the request that was sent. Renames `from` — the
// whole field or its leading part before '.' or '[' — to `to`.
std::string renamed_field(const std::string& field, std::string_view from, std::string_view to) {
  if (!field.starts_with(from)) return field;
  std::string_view rest = std::string_view(field).substr(from.size());
  if (!rest.empty() && rest.front() != '.' && rest.front() != '[') return field;
  if (to.empty() && !rest.empty() && rest.front() == '.') rest.remove_prefix(1);
  return std::string(to) + std::string(rest);
}

template <class T>
void rename_field(result<T>& r, std::string_view from, std::string_view to) {
  if (!r.has_value()) r.error().field = renamed_field(r.error().field, from, to);
}

// Where a browser request came from, for the consent ledger: the page URL the
// SDK sends, else the Origin the browser sets — when it is one: "null"
// (sandboxed frames, privacy settings) names no page, and must not make the
// request fail (an unsubscription above all).
consent::request_origin browser_origin(const request& req, const std::string& source_url) {
  if (!source_url.empty()) return {source_url, req.remote_ip};
  // Browsers serialise an origin's scheme in lower case.
  auto origin = req.header("Origin");
  if (!origin.starts_with("https://") && !origin.starts_with("http://")) origin = "browser";
  return {std::move(origin), req.remote_ip};
}

consent::request_origin backend_origin(const request& req) {
  return {"backend:" + req.api_key_name, req.remote_ip};
}

json categories_json(const std::vector<std::string>& categories) { return json(categories); }

// `subscription: {endpoint, keys: {p256dh, auth}}` as the browser's PushSubscription.toJSON() gives it.
struct push_subscription_fields {
  std::string endpoint, p256dh, auth;
};
result<push_subscription_fields> read_push_subscription(const json& body) {
  auto sub = required_object(body, "subscription", "subscription");
  if (!sub) return tl::unexpected(sub.error());
  auto endpoint = required_string(**sub, "endpoint", "subscription.endpoint");
  if (!endpoint) return tl::unexpected(endpoint.error());
  auto keys = required_object(**sub, "keys", "subscription.keys");
  if (!keys) return tl::unexpected(keys.error());
  auto p256dh = required_string(**keys, "p256dh", "subscription.keys.p256dh");
  if (!p256dh) return tl::unexpected(p256dh.error());
  auto auth = required_string(**keys, "auth", "subscription.keys.auth");
  if (!auth) return tl::unexpected(auth.error());
  return push_subscription_fields{std::move(*endpoint), std::move(*p256dh), std::move(*auth)};
}

void post_subscription(consent::subscriber_service& service, request&& req, respond_fn respond) {
  auto body = json_object_body(req);
  if (answer_error(body, respond)) return;
  auto sub = read_push_subscription(*body);
  if (answer_error(sub, respond)) return;
  auto consent = required_object(*body, "consent", "consent");
  if (answer_error(consent, respond)) return;
  auto categories = required_string_array(**consent, "categories", "consent.categories");
  if (answer_error(categories, respond)) return;
  auto text_version = required_string(**consent, "text_version", "consent.text_version");
  if (answer_error(text_version, respond)) return;
  auto timezone = optional_string(*body, "timezone", "timezone");
  if (answer_error(timezone, respond)) return;
  auto locale = optional_string(*body, "locale", "locale");
  if (answer_error(locale, respond)) return;
  auto source_url = optional_string(*body, "source_url", "source_url");
  if (answer_error(source_url, respond)) return;

  consent::subscribe_request r;
  r.endpoint = std::move(sub->endpoint);
  r.p256dh = std::move(sub->p256dh);
  r.auth = std::move(sub->auth);
  r.categories = std::move(*categories);
  r.text_version = std::move(*text_version);
  r.timezone = std::move(*timezone);
  r.locale = std::move(*locale);
  r.origin = browser_origin(req, *source_url);
  service.subscribe(std::move(r), [respond](result<consent::subscribe_outcome> out) {
    rename_field(out, "source", "source_url");
    if (answer_error(out, respond)) return;
    respond(json_response(out->created ? 201 : 200, {{"id", out->id}, {"token", out->token}}));
  });
}

void get_subscription(consent::subscriber_service& service, request&& req, respond_fn respond) {
  auto state = service.describe(req.params.at("id"), req.subscriber_token);
  if (answer_error(state, respond)) return;
  respond(json_response(200, {{"id", state->id},
                              {"state", state->state},
                              {"categories", categories_json(state->categories)},
                              {"text_version", state->text_version},
                              {"timezone", state->timezone},
                              {"locale", state->locale}}));
}

void put_consent(consent::subscriber_service& service, request&& req, respond_fn respond) {
  auto body = json_object_body(req);
  if (answer_error(body, respond)) return;
  auto categories = required_string_array(*body, "categories", "categories");
  if (answer_error(categories, respond)) return;
  auto text_version = required_string(*body, "text_version", "text_version");
  if (answer_error(text_version, respond)) return;
  auto source_url = optional_string(*body, "source_url", "source_url");
  if (answer_error(source_url, respond)) return;

  consent::consent_request r;
  r.id = req.params.at("id");
  r.token = req.subscriber_token;
  r.categories = std::move(*categories);
  r.text_version = std::move(*text_version);
  r.origin = browser_origin(req, *source_url);
  service.set_consent(std::move(r), [respond, id = r.id](result<consent::consent_outcome> out) {
    rename_field(out, "source", "source_url");
    rename_field(out, "consent", "");
    if (answer_error(out, respond)) return;
    respond(json_response(200, {{"id", id}, {"categories", categories_json(out->categories)}}));
  });
}

void put_endpoint(consent::subscriber_service& service, request&& req, respond_fn respond) {
  auto body = json_object_body(req);
  if (answer_error(body, respond)) return;
  auto sub = read_push_subscription(*body);
  if (answer_error(sub, respond)) return;
  consent::resubscribe_request r;
  r.id = req.params.at("id");
  r.token = req.subscriber_token;
  r.endpoint = std::move(sub->endpoint);
  r.p256dh = std::move(sub->p256dh);
  r.auth = std::move(sub->auth);
  r.origin = browser_origin(req, "");
  service.resubscribe(std::move(r), [respond](result<consent::subscribe_outcome> out) {
    if (answer_error(out, respond)) return;
    respond(json_response(200, {{"id", out->id}}));
  });
}

void post_identify(consent::subscriber_service& service, const std::string& secret, request&& req,
                   respond_fn respond) {
  if (secret.empty()) {
    respond(error_response("forbidden", "identify is not enabled: set server.identify_secret, or link customers from the backend", ""));
    return;
  }
  // The token first, as on every subscriber route: without it nobody may
  // even learn whether a signature would have been right.
  const std::string id = req.params.at("id");
  auto state = service.describe(id, req.subscriber_token);
  if (answer_error(state, respond)) return;
  auto body = json_object_body(req);
  if (answer_error(body, respond)) return;
  auto customer_id = required_string(*body, "customer_id", "customer_id");
  if (answer_error(customer_id, respond)) return;
  auto signature = required_string(*body, "signature", "signature");
  if (answer_error(signature, respond)) return;
  // The shop backend vouches for the customer id: without this, any page
  // could attach itself to any customer's data. A wrong signature is a
  // refusal (403), as for delivery reports.
  const auto expected = hex_encode(crypto::hmac_sha256(as_bytes(secret), as_bytes(*customer_id)));
  std::string presented = *signature;
  for (auto& c : presented) c = static_cast<char>(c >= 'A' && c <= 'F' ? c + 32 : c);
  if (!crypto::constant_time_equal(expected, presented)) {
    respond(error_response("forbidden", "signature is not the shop's signature of customer_id", "signature"));
    return;
  }
  service.link_customer(id, *customer_id, [respond, id, customer = *customer_id](result<void> out) {
    rename_field(out, "subscription_id", "id");
    if (answer_error(out, respond)) return;
    respond(json_response(200, {{"id", id}, {"customer_id", customer}}));
  });
}

void delete_subscription(consent::subscriber_service& service, request&& req, respond_fn respond) {
  consent::unsubscribe_request r;
  r.id = req.params.at("id");
  r.token = req.subscriber_token;
  r.origin = browser_origin(req, "");
  service.unsubscribe(std::move(r), [respond](result<void> out) {
    if (answer_error(out, respond)) return;
    response res;
    res.status = 204;
    res.content_type.clear();
    respond(std::move(res));
  });
}

// The categories in the shopper's language, falling back to the shop's
// default language; "locale" says which language was actually served.
json categories_document(const consent::consent_config& config, const std::string& requested) {
  json list = json::array();
  std::string served;
  for (const auto& c : config.categories) {
    const auto text = consent::localize(c, requested, config.default_locale);
    if (served.empty()) served = text.locale;
    list.push_back({{"name", c.name}, {"label", text.text->label}, {"description", text.text->description}});
  }
  return {{"text_version", config.text_version}, {"locale", served}, {"categories", std::move(list)}};
}

json erase_json(const consent::erase_outcome& out) {
  return {{"erased", out.subscriptions_erased}, {"messages_cancelled", out.messages_cancelled}};
}

}  // namespace

void add_subscriber_routes(router& r, consent::subscriber_service& service, subscriber_routes_options options) {
  auto* svc = &service;
  r.add("GET", "/v1/consent/categories", access::browser, [svc](request&& req, respond_fn respond) {
    const auto it = req.query.find("locale");
    respond(json_response(200, categories_document(svc->config(), it == req.query.end() ? "" : it->second)));
  });
  r.add("POST", "/v1/subscriptions", access::browser,
        [svc](request&& req, respond_fn respond) { post_subscription(*svc, std::move(req), std::move(respond)); });
  r.add("GET", "/v1/subscriptions/{id}", access::subscriber,
        [svc](request&& req, respond_fn respond) { get_subscription(*svc, std::move(req), std::move(respond)); });
  r.add("PUT", "/v1/subscriptions/{id}/consent", access::subscriber,
        [svc](request&& req, respond_fn respond) { put_consent(*svc, std::move(req), std::move(respond)); });
  r.add("PUT", "/v1/subscriptions/{id}/endpoint", access::subscriber,
        [svc](request&& req, respond_fn respond) { put_endpoint(*svc, std::move(req), std::move(respond)); });
  r.add("POST", "/v1/subscriptions/{id}/identify", access::subscriber,
        [svc, secret = std::move(options.identify_secret)](request&& req, respond_fn respond) {
          post_identify(*svc, secret, std::move(req), std::move(respond));
        });
  r.add("DELETE", "/v1/subscriptions/{id}", access::subscriber,
        [svc](request&& req, respond_fn respond) { delete_subscription(*svc, std::move(req), std::move(respond)); });
}

void add_gdpr_routes(router& r, consent::subscriber_service& service) {
  auto* svc = &service;
  r.add("POST", "/v1/subscriptions/{id}/customer", access::backend, [svc](request&& req, respond_fn respond) {
    auto body = json_object_body(req);
    if (answer_error(body, respond)) return;
    auto customer_id = required_string(*body, "customer_id", "customer_id");
    if (answer_error(customer_id, respond)) return;
    const std::string id = req.params.at("id");
    svc->link_customer(id, *customer_id, [respond, id, customer = *customer_id](result<void> out) {
      rename_field(out, "subscription_id", "id");
      if (answer_error(out, respond)) return;
      respond(json_response(200, {{"id", id}, {"customer_id", customer}}));
    });
  });
  // Exports read a consistent snapshot on the service's read connection;
  // they are small (one person's data) so they run on the I/O thread.
  r.add("GET", "/v1/customers/{customer_id}", access::backend, [svc](request&& req, respond_fn respond) {
    auto doc = svc->export_customer(req.params.at("customer_id"));
    if (answer_error(doc, respond)) return;
    respond(json_response(200, *doc));
  });
  r.add("DELETE", "/v1/customers/{customer_id}", access::backend, [svc](request&& req, respond_fn respond) {
    svc->erase_customer(req.params.at("customer_id"), backend_origin(req),
                        [respond](result<consent::erase_outcome> out) {
                          if (answer_error(out, respond)) return;
                          respond(json_response(200, erase_json(*out)));
                        });
  });
  r.add("GET", "/v1/subscriptions/{id}/export", access::backend, [svc](request&& req, respond_fn respond) {
    auto doc = svc->export_subscription(req.params.at("id"));
    if (answer_error(doc, respond)) return;
    respond(json_response(200, *doc));
  });
  r.add("DELETE", "/v1/subscriptions/{id}/export", access::backend, [svc](request&& req, respond_fn respond) {
    svc->erase_subscription(req.params.at("id"), backend_origin(req), [respond](result<consent::erase_outcome> out) {
      if (answer_error(out, respond)) return;
      respond(json_response(200, erase_json(*out)));
    });
  });
}

}  // namespace webpushd::api
