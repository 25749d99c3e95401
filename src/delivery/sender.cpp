// The curl multi sender: one thread, curl_multi_poll, per-origin queues in
// front of curl, pooled easy handles configured once.
#include "webpushd/delivery/sender.hpp"

#include "text.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace webpushd::delivery {

namespace {

// --- RAII owners for the C handles -------------------------------------------

struct easy_deleter {
  void operator()(CURL* h) const noexcept { curl_easy_cleanup(h); }
};
struct multi_deleter {
  void operator()(CURLM* h) const noexcept { curl_multi_cleanup(h); }
};
using easy_ptr = std::unique_ptr<CURL, easy_deleter>;
using multi_ptr = std::unique_ptr<CURLM, multi_deleter>;

// --- Typed setters ------------------------------------------------------------
// curl_easy_setopt is variadic: the argument's type must match what the
// option expects (long, pointer, curl_off_t, function pointer), and nothing
// checks it in C++. One overload per kind makes every call site state it.

CURLcode set_long(CURL* h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
CURLcode set_str(CURL* h, CURLoption o, const char* v) { return curl_easy_setopt(h, o, v); }
CURLcode set_ptr(CURL* h, CURLoption o, void* v) { return curl_easy_setopt(h, o, v); }
CURLcode set_off(CURL* h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
template <class Fn>
CURLcode set_fn(CURL* h, CURLoption o, Fn* fn) {
  return curl_easy_setopt(h, o, fn);
}
CURLMcode set_multi_long(CURLM* m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }

void global_init() {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (rc != CURLE_OK) throw std::runtime_error("curl_global_init failed");
}

using clock_type = std::chrono::steady_clock;
using text::iequals;
using text::lower;
using text::trim;

struct origin_queue;

/// One request from submit() to completion.
struct transfer {
  push_request request;
  sender::completion done;
  http_response response;
  clock_type::time_point submitted;
  clock_type::time_point deadline;  // submitted + request_timeout: queueing counts
  origin_queue* origin = nullptr;
};

/// The requests for one origin (scheme://host[:port]) that curl has not been
/// given yet, and how many it has.
struct origin_queue {
  std::deque<std::unique_ptr<transfer>> waiting;
  std::size_t active = 0;    // handed to curl
  bool multiplexed = false;  // its last response came over HTTP/2 (or 3)
  bool listed = false;       // in impl::ready
};

/// A pooled easy handle and what curl keeps pointers to across requests.
/// Options that never change are set once when the slot is made; a request
/// sets only its URL, body and timeout, and relinks the header nodes. It is
/// heap-allocated so those pointers stay put.
struct easy_slot {
  easy_ptr easy;
  std::unique_ptr<transfer> current;  // the request it carries, while in curl
  std::size_t active_index = 0;       // position in impl::active
  bool address_refused = false;
  // The method its options are set up for: a push sets nothing extra unless
  // the handle last carried a recall (rare).
  push_method method = push_method::post;
  char error_buffer[CURL_ERROR_SIZE] = {};

  // The header list is made of nodes owned here, not curl_slist_append's:
  // CURLOPT_HTTPHEADER points at nodes[0] once, and each request only
  // rewrites the variable lines and relinks the optional ones. curl reads
  // the list and never frees or changes it.
  std::array<curl_slist, 7> nodes{};
  std::string content_encoding = "Content-Encoding: aes128gcm";
  std::string content_type = "Content-Type: application/octet-stream";
  // curl 7.88 sends "Expect: 100-continue" for bodies over 1 KiB, costing a
  // round trip per message; push services never need it.
  std::string expect = "Expect:";
  std::string ttl_line;
  std::string authorization_line;
  std::string urgency_line;
  std::string topic_line;
  // A recall's header list: its Authorization line alone.
  curl_slist recall_headers{};
};

// Connect-time guard: curl calls this instead of socket(2) for every
// connection, with the address it resolved. Checking here rather than on the
// URL defeats names that resolve (or re-resolve) to internal addresses.
// clientp is the slot when private addresses are refused, null otherwise.
curl_socket_t open_socket(void* clientp, curlsocktype purpose, curl_sockaddr* address) {
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
  if (auto* slot = static_cast<easy_slot*>(clientp)) {
    bool internal = true;  // unknown families are refused
    if (address->family == AF_INET && address->addrlen >= sizeof(sockaddr_in)) {
      sockaddr_in in{};
      std::memcpy(&in, &address->addr, sizeof in);
      internal = is_internal_address({reinterpret_cast<const std::uint8_t*>(&in.sin_addr), 4});
    } else if (address->family == AF_INET6 && address->addrlen >= sizeof(sockaddr_in6)) {
      sockaddr_in6 in6{};
      std::memcpy(&in6, &address->addr, sizeof in6);
      internal = is_internal_address({reinterpret_cast<const std::uint8_t*>(&in6.sin6_addr), 16});
    }
    if (internal) {
      slot->address_refused = true;
      return CURL_SOCKET_BAD;
    }
  }
  return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* userdata) {
  auto* slot = static_cast<easy_slot*>(userdata);
  const std::size_t len = size * count;
  if (len == 0 || !slot->current) return len;
  auto& resp = slot->current->response;
  const std::string_view line(data, len);
  // Only three lines matter; the first letter rules out the rest cheaply.
  switch (lower(line.front())) {
    case 'h':
      if (line.substr(0, 5) == "HTTP/") {
        // A new response begins (after an interim 1xx): forget the previous headers.
        resp.location.clear();
        resp.retry_after.clear();
      }
      return len;
    case 'l':
    case 'r':
      break;
    default:
      return len;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return len;
  const auto name = line.substr(0, colon);
  if (iequals(name, "location")) {
    resp.location.assign(trim(line.substr(colon + 1)));
  } else if (iequals(name, "retry-after")) {
    resp.retry_after.assign(trim(line.substr(colon + 1)));
  }
  return len;
}

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* userdata) {
  auto* slot = static_cast<easy_slot*>(userdata);
  const std::size_t len = size * count;
  if (!slot->current) return len;
  auto& body = slot->current->response.body;
  if (body.size() < max_response_body) body.append(data, std::min(len, max_response_body - body.size()));
  // Claim everything: returning less would make curl abort the transfer.
  return len;
}

/// CURLINFO_HTTP_VERSION as the number http_response carries.
int http_version_number(long v) noexcept {
  switch (v) {
    case CURL_HTTP_VERSION_1_0:
      return 10;
    case CURL_HTTP_VERSION_1_1:
      return 11;
    case CURL_HTTP_VERSION_2_0:
      return 20;
    case CURL_HTTP_VERSION_3:
      return 30;
    default:
      return 0;
  }
}

}  // namespace

struct sender::impl {
  explicit impl(sender_options o) : opts(std::move(o)) {
    global_init();
    if (opts.max_in_flight == 0) opts.max_in_flight = 1;
    opts.max_connections_per_host = std::max(1L, opts.max_connections_per_host);
    opts.max_concurrent_streams = std::max(1L, opts.max_concurrent_streams);
    multi.reset(curl_multi_init());
    if (!multi) throw std::runtime_error("curl_multi_init failed");
    set_multi_long(multi.get(), CURLMOPT_PIPELINING, opts.http2 ? CURLPIPE_MULTIPLEX : CURLPIPE_NOTHING);
    set_multi_long(multi.get(), CURLMOPT_MAX_HOST_CONNECTIONS, opts.max_connections_per_host);
    set_multi_long(multi.get(), CURLMOPT_MAX_CONCURRENT_STREAMS, opts.max_concurrent_streams);
    thread = std::thread([this] { run(); });
    thread_id = thread.get_id();
  }

  ~impl() {
    {
      std::lock_guard lk(mu);
      stopping = true;
    }
    space_cv.notify_all();
    curl_multi_wakeup(multi.get());
    if (thread.joinable()) thread.join();
    // Slots (easy handles) are cleaned up before the multi handle (member order).
  }

  void submit(push_request req, completion done) {
    auto t = std::make_unique<transfer>();
    t->request = std::move(req);
    t->done = std::move(done);
    t->submitted = clock_type::now();
    bool wake = false;
    {
      std::unique_lock lk(mu);
      if (aborted) {
        lk.unlock();
        abort_one(std::move(t), false);
        return;
      }
      // A completion calling submit() runs on the sender thread: waiting there
      // for space only that thread can make would deadlock.
      if (std::this_thread::get_id() != thread_id) {
        space_cv.wait(lk, [&] { return count < opts.max_in_flight || stopping; });
      }
      ++count;
      // Only the first request into an empty queue needs to wake the thread:
      // it takes the whole queue when it runs, and every later one rides along.
      wake = queue.empty();
      queue.push_back(std::move(t));
    }
    if (wake) curl_multi_wakeup(multi.get());
  }

  void drain() {
    std::unique_lock lk(mu);
    idle_cv.wait(lk, [&] { return count == 0; });
  }

  std::size_t in_flight() const {
    std::lock_guard lk(mu);
    return count;
  }

  sender_stats stats() const {
    std::lock_guard lk(mu);
    sender_stats s = published;
    s.in_flight = count;
    return s;
  }

 private:
  void run() {
    std::optional<clock_type::time_point> abort_at;
    for (;;) {
      const bool stop = take_incoming();
      auto now = clock_type::now();
      expire_waiting(now);
      start_ready(now);
      int running = 0;
      curl_multi_perform(multi.get(), &running);
      collect();
      // What collect() freed starts at once; curl_multi_add_handle arms a
      // zero timer, so the poll below returns without waiting.
      now = clock_type::now();
      start_ready(now);
      publish();
      if (stop) {
        if (!abort_at) abort_at = now + opts.shutdown_grace;
        bool idle = false;
        {
          std::lock_guard lk(mu);
          idle = queue.empty() && active.empty() && waiting_total == 0;
        }
        if (idle) break;
        if (now >= *abort_at) {
          abort_everything();
          publish();
          break;
        }
      }
      // Returns early on socket activity, curl's own timers, or curl_multi_wakeup.
      curl_multi_poll(multi.get(), nullptr, 0, poll_timeout_ms(stop, now), nullptr);
    }
  }

  int poll_timeout_ms(bool stop, clock_type::time_point now) const {
    long ms = stop ? 50 : 1000;
    if (waiting_total > 0 && next_expiry != clock_type::time_point::max()) {
      const auto until = std::chrono::ceil<std::chrono::milliseconds>(next_expiry - now).count();
      ms = std::clamp<long>(static_cast<long>(until), 0, ms);
    }
    return static_cast<int>(ms);
  }

  /// Moves submitted requests into their origins' queues. Returns whether
  /// the sender is stopping.
  bool take_incoming() {
    bool stop = false;
    {
      std::lock_guard lk(mu);
      // Swapping vectors keeps both buffers' capacity: no allocation per pass.
      intake.swap(queue);
      stop = stopping;
    }
    for (auto& t : intake) route(std::move(t));
    intake.clear();
    return stop;
  }

  void route(std::unique_ptr<transfer> t) {
    // The caller should have checked the endpoint; checking again here keeps
    // the sender safe on its own and yields the origin to queue under.
    auto ep = check_endpoint(t->request.endpoint, opts.rules);
    if (!ep) {
      t->response.blocked = true;
      t->response.transport_error = CURLE_COULDNT_CONNECT;
      t->response.transport_message = ep.error().message;
      finish(std::move(t));
      return;
    }
    auto& o = origin_named(std::move(ep->origin));
    t->deadline = t->submitted + opts.request_timeout;
    t->origin = &o;
    next_expiry = std::min(next_expiry, t->deadline);
    o.waiting.push_back(std::move(t));
    ++waiting_total;
    relist(o);
  }

  origin_queue& origin_named(std::string key) {
    auto it = origins.find(key);
    if (it != origins.end()) return *it->second;
    // Endpoints are user input and may name many hosts: forget idle origins
    // (and what was learnt about them) rather than grow without bound.
    if (origins.size() >= max_origins) {
      std::erase_if(origins, [](const auto& kv) {
        const auto& q = *kv.second;
        return q.waiting.empty() && q.active == 0 && !q.listed;
      });
    }
    return *origins.emplace(std::move(key), std::make_unique<origin_queue>()).first->second;
  }

  /// How many requests of `o` curl may hold at once: one per connection over
  /// HTTP/1.1; over HTTP/2 each connection carries up to max_concurrent_streams.
  std::size_t cap(const origin_queue& o) const {
    const long streams = o.multiplexed ? opts.max_concurrent_streams : 1L;
    return static_cast<std::size_t>(opts.max_connections_per_host) * static_cast<std::size_t>(streams);
  }

  /// Puts `o` in the round-robin if it has work and room in curl.
  void relist(origin_queue& o) {
    if (!o.listed && !o.waiting.empty() && o.active < cap(o)) {
      o.listed = true;
      ready.push_back(&o);
    }
  }

  /// Hands curl what it can start now, one request per ready origin per
  /// turn, so a busy origin cannot keep the others waiting.
  void start_ready(clock_type::time_point now) {
    while (!ready.empty()) {
      origin_queue* o = ready.front();
      ready.pop_front();
      o->listed = false;
      if (o->waiting.empty() || o->active >= cap(*o)) continue;
      auto t = std::move(o->waiting.front());
      o->waiting.pop_front();
      --waiting_total;
      start(std::move(t), now);
      relist(*o);
    }
  }

  /// Times out queued requests whose whole request_timeout went by before
  /// their origin had room. Queues are in submit order and every request
  /// has the same timeout, so only the fronts need looking at.
  void expire_waiting(clock_type::time_point now) {
    if (waiting_total == 0 || now < next_expiry) return;
    next_expiry = clock_type::time_point::max();
    for (auto& [key, o] : origins) {
      auto& w = o->waiting;
      while (!w.empty() && w.front()->deadline <= now) {
        auto t = std::move(w.front());
        w.pop_front();
        --waiting_total;
        time_out_queued(std::move(t));
      }
      if (!w.empty()) next_expiry = std::min(next_expiry, w.front()->deadline);
    }
  }

  void time_out_queued(std::unique_ptr<transfer> t) {
    t->response.transport_error = CURLE_OPERATION_TIMEDOUT;
    t->response.transport_message = "timed out waiting for a free connection";
    finish(std::move(t));
  }

  void start(std::unique_ptr<transfer> t, clock_type::time_point now) {
    if (t->deadline <= now) {
      time_out_queued(std::move(t));
      return;
    }
    std::unique_ptr<easy_slot> slot = acquire();
    if (!slot) {
      t->response.transport_error = CURLE_OUT_OF_MEMORY;
      t->response.transport_message = "could not set up the request";
      finish(std::move(t));
      return;
    }
    if (!prepare(*slot, *t, now)) {
      // The slot's options are in an unknown state: drop it rather than pool it.
      t->response.transport_error = CURLE_FAILED_INIT;
      t->response.transport_message = "could not set up the request";
      finish(std::move(t));
      return;
    }
    slot->current = std::move(t);
    if (curl_multi_add_handle(multi.get(), slot->easy.get()) != CURLM_OK) {
      auto failed = std::move(slot->current);
      failed->response.transport_error = CURLE_FAILED_INIT;
      failed->response.transport_message = "could not start the request";
      release(std::move(slot));
      finish(std::move(failed));
      return;
    }
    ++slot->current->origin->active;
    slot->active_index = active.size();
    active.push_back(std::move(slot));
    in_curl_peak = std::max(in_curl_peak, active.size());
  }

  std::unique_ptr<easy_slot> acquire() {
    if (!pool.empty()) {
      auto slot = std::move(pool.back());
      pool.pop_back();
      return slot;
    }
    auto slot = std::make_unique<easy_slot>();
    slot->easy.reset(curl_easy_init());
    if (!slot->easy || !configure_once(*slot)) return nullptr;
    return slot;
  }

  void release(std::unique_ptr<easy_slot> slot) {
    // Handles go back to the pool (their connections live in the multi's
    // shared cache, so this saves allocations and option setting, not handshakes).
    if (pool.size() < max_pool) pool.push_back(std::move(slot));
  }

  /// The options every request shares, set once per easy handle: a reused
  /// handle keeps them (it is never curl_easy_reset).
  bool configure_once(easy_slot& s) {
    CURL* e = s.easy.get();
    CURLcode rc = CURLE_OK;
    const auto step = [&rc](CURLcode c) {
      if (rc == CURLE_OK) rc = c;
    };
    s.nodes[0].data = s.content_encoding.data();
    s.nodes[1].data = s.content_type.data();
    s.nodes[2].data = s.expect.data();
    s.nodes[0].next = &s.nodes[1];
    s.nodes[1].next = &s.nodes[2];
    s.nodes[2].next = &s.nodes[3];  // the TTL line, always sent
    step(set_long(e, CURLOPT_POST, 1L));
    step(set_ptr(e, CURLOPT_HTTPHEADER, s.nodes.data()));
    step(set_str(e, CURLOPT_USERAGENT, opts.user_agent.c_str()));
    step(set_long(e, CURLOPT_NOSIGNAL, 1L));
    step(set_long(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opts.connect_timeout.count())));
    // Never follow redirects and speak nothing but HTTP(S): an endpoint is
    // user input and must not steer the daemon anywhere else.
    step(set_long(e, CURLOPT_FOLLOWLOCATION, 0L));
    step(set_str(e, CURLOPT_PROTOCOLS_STR, "http,https"));
    step(set_str(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"));
    // An empty string disables proxies, including http_proxy & co. from the environment.
    step(set_str(e, CURLOPT_PROXY, opts.proxy.c_str()));
    step(set_long(e, CURLOPT_HTTP_VERSION, opts.http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1));
    // Wait for an existing HTTP/2 connection to multiplex on rather than
    // opening a new one per request while the first is still handshaking.
    step(set_long(e, CURLOPT_PIPEWAIT, opts.http2 ? 1L : 0L));
    step(set_long(e, CURLOPT_TCP_KEEPALIVE, 1L));
    step(set_fn(e, CURLOPT_OPENSOCKETFUNCTION, &open_socket));
    step(set_ptr(e, CURLOPT_OPENSOCKETDATA, opts.rules.allow_private_addresses ? nullptr : &s));
    step(set_fn(e, CURLOPT_HEADERFUNCTION, &on_header));
    step(set_ptr(e, CURLOPT_HEADERDATA, &s));
    step(set_fn(e, CURLOPT_WRITEFUNCTION, &on_body));
    step(set_ptr(e, CURLOPT_WRITEDATA, &s));
    step(set_ptr(e, CURLOPT_ERRORBUFFER, s.error_buffer));
    step(set_ptr(e, CURLOPT_PRIVATE, &s));
    if (!opts.ca_file.empty()) step(set_str(e, CURLOPT_CAINFO, opts.ca_file.c_str()));
    return rc == CURLE_OK;
  }

  /// What changes per request: method, URL, body, timeout and the header lines.
  bool prepare(easy_slot& s, const transfer& t, clock_type::time_point now) {
    const auto& r = t.request;
    s.address_refused = false;
    s.error_buffer[0] = '\0';
    CURLcode rc = r.method == push_method::delete_ ? prepare_delete(s, r) : prepare_post(s, r);
    // The queue wait counts against the request timeout (0 would mean none).
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(t.deadline - now).count();
    CURL* e = s.easy.get();
    if (rc == CURLE_OK) rc = set_str(e, CURLOPT_URL, r.endpoint.c_str());
    if (rc == CURLE_OK) rc = set_long(e, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<std::int64_t>(1, left)));
    return rc == CURLE_OK;
  }

  /// A push: the handle's standing header list with this message's lines, and its body.
  CURLcode prepare_post(easy_slot& s, const push_request& r) {
    // The header lines reuse the slot's strings: after the first requests
    // their capacity suffices and nothing is allocated.
    char digits[16];
    const auto ttl_end = std::to_chars(digits, digits + sizeof digits, r.ttl_seconds).ptr;
    s.ttl_line.assign("TTL: ").append(digits, ttl_end);
    s.nodes[3].data = s.ttl_line.data();
    curl_slist* tail = &s.nodes[3];
    std::size_t next = 4;
    const auto link = [&](std::string& line, const char* name, const std::string& value) {
      line.assign(name).append(value);
      curl_slist& node = s.nodes[next++];
      node.data = line.data();
      tail->next = &node;
      tail = &node;
    };
    if (!r.authorization.empty()) link(s.authorization_line, "Authorization: ", r.authorization);
    if (!r.urgency.empty()) link(s.urgency_line, "Urgency: ", r.urgency);
    if (!r.topic.empty()) link(s.topic_line, "Topic: ", r.topic);
    tail->next = nullptr;

    CURL* e = s.easy.get();
    CURLcode rc = CURLE_OK;
    if (s.method != push_method::post) {
      // The handle last carried a recall: a POST again, with the standing headers.
      rc = set_str(e, CURLOPT_CUSTOMREQUEST, nullptr);
      if (rc == CURLE_OK) rc = set_long(e, CURLOPT_POST, 1L);
      if (rc == CURLE_OK) rc = set_ptr(e, CURLOPT_HTTPHEADER, s.nodes.data());
      if (rc != CURLE_OK) return rc;
      s.method = push_method::post;
    }
    static const char empty_body[] = "";
    const char* body = r.body.empty() ? empty_body : reinterpret_cast<const char*>(r.body.data());
    // The size first: with it set, curl takes the body as binary, not a C string.
    rc = set_off(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    if (rc == CURLE_OK) rc = set_str(e, CURLOPT_POSTFIELDS, body);
    return rc;
  }

  /// A recall: DELETE without a body, and no header but Authorization — the
  /// content headers and TTL describe a message being delivered.
  CURLcode prepare_delete(easy_slot& s, const push_request& r) {
    curl_slist* headers = nullptr;
    if (!r.authorization.empty()) {
      s.authorization_line.assign("Authorization: ").append(r.authorization);
      s.recall_headers.data = s.authorization_line.data();
      s.recall_headers.next = nullptr;
      headers = &s.recall_headers;
    }
    CURL* e = s.easy.get();
    CURLcode rc = set_ptr(e, CURLOPT_HTTPHEADER, headers);
    if (rc == CURLE_OK && s.method != push_method::delete_) {
      // HTTPGET drops the POST and its body; CUSTOMREQUEST then names the method.
      rc = set_long(e, CURLOPT_HTTPGET, 1L);
      if (rc == CURLE_OK) rc = set_str(e, CURLOPT_CUSTOMREQUEST, "DELETE");
      if (rc == CURLE_OK) s.method = push_method::delete_;
    }
    return rc;
  }

  void collect() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi.get(), &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* e = msg->easy_handle;
      const CURLcode rc = msg->data.result;
      char* priv = nullptr;
      curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
      curl_multi_remove_handle(multi.get(), e);
      auto* slot_ptr = reinterpret_cast<easy_slot*>(priv);
      if (!slot_ptr || slot_ptr->active_index >= active.size() || active[slot_ptr->active_index].get() != slot_ptr) {
        continue;
      }
      auto slot = unlink_active(slot_ptr->active_index);
      auto t = std::move(slot->current);
      auto& resp = t->response;
      origin_queue& o = *t->origin;
      --o.active;
      if (rc == CURLE_OK) {
        long status = 0;
        long version = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
        resp.status = status;
        resp.http_version = http_version_number(version);
        // What the origin negotiated sets how much curl may hold for it.
        o.multiplexed = resp.http_version >= 20;
      } else {
        resp.status = 0;
        resp.transport_error = rc;
        resp.transport_message = slot->error_buffer[0] != '\0' ? slot->error_buffer : curl_easy_strerror(rc);
        resp.blocked = slot->address_refused;
        if (slot->address_refused) resp.transport_message = "connection to an internal address refused";
      }
      relist(o);
      release(std::move(slot));
      finish(std::move(t));
    }
  }

  std::unique_ptr<easy_slot> unlink_active(std::size_t index) {
    auto slot = std::move(active[index]);
    if (index + 1 != active.size()) {
      active[index] = std::move(active.back());
      active[index]->active_index = index;
    }
    active.pop_back();
    return slot;
  }

  void abort_everything() {
    while (!active.empty()) {
      auto slot = unlink_active(active.size() - 1);
      curl_multi_remove_handle(multi.get(), slot->easy.get());
      auto t = std::move(slot->current);
      --t->origin->active;
      abort_one(std::move(t), true);
    }
    for (auto& [key, o] : origins) {
      for (auto& t : o->waiting) abort_one(std::move(t), true);
      waiting_total -= o->waiting.size();
      o->waiting.clear();
    }
    ready.clear();
    std::vector<std::unique_ptr<transfer>> rest;
    {
      std::lock_guard lk(mu);
      aborted = true;
      rest.swap(queue);
    }
    for (auto& t : rest) abort_one(std::move(t), true);
  }

  void abort_one(std::unique_ptr<transfer> t, bool counted) {
    t->response = {};
    t->response.transport_error = CURLE_ABORTED_BY_CALLBACK;
    t->response.transport_message = "sender shut down";
    if (counted) {
      finish(std::move(t));
    } else {
      call(*t);
    }
  }

  void call(transfer& t) {
    t.response.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - t.submitted);
    try {
      if (t.done) t.done(std::move(t.response));
    } catch (...) {
      // A completion's failure must not take the sender thread down.
    }
  }

  void finish(std::unique_ptr<transfer> t) {
    call(*t);
    t.reset();
    ++finished_unpublished;
  }

  /// Releases the slots of what finished this pass and refreshes the stats,
  /// under one lock per pass rather than one per request.
  void publish() {
    const std::size_t n = finished_unpublished;
    finished_unpublished = 0;
    bool idle = false;
    {
      std::lock_guard lk(mu);
      count -= n;
      idle = count == 0;
      published.in_curl = active.size();
      published.in_curl_peak = in_curl_peak;
      published.waiting = waiting_total;
      published.origins = origins.size();
    }
    if (n == 0) return;
    if (idle) idle_cv.notify_all();
    if (n == 1) {
      space_cv.notify_one();
    } else {
      space_cv.notify_all();
    }
  }

 public:
  static constexpr std::size_t max_pool = 256;
  static constexpr std::size_t max_origins = 1024;

  sender_options opts;
  multi_ptr multi;
  mutable std::mutex mu;
  std::condition_variable space_cv;
  std::condition_variable idle_cv;
  std::vector<std::unique_ptr<transfer>> queue;  // submitted, not yet routed (guarded by mu)
  std::size_t count = 0;                         // queued + active (guarded by mu)
  bool stopping = false;                         // guarded by mu
  bool aborted = false;                          // guarded by mu
  sender_stats published;                        // guarded by mu
  // Sender thread only:
  std::vector<std::unique_ptr<transfer>> intake;
  std::unordered_map<std::string, std::unique_ptr<origin_queue>> origins;
  std::deque<origin_queue*> ready;  // origins with waiting requests and room in curl
  std::size_t waiting_total = 0;
  clock_type::time_point next_expiry = clock_type::time_point::max();  // no queued request expires before
  std::vector<std::unique_ptr<easy_slot>> active;  // in curl
  std::vector<std::unique_ptr<easy_slot>> pool;    // idle, configured
  std::size_t in_curl_peak = 0;
  std::size_t finished_unpublished = 0;
  std::thread thread;
  std::thread::id thread_id;
};

sender::sender(sender_options options) : impl_(std::make_unique<impl>(std::move(options))) {}
sender::~sender() = default;
void sender::submit(push_request req, completion done) { impl_->submit(std::move(req), std::move(done)); }
void sender::drain() { impl_->drain(); }
std::size_t sender::in_flight() const { return impl_->in_flight(); }
sender_stats sender::stats() const { return impl_->stats(); }

}  // namespace webpushd::delivery
