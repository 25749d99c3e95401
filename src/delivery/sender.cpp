// The curl multi sender: one thread, curl_multi_poll, pooled easy handles.
#include "webpushd/delivery/sender.hpp"

#include "text.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
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
struct slist_deleter {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};
using easy_ptr = std::unique_ptr<CURL, easy_deleter>;
using multi_ptr = std::unique_ptr<CURLM, multi_deleter>;
using slist_ptr = std::unique_ptr<curl_slist, slist_deleter>;

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

using text::iequals;
using text::trim;

/// One request from submit() to completion. Lives on the heap so the
/// pointers curl keeps (body, headers, error buffer, callback data) stay put.
struct transfer {
  push_request request;
  sender::completion done;
  http_response response;
  slist_ptr headers;
  easy_ptr easy;
  std::chrono::steady_clock::time_point submitted;
  bool allow_private = false;
  bool address_refused = false;
  char error_buffer[CURL_ERROR_SIZE] = {};
};

// Connect-time guard: curl calls this instead of socket(2) for every
// connection, with the address it resolved. Checking here rather than on the
// URL defeats names that resolve (or re-resolve) to internal addresses.
curl_socket_t open_socket(void* clientp, curlsocktype purpose, curl_sockaddr* address) {
  auto* t = static_cast<transfer*>(clientp);
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
  if (!t->allow_private) {
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
      t->address_refused = true;
      return CURL_SOCKET_BAD;
    }
  }
  return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* userdata) {
  auto* t = static_cast<transfer*>(userdata);
  const std::size_t len = size * count;
  const std::string_view line(data, len);
  if (line.substr(0, 5) == "HTTP/") {
    // A new response begins (after an interim 1xx): forget the previous headers.
    t->response.location.clear();
    t->response.retry_after.clear();
    return len;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return len;
  const auto name = line.substr(0, colon);
  const auto value = trim(line.substr(colon + 1));
  if (iequals(name, "location")) {
    t->response.location.assign(value);
  } else if (iequals(name, "retry-after")) {
    t->response.retry_after.assign(value);
  }
  return len;
}

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* userdata) {
  auto* t = static_cast<transfer*>(userdata);
  const std::size_t len = size * count;
  auto& body = t->response.body;
  if (body.size() < max_response_body) body.append(data, std::min(len, max_response_body - body.size()));
  // Claim everything: returning less would make curl abort the transfer.
  return len;
}

}  // namespace

struct sender::impl {
  explicit impl(sender_options o) : opts(std::move(o)) {
    global_init();
    if (opts.max_in_flight == 0) opts.max_in_flight = 1;
    multi.reset(curl_multi_init());
    if (!multi) throw std::runtime_error("curl_multi_init failed");
    set_multi_long(multi.get(), CURLMOPT_PIPELINING, opts.http2 ? CURLPIPE_MULTIPLEX : CURLPIPE_NOTHING);
    set_multi_long(multi.get(), CURLMOPT_MAX_HOST_CONNECTIONS, std::max(1L, opts.max_connections_per_host));
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
    // Handles in the pool are cleaned up before the multi handle (member order).
  }

  void submit(push_request req, completion done) {
    auto t = std::make_unique<transfer>();
    t->request = std::move(req);
    t->done = std::move(done);
    t->submitted = std::chrono::steady_clock::now();
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
      queue.push_back(std::move(t));
    }
    curl_multi_wakeup(multi.get());
  }

  void drain() {
    std::unique_lock lk(mu);
    idle_cv.wait(lk, [&] { return count == 0; });
  }

  std::size_t in_flight() const {
    std::lock_guard lk(mu);
    return count;
  }

 private:
  using clock_type = std::chrono::steady_clock;

  void run() {
    std::optional<clock_type::time_point> abort_at;
    for (;;) {
      std::deque<std::unique_ptr<transfer>> incoming;
      bool stop = false;
      {
        std::lock_guard lk(mu);
        incoming.swap(queue);
        stop = stopping;
      }
      for (auto& t : incoming) start(std::move(t));
      int running = 0;
      curl_multi_perform(multi.get(), &running);
      collect();
      if (stop) {
        if (!abort_at) abort_at = clock_type::now() + opts.shutdown_grace;
        bool idle = false;
        {
          std::lock_guard lk(mu);
          idle = queue.empty() && active.empty();
        }
        if (idle) break;
        if (clock_type::now() >= *abort_at) {
          abort_everything();
          break;
        }
      }
      // Returns early on socket activity, curl's own timers, or curl_multi_wakeup.
      curl_multi_poll(multi.get(), nullptr, 0, stop ? 50 : 1000, nullptr);
    }
  }

  void start(std::unique_ptr<transfer> t) {
    t->allow_private = opts.rules.allow_private_addresses;
    // The caller should have checked the endpoint; checking again here keeps
    // the sender safe on its own (a few microseconds per request).
    if (auto ep = check_endpoint(t->request.endpoint, opts.rules); !ep) {
      t->response.blocked = true;
      t->response.transport_error = CURLE_COULDNT_CONNECT;
      t->response.transport_message = ep.error().message;
      finish(std::move(t));
      return;
    }
    if (!pool.empty()) {
      t->easy = std::move(pool.back());
      pool.pop_back();
      curl_easy_reset(t->easy.get());
    } else {
      t->easy.reset(curl_easy_init());
    }
    if (!t->easy || !configure(*t)) {
      t->response.transport_error = t->easy ? CURLE_FAILED_INIT : CURLE_OUT_OF_MEMORY;
      t->response.transport_message = "could not set up the request";
      finish(std::move(t));
      return;
    }
    CURL* e = t->easy.get();
    if (curl_multi_add_handle(multi.get(), e) != CURLM_OK) {
      t->response.transport_error = CURLE_FAILED_INIT;
      t->response.transport_message = "could not start the request";
      finish(std::move(t));
      return;
    }
    active.emplace(e, std::move(t));
  }

  bool configure(transfer& t) {
    const auto& r = t.request;
    slist_ptr headers;
    const auto add = [&](const std::string& line) {
      curl_slist* next = curl_slist_append(headers.get(), line.c_str());
      if (!next) return false;
      // curl_slist_append returns the list's head (new on the first call);
      // on failure it returned null and the old list is still owned.
      (void)headers.release();
      headers.reset(next);
      return true;
    };
    bool ok = add("TTL: " + std::to_string(r.ttl_seconds)) && add("Content-Encoding: aes128gcm") &&
              add("Content-Type: application/octet-stream") &&
              // curl 7.88 sends "Expect: 100-continue" for bodies over 1 KiB,
              // costing a round trip per message; push services never need it.
              add("Expect:");
    if (ok && !r.authorization.empty()) ok = add("Authorization: " + r.authorization);
    if (ok && !r.urgency.empty()) ok = add("Urgency: " + r.urgency);
    if (ok && !r.topic.empty()) ok = add("Topic: " + r.topic);
    if (!ok) return false;
    t.headers = std::move(headers);

    CURL* e = t.easy.get();
    static const char empty_body[] = "";
    const char* body = r.body.empty() ? empty_body : reinterpret_cast<const char*>(r.body.data());
    CURLcode rc = CURLE_OK;
    const auto step = [&rc](CURLcode c) {
      if (rc == CURLE_OK) rc = c;
    };
    step(set_str(e, CURLOPT_URL, r.endpoint.c_str()));
    step(set_long(e, CURLOPT_POST, 1L));
    step(set_off(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size())));
    step(set_str(e, CURLOPT_POSTFIELDS, body));
    step(set_ptr(e, CURLOPT_HTTPHEADER, t.headers.get()));
    step(set_str(e, CURLOPT_USERAGENT, opts.user_agent.c_str()));
    step(set_long(e, CURLOPT_NOSIGNAL, 1L));
    step(set_long(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opts.connect_timeout.count())));
    step(set_long(e, CURLOPT_TIMEOUT_MS, static_cast<long>(opts.request_timeout.count())));
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
    step(set_ptr(e, CURLOPT_OPENSOCKETDATA, &t));
    step(set_fn(e, CURLOPT_HEADERFUNCTION, &on_header));
    step(set_ptr(e, CURLOPT_HEADERDATA, &t));
    step(set_fn(e, CURLOPT_WRITEFUNCTION, &on_body));
    step(set_ptr(e, CURLOPT_WRITEDATA, &t));
    step(set_ptr(e, CURLOPT_ERRORBUFFER, t.error_buffer));
    step(set_ptr(e, CURLOPT_PRIVATE, &t));
    if (!opts.ca_file.empty()) step(set_str(e, CURLOPT_CAINFO, opts.ca_file.c_str()));
    return rc == CURLE_OK;
  }

  void collect() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi.get(), &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* e = msg->easy_handle;
      const CURLcode rc = msg->data.result;
      curl_multi_remove_handle(multi.get(), e);
      auto it = active.find(e);
      if (it == active.end()) continue;
      auto t = std::move(it->second);
      active.erase(it);
      auto& resp = t->response;
      if (rc == CURLE_OK) {
        long status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        resp.status = status;
      } else {
        resp.status = 0;
        resp.transport_error = rc;
        resp.transport_message = t->error_buffer[0] != '\0' ? t->error_buffer : curl_easy_strerror(rc);
        resp.blocked = t->address_refused;
        if (t->address_refused) resp.transport_message = "connection to an internal address refused";
      }
      // Handles go back to the pool (their connections live in the multi's
      // shared cache, so this saves allocations, not handshakes).
      if (pool.size() < max_pool) pool.push_back(std::move(t->easy));
      finish(std::move(t));
    }
  }

  void abort_everything() {
    for (auto& [e, t] : active) {
      curl_multi_remove_handle(multi.get(), e);
      abort_one(std::move(t), true);
    }
    active.clear();
    std::deque<std::unique_ptr<transfer>> rest;
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
    t.response.elapsed =
        std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - t.submitted);
    try {
      if (t.done) t.done(std::move(t.response));
    } catch (...) {
      // A completion's failure must not take the sender thread down.
    }
  }

  void finish(std::unique_ptr<transfer> t) {
    call(*t);
    t.reset();
    {
      std::lock_guard lk(mu);
      --count;
      if (count == 0) idle_cv.notify_all();
    }
    space_cv.notify_one();
  }

 public:
  static constexpr std::size_t max_pool = 256;

  sender_options opts;
  multi_ptr multi;
  mutable std::mutex mu;
  std::condition_variable space_cv;
  std::condition_variable idle_cv;
  std::deque<std::unique_ptr<transfer>> queue;  // submitted, not yet started (guarded by mu)
  std::size_t count = 0;                        // queued + active (guarded by mu)
  bool stopping = false;                        // guarded by mu
  bool aborted = false;                         // guarded by mu
  // Sender thread only:
  std::unordered_map<CURL*, std::unique_ptr<transfer>> active;
  std::vector<easy_ptr> pool;
  std::thread thread;
  std::thread::id thread_id;
};

sender::sender(sender_options options) : impl_(std::make_unique<impl>(std::move(options))) {}
sender::~sender() = default;
void sender::submit(push_request req, completion done) { impl_->submit(std::move(req), std::move(done)); }
void sender::drain() { impl_->drain(); }
std::size_t sender::in_flight() const { return impl_->in_flight(); }

}  // namespace webpushd::delivery
