// The listener and its sessions, after Beast's advanced_server: one strand per
// connection, a parser with body and header limits, a deadline on every read
// and write, and a small in-order queue of responses for pipelined requests.
// Unlike that example, handlers may answer later from any thread, so each
// queued slot waits for its own response and only the front one is written.
#include "webpushd/api/http_server.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include "http_wire.hpp"
#include "text.hpp"
#include "webpushd/api/http.hpp"
#include "webpushd/api/router.hpp"

namespace webpushd::api {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace http_detail {

// Lets respond_fn calls from any thread reach a session without outliving
// the io_context: stop() closes it, under the mutex, before the io_context
// goes away, and a post only happens while it is open.
struct gate {
  std::mutex m;
  bool open = true;
};

// How long a closing connection keeps reading (and discarding) what the
// client still sends, and how much of it: closing with unread data would
// reset the connection and could destroy the last response on its way.
// The byte bound must cover a whole refused body: a 413 for a declared
// Content-Length over the limit is answered before any of the body is read,
// and a client still sending that body (1 MiB by default) when a 256 KiB
// bound closed the socket got a reset instead of its 413 (the abuse suite saw
// it once on a loaded machine). Discarding is cheap and the 2 s deadline
// bounds a slow sender, as nginx's lingering_close does.
constexpr std::chrono::seconds linger_timeout{2};
constexpr std::size_t linger_limit = 16 * 1024 * 1024;
constexpr std::size_t read_chunk = 16 * 1024;

class session;

struct server_core {
  server_core(server_options o, const router& r) : opts(std::move(o)), routes(r) {}

  server_options opts;
  const router& routes;
  // Declared first, destroyed last: everything below uses it.
  std::optional<net::io_context> ioc{std::in_place};
  std::optional<net::strand<net::io_context::executor_type>> accept_strand{net::make_strand(*ioc)};
  std::optional<tcp::acceptor> acceptor;
  std::optional<net::steady_timer> accept_retry;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  std::shared_ptr<gate> responses = std::make_shared<gate>();

  mutable std::mutex m;  // guards the four below
  std::condition_variable drained;
  std::unordered_map<const session*, std::shared_ptr<session>> sessions;
  bool accept_paused = false;
  bool draining = false;

  bool started = false;
  bool stopped = false;

  void do_accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void remove(const session* s);
};

// "Sun, 06 Nov 1994 08:49:37 GMT", formatted once a second per thread.
const std::string& http_date() {
  thread_local std::time_t cached = -1;
  thread_local std::string text;
  const std::time_t now = std::time(nullptr);
  if (now != cached) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    // The daemon never calls setlocale, so %a and %b are the English names HTTP wants.
    const auto n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    text.assign(buf, n);
    cached = now;
  }
  return text;
}


class session : public std::enable_shared_from_this<session> {
 public:
  session(server_core& srv, tcp::socket&& socket) : srv_(srv), stream_(std::move(socket)) {
    beast::error_code ec;
    const auto peer = stream_.socket().remote_endpoint(ec);
    if (!ec) {
      auto addr = peer.address();
      if (addr.is_v6() && addr.to_v6().is_v4_mapped()) addr = net::ip::make_address_v4(net::ip::v4_mapped, addr.to_v6());
      remote_ip_ = addr.to_string();
    }
  }

  net::any_io_executor executor() { return stream_.get_executor(); }

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->do_read(); });
  }

  void drain() {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->on_drain(); });
  }

  // On the strand: the response for request `seq` arrived.
  void deliver(std::uint64_t seq, response res) {
    if (closing_ || seq < first_seq_ || seq >= first_seq_ + queue_.size()) return;
    auto& s = queue_[seq - first_seq_];
    if (s.ready) return;
    spdlog::debug("http {} {} -> {}", s.method, s.path, res.status);
    s.msg = wire::to_message(std::move(res), s.version, s.head);
    s.ready = true;
    do_write();
  }

 private:
  struct slot {
    bool ready = false;
    bool head = false;
    bool keep_alive = true;
    unsigned version = 11;
    std::string method;
    std::string path;  // without the query, for the debug log
    http::response<http::string_body> msg;
  };

  // A respond_fn's shared state: once only; a 500 if dropped unanswered.
  struct responder {
    std::shared_ptr<gate> g;
    std::weak_ptr<session> s;
    std::uint64_t seq = 0;
    std::atomic<bool> done{false};

    void send(response r) {
      if (done.exchange(true)) {
        spdlog::debug("http: a handler answered twice; the second answer is ignored");
        return;
      }
      std::lock_guard lock(g->m);
      if (!g->open) return;
      // `sp` is released inside the lock: if it were the last owner, the
      // session (and its socket) must not outlive the io_context.
      if (auto sp = s.lock()) {
        net::post(sp->executor(), [sp, n = seq, r = std::move(r)]() mutable { sp->deliver(n, std::move(r)); });
      }
    }

    ~responder() {
      if (done.load()) return;
      try {
        spdlog::error("http: a handler dropped its request without answering");
        send(error_response("internal_error", "handler dropped the request"));
      } catch (...) {
        // Destructors never throw; the connection's read timeout cleans up.
      }
    }
  };

  void do_read() {
    if (reading_ || no_more_reads_ || closing_) return;
    if (queue_.size() >= srv_.opts.max_pipelined) return;
    if (buffer_.size() == 0) {
      // Nothing buffered: wait idle only once every answer is out, so a slow
      // handler is never cut off by the idle timeout.
      if (!queue_.empty()) return;
      reading_ = true;
      idle_ = true;
      stream_.expires_after(srv_.opts.idle_timeout);
      stream_.async_read_some(buffer_.prepare(read_chunk),
                              beast::bind_front_handler(&session::on_idle_read, shared_from_this()));
      return;
    }
    start_request();
  }

  void on_idle_read(beast::error_code ec, std::size_t n) {
    reading_ = false;
    idle_ = false;
    if (ec) {
      finish();  // closed by the client, idle timeout, or drained
      return;
    }
    buffer_.commit(n);
    if (no_more_reads_) {
      finish();
      return;
    }
    start_request();
  }

  void start_request() {
    reading_ = true;
    parser_.emplace();
    wire::limit(*parser_, srv_.opts);
    // One deadline for the whole request, however slowly its bytes arrive.
    stream_.expires_after(srv_.opts.read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (ec) {
      on_read_error(ec);
      return;
    }
    const auto& h = parser_->get();
    // curl and others wait (a second) for "100 Continue" before sending a
    // body. Only when no earlier response is pending: an interim response
    // must not overtake a pipelined final one.
    if (!parser_->is_done() && h.version() == 11 && queue_.empty() && iequals(h[http::field::expect], "100-continue")) {
      writing_ = true;
      stream_.expires_after(srv_.opts.read_timeout);
      static constexpr std::string_view continue_text = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(continue_text.data(), continue_text.size()),
                       [self = shared_from_this()](beast::error_code wec, std::size_t) {
                         self->writing_ = false;
                         if (wec) {
                           self->reading_ = false;
                           self->finish();
                           return;
                         }
                         self->read_body();
                       });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) {
      on_read_error(ec);
      return;
    }
    reading_ = false;
    on_request(parser_->release());
    parser_.reset();
    do_read();
  }

  void on_read_error(beast::error_code ec) {
    reading_ = false;
    if (ec == http::error::end_of_stream) {
      // The client closed between requests: answer what is pending, then close.
      no_more_reads_ = true;
      maybe_finish();
      return;
    }
    const auto refusal = wire::read_refusal(ec, srv_.opts);
    if (!refusal) {
      finish();  // timeout (the socket is already closed), reset, cancelled
      return;
    }
    no_more_reads_ = true;
    spdlog::debug("http: refused a request from {}: {}", remote_ip_, ec.message());
    slot s;
    s.keep_alive = false;
    s.method = "-";
    const auto seq = first_seq_ + queue_.size();
    queue_.push_back(std::move(s));
    deliver(seq, error_response(*refusal));
  }

  void on_request(http::request<http::string_body>&& msg) {
    slot s;
    s.version = msg.version();
    s.head = msg.method() == http::verb::head;
    s.keep_alive = msg.keep_alive() && !no_more_reads_;
    request req = wire::to_request(std::move(msg), remote_ip_, srv_.opts);
    s.method = req.method;
    s.path = req.target.substr(0, req.target.find('?'));
    if (!s.keep_alive) no_more_reads_ = true;
    const auto seq = first_seq_ + queue_.size();
    queue_.push_back(std::move(s));

    auto state = std::make_shared<responder>();
    state->g = srv_.responses;
    state->s = weak_from_this();
    state->seq = seq;
    respond_fn respond = [state](response r) { state->send(std::move(r)); };
    try {
      srv_.routes.dispatch(std::move(req), respond);
    } catch (const std::exception& e) {
      spdlog::error("http: routing failed: {}", e.what());
      respond(error_response("internal_error", "routing failed"));
    } catch (...) {
      respond(error_response("internal_error", "routing failed"));
    }
  }

  void do_write() {
    if (writing_ || closing_ || queue_.empty() || !queue_.front().ready) return;
    auto& s = queue_.front();
    // Draining: the last answer closes the connection, unless another
    // request is already being read.
    if (draining_ && queue_.size() == 1 && !reading_) s.keep_alive = false;
    s.msg.keep_alive(s.keep_alive);
    writing_ = true;
    stream_.expires_after(srv_.opts.write_timeout);
    http::async_write(stream_, s.msg, beast::bind_front_handler(&session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    writing_ = false;
    if (ec) {
      finish();
      return;
    }
    const bool keep = queue_.front().keep_alive;
    queue_.pop_front();
    ++first_seq_;
    if (!keep) {
      no_more_reads_ = true;
      close_gracefully();
      return;
    }
    do_write();
    do_read();
    maybe_finish();
  }

  void on_drain() {
    draining_ = true;
    no_more_reads_ = true;
    if (closing_) return;
    if (reading_ && idle_) {
      finish();  // idle keep-alive connection: nothing in flight
      return;
    }
    maybe_finish();
  }

  void maybe_finish() {
    if (!closing_ && !reading_ && !writing_ && queue_.empty() && no_more_reads_) close_gracefully();
  }

  void close_gracefully() {
    if (closing_) return;
    closing_ = true;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec || reading_) {
      finish();
      return;
    }
    buffer_.clear();
    reading_ = true;
    stream_.expires_after(linger_timeout);
    do_linger();
  }

  void do_linger() {
    stream_.async_read_some(buffer_.prepare(read_chunk), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->lingered_ += n;
      if (ec || self->lingered_ > linger_limit) {
        self->reading_ = false;
        self->finish();
        return;
      }
      self->do_linger();
    });
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    closing_ = true;
    stream_.close();
    srv_.remove(this);
  }

  server_core& srv_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<slot> queue_;
  std::uint64_t first_seq_ = 0;  // the request number of queue_.front()
  std::string remote_ip_;
  std::size_t lingered_ = 0;
  bool reading_ = false;
  bool idle_ = false;           // the pending read waits for a new request
  bool writing_ = false;
  bool no_more_reads_ = false;  // Connection: close, an error, EOF or draining
  bool draining_ = false;
  bool closing_ = false;
  bool finished_ = false;
};

void server_core::do_accept() {
  acceptor->async_accept(net::make_strand(*ioc), beast::bind_front_handler(&server_core::on_accept, this));
}

void server_core::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec) {
    if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
    // Typically out of file descriptors: back off instead of spinning.
    spdlog::warn("http: accept failed: {}; retrying in 100 ms", ec.message());
    accept_retry->expires_after(std::chrono::milliseconds{100});
    accept_retry->async_wait([this](beast::error_code wec) {
      if (!wec && acceptor->is_open()) do_accept();
    });
    return;
  }
  std::shared_ptr<session> s;
  bool more = false;
  {
    std::lock_guard lock(m);
    if (draining) return;  // the socket closes as it goes out of scope
    s = std::make_shared<session>(*this, std::move(socket));
    sessions.emplace(s.get(), s);
    more = sessions.size() < opts.max_connections;
    accept_paused = !more;
  }
  s->start();
  if (more) do_accept();
}

void server_core::remove(const session* s) {
  std::shared_ptr<session> last;  // released outside the lock
  bool resume = false;
  {
    std::lock_guard lock(m);
    const auto it = sessions.find(s);
    if (it == sessions.end()) return;
    last = std::move(it->second);
    sessions.erase(it);
    if (accept_paused && !draining) {
      accept_paused = false;
      resume = true;
    }
    if (sessions.empty()) drained.notify_all();
  }
  if (resume) net::post(*accept_strand, [this] { do_accept(); });
}

}  // namespace http_detail

namespace wire {

namespace {
bool header_safe(std::string_view s) { return s.find_first_of("\r\n", 0) == std::string_view::npos && s.find('\0') == std::string_view::npos; }
}  // namespace

void limit(request_parser& parser, const server_options& opts) {
  parser.body_limit(static_cast<std::uint64_t>(opts.body_limit));
  parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(opts.header_limit, UINT32_MAX)));
}

request to_request(beast_request&& msg, std::string remote_ip, const server_options& opts) {
  request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  req.version = msg.version();
  req.headers.reserve(static_cast<std::size_t>(std::distance(msg.begin(), msg.end())));
  for (const auto& f : msg) req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  req.body = std::move(msg.body());
  req.remote_ip = std::move(remote_ip);
  if (opts.trust_forwarded_for) {
    // The last entry is the one our own proxy appended; earlier ones are
    // whatever the client claimed.
    const std::string xff = req.header("X-Forwarded-For");
    const auto last = trim(std::string_view(xff).substr(xff.rfind(',') == std::string::npos ? 0 : xff.rfind(',') + 1));
    if (!last.empty()) req.remote_ip = std::string(last);
  }
  return req;
}

std::optional<error> read_refusal(beast::error_code ec, const server_options& opts) {
  if (ec.category() != http::make_error_code(http::error::bad_target).category() || ec == http::error::end_of_stream ||
      ec == http::error::partial_message) {
    return std::nullopt;
  }
  if (ec == http::error::body_limit) {
    return error{"payload_too_large", "the request body exceeds " + std::to_string(opts.body_limit) + " bytes", ""};
  }
  if (ec == http::error::header_limit) {
    return error{"headers_too_large", "the request head exceeds " + std::to_string(opts.header_limit) + " bytes", ""};
  }
  return error{"malformed_request", "the request is not valid HTTP/1.1 (" + ec.message() + ")", ""};
}

beast_response to_message(response&& res, unsigned version, bool head) {
  beast_response m;
  int status = res.status;
  if (status < 200 || status > 599) {
    spdlog::error("http: a handler answered status {}; sending 500", status);
    res = error_response("internal_error", "invalid status");
    status = 500;
  }
  m.version(version);
  m.result(static_cast<unsigned>(status));
  m.set(http::field::server, "webpushd");
  m.set(http::field::date, http_detail::http_date());
  bool cache_control = false;
  for (const auto& [name, value] : res.headers) {
    // A value copied from input must never split the response.
    if (name.empty() || !header_safe(name) || !header_safe(value) || name.find_first_of(" :") != std::string::npos) {
      spdlog::error("http: dropped an invalid response header from a handler");
      continue;
    }
    cache_control = cache_control || iequals(name, "Cache-Control");
    m.insert(name, value);
  }
  if (!cache_control) m.set(http::field::cache_control, "no-store");
  m.set("X-Content-Type-Options", "nosniff");
  const bool bodiless = status == 204 || status == 304;
  if (!bodiless) {
    m.set(http::field::content_type, res.content_type.empty() ? "application/octet-stream" : res.content_type);
    m.body() = std::move(res.body);
  }
  m.prepare_payload();
  if (head && !bodiless) {
    // The length a GET would have sent, and no body.
    const auto length = m.body().size();
    m.body().clear();
    m.content_length(length);
  }
  return m;
}

}  // namespace wire

struct http_server::impl : http_detail::server_core {
  using server_core::server_core;
};

http_server::http_server(server_options opts, const router& routes)
    : impl_(std::make_unique<impl>(std::move(opts), routes)) {}

http_server::~http_server() { stop(std::chrono::milliseconds{0}); }

result<std::uint16_t> http_server::start() {
  auto& s = *impl_;
  if (s.started) return fail("listen_failed", "the server was already started");
  const std::string where = s.opts.host + ":" + std::to_string(s.opts.port);
  beast::error_code ec;
  tcp::endpoint endpoint;
  const auto address = net::ip::make_address(s.opts.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, s.opts.port);
  } else {
    tcp::resolver resolver(*s.ioc);
    const auto found = resolver.resolve(s.opts.host, std::to_string(s.opts.port), ec);
    if (ec || found.empty()) return fail("listen_failed", "cannot resolve " + s.opts.host + ": " + ec.message(), "server.listen");
    endpoint = found.begin()->endpoint();
  }
  s.acceptor.emplace(*s.accept_strand);
  s.accept_retry.emplace(*s.accept_strand);
  if (s.acceptor->open(endpoint.protocol(), ec); ec) return fail("listen_failed", "cannot listen on " + where + ": " + ec.message(), "server.listen");
  s.acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (s.acceptor->bind(endpoint, ec); ec) return fail("listen_failed", "cannot listen on " + where + ": " + ec.message(), "server.listen");
  if (s.acceptor->listen(net::socket_base::max_listen_connections, ec); ec) {
    return fail("listen_failed", "cannot listen on " + where + ": " + ec.message(), "server.listen");
  }
  const auto port = s.acceptor->local_endpoint(ec).port();

  s.started = true;
  s.work.emplace(net::make_work_guard(*s.ioc));
  net::post(*s.accept_strand, [&s] { s.do_accept(); });
  const unsigned n = s.opts.threads != 0 ? s.opts.threads : std::max(1U, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < n; ++i) {
    s.threads.emplace_back([&s] {
      while (true) {
        try {
          s.ioc->run();
          return;
        } catch (const std::exception& e) {
          // Handlers catch their own exceptions; this is a last resort that
          // keeps the thread serving.
          spdlog::error("http: uncaught exception in an I/O thread: {}", e.what());
        }
      }
    });
  }
  return port;
}

void http_server::stop(std::chrono::milliseconds grace) {
  auto& s = *impl_;
  if (!s.started || s.stopped) return;
  s.stopped = true;
  const auto deadline = std::chrono::steady_clock::now() + grace;

  std::vector<std::shared_ptr<http_detail::session>> open;
  {
    std::lock_guard lock(s.m);
    s.draining = true;
    s.accept_paused = false;
    for (const auto& [p, sp] : s.sessions) open.push_back(sp);
  }
  net::post(*s.accept_strand, [&s] {
    beast::error_code ec;
    s.acceptor->close(ec);
    s.accept_retry->cancel();
  });
  for (const auto& sp : open) sp->drain();
  open.clear();
  {
    std::unique_lock lock(s.m);
    if (!s.drained.wait_until(lock, deadline, [&] { return s.sessions.empty(); })) {
      spdlog::warn("http: {} connection(s) still busy after the grace period; closing them", s.sessions.size());
    }
  }
  s.work.reset();
  s.ioc->stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
  {
    std::lock_guard lock(s.responses->m);
    s.responses->open = false;
  }
  std::unordered_map<const http_detail::session*, std::shared_ptr<http_detail::session>> rest;
  {
    std::lock_guard lock(s.m);
    rest.swap(s.sessions);
  }
  rest.clear();
  s.accept_retry.reset();
  s.acceptor.reset();
  s.accept_strand.reset();  // a strand must not outlive its io_context
  s.ioc.reset();  // destroys the handlers still queued, and the sessions they hold
}

std::size_t http_server::connections() const {
  std::lock_guard lock(impl_->m);
  return impl_->sessions.size();
}

const server_options& http_server::options() const { return impl_->opts; }

}  // namespace webpushd::api
