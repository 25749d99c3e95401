// The metrics registry on prometheus-cpp's core: its Registry, metric types
// and TextSerializer produce the exposition; this file decides the names,
// the label sets and how each observation maps onto them.
#include "webpushd/metrics/registry.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <sstream>
#include <unordered_map>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include "recent_window.hpp"

#ifndef WEBPUSHD_VERSION
#define WEBPUSHD_VERSION "unknown"
#endif

namespace webpushd::metrics {
namespace {

using prometheus::Counter;
using prometheus::Gauge;
using prometheus::Histogram;

// The fixed label sets. Their order is the index used in the arrays below
// and in recent_window.
constexpr std::array<std::string_view, detail::outcome_count> outcomes{"sent", "retried", "gone", "failed", "dead", "expired"};
constexpr std::array<std::string_view, detail::service_count> services{"fcm", "mozilla", "apple", "windows", "other"};
constexpr std::array<std::string_view, 4> failure_classes{"rate_limited", "server_error", "timeout", "network"};
constexpr std::array<std::string_view, 5> pacing_rules{"quiet_hours", "min_gap", "global_cap", "scenario_cap",
                                                       "category_cap"};
constexpr std::array<std::string_view, 3> beacon_types{"shown", "clicked", "closed"};
constexpr std::array<std::string_view, 3> journey_ends{"exited", "completed", "cancelled"};
constexpr std::array<std::string_view, 7> http_methods{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};

constexpr std::string_view overflow_value = "overflow";

template <std::size_t N>
std::optional<std::size_t> index_of(const std::array<std::string_view, N>& set, std::string_view value) {
  for (std::size_t i = 0; i < N; ++i) {
    if (set[i] == value) return i;
  }
  return std::nullopt;
}

// Delivery latency (due → answered): a few milliseconds on a quiet loopback,
// seconds under a backlog, minutes when the outbox falls behind.
const Histogram::BucketBoundaries& delivery_buckets() {
  static const Histogram::BucketBoundaries b{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
  return b;
}

// HTTP handling time: reads answer in milliseconds, writes after a group
// commit (an fsync) in tens of milliseconds.
const Histogram::BucketBoundaries& http_buckets() {
  static const Histogram::BucketBoundaries b{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return b;
}

// A family whose label combinations are bounded: at most `max` distinct
// ones; later new ones all go to one series whose values are "overflow".
// Series are cached by their label values, so a repeat costs one lookup.
template <class T>
class bounded_family {
 public:
  bounded_family(prometheus::Family<T>& family, std::vector<std::string> label_names, std::size_t max,
                 Histogram::BucketBoundaries buckets = {})
      : family_(family), names_(std::move(label_names)), max_(max), buckets_(std::move(buckets)) {}

  // The series for these values (in label-name order); nullptr when the
  // count of values is wrong.
  T* at(std::initializer_list<std::string_view> values) {
    if (values.size() != names_.size()) return nullptr;
    std::string key;
    for (const auto v : values) {
      key.append(v);
      key.push_back('\x1f');
    }
    std::lock_guard lock(mutex_);
    if (const auto it = cache_.find(key); it != cache_.end()) return it->second;
    prometheus::Labels labels;
    if (cache_.size() >= max_) {
      if (!warned_) {
        spdlog::warn("metrics: {} has {} label combinations; further new ones are counted as '{}'",
                     family_.GetName(), max_, overflow_value);
        warned_ = true;
      }
      if (overflow_ == nullptr) {
        for (const auto& n : names_) labels.emplace(n, std::string{overflow_value});
        overflow_ = add(labels);
      }
      return overflow_;
    }
    auto it = values.begin();
    for (const auto& n : names_) labels.emplace(n, std::string{*it++});
    T* series = add(labels);
    cache_.emplace(std::move(key), series);
    return series;
  }

 private:
  T* add(const prometheus::Labels& labels) {
    if constexpr (std::is_same_v<T, Histogram>) {
      return &family_.Add(labels, buckets_);
    } else {
      return &family_.Add(labels);
    }
  }

  prometheus::Family<T>& family_;
  const std::vector<std::string> names_;
  const std::size_t max_;
  const Histogram::BucketBoundaries buckets_;
  std::mutex mutex_;
  std::unordered_map<std::string, T*> cache_;
  T* overflow_ = nullptr;
  bool warned_ = false;
};

prometheus::Family<Counter>& counter_named(prometheus::Registry& r, const std::string& name, const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}
prometheus::Family<Gauge>& gauge_named(prometheus::Registry& r, const std::string& name, const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}
prometheus::Family<Histogram>& histogram_named(prometheus::Registry& r, const std::string& name,
                                               const std::string& help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r);
}

double seconds_since_epoch(time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace

struct counter_family::impl {
  impl(prometheus::Family<Counter>& f, std::vector<std::string> label_names, std::size_t max)
      : family(f, std::move(label_names), max) {}
  bounded_family<Counter> family;
};

counter_family::counter_family(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
counter_family::~counter_family() = default;

void counter_family::add(std::initializer_list<std::string_view> label_values, double n) {
  if (!(n >= 0)) return;  // counters only go up (also refuses NaN)
  if (auto* c = impl_->family.at(label_values)) c->Increment(n);
}

// Members are initialised in declaration order: `options`, `reg` and
// `recent` come before the families that use them.
struct registry::impl {
  impl(const clock& the_clock, registry_options the_options)
      : clk(the_clock),
        options(std::move(the_options)),
        started(the_clock.now()),
        recent(static_cast<std::size_t>(std::max<std::int64_t>(options.window.count(), 1))),
        events(counter_named(reg, "webpushd_events_ingested_total",
                             "Shop events stored (committed), by type; duplicates are not counted."),
               {"type"}, options.max_series),
        journeys_started(counter_named(reg, "webpushd_journeys_started_total",
                                       "Scenario journeys started, by scenario."),
                         {"scenario"}, options.max_series),
        journeys_ended(counter_named(reg, "webpushd_journeys_ended_total",
                                     "Scenario journeys ended, by scenario and how: exited (an exit event), "
                                     "completed (all steps done) or cancelled (scenario or step removed, merged)."),
                       {"scenario", "how"}, options.max_series),
        level_changes(counter_named(reg, "webpushd_pacing_level_changes_total",
                                    "Adaptive pacing level changes, by scenario and direction (tightened, relaxed)."),
                      {"scenario", "direction"}, options.max_series),
        http(histogram_named(reg, "webpushd_http_request_duration_seconds",
                             "HTTP requests, from routing to the handler's answer, by route pattern, method and status."),
             {"route", "method", "status"}, options.max_series, http_buckets()) {
    if (options.version.empty()) options.version = WEBPUSHD_VERSION;
    gauge_named(reg, "webpushd_build_info", "Always 1; the label says which version runs.")
        .Add({{"version", options.version}})
        .Set(1);
    gauge_named(reg, "process_start_time_seconds", "When the daemon started, in seconds since the Unix epoch.")
        .Add({})
        .Set(seconds_since_epoch(started));

    auto& sends_family = counter_named(reg, "webpushd_sends_total",
                                       "Message attempts recorded, by push service and outcome: sent (accepted), "
                                       "retried (will be tried again), gone (404/410), failed (rejected for good), "
                                       "dead (retries exhausted), expired (its TTL ended first).");
    auto& retries_family = counter_named(reg, "webpushd_send_retries_total",
                                         "Attempts that will be retried, by push service and reason: rate_limited "
                                         "(429), server_error (5xx), timeout, network.");
    auto& dead_family = counter_named(reg, "webpushd_dead_letters_total",
                                      "Messages given up after their last retry (outbox state dead), by the reason "
                                      "of the last failure.");
    auto& latency_family = histogram_named(reg, "webpushd_delivery_latency_seconds",
                                           "From when a message attempt fell due to the push service's answer, by "
                                           "push service.");
    for (std::size_t s = 0; s < services.size(); ++s) {
      const std::string service{services[s]};
      for (std::size_t o = 0; o < outcomes.size(); ++o) {
        sends[o][s] = &sends_family.Add({{"push_service", service}, {"outcome", std::string{outcomes[o]}}});
      }
      for (std::size_t f = 0; f < failure_classes.size(); ++f) {
        retries[f][s] = &retries_family.Add({{"push_service", service}, {"reason", std::string{failure_classes[f]}}});
      }
      latency[s] = &latency_family.Add({{"push_service", service}}, delivery_buckets());
    }
    for (std::size_t f = 0; f < failure_classes.size(); ++f) {
      dead[f] = &dead_family.Add({{"reason", std::string{failure_classes[f]}}});
    }

    auto& deferrals_family = counter_named(reg, "webpushd_pacing_deferrals_total",
                                           "Messages the send-time gate deferred, by the rule that held them.");
    auto& suppressions_family = counter_named(reg, "webpushd_pacing_suppressions_total",
                                              "Messages the send-time gate suppressed (never sent), by rule.");
    for (std::size_t r = 0; r < pacing_rules.size(); ++r) {
      deferrals[r] = &deferrals_family.Add({{"reason", std::string{pacing_rules[r]}}});
      suppressions[r] = &suppressions_family.Add({{"reason", std::string{pacing_rules[r]}}});
    }

    auto& beacons_family = counter_named(reg, "webpushd_beacons_recorded_total",
                                         "Service-worker reports stored, by type; repeats are not counted.");
    for (std::size_t b = 0; b < beacon_types.size(); ++b) {
      beacons[b] = &beacons_family.Add({{"type", std::string{beacon_types[b]}}});
    }

    auto& purchases_family = counter_named(reg, "webpushd_purchases_attributed_total",
                                           "Purchases attributed to a push: converted (after a click) or influenced "
                                           "(after a push only shown).");
    purchases_converted = &purchases_family.Add({{"kind", "converted"}});
    purchases_influenced = &purchases_family.Add({{"kind", "influenced"}});

    auto& outbox_family = gauge_named(reg, "webpushd_outbox_messages",
                                      "Messages waiting in the outbox, by state: queued (due or not yet) and sending.");
    outbox_queued = &outbox_family.Add({{"state", "queued"}});
    outbox_sending = &outbox_family.Add({{"state", "sending"}});
    outbox_due = &gauge_named(reg, "webpushd_outbox_due_messages", "Queued messages due now.").Add({});
    outbox_oldest = &gauge_named(reg, "webpushd_outbox_oldest_due_age_seconds",
                                 "How long the longest-waiting due message has been due; 0 when none is.")
                         .Add({});
    auto& subscriptions_family =
        gauge_named(reg, "webpushd_subscriptions", "Push subscriptions by state (counted at most once a minute).");
    subscriptions_active = &subscriptions_family.Add({{"state", "active"}});
    subscriptions_gone = &subscriptions_family.Add({{"state", "gone"}});
    subscriptions_erased = &subscriptions_family.Add({{"state", "erased"}});
  }

  // Reads the database figures into the gauges; the first error, if any.
  result<void> refresh(time_point now) {
    std::lock_guard lock(figures_mutex);
    result<void> outcome;
    if (sources.outbox) {
      if (auto o = sources.outbox(now); o) {
        last_outbox = *o;
        outbox_queued->Set(static_cast<double>(o->queued));
        outbox_sending->Set(static_cast<double>(o->sending));
        outbox_due->Set(static_cast<double>(o->due));
        const auto waited = o->oldest_due ? std::chrono::duration<double>(now - *o->oldest_due).count() : 0.0;
        outbox_oldest->Set(std::max(waited, 0.0));
      } else {
        spdlog::warn("metrics: reading the outbox figures failed: {}", o.error().message);
        outcome = tl::unexpected(o.error());
      }
    }
    const bool stale = !subscriptions_at || now - *subscriptions_at >= options.subscriptions_max_age ||
                       now < *subscriptions_at;
    if (sources.subscriptions && stale) {
      if (auto s = sources.subscriptions(); s) {
        last_subscriptions = *s;
        subscriptions_at = now;
        subscriptions_active->Set(static_cast<double>(s->active));
        subscriptions_gone->Set(static_cast<double>(s->gone));
        subscriptions_erased->Set(static_cast<double>(s->erased));
      } else {
        spdlog::warn("metrics: counting subscriptions failed: {}", s.error().message);
        if (outcome) outcome = tl::unexpected(s.error());
      }
    }
    return outcome;
  }

  const clock& clk;
  registry_options options;
  time_point started;
  prometheus::Registry reg{prometheus::Registry::InsertBehavior::Throw};  // a name used twice is a bug
  detail::recent_window recent;

  bounded_family<Counter> events;
  bounded_family<Counter> journeys_started;
  bounded_family<Counter> journeys_ended;
  bounded_family<Counter> level_changes;
  bounded_family<Histogram> http;
  std::array<std::array<Counter*, services.size()>, outcomes.size()> sends{};
  std::array<std::array<Counter*, services.size()>, failure_classes.size()> retries{};
  std::array<Counter*, failure_classes.size()> dead{};
  std::array<Histogram*, services.size()> latency{};
  std::array<Counter*, pacing_rules.size()> deferrals{};
  std::array<Counter*, pacing_rules.size()> suppressions{};
  std::array<Counter*, beacon_types.size()> beacons{};
  Counter* purchases_converted = nullptr;
  Counter* purchases_influenced = nullptr;
  Gauge* outbox_queued = nullptr;
  Gauge* outbox_sending = nullptr;
  Gauge* outbox_due = nullptr;
  Gauge* outbox_oldest = nullptr;
  Gauge* subscriptions_active = nullptr;
  Gauge* subscriptions_gone = nullptr;
  Gauge* subscriptions_erased = nullptr;

  std::mutex figures_mutex;  // guards the five below
  figure_sources sources;
  outbox_figures last_outbox;
  subscription_figures last_subscriptions;
  std::optional<time_point> subscriptions_at;

  std::mutex extra_mutex;
  std::set<std::string> extra_names;
  std::vector<std::unique_ptr<counter_family>> extra;
};

registry::registry(const clock& clk, registry_options options)
    : impl_(std::make_unique<impl>(clk, std::move(options))) {}

registry::~registry() = default;

void registry::set_sources(figure_sources sources) {
  std::lock_guard lock(impl_->figures_mutex);
  impl_->sources = std::move(sources);
  impl_->subscriptions_at.reset();
}

void registry::declare_event_types(std::span<const std::string> types) {
  for (const auto& t : types) impl_->events.at({t});
}

void registry::declare_scenarios(std::span<const std::string> names) {
  for (const auto& n : names) {
    impl_->journeys_started.at({n});
    for (const auto how : journey_ends) impl_->journeys_ended.at({n, how});
  }
}

void registry::events_ingested(std::string_view type, std::uint64_t n) {
  if (n == 0) return;
  if (auto* c = impl_->events.at({type})) c->Increment(static_cast<double>(n));
}

void registry::journey_logged(std::string_view scenario, std::string_view outcome) {
  if (outcome == "entered") {
    if (auto* c = impl_->journeys_started.at({scenario})) c->Increment();
  } else if (index_of(journey_ends, outcome)) {
    if (auto* c = impl_->journeys_ended.at({scenario, outcome})) c->Increment();
  }
}

void registry::pacing_held(bool deferred, std::string_view rule) {
  const auto r = index_of(pacing_rules, rule);
  if (!r) return;  // every rule the gate has is listed; a new one must be added above
  (deferred ? impl_->deferrals : impl_->suppressions)[*r]->Increment();
}

void registry::pacing_level_changed(std::string_view scenario, bool tightened) {
  if (auto* c = impl_->level_changes.at({scenario, tightened ? "tightened" : "relaxed"})) c->Increment();
}

void registry::delivery_recorded(const delivery_observation& d) {
  const auto o = index_of(outcomes, d.outcome);
  if (!o) return;
  const std::size_t s = index_of(services, d.push_service).value_or(services.size() - 1);
  impl_->sends[*o][s]->Increment();
  if (const auto f = index_of(failure_classes, d.failure_class)) {
    if (outcomes[*o] == "retried") impl_->retries[*f][s]->Increment();
    if (outcomes[*o] == "dead") impl_->dead[*f]->Increment();
  }
  std::optional<double> latency;
  if (d.latency) {
    latency = std::max(d.latency->count(), 0.0);
    impl_->latency[s]->Observe(*latency);
  }
  impl_->recent.record(unix_seconds(impl_->clk.now()), *o, s, latency);
}

void registry::beacon_recorded(std::string_view type) {
  if (const auto b = index_of(beacon_types, type)) impl_->beacons[*b]->Increment();
}

void registry::purchases_attributed(std::uint64_t converted, std::uint64_t influenced) {
  impl_->purchases_converted->Increment(static_cast<double>(converted));
  impl_->purchases_influenced->Increment(static_cast<double>(influenced));
}

void registry::http_request_answered(std::string_view method, std::string_view route, int status,
                                     std::chrono::duration<double> elapsed) {
  // Methods and status codes come from clients: only known ones become labels.
  const std::string_view m = index_of(http_methods, method) ? method : std::string_view{"other"};
  const std::string code = status >= 100 && status <= 599 ? std::to_string(status) : std::string{"other"};
  if (auto* h = impl_->http.at({route.empty() ? std::string_view{"unmatched"} : route, m, code})) {
    h->Observe(std::max(elapsed.count(), 0.0));
  }
}

counter_family& registry::counter(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names) {
  std::lock_guard lock(impl_->extra_mutex);
  if (!impl_->extra_names.insert(name).second) {
    std::fprintf(stderr, "webpushd: metric %s registered twice\n", name.c_str());
    std::abort();
  }
  prometheus::Family<Counter>* family = nullptr;
  try {
    family = &counter_named(impl_->reg, name, help);
  } catch (const std::exception& e) {
    // A name the conventions refuse, or one already used by another type:
    // a programming error, found at start-up.
    std::fprintf(stderr, "webpushd: invalid metric %s: %s\n", name.c_str(), e.what());
    std::abort();
  }
  auto made = std::make_unique<counter_family::impl>(*family, std::move(label_names), impl_->options.max_series);
  impl_->extra.push_back(std::unique_ptr<counter_family>(new counter_family(std::move(made))));
  return *impl_->extra.back();
}

std::string registry::scrape() {
  (void)impl_->refresh(impl_->clk.now());  // a failure keeps the last values, and was logged
  std::ostringstream out;
  prometheus::TextSerializer{}.Serialize(out, impl_->reg.Collect());
  return std::move(out).str();
}

result<status_snapshot> registry::status() {
  const auto now = impl_->clk.now();
  if (auto ok = impl_->refresh(now); !ok) return tl::unexpected(ok.error());
  status_snapshot s;
  {
    std::lock_guard lock(impl_->figures_mutex);
    s.outbox = impl_->last_outbox;
    s.subscriptions = impl_->last_subscriptions;
    s.subscriptions_counted_at = impl_->subscriptions_at.value_or(time_point{});
  }
  if (s.outbox.oldest_due) {
    s.oldest_due_seconds = std::max(std::chrono::duration<double>(now - *s.outbox.oldest_due).count(), 0.0);
  }
  s.window = impl_->options.window;
  const auto recent = impl_->recent.read(unix_seconds(now));
  for (std::size_t o = 0; o < outcomes.size(); ++o) {
    std::uint64_t total = 0;
    for (std::size_t v = 0; v < services.size(); ++v) {
      s.by_push_service[std::string{services[v]}][std::string{outcomes[o]}] = recent.counts[o][v];
      total += recent.counts[o][v];
    }
    s.deliveries[std::string{outcomes[o]}] = total;
  }
  s.latency_p50_seconds = recent.p50;
  s.latency_p99_seconds = recent.p99;
  s.started_at = impl_->started;
  s.version = impl_->options.version;
  return s;
}

}  // namespace webpushd::metrics
