#include "webpushd/api/router.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "text.hpp"

namespace webpushd::api {

struct router::route {
  std::string method;
  std::string pattern;
  struct segment {
    bool param;
    std::string text;  // the literal, or the parameter's name
  };
  std::vector<segment> segments;
  access who;
  handler h;
};

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

[[noreturn]] void bad_route(std::string_view method, std::string_view pattern, const char* why) {
  // A broken route table is a programming error found at start-up, not a
  // runtime condition to recover from.
  std::fprintf(stderr, "webpushd: invalid route %.*s %.*s: %s\n", static_cast<int>(method.size()), method.data(),
               static_cast<int>(pattern.size()), pattern.data(), why);
  std::abort();
}

bool valid_name(std::string_view s, bool upper) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) {
    if (upper) return (c >= 'A' && c <= 'Z') || c == '-';
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool browser_facing(access a) { return a == access::browser || a == access::subscriber; }

}  // namespace

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hex_value(text[i + 1]);
      const int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

router::router(cors_policy cors, api_key_set keys, session_check sessions)
    : cors_(std::move(cors)), keys_(std::move(keys)), sessions_(std::move(sessions)) {}
router::~router() = default;

void router::add(std::string_view method, std::string_view pattern, access who, handler h) {
  if (!valid_name(method, true)) bad_route(method, pattern, "method must be an upper-case token");
  if (pattern.empty() || pattern.front() != '/') bad_route(method, pattern, "pattern must start with '/'");
  auto r = std::make_unique<route>();
  r->method = std::string(method);
  r->pattern = std::string(pattern);
  r->who = who;
  r->h = std::move(h);
  if (pattern != "/") {
    for (const auto part : split(pattern.substr(1), '/')) {
      if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
        const auto name = part.substr(1, part.size() - 2);
        if (!valid_name(name, false)) bad_route(method, pattern, "parameter names are [a-z0-9_]+");
        r->segments.push_back({true, std::string(name)});
      } else {
        if (part.empty() || part.find_first_of("{}?#%") != std::string_view::npos) {
          bad_route(method, pattern, "segments are non-empty and have no {}?#%");
        }
        r->segments.push_back({false, std::string(part)});
      }
    }
  }
  for (const auto& other : routes_) {
    if (other->method != r->method || other->segments.size() != r->segments.size()) continue;
    const bool same_shape = std::equal(
        other->segments.begin(), other->segments.end(), r->segments.begin(), [](const auto& a, const auto& b) {
          return a.param == b.param && (a.param || a.text == b.text);
        });
    if (same_shape) bad_route(method, pattern, "duplicates an existing route");
  }
  routes_.push_back(std::move(r));
}

void router::set_observer(request_observer observer) { observer_ = std::move(observer); }

void router::set_key_limiter(failure_limiter& limiter, const clock& clk) {
  key_limiter_ = &limiter;
  clock_ = &clk;
}

namespace {

// What the observer hears about one request; the route is filled in once
// known. A respond_fn may be called more than once (later calls are
// ignored), so only the first answer is observed.
struct observation {
  std::string method;
  std::string route;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::atomic<bool> answered{false};
};

}  // namespace

void router::dispatch(request&& req, respond_fn respond) const {
  std::shared_ptr<observation> seen;
  if (observer_) {
    seen = std::make_shared<observation>();
    seen->method = req.method;
    // The observer is copied: an answer may come after the router is gone.
    respond = [respond = std::move(respond), seen, observer = observer_](response res) {
      if (!seen->answered.exchange(true)) {
        observer({seen->method, seen->route, res.status, std::chrono::steady_clock::now() - seen->start});
      }
      respond(std::move(res));
    };
  }
  const auto& target = req.target;
  if (target.empty() || target.front() != '/') {
    respond(error_response("malformed_request", "the request target must be a path"));
    return;
  }
  const auto qmark = target.find('?');
  const std::string_view raw_path = std::string_view(target).substr(0, qmark);
  auto path = percent_decode(raw_path, false);
  if (!path) {
    respond(error_response("malformed_request", "the path has an invalid percent-escape"));
    return;
  }
  req.path = std::move(*path);
  if (qmark != std::string::npos) {
    for (const auto pair : split(std::string_view(target).substr(qmark + 1), '&')) {
      if (pair.empty()) continue;
      const auto eq = pair.find('=');
      auto name = percent_decode(pair.substr(0, eq), true);
      auto value = percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), true);
      if (!name || !value) {
        respond(error_response("malformed_request", "the query string has an invalid percent-escape"));
        return;
      }
      req.query.emplace(std::move(*name), std::move(*value));
    }
  }

  // Segments are decoded one by one, so an escaped '/' stays inside its segment.
  std::vector<std::string> segments;
  if (raw_path != "/") {
    for (const auto part : split(raw_path.substr(1), '/')) segments.push_back(percent_decode(part, false).value_or(""));
  }
  const auto matches = [&](const route& r) {
    if (r.segments.size() != segments.size()) return false;
    for (std::size_t i = 0; i < segments.size(); ++i) {
      if (r.segments[i].param ? segments[i].empty() : r.segments[i].text != segments[i]) return false;
    }
    return true;
  };
  // Literal beats parameter at the first position where two patterns differ.
  const auto more_specific = [](const route& a, const route& b) {
    for (std::size_t i = 0; i < a.segments.size(); ++i) {
      if (a.segments[i].param != b.segments[i].param) return !a.segments[i].param;
    }
    return false;
  };

  std::vector<const route*> on_path;
  for (const auto& r : routes_) {
    if (matches(*r)) on_path.push_back(r.get());
  }
  if (on_path.empty()) {
    respond(error_response("not_found", "no such endpoint"));
    return;
  }
  std::vector<std::string> allowed;
  std::vector<std::string> browser_methods;
  bool any_browser = false;
  for (const auto* r : on_path) {
    const auto add_unique = [](std::vector<std::string>& v, const std::string& m) {
      if (std::find(v.begin(), v.end(), m) == v.end()) v.push_back(m);
    };
    add_unique(allowed, r->method);
    if (r->method == "GET") add_unique(allowed, "HEAD");
    if (browser_facing(r->who)) {
      any_browser = true;
      add_unique(browser_methods, r->method);
    }
  }
  const std::string origin = req.header("Origin");

  const auto pick = [&](std::string_view method) -> const route* {
    const route* best = nullptr;
    for (const auto* r : on_path) {
      if (r->method == method && (best == nullptr || more_specific(*r, *best))) best = r;
    }
    return best;
  };
  const route* chosen = pick(req.method);
  if (chosen == nullptr && req.method == "HEAD") chosen = pick("GET");
  // The label of a 405 or OPTIONS answer: the path is known, the method not.
  if (seen) seen->route = (chosen != nullptr ? chosen : on_path.front())->pattern;

  if (chosen == nullptr && req.method == "OPTIONS") {
    if (!origin.empty() && req.header_count("Access-Control-Request-Method") > 0) {
      respond(cors_.preflight(req, browser_methods));
      return;
    }
    response res;
    res.status = 204;
    res.content_type.clear();
    allowed.push_back("OPTIONS");
    res.set_header("Allow", join_list(allowed));
    respond(std::move(res));
    return;
  }
  if (chosen == nullptr) {
    auto res = error_response("method_not_allowed", "this endpoint does not accept " + req.method);
    res.set_header("Allow", join_list(allowed));
    if (any_browser) cors_.decorate(origin, res);
    respond(std::move(res));
    return;
  }

  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (chosen->segments[i].param) req.params[chosen->segments[i].text] = segments[i];
  }
  req.route = chosen->pattern;

  if (browser_facing(chosen->who)) {
    // Every answer of a browser-facing route, errors included, carries the
    // CORS headers: a browser script must be able to read why it failed.
    respond = [respond = std::move(respond), origin, this](response res) {
      cors_.decorate(origin, res);
      respond(std::move(res));
    };
  }
  // An API key can be guessed one request at a time: wrong keys are counted
  // per client address, and an address over the limit is refused before its
  // key is even looked at (a right key included, or the limit would tell a
  // guesser when it had hit). A success does not clear the count: a guesser
  // sharing an address with a real backend must not get a fresh budget
  // after each of the backend's requests.
  const bool key_presented = (chosen->who == access::backend || chosen->who == access::reader) &&
                             req.header_count("Authorization") > 0;
  if (key_presented && key_limiter_ != nullptr) {
    if (const auto wait = key_limiter_->blocked_for(req.remote_ip, clock_->now())) {
      auto res = error_response("rate_limited", "too many wrong API keys from this address; try again later");
      res.set_header("Retry-After", std::to_string(wait->count()));
      respond(std::move(res));
      return;
    }
  }
  const auto count_failure = [&] {
    if (key_presented && key_limiter_ != nullptr) key_limiter_->failed(req.remote_ip, clock_->now());
  };
  if (chosen->who == access::backend) {
    auto name = authenticate_backend(keys_, req);
    if (!name) {
      count_failure();
      respond(unauthorized_response(name.error(), "Bearer"));
      return;
    }
    req.api_key_name = std::move(*name);
  } else if (chosen->who == access::reader) {
    auto who = authenticate_reader(keys_, sessions_, req);
    if (!who) {
      count_failure();
      respond(unauthorized_response(who.error(), "Bearer"));
      return;
    }
    req.api_key_name = std::move(who->api_key_name);
    req.dashboard_user = std::move(who->user);
  } else if (chosen->who == access::subscriber) {
    auto token = subscriber_token(req);
    if (!token) {
      respond(unauthorized_response(token.error(), "Subscriber"));
      return;
    }
    req.subscriber_token = std::move(*token);
  }

  try {
    chosen->h(std::move(req), respond);
  } catch (const std::exception& e) {
    spdlog::error("handler for {} {} threw: {}", chosen->method, chosen->pattern, e.what());
    respond(error_response("internal_error", "handler threw"));
  } catch (...) {
    spdlog::error("handler for {} {} threw a non-exception", chosen->method, chosen->pattern);
    respond(error_response("internal_error", "handler threw"));
  }
}

}  // namespace webpushd::api
