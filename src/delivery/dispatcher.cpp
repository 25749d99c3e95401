#include "webpushd/delivery/dispatcher.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "webpushd/core/random.hpp"
#include "webpushd/delivery/classify.hpp"
#include "webpushd/delivery/recall.hpp"
#include "webpushd/webpush/content_encryption.hpp"
#include "webpushd/webpush/subscription_keys.hpp"

namespace webpushd::delivery {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;
using steady = std::chrono::steady_clock;

// How long the loop waits before it asks the store again after a failure
// (disk full, read-only, I/O errors): one log line a second, not a spin.
constexpr seconds store_retry_pause{1};

// One attempt travelling back to the loop thread, from a worker (it could not
// be prepared, or we are stopping) or from the sender (a response came).
struct finished_attempt {
  std::int64_t id = 0;
  std::int32_t attempts_before = 0;
  std::int32_t ttl_seconds = 0;
  time_point expires_at{};
  time_point due_at{};                     // when this attempt fell due
  time_point submitted_at{};               // handed to the sender (answered: + response->elapsed)
  push_service service = push_service::other;
  std::string origin;                      // for logs: never the full endpoint
  std::optional<http_response> response;   // a request was made
  std::optional<error> not_sendable;       // it could not be prepared (bad keys, refused endpoint)
  bool abandoned = false;                  // not sent because the dispatcher is stopping
};

// A recall travelling back to the loop thread: the answer to its DELETE, or
// the outcome settled without a request.
struct finished_recall {
  std::int64_t id = 0;
  std::int32_t attempts_before = 0;
  time_point expires_at{};
  std::string origin;                              // the endpoint's, for logs
  std::optional<http_response> response;           // a DELETE was made
  std::optional<storage::recall_result> settled;   // expired, or a Location the rules refuse
};

// State shared by the loop, the workers and the sender's completions. The
// completions hold it by shared_ptr: a response arriving after the dispatcher
// was destroyed lands in a mailbox nobody reads, instead of freed memory.
struct shared_state {
  std::mutex mu;
  std::condition_variable loop_cv;   // the loop: results arrived, notify(), stop()
  std::condition_variable work_cv;   // workers: work arrived, stop
  std::condition_variable idle_cv;   // wait_idle()
  std::deque<storage::outbox_message> work;
  std::vector<finished_attempt> done;
  std::vector<finished_recall> recalls_done;
  std::size_t outstanding = 0;       // messages and recalls claimed and not yet recorded
  bool wake = false;
  bool stopping = false;
  bool workers_exit = false;
  bool idle = false;
  dispatcher_counters counters;

  // Hands a finished message or recall to the loop.
  void post(finished_attempt&& f) {
    std::lock_guard lk(mu);
    done.push_back(std::move(f));
    loop_cv.notify_one();
  }
  void post(finished_recall&& f) {
    std::lock_guard lk(mu);
    recalls_done.push_back(std::move(f));
    loop_cv.notify_one();
  }
  bool anything_finished() const { return !done.empty() || !recalls_done.empty(); }
};

// What follows a retryable answer (rate limited, temporary failure).
struct next_attempt {
  enum class kind { retry, give_up, expire };
  kind what = kind::retry;
  time_point at{};  // when what == retry
  std::string reason;
};

// Writes `next` into a message's or a recall's result, as the state each
// kind leads to for that result.
template <class Result, class State>
void follow(next_attempt next, Result& r, State given_up, State expired, State retried) {
  r.reason = std::move(next.reason);
  switch (next.what) {
    case next_attempt::kind::give_up: r.new_state = given_up; break;
    case next_attempt::kind::expire: r.new_state = expired; break;
    case next_attempt::kind::retry:
      r.new_state = retried;
      r.retry_at = next.at;
      break;
  }
}

// A claimed recall is not claimed again for this long. Its DELETE ends
// within the sender's request_timeout and its outcome is recorded in the
// next pass; only a recording that keeps failing for longer lets the recall
// be claimed and sent again (harmless: DELETE is idempotent and the first
// outcome recorded stands). A recall claimed when the process died is
// released by start() instead of waiting for its lease.
constexpr auto recall_lease = std::chrono::minutes{10};

}  // namespace

struct dispatcher::impl {
  impl(dispatcher_options o, storage::outbox_store& s, storage::recall_store& r, webpush::vapid_signer& v,
       sender& out, const clock& c)
      : options(std::move(o)),
        store(s),
        recalls(r),
        signer(v),
        network(out),
        clk(c),
        state(std::make_shared<shared_state>()) {}

  dispatcher_options options;
  storage::outbox_store& store;
  storage::recall_store& recalls;
  webpush::vapid_signer& signer;
  sender& network;
  const clock& clk;
  std::shared_ptr<shared_state> state;
  std::thread loop_thread;
  std::vector<std::thread> worker_threads;
  // Used by the loop thread only:
  prng_source rng;
  steady::time_point stop_deadline{};
  std::vector<storage::attempt_result> unrecorded;         // a failed record() is retried
  std::vector<storage::recall_result> unrecorded_recalls;  // likewise
  // One per concluded message not yet reported: those of `unrecorded` and
  // of the batch being settled, in the same order.
  std::vector<delivery_report> unreported;
  dispatcher_observer* observer = nullptr;
  // DELETEs made so far for each recall being retried. Not durable: after a
  // restart every pending recall starts afresh (at most max_attempts more
  // DELETEs, never past the message's expiry).
  std::unordered_map<std::int64_t, std::int32_t> recall_attempts;
  // Whether the last claim() failed in the store (disk full, read-only, I/O
  // errors): the loop then pauses instead of asking again at once.
  bool claim_failed = false;

  void run_loop();
  void run_worker();
  void prepare_and_submit(webpush::content_encryptor& encryptor, storage::outbox_message msg);
  void start_recall(storage::recall_job job, time_point now);
  next_attempt after_retryable(const classification& c, std::int32_t attempts_before,
                               std::optional<time_point> expires_at, time_point now);
  storage::attempt_result decide(const finished_attempt& f, time_point now);
  storage::recall_result decide(const finished_recall& f, time_point now);
  storage::attempt_result conclude(const finished_attempt& f, time_point now);
  storage::recall_result conclude(const finished_recall& f, time_point now);
  result<void> record(const std::vector<storage::attempt_result>& results, time_point now);
  result<void> record(const std::vector<storage::recall_result>& results, time_point now);
  template <class Finished, class Result>
  bool settle(std::vector<Finished> batch, std::vector<Result>& pending, time_point now);
  std::size_t claim(std::unique_lock<std::mutex>& lk, std::size_t& wanted);
  std::optional<time_point> next_due();
  void count(const storage::attempt_result& r, dispatcher_counters& c) const;
  void count(const storage::recall_result& r, dispatcher_counters& c) const;
  void report(const finished_attempt& f, const storage::attempt_result& r);
  void reported(const std::vector<storage::attempt_result>&);
  void reported(const std::vector<storage::recall_result>&) {}
};

// ---------------------------------------------------------------------------
// Workers: the CPU-bound part (ECDH, HKDF, AES-GCM), one encryptor each.

void dispatcher::impl::run_worker() {
  webpush::content_encryptor encryptor;
  std::unique_lock lk(state->mu);
  while (true) {
    state->work_cv.wait(lk, [&] { return state->workers_exit || !state->work.empty(); });
    if (state->work.empty()) return;  // workers_exit and nothing left
    auto msg = std::move(state->work.front());
    state->work.pop_front();
    if (state->stopping) {
      // Not sent yet: hand it back so it goes out first thing after restart.
      finished_attempt f;
      f.id = msg.id;
      f.attempts_before = msg.attempts;
      f.service = push_service_of(msg.endpoint);
      f.abandoned = true;
      state->done.push_back(std::move(f));
      state->loop_cv.notify_one();
      continue;
    }
    lk.unlock();
    prepare_and_submit(encryptor, std::move(msg));
    lk.lock();
  }
}

void dispatcher::impl::prepare_and_submit(webpush::content_encryptor& encryptor, storage::outbox_message msg) {
  finished_attempt f;
  f.id = msg.id;
  f.attempts_before = msg.attempts;
  f.ttl_seconds = msg.ttl_seconds;
  f.expires_at = msg.expires_at;
  f.due_at = msg.due_at;
  f.service = push_service_of(msg.endpoint);
  f.origin = log_origin(msg.endpoint);

  const auto give_back = [this](finished_attempt&& fa) { state->post(std::move(fa)); };

  // Checked again at send time: the rules may have changed since it was stored.
  const auto ep = check_endpoint(msg.endpoint, options.rules);
  if (!ep) {
    f.not_sendable = ep.error();
    return give_back(std::move(f));
  }
  const auto keys = webpush::parse_subscription_keys(msg.p256dh, msg.auth);
  if (!keys) {
    f.not_sendable = keys.error();
    return give_back(std::move(f));
  }
  auto body = encryptor.encrypt(*keys, msg.payload);
  if (!body) {
    f.not_sendable = body.error();
    return give_back(std::move(f));
  }
  const auto audience = webpush::audience_of(msg.endpoint);
  if (!audience) {
    f.not_sendable = audience.error();
    return give_back(std::move(f));
  }

  push_request req;
  req.endpoint = std::move(msg.endpoint);
  req.authorization = signer.authorization(*audience);
  req.body = std::move(*body);
  // A retried message must not outlive its original TTL: send what is left.
  // Rounded up, so a first attempt made milliseconds after enqueueing still
  // carries the TTL it was given.
  if (msg.ttl_seconds > 0) {
    const auto left = std::chrono::ceil<seconds>(msg.expires_at - clk.now()).count();
    req.ttl_seconds = static_cast<std::int32_t>(std::clamp<std::int64_t>(left, 0, msg.ttl_seconds));
  }
  req.urgency = std::move(msg.urgency);
  req.topic = std::move(msg.topic);

  f.submitted_at = clk.now();
  network.submit(std::move(req), [mailbox = state, f = std::move(f)](http_response response) mutable {
    f.response = std::move(response);
    mailbox->post(std::move(f));
  });
}

// ---------------------------------------------------------------------------
// Recalls: nothing to encrypt, so the loop hands them to the sender itself.
// They count as outstanding like messages, and max_outstanding is at most
// the sender's max_in_flight in the daemon, so submit() does not block here.

void dispatcher::impl::start_recall(storage::recall_job job, time_point now) {
  finished_recall f;
  f.id = job.message_id;
  f.expires_at = job.expires_at;
  f.origin = log_origin(job.endpoint);
  if (const auto made = recall_attempts.find(job.message_id); made != recall_attempts.end()) {
    f.attempts_before = made->second;
  }
  // The push service drops a message at the end of its TTL: nothing to ask.
  if (now >= job.expires_at) {
    f.settled = storage::recall_result{job.message_id, storage::recall_state::too_late,
                                       "expired before it could be recalled", std::nullopt};
    return state->post(std::move(f));
  }
  auto target = check_recall_location(job.location, job.endpoint, options.rules);
  if (!target) {
    f.settled = storage::recall_result{job.message_id, storage::recall_state::failed, target.error().message,
                                       std::nullopt};
    return state->post(std::move(f));
  }
  push_request req;
  req.method = push_method::delete_;
  req.authorization = signer.authorization(target->origin);
  req.endpoint = std::move(job.location);
  network.submit(std::move(req), [mailbox = state, f = std::move(f)](http_response response) mutable {
    f.response = std::move(response);
    mailbox->post(std::move(f));
  });
}

// ---------------------------------------------------------------------------
// The loop: claim, classify, record. The only user of the stores.

next_attempt dispatcher::impl::after_retryable(const classification& c, std::int32_t attempts_before,
                                               std::optional<time_point> expires_at, time_point now) {
  const int attempts_made = attempts_before + 1;
  if (!options.retry.may_retry(attempts_made)) {
    return {next_attempt::kind::give_up, {}, "gave up after " + std::to_string(attempts_made) + " attempts: " + c.reason};
  }
  const auto delay = options.retry.delay_for(c, attempts_made, rng);
  const auto retry_at = now + delay;
  if (expires_at && retry_at >= *expires_at) {
    return {next_attempt::kind::expire, {}, "TTL ends before the next attempt: " + c.reason};
  }
  return {next_attempt::kind::retry, retry_at,
          "retry " + std::to_string(attempts_made + 1) + "/" + std::to_string(options.retry.max_attempts) + " in " +
              std::to_string(delay.count()) + "ms: " + c.reason};
}

storage::attempt_result dispatcher::impl::decide(const finished_attempt& f, time_point now) {
  using storage::outbox_state;
  storage::attempt_result r;
  r.message_id = f.id;
  if (f.abandoned) {
    r.new_state = outbox_state::queued;
    r.retry_at = now;
    r.count_attempt = false;
    r.reason = "requeued at shutdown";
    return r;
  }
  if (f.not_sendable) {
    r.new_state = outbox_state::failed;
    r.count_attempt = false;
    r.reason = f.not_sendable->code + ": " + f.not_sendable->message;
    return r;
  }
  const auto& resp = *f.response;
  if (resp.status != 0) r.http_status = static_cast<std::int32_t>(resp.status);
  const auto c = classify(resp, now);
  r.reason = c.reason;
  switch (c.kind) {
    case outcome::accepted:
      r.new_state = outbox_state::sent;
      r.location = resp.location;
      return r;
    case outcome::gone:
      r.new_state = outbox_state::gone;
      r.subscription_gone = true;
      return r;
    case outcome::payload_too_large:
    case outcome::rejected:
      r.new_state = outbox_state::failed;
      return r;
    case outcome::rate_limited:
    case outcome::temporary_failure:
      break;
  }
  // ttl 0 is "now or never": claim_due expires its retry, not the plan here.
  std::optional<time_point> expires_at;
  if (f.ttl_seconds > 0) expires_at.emplace(f.expires_at);
  follow(after_retryable(c, f.attempts_before, expires_at, now), r, outbox_state::dead, outbox_state::expired,
         outbox_state::queued);
  return r;
}

storage::recall_result dispatcher::impl::decide(const finished_recall& f, time_point now) {
  using storage::recall_state;
  if (f.settled) return *f.settled;
  auto c = classify_recall(*f.response, now);
  storage::recall_result r{f.id, recall_state::failed, c.answer.reason, std::nullopt};
  switch (c.verdict) {
    case recall_verdict::recalled: r.new_state = recall_state::recalled; return r;
    case recall_verdict::too_late: r.new_state = recall_state::too_late; return r;
    case recall_verdict::unsupported: r.new_state = recall_state::unsupported; return r;
    case recall_verdict::failed: return r;
    case recall_verdict::retry: break;
  }
  // Once the message expires there is nothing left to recall: too late.
  follow(after_retryable(c.answer, f.attempts_before, f.expires_at, now), r, recall_state::failed,
         recall_state::too_late, recall_state::requested);
  return r;
}

void dispatcher::impl::count(const storage::attempt_result& r, dispatcher_counters& c) const {
  using storage::outbox_state;
  switch (r.new_state) {
    case outbox_state::sent: ++c.sent; break;
    case outbox_state::gone: ++c.gone; break;
    case outbox_state::failed: ++c.failed; break;
    case outbox_state::dead: ++c.dead; break;
    case outbox_state::expired: ++c.expired; break;
    case outbox_state::queued: r.count_attempt ? ++c.retried : ++c.requeued; break;
    default: break;
  }
}

void dispatcher::impl::count(const storage::recall_result& r, dispatcher_counters& c) const {
  using storage::recall_state;
  switch (r.new_state) {
    case recall_state::requested: ++c.recalls_retried; break;
    case recall_state::recalled: ++c.recalled; break;
    case recall_state::too_late: ++c.recalls_too_late; break;
    case recall_state::unsupported: ++c.recalls_unsupported; break;
    case recall_state::failed: ++c.recalls_failed; break;
  }
}

// What an observer learns about one concluded attempt, kept until its
// outcome is recorded.
void dispatcher::impl::report(const finished_attempt& f, const storage::attempt_result& r) {
  if (observer == nullptr) return;
  delivery_report d;
  d.state = r.new_state;
  d.service = f.service;
  d.attempted = f.response.has_value();
  if (f.response && f.response->status != 0) {
    const auto answered = f.submitted_at + f.response->elapsed;
    d.latency = std::max(std::chrono::duration_cast<std::chrono::microseconds>(answered - f.due_at),
                         std::chrono::microseconds::zero());
  }
  using storage::outbox_state;
  const bool retryable_end =
      r.new_state == outbox_state::queued || r.new_state == outbox_state::dead || r.new_state == outbox_state::expired;
  if (f.response && retryable_end) d.failure_class = failure_class(*f.response);
  unreported.push_back(d);
}

// Hands the reports of a recorded batch of messages to the observer.
void dispatcher::impl::reported(const std::vector<storage::attempt_result>&) {
  if (observer == nullptr || unreported.empty()) return;
  observer->on_recorded(unreported);
  unreported.clear();
}

// Decides one finished attempt and logs what deserves a line.
storage::attempt_result dispatcher::impl::conclude(const finished_attempt& f, time_point now) {
  auto r = decide(f, now);
  report(f, r);
  if (r.new_state == storage::outbox_state::gone) {
    spdlog::info("message {} to {}: subscription gone ({})", f.id, f.origin, r.reason);
  } else if (r.new_state == storage::outbox_state::failed || r.new_state == storage::outbox_state::dead) {
    spdlog::warn("message {} to {}: {} ({})", f.id, f.origin, storage::to_string(r.new_state), r.reason);
  }
  return r;
}

// Decides one finished recall: one log line per outcome, none per retry.
storage::recall_result dispatcher::impl::conclude(const finished_recall& f, time_point now) {
  auto r = decide(f, now);
  if (r.new_state == storage::recall_state::requested) {
    recall_attempts[f.id] = f.attempts_before + 1;
    return r;
  }
  recall_attempts.erase(f.id);
  spdlog::log(r.new_state == storage::recall_state::failed ? spdlog::level::warn : spdlog::level::info,
              "recall of message {} at {}: {} ({})", f.id, f.origin, storage::to_string(r.new_state), r.reason);
  return r;
}

result<void> dispatcher::impl::record(const std::vector<storage::attempt_result>& results, time_point now) {
  return store.record(results, now);
}

result<void> dispatcher::impl::record(const std::vector<storage::recall_result>& results, time_point) {
  return recalls.record(results);
}

// Concludes each finished message or recall, records them in one
// transaction with what a failed recording left in `pending`, and counts
// them. Called without the lock; false when recording failed and the
// results wait in `pending` for the next pass.
template <class Finished, class Result>
bool dispatcher::impl::settle(std::vector<Finished> batch, std::vector<Result>& pending, time_point now) {
  auto results = std::exchange(pending, {});
  results.reserve(results.size() + batch.size());
  for (const auto& f : batch) results.push_back(conclude(f, now));
  const auto recorded = results.empty() ? result<void>{} : record(results, now);
  {
    std::lock_guard lk(state->mu);
    // Only results that came back now leave the outstanding set; retried ones
    // were already subtracted when they first came back.
    state->outstanding -= batch.size();
    if (!recorded) {
      // The disk may be full or locked: keep the results and try again; if
      // the process dies first, the messages are still 'sending' and the
      // recalls still requested, and the next start takes them up again
      // (at-least-once).
      spdlog::error("outbox: recording {} outcomes failed, will retry: {}", results.size(), recorded.error().message);
      pending = std::move(results);
      return false;
    }
    for (const auto& r : results) count(r, state->counters);
  }
  // After the commit, outside the lock: observers count only what is durable.
  reported(results);
  return true;
}

// Claims due recalls (sent from here) and then due messages (for the
// workers), up to `wanted` in all; `wanted` is left at what was asked.
// Recalls go first: each races its message to the device, and they are few.
// Returns how many were claimed. Called with the lock held; unlocks it
// around the store calls and the sending.
std::size_t dispatcher::impl::claim(std::unique_lock<std::mutex>& lk, std::size_t& wanted) {
  auto& st = *state;
  wanted = 0;
  if (st.stopping || st.outstanding >= options.max_outstanding) return 0;
  wanted = std::min(options.claim_batch, options.max_outstanding - st.outstanding);
  lk.unlock();
  const auto now = clk.now();
  auto jobs = recalls.claim_due(now, recall_lease, wanted);
  if (!jobs) spdlog::error("outbox: claiming due recalls failed, will retry: {}", jobs.error().message);
  const std::size_t recall_count = jobs ? jobs->size() : 0;
  auto messages = recall_count < wanted ? store.claim_due(now, wanted - recall_count)
                                        : result<std::vector<storage::outbox_message>>{};
  if (!messages) spdlog::error("outbox: claiming due messages failed, will retry: {}", messages.error().message);
  claim_failed = !jobs || !messages;
  const std::size_t message_count = messages ? messages->size() : 0;
  lk.lock();
  st.counters.claimed += message_count;
  st.counters.recalls_claimed += recall_count;
  st.outstanding += message_count + recall_count;
  if (message_count > 0) {
    for (auto& m : *messages) st.work.push_back(std::move(m));
    st.work_cv.notify_all();
  }
  if (recall_count > 0) {
    lk.unlock();
    for (auto& job : *jobs) start_recall(std::move(job), now);
    lk.lock();
  }
  return message_count + recall_count;
}

// When the next message or recall falls due, if any is waiting.
std::optional<time_point> dispatcher::impl::next_due() {
  std::optional<time_point> earliest;
  for (auto due : {store.next_due(), recalls.next_due()}) {
    if (due && *due && (!earliest || **due < *earliest)) earliest = **due;
  }
  return earliest;
}

void dispatcher::impl::run_loop() {
  auto& st = *state;
  std::unique_lock lk(st.mu);
  while (true) {
    // 1. Record everything that finished: one transaction for messages, one
    // for recalls.
    if (st.anything_finished() || !unrecorded.empty() || !unrecorded_recalls.empty()) {
      auto attempts = std::exchange(st.done, {});
      auto recalled = std::exchange(st.recalls_done, {});
      lk.unlock();
      const auto now = clk.now();
      const bool messages_recorded = settle(std::move(attempts), unrecorded, now);
      const bool recalls_recorded = settle(std::move(recalled), unrecorded_recalls, now);
      lk.lock();
      if (!messages_recorded || !recalls_recorded) {
        st.loop_cv.wait_for(lk, store_retry_pause);
        continue;
      }
    }

    if (st.stopping && (st.outstanding == 0 || steady::now() >= stop_deadline)) break;

    // 2. Claim what is due, up to the outstanding bound.
    std::size_t wanted = 0;
    const std::size_t claimed = claim(lk, wanted);
    if (claim_failed) {
      // A message that is due stays due while the store refuses to claim
      // it: without this pause the loop would ask again at once, thousands
      // of times a second (found by tests/integration/faults_storage.test.mjs).
      // Results and stop() still end the pause.
      st.loop_cv.wait_for(lk, store_retry_pause, [&] { return st.anything_finished() || st.wake; });
      st.wake = false;
      continue;
    }
    if (claimed > 0 && claimed == wanted) continue;  // probably more due right now
    if (st.anything_finished()) continue;

    // 3. Sleep until a result arrives, someone enqueues, the next message or
    // recall is due, or the poll interval passes (other processes may have
    // written to the outbox).
    auto deadline = steady::now() + options.poll_interval;
    if (st.stopping) {
      deadline = std::min(deadline, stop_deadline);
    } else if (st.outstanding < options.max_outstanding) {
      lk.unlock();
      const auto next = next_due();
      const auto now = clk.now();
      lk.lock();
      if (next) {
        const auto until = std::max(*next - now, time_point::duration::zero());
        deadline = std::min(deadline, steady::now() + duration_cast<steady::duration>(until));
      }
      st.idle = st.outstanding == 0 && st.work.empty() && (!next || *next > now);
      if (st.idle) st.idle_cv.notify_all();
    }
    // stop() sets `wake` too; while stopping, only results or the deadline
    // end the wait (testing `stopping` here would spin and starve them).
    st.loop_cv.wait_until(lk, deadline, [&] { return st.anything_finished() || st.wake; });
    st.wake = false;
    st.idle = false;
  }
  st.workers_exit = true;
  st.work_cv.notify_all();
}

// ---------------------------------------------------------------------------

dispatcher::dispatcher(dispatcher_options options, storage::outbox_store& store, storage::recall_store& recalls,
                       webpush::vapid_signer& signer, sender& out, const clock& clk)
    : impl_(std::make_unique<impl>(std::move(options), store, recalls, signer, out, clk)) {
  if (impl_->options.workers == 0) impl_->options.workers = std::max(1u, std::thread::hardware_concurrency());
  impl_->options.max_outstanding = std::max<std::size_t>(1, impl_->options.max_outstanding);
  impl_->options.claim_batch = std::max<std::size_t>(1, impl_->options.claim_batch);
}

dispatcher::~dispatcher() { stop(std::chrono::seconds{0}); }

void dispatcher::set_observer(dispatcher_observer* observer) { impl_->observer = observer; }

result<void> dispatcher::start() {
  const auto requeued = impl_->store.requeue_inflight(impl_->clk.now());
  if (!requeued) return tl::unexpected(requeued.error());
  if (*requeued > 0) spdlog::info("outbox: {} messages in flight at the last stop are queued again", *requeued);
  const auto released = impl_->recalls.release_claims(impl_->clk.now());
  if (!released) return tl::unexpected(released.error());
  if (*released > 0) spdlog::info("outbox: {} recalls pending at the last stop are due again", *released);
  impl_->loop_thread = std::thread([this] { impl_->run_loop(); });
  for (unsigned i = 0; i < impl_->options.workers; ++i) {
    impl_->worker_threads.emplace_back([this] { impl_->run_worker(); });
  }
  return {};
}

void dispatcher::notify() {
  std::lock_guard lk(impl_->state->mu);
  impl_->state->wake = true;
  impl_->state->idle = false;
  impl_->state->loop_cv.notify_one();
}

void dispatcher::stop(std::chrono::milliseconds grace) {
  if (!impl_->loop_thread.joinable()) return;
  {
    std::lock_guard lk(impl_->state->mu);
    impl_->stop_deadline = steady::now() + grace;
    impl_->state->stopping = true;
    impl_->state->wake = true;
    impl_->state->loop_cv.notify_one();
    impl_->state->work_cv.notify_all();
  }
  impl_->loop_thread.join();
  for (auto& t : impl_->worker_threads) t.join();
  impl_->worker_threads.clear();
  const auto c = counters();
  spdlog::info("dispatcher stopped: {} sent, {} gone, {} failed, {} dead, {} expired, {} recalled, {} left in flight",
               c.sent, c.gone, c.failed, c.dead, c.expired, c.recalled, outstanding());
}

dispatcher_counters dispatcher::counters() const {
  std::lock_guard lk(impl_->state->mu);
  return impl_->state->counters;
}

std::size_t dispatcher::outstanding() const {
  std::lock_guard lk(impl_->state->mu);
  return impl_->state->outstanding;
}

bool dispatcher::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lk(impl_->state->mu);
  return impl_->state->idle_cv.wait_for(lk, timeout, [&] { return impl_->state->idle; });
}

}  // namespace webpushd::delivery
