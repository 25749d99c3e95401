// push-sink: a fault-injecting Web Push service (RFC 8030 §5, the receiving end).
//
// Listens on loopback, answers POST /push/<behaviour>[/<anything>] as the
// behaviour says, and records what arrived so tests can assert on headers,
// retry timing and connection reuse. Behaviours (query parameters in []):
//   ok[recall=C&location_host=H]
//                       201 Created + Location /message/<n> on the request's
//                       Host; with location_host=H on host H instead (same
//                       port: a Location on a foreign origin). recall=C: a
//                       DELETE of that Location answers C (405: a service
//                       that cannot recall, 503: a failing one)
//   gone | notfound     410 | 404
//   toolarge            413 with a body
//   unauthorized        401 with a body naming the VAPID problem
//   forbidden           403 with a body
//   ratelimit[after=S&times=N&date=1]  429 + Retry-After S (seconds, or an
//                       IMF-fixdate with date=1) for the first N requests to
//                       this path (default: always), then 201
//   error[status=C&times=N&after=S]    C (default 503) for the first N requests
//                       (default: always), optional Retry-After, then 201
//   status[code=C]      any status C
//   redirect[code=C]    C (default 307) with Location /push/ok/redirected on
//                       the request's Host: a push service (or whoever holds
//                       the endpoint) pointing the sender at an internal
//                       address; a sender that follows it shows up there
//   slow[ms=M&times=N]  waits M ms (default 1000), then 201; with times=N only
//                       the first N requests wait, later ones answer at once
//   reset[times=N]      reads the request, then resets the connection (RST);
//                       with times=N only the first N, then 201
// Every behaviour that ends in 201 gives a Location, and its message can be
// recalled (RFC 8030 §7.3):
//   DELETE /message/<n> 204 the first time (or the ok behaviour's recall=C),
//                       404 for a message never accepted or already deleted
// Counting is per path without the query, so a test isolates itself with a
// unique suffix: /push/error/test-42?times=2. DELETEs are recorded under
// their /message/<n> path.
//   GET /stats          {"connections":n,"requests":n,"paths":{path:{"count":n,"requests":[…]}}}
//   DELETE /stats       forget everything recorded so far
//   GET /healthz        200
// Start: push-sink [--port 0] [--threads N] [--tls-cert F --tls-key F]
// It prints {"port":P,"tls":false} on stdout once listening, and stops on SIGINT/SIGTERM.
// With TLS the line also carries "plain_port": a plain-HTTP listener on the
// same sink, for reading /stats without a TLS client.

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

using sink_clock = std::chrono::steady_clock;

/// @brief One request as a test wants to see it.
struct request_record {
  std::int64_t unix_ms = 0;      // wall clock
  std::int64_t since_start_us = 0;  // monotonic, for timing assertions
  std::uint64_t connection = 0;  // which connection carried it
  std::string method, target, ttl, urgency, topic, content_encoding, content_type, user_agent;
  bool authorization = false;
  std::string authorization_header;  // the value, so a test can check the VAPID token's claims
  std::size_t body_bytes = 0;
};

/// @brief Counters and records, shared by all connection threads.
class stats {
 public:
  explicit stats(std::size_t max_records) : max_records_(max_records) {}

  std::uint64_t on_connection() {
    std::lock_guard lk(mu_);
    return ++connections_;
  }

  /// @brief Records a request; returns how many requests this path has had, this one included.
  std::uint64_t record(const std::string& path, request_record rec) {
    std::lock_guard lk(mu_);
    ++requests_;
    auto& p = paths_[path];
    ++p.count;
    // Bounded, so a long benchmark cannot exhaust memory; counts stay exact.
    if (recorded_ < max_records_) {
      p.records.push_back(std::move(rec));
      ++recorded_;
    }
    return p.count;
  }

  void clear() {
    std::lock_guard lk(mu_);
    connections_ = 0;
    requests_ = 0;
    recorded_ = 0;
    paths_.clear();
  }

  std::string json() const {
    std::lock_guard lk(mu_);
    nlohmann::json out{{"connections", connections_}, {"requests", requests_}, {"paths", nlohmann::json::object()}};
    for (const auto& [path, p] : paths_) {
      auto list = nlohmann::json::array();
      for (const auto& r : p.records) {
        list.push_back({{"unix_ms", r.unix_ms},
                        {"since_start_us", r.since_start_us},
                        {"connection", r.connection},
                        {"method", r.method},
                        {"target", r.target},
                        {"ttl", r.ttl},
                        {"urgency", r.urgency},
                        {"topic", r.topic},
                        {"content_encoding", r.content_encoding},
                        {"content_type", r.content_type},
                        {"user_agent", r.user_agent},
                        {"authorization", r.authorization},
                        {"authorization_header", r.authorization_header},
                        {"body_bytes", r.body_bytes}});
      }
      out["paths"][path] = {{"count", p.count}, {"requests", std::move(list)}};
    }
    return out.dump();
  }

 private:
  struct path_stats {
    std::uint64_t count = 0;
    std::vector<request_record> records;
  };
  mutable std::mutex mu_;
  std::uint64_t connections_ = 0;
  std::uint64_t requests_ = 0;
  std::size_t recorded_ = 0;
  std::size_t max_records_;
  std::map<std::string, path_stats> paths_;
};

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

/// @brief What to do with one request: answer (after an optional delay) or reset.
struct action {
  std::optional<response> reply;
  std::chrono::milliseconds delay{0};
  bool reset = false;
};

std::string_view query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

std::int64_t query_int(std::string_view query, std::string_view name, std::int64_t fallback) {
  const auto text = query_param(query, name);
  std::int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  return (text.empty() || ec != std::errc{} || ptr != text.data() + text.size()) ? fallback : v;
}

std::string imf_fixdate(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

/// @brief The sink's behaviour: a pure-ish function of the request and the per-path count.
class sink {
 public:
  sink(std::size_t max_records, bool tls)
      : stats_(max_records), started_(sink_clock::now()), scheme_(tls ? "https://" : "http://") {}

  stats& counters() { return stats_; }

  action handle(const request& req, std::uint64_t connection) {
    const std::string_view target = req.target();
    const auto qpos = target.find('?');
    const std::string path(target.substr(0, qpos));
    const std::string_view query = qpos == std::string_view::npos ? std::string_view{} : target.substr(qpos + 1);

    if (path == "/stats") {
      if (req.method() == http::verb::delete_) {
        stats_.clear();
        return {make(req, http::status::no_content)};
      }
      auto res = make(req, http::status::ok, stats_.json());
      res.set(http::field::content_type, "application/json");
      return {std::move(res)};
    }
    if (path == "/healthz") return {make(req, http::status::ok, "ok")};
    if (path.rfind(message_prefix, 0) == 0) return recall(req, path, connection);
    if (path.rfind("/push/", 0) != 0) return {make(req, http::status::not_found, "no such resource")};
    if (req.method() != http::verb::post) return {make(req, http::status::method_not_allowed, "POST only")};

    const std::uint64_t n = stats_.record(path, describe(req, connection));
    std::string_view rest = std::string_view(path).substr(6);
    const std::string_view behaviour = rest.substr(0, rest.find('/'));

    if (behaviour == "ok") {
      const auto answer = query_int(query, "recall", static_cast<std::int64_t>(http::status::no_content));
      return {created(req, query_param(query, "location_host"), static_cast<std::uint16_t>(answer))};
    }
    if (behaviour == "gone") return {make(req, http::status::gone, "subscription expired")};
    if (behaviour == "notfound") return {make(req, http::status::not_found, "subscription not found")};
    if (behaviour == "toolarge") return {make(req, http::status::payload_too_large, "payload too large: 4096 bytes at most")};
    if (behaviour == "unauthorized") {
      return {make(req, http::status::unauthorized, R"({"error":"Unauthorized","message":"invalid VAPID signature"})")};
    }
    if (behaviour == "forbidden") return {make(req, http::status::forbidden, "VAPID key does not match the subscription")};
    if (behaviour == "ratelimit" || behaviour == "error") {
      const auto times = query_int(query, "times", -1);
      if (times >= 0 && n > static_cast<std::uint64_t>(times)) return {created(req)};
      const bool limit = behaviour == "ratelimit";
      const auto code = limit ? 429 : query_int(query, "status", 503);
      auto res = make(req, static_cast<http::status>(code), limit ? "too many requests" : "service unavailable");
      const auto after = query_int(query, "after", limit ? 1 : -1);
      if (after >= 0) {
        const bool as_date = query_param(query, "date") == "1";
        res.set(http::field::retry_after,
                as_date ? imf_fixdate(std::chrono::system_clock::now() + std::chrono::seconds{after}) : std::to_string(after));
      }
      return {std::move(res)};
    }
    if (behaviour == "status") {
      return {make(req, static_cast<http::status>(query_int(query, "code", 200)), "status on request")};
    }
    // times=N: the fault lasts for the first N requests to the path, so a
    // test can see a retry get through after it.
    const auto faulty = [&] {
      const auto times = query_int(query, "times", -1);
      return times < 0 || n <= static_cast<std::uint64_t>(times);
    };
    if (behaviour == "redirect") {
      auto res = make(req, static_cast<http::status>(query_int(query, "code", 307)), "moved");
      std::string host(req[http::field::host]);
      res.set(http::field::location, scheme_ + (host.empty() ? std::string("127.0.0.1") : host) + "/push/ok/redirected");
      return {std::move(res)};
    }
    if (behaviour == "slow") {
      action a{created(req)};
      if (faulty()) a.delay = std::chrono::milliseconds{query_int(query, "ms", 1000)};
      return a;
    }
    if (behaviour == "reset") {
      if (!faulty()) return {created(req)};
      return {std::nullopt, {}, true};
    }
    return {make(req, http::status::bad_request, "unknown behaviour")};
  }

 private:
  request_record describe(const request& req, std::uint64_t connection) const {
    const auto field = [&](std::string_view name) { return std::string(req[name]); };
    request_record r;
    r.unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    r.since_start_us = std::chrono::duration_cast<std::chrono::microseconds>(sink_clock::now() - started_).count();
    r.connection = connection;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.ttl = field("TTL");
    r.urgency = field("Urgency");
    r.topic = field("Topic");
    r.content_encoding = field("Content-Encoding");
    r.content_type = field("Content-Type");
    r.user_agent = field("User-Agent");
    r.authorization = req.find(http::field::authorization) != req.end();
    r.authorization_header = field("Authorization");
    r.body_bytes = req.body().size();
    return r;
  }

  response make(const request& req, http::status status, std::string body = {}) const {
    response res{status, req.version()};
    res.set(http::field::server, "push-sink");
    if (!body.empty()) res.set(http::field::content_type, "text/plain");
    res.body() = std::move(body);
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
  }

  /// 201 with the new message's Location; a DELETE of it answers `recall_answer` once.
  response created(const request& req, std::string_view location_host = {},
                   std::uint16_t recall_answer = static_cast<std::uint16_t>(http::status::no_content)) {
    std::uint64_t n = 0;
    {
      std::lock_guard lk(messages_mu_);
      recall_answers_.push_back(recall_answer);
      n = recall_answers_.size();
    }
    auto res = make(req, http::status::created);
    std::string host(req[http::field::host]);
    if (host.empty()) host = "127.0.0.1";
    if (!location_host.empty()) {
      const auto port = host.rfind(':');
      host = std::string(location_host) + (port == std::string::npos ? std::string{} : host.substr(port));
    }
    res.set(http::field::location, scheme_ + host + std::string(message_prefix) + std::to_string(n));
    return res;
  }

  /// DELETE /message/<n>: the recall of a message accepted before.
  action recall(const request& req, const std::string& path, std::uint64_t connection) {
    if (req.method() != http::verb::delete_) return {make(req, http::status::method_not_allowed, "DELETE only")};
    stats_.record(path, describe(req, connection));
    const std::string_view digits = std::string_view(path).substr(message_prefix.size());
    std::uint64_t n = 0;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    std::uint16_t answer = 0;
    if (ec == std::errc{} && ptr == digits.data() + digits.size() && n > 0) {
      std::lock_guard lk(messages_mu_);
      if (n <= recall_answers_.size()) {
        answer = recall_answers_[n - 1];
        // Only a successful DELETE removes the message; an answer that
        // refuses (405, 503) leaves it to be asked again.
        if (answer >= 200 && answer < 300) recall_answers_[n - 1] = 0;
      }
    }
    if (answer == 0) return {make(req, http::status::not_found, "no such message (delivered, expired or recalled)")};
    return {make(req, static_cast<http::status>(answer))};
  }

  static constexpr std::string_view message_prefix = "/message/";

  stats stats_;
  sink_clock::time_point started_;
  std::string scheme_;
  // Per message accepted (message n at n - 1): the status its DELETE
  // answers; 0 once deleted. Two bytes a message keeps long benchmarks small.
  std::mutex messages_mu_;
  std::vector<std::uint16_t> recall_answers_;
};

template <class Stream>
asio::awaitable<void> serve_requests(Stream& stream, sink& s, std::uint64_t connection) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds{60});
    auto [rec, bytes_read] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    (void)bytes_read;
    if (rec) co_return;
    const request req = parser.release();
    action a = s.handle(req, connection);
    if (a.delay.count() > 0) {
      asio::steady_timer timer(co_await asio::this_coro::executor, a.delay);
      beast::get_lowest_layer(stream).expires_after(a.delay + std::chrono::seconds{60});
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    auto& socket = beast::get_lowest_layer(stream).socket();
    if (a.reset || !a.reply) {
      // SO_LINGER 0 makes close() send RST: the client sees a reset, not a clean close.
      boost::system::error_code ignored;
      socket.set_option(asio::socket_base::linger(true, 0), ignored);
      socket.close(ignored);
      co_return;
    }
    const bool keep = a.reply->keep_alive();
    auto [wec, bytes_written] = co_await http::async_write(stream, *a.reply, asio::as_tuple(asio::use_awaitable));
    (void)bytes_written;
    if (wec || !keep) break;
  }
}

asio::awaitable<void> plain_session(tcp::socket socket, sink& s) {
  const auto id = s.counters().on_connection();
  beast::tcp_stream stream(std::move(socket));
  co_await serve_requests(stream, s, id);
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> tls_session(tcp::socket socket, asio::ssl::context& ctx, sink& s) {
  const auto id = s.counters().on_connection();
  beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), ctx);
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds{30});
  auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, asio::as_tuple(asio::use_awaitable));
  if (hec) co_return;
  co_await serve_requests(stream, s, id);
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds{5});
  co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, sink& s, asio::ssl::context* tls, asio::io_context& ioc) {
  for (;;) {
    // One strand per connection: its steps never run concurrently, while
    // different connections spread over all threads.
    auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(ioc), asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    const auto exec = socket.get_executor();
    if (tls) {
      asio::co_spawn(exec, tls_session(std::move(socket), *tls, s), asio::detached);
    } else {
      asio::co_spawn(exec, plain_session(std::move(socket), s), asio::detached);
    }
  }
}

struct options {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  unsigned threads = 1;
  std::string tls_cert, tls_key;
  std::size_t max_records = 100000;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "push-sink: %s\n"
               "usage: push-sink [--host 127.0.0.1] [--port 0] [--threads N] [--tls-cert FILE --tls-key FILE]\n"
               "                 [--max-records N]\n",
               why);
  std::exit(2);
}

options parse_args(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value");
      return argv[++i];
    };
    const auto number = [&](unsigned long max) {
      const auto text = value();
      unsigned long v = 0;
      const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc{} || ptr != text.data() + text.size() || v > max) usage("bad number");
      return v;
    };
    if (arg == "--host") o.host = value();
    else if (arg == "--port") o.port = static_cast<unsigned short>(number(65535));
    else if (arg == "--threads") o.threads = static_cast<unsigned>(std::max(1UL, number(256)));
    else if (arg == "--tls-cert") o.tls_cert = value();
    else if (arg == "--tls-key") o.tls_key = value();
    else if (arg == "--max-records") o.max_records = number(100'000'000);
    else if (arg == "--help" || arg == "-h") usage("a fault-injecting push service for tests");
    else usage("unknown option");
  }
  if (o.tls_cert.empty() != o.tls_key.empty()) usage("--tls-cert and --tls-key go together");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const options opts = parse_args(argc, argv);
  try {
    asio::io_context ioc{static_cast<int>(opts.threads)};
    std::optional<asio::ssl::context> tls;
    if (!opts.tls_cert.empty()) {
      tls.emplace(asio::ssl::context::tls_server);
      tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
      tls->use_certificate_chain_file(opts.tls_cert);
      tls->use_private_key_file(opts.tls_key, asio::ssl::context::pem);
    }
    tcp::acceptor acceptor(ioc, {asio::ip::make_address(opts.host), opts.port});
    sink s(opts.max_records, tls.has_value());

    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code&, int) { ioc.stop(); });

    asio::co_spawn(ioc, accept_loop(acceptor, s, tls ? &*tls : nullptr, ioc), asio::detached);
    nlohmann::json ready{{"port", acceptor.local_endpoint().port()}, {"tls", tls.has_value()}};
    // With TLS, a second plain-HTTP listener serves the same sink, so tests
    // and scripts can read /stats without a TLS client.
    std::optional<tcp::acceptor> plain;
    if (tls) {
      plain.emplace(ioc, tcp::endpoint{asio::ip::make_address(opts.host), 0});
      asio::co_spawn(ioc, accept_loop(*plain, s, nullptr, ioc), asio::detached);
      ready["plain_port"] = plain->local_endpoint().port();
    }
    std::cout << ready.dump() << std::endl;

    std::vector<std::thread> workers;
    for (unsigned i = 1; i < opts.threads; ++i) workers.emplace_back([&ioc] { ioc.run(); });
    ioc.run();
    for (auto& w : workers) w.join();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "push-sink: %s\n", e.what());
    return 1;
  }
  return 0;
}
