#include "webpushd/delivery/dispatcher.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "webpushd/core/random.hpp"
#include "webpushd/delivery/classify.hpp"
#include "webpushd/webpush/content_encryption.hpp"
#include "webpushd/webpush/subscription_keys.hpp"

namespace webpushd::delivery {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;
using steady = std::chrono::steady_clock;

// One attempt travelling back to the loop thread, from a worker (it could not
// be prepared, or we are stopping) or from the sender (a response came).
struct finished_attempt {
  std::int64_t id = 0;
  std::int32_t attempts_before = 0;
  std::int32_t ttl_seconds = 0;
  time_point expires_at{};
  std::string origin;                      // for logs: never the full endpoint
  std::optional<http_response> response;   // a request was made
  std::optional<error> not_sendable;       // it could not be prepared (bad keys, refused endpoint)
  bool abandoned = false;                  // not sent because the dispatcher is stopping
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
  std::size_t outstanding = 0;       // claimed and not yet recorded
  bool wake = false;
  bool stopping = false;
  bool workers_exit = false;
  bool idle = false;
  dispatcher_counters counters;
};

}  // namespace

struct dispatcher::impl {
  impl(dispatcher_options o, storage::outbox_store& s, webpush::vapid_signer& v, sender& out, const clock& c)
      : options(std::move(o)), store(s), signer(v), network(out), clk(c), state(std::make_shared<shared_state>()) {}

  dispatcher_options options;
  storage::outbox_store& store;
  webpush::vapid_signer& signer;
  sender& network;
  const clock& clk;
  std::shared_ptr<shared_state> state;
  std::thread loop_thread;
  std::vector<std::thread> worker_threads;
  prng_source rng;  // used by the loop thread only
  steady::time_point stop_deadline{};
  std::vector<storage::attempt_result> unrecorded;  // a failed record() is retried

  void run_loop();
  void run_worker();
  void prepare_and_submit(webpush::content_encryptor& encryptor, storage::outbox_message msg);
  storage::attempt_result decide(const finished_attempt& f, time_point now);
  void count(const storage::attempt_result& r, dispatcher_counters& c) const;
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
  f.origin = log_origin(msg.endpoint);

  const auto give_back = [this](finished_attempt&& fa) {
    std::lock_guard lk(state->mu);
    state->done.push_back(std::move(fa));
    state->loop_cv.notify_one();
  };

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

  network.submit(std::move(req), [mailbox = state, f = std::move(f)](http_response response) mutable {
    f.response = std::move(response);
    std::lock_guard lk(mailbox->mu);
    mailbox->done.push_back(std::move(f));
    mailbox->loop_cv.notify_one();
  });
}

// ---------------------------------------------------------------------------
// The loop: claim, classify, record. The only user of the store.

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
  const int attempts_made = f.attempts_before + 1;
  if (!options.retry.may_retry(attempts_made)) {
    r.new_state = outbox_state::dead;
    r.reason = "gave up after " + std::to_string(attempts_made) + " attempts: " + c.reason;
    return r;
  }
  const auto delay = options.retry.delay_for(c, attempts_made, rng);
  const auto retry_at = now + delay;
  if (f.ttl_seconds > 0 && retry_at >= f.expires_at) {
    r.new_state = outbox_state::expired;
    r.reason = "TTL ends before the next attempt: " + c.reason;
    return r;
  }
  r.new_state = outbox_state::queued;
  r.retry_at = retry_at;
  r.reason = "retry " + std::to_string(attempts_made + 1) + "/" + std::to_string(options.retry.max_attempts) + " in " +
             std::to_string(delay.count()) + "ms: " + c.reason;
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

void dispatcher::impl::run_loop() {
  auto& st = *state;
  std::unique_lock lk(st.mu);
  while (true) {
    // 1. Record everything that finished, in one transaction.
    if (!st.done.empty() || !unrecorded.empty()) {
      auto batch = std::move(st.done);
      st.done.clear();
      lk.unlock();
      const auto now = clk.now();
      std::vector<storage::attempt_result> results = std::move(unrecorded);
      unrecorded.clear();
      const std::size_t fresh = batch.size();
      results.reserve(results.size() + fresh);
      for (const auto& f : batch) {
        results.push_back(decide(f, now));
        const auto& r = results.back();
        if (r.new_state == storage::outbox_state::gone) {
          spdlog::info("message {} to {}: subscription gone ({})", f.id, f.origin, r.reason);
        } else if (r.new_state == storage::outbox_state::failed || r.new_state == storage::outbox_state::dead) {
          spdlog::warn("message {} to {}: {} ({})", f.id, f.origin, storage::to_string(r.new_state), r.reason);
        }
      }
      const auto recorded = store.record(results, now);
      lk.lock();
      if (recorded) {
        for (const auto& r : results) count(r, st.counters);
        // Only results recorded now leave the outstanding set; retried ones
        // were already subtracted when they first came back.
        st.outstanding -= fresh;
      } else {
        // The disk may be full or locked: keep the results and try again;
        // if the process dies first, the rows are still 'sending' and get
        // requeued at start (at-least-once).
        spdlog::error("outbox: recording {} results failed, will retry: {}", results.size(),
                      recorded.error().message);
        st.outstanding -= fresh;
        unrecorded = std::move(results);
        st.loop_cv.wait_for(lk, std::chrono::seconds{1});
        continue;
      }
    }

    if (st.stopping && (st.outstanding == 0 || steady::now() >= stop_deadline)) break;

    // 2. Claim what is due, up to the outstanding bound.
    std::size_t claimed_count = 0;
    std::size_t want = 0;
    if (!st.stopping && st.outstanding < options.max_outstanding) {
      want = std::min(options.claim_batch, options.max_outstanding - st.outstanding);
      lk.unlock();
      auto claimed = store.claim_due(clk.now(), want);
      lk.lock();
      if (!claimed) {
        spdlog::error("outbox: claiming due messages failed: {}", claimed.error().message);
      } else {
        claimed_count = claimed->size();
        st.counters.claimed += claimed_count;
        st.outstanding += claimed_count;
        for (auto& m : *claimed) st.work.push_back(std::move(m));
        if (claimed_count > 0) st.work_cv.notify_all();
      }
    }
    if (claimed_count > 0 && claimed_count == want) continue;  // probably more due right now
    if (!st.done.empty()) continue;

    // 3. Sleep until a result arrives, someone enqueues, the next message is
    // due, or the poll interval passes (other processes may have enqueued).
    auto deadline = steady::now() + options.poll_interval;
    if (st.stopping) {
      deadline = std::min(deadline, stop_deadline);
    } else if (st.outstanding < options.max_outstanding) {
      lk.unlock();
      const auto next = store.next_due();
      const auto now = clk.now();
      lk.lock();
      if (next && *next) {
        const auto until = std::max(*next.value() - now, time_point::duration::zero());
        deadline = std::min(deadline, steady::now() + duration_cast<steady::duration>(until));
      }
      st.idle = st.outstanding == 0 && st.work.empty() && (!next || !*next || *next.value() > now);
      if (st.idle) st.idle_cv.notify_all();
    }
    // stop() sets `wake` too; while stopping, only results or the deadline
    // end the wait (testing `stopping` here would spin and starve them).
    st.loop_cv.wait_until(lk, deadline, [&] { return !st.done.empty() || st.wake; });
    st.wake = false;
    st.idle = false;
  }
  st.workers_exit = true;
  st.work_cv.notify_all();
}

// ---------------------------------------------------------------------------

dispatcher::dispatcher(dispatcher_options options, storage::outbox_store& store, webpush::vapid_signer& signer,
                       sender& out, const clock& clk)
    : impl_(std::make_unique<impl>(std::move(options), store, signer, out, clk)) {
  if (impl_->options.workers == 0) impl_->options.workers = std::max(1u, std::thread::hardware_concurrency());
  impl_->options.max_outstanding = std::max<std::size_t>(1, impl_->options.max_outstanding);
  impl_->options.claim_batch = std::max<std::size_t>(1, impl_->options.claim_batch);
}

dispatcher::~dispatcher() { stop(std::chrono::seconds{0}); }

result<void> dispatcher::start() {
  const auto requeued = impl_->store.requeue_inflight(impl_->clk.now());
  if (!requeued) return tl::unexpected(requeued.error());
  if (*requeued > 0) spdlog::info("outbox: {} messages in flight at the last stop are queued again", *requeued);
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
  spdlog::info("dispatcher stopped: {} sent, {} gone, {} failed, {} dead, {} expired, {} left in flight", c.sent,
               c.gone, c.failed, c.dead, c.expired, outstanding());
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
