// The server over real loopback sockets: a raw client, so every byte on the
// wire is what the test wrote, and every wait is bounded.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "webpushd/api/health.hpp"
#include "webpushd/api/http_server.hpp"
#include "webpushd/api/router.hpp"
#include "webpushd/api/static_assets.hpp"

using namespace webpushd::api;
using namespace std::chrono_literals;

namespace {

struct reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string{} : it->second;
  }
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A blocking client with a receive timeout, so a test can never hang.
class client {
 public:
  explicit client(std::uint16_t port, std::chrono::milliseconds timeout = 5s) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~client() {
    if (fd_ >= 0) ::close(fd_);
  }
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  bool connected() const { return connected_; }

  bool send(std::string_view data) {
    while (!data.empty()) {
      const auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // One response; nullopt if the connection closed or timed out first.
  std::optional<reply> read(bool head = false) {
    std::size_t end = 0;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return std::nullopt;
    }
    reply r;
    const std::string head_text = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    std::size_t pos = head_text.find("\r\n");
    const std::string status_line = head_text.substr(0, pos);
    r.status = std::stoi(status_line.substr(9, 3));
    while (pos != std::string::npos && pos < head_text.size()) {
      const auto next = head_text.find("\r\n", pos + 2);
      const auto line = head_text.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        r.headers[lower(line.substr(0, colon))] = value;
      }
      pos = next;
    }
    const std::size_t length = head || r.headers.count("content-length") == 0
                                   ? 0
                                   : static_cast<std::size_t>(std::stoul(r.headers["content-length"]));
    while (buf_.size() < length) {
      if (!fill()) return std::nullopt;
    }
    r.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return r;
  }

  // True once the peer closed (EOF or reset) with nothing more to read.
  bool closed_by_peer() {
    if (!buf_.empty()) return false;
    char c;
    const auto n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

 private:
  bool fill() {
    char chunk[16384];
    const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buf_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

std::string get(std::string_view path, std::string_view extra = {}) {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: test\r\n" + std::string(extra) + "\r\n";
}

// A server on 127.0.0.1:0 with routes that answer at once, later from another
// thread, never, or by throwing.
struct fixture {
  router routes;
  std::unique_ptr<http_server> server;
  std::uint16_t port = 0;
  std::mutex m;
  std::vector<std::thread> workers;
  std::atomic<int> slow_started{0};
  std::atomic<int> slow_in_flight{0};
  std::atomic<int> max_slow_in_flight{0};
  std::atomic<std::size_t> max_connections_seen{0};

  explicit fixture(server_options opts = {}) {
    routes.add("GET", "/hello", access::open, [](request&&, respond_fn respond) {
      respond(json_response(200, {{"hello", "world"}}));
    });
    routes.add("POST", "/echo", access::open, [](request&& req, respond_fn respond) {
      response res;
      res.content_type = "text/plain";
      res.body = req.body;
      respond(std::move(res));
    });
    routes.add("GET", "/slow", access::open, [this](request&& req, respond_fn respond) {
      ++slow_started;
      const int now = ++slow_in_flight;
      int peak = max_slow_in_flight.load();
      while (now > peak && !max_slow_in_flight.compare_exchange_weak(peak, now)) {
      }
      const auto conns = server->connections();
      auto seen = max_connections_seen.load();
      while (conns > seen && !max_connections_seen.compare_exchange_weak(seen, conns)) {
      }
      const auto ms = std::stoi(req.query.count("ms") ? req.query.at("ms") : "50");
      const std::string tag = req.query.count("tag") ? req.query.at("tag") : "slow";
      std::lock_guard lock(m);
      workers.emplace_back([this, ms, tag, respond = std::move(respond)] {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        --slow_in_flight;
        respond(json_response(200, {{"tag", tag}}));
      });
    });
    routes.add("GET", "/drop", access::open, [](request&&, respond_fn) {});
    routes.add("GET", "/ip", access::open, [](request&& req, respond_fn respond) {
      respond(json_response(200, {{"ip", req.remote_ip}}));
    });
    add_health_route(routes, [] { return webpushd::result<void>{}; });
    web_assets().install(routes);
    if (opts.threads == 0) opts.threads = 2;
    opts.port = 0;
    server = std::make_unique<http_server>(opts, routes);
    auto p = server->start();
    REQUIRE(p.has_value());
    port = *p;
  }
  ~fixture() {
    server->stop(0ms);
    std::lock_guard lock(m);
    for (auto& t : workers) t.join();
  }
};

nlohmann::json json_of(const reply& r) { return nlohmann::json::parse(r.body); }

}  // namespace

TEST_CASE("keep-alive: several requests on one connection, with the standard headers") {
  fixture f;
  client c(f.port);
  REQUIRE(c.connected());
  for (int i = 0; i < 3; ++i) {
    REQUIRE(c.send(get("/hello")));
    const auto r = c.read();
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
    CHECK(json_of(*r) == nlohmann::json{{"hello", "world"}});
    CHECK(r->header("content-type") == "application/json");
    CHECK(r->header("content-length") == std::to_string(r->body.size()));
    CHECK(r->header("cache-control") == "no-store");
    CHECK(r->header("server") == "webpushd");
    CHECK(r->header("x-content-type-options") == "nosniff");
    CHECK(r->header("date").ends_with(" GMT"));
    CHECK(r->header("connection").empty());  // HTTP/1.1 keeps alive by default
  }
  CHECK(f.server->connections() == 1);
}

TEST_CASE("pipelined requests are answered in order, even when an earlier one answers later") {
  fixture f;
  client c(f.port);
  REQUIRE(c.send(get("/slow?ms=150&tag=first") + get("/hello") + get("/slow?ms=10&tag=third") +
                 "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nfifth"));
  const auto r1 = c.read();
  const auto r2 = c.read();
  const auto r3 = c.read();
  const auto r4 = c.read();
  REQUIRE((r1 && r2 && r3 && r4));
  CHECK(json_of(*r1)["tag"] == "first");
  CHECK(json_of(*r2)["hello"] == "world");
  CHECK(json_of(*r3)["tag"] == "third");
  CHECK(r4->body == "fifth");
}

TEST_CASE("pipelining is bounded: reading stops at max_pipelined and resumes as answers go out") {
  server_options opts;
  opts.max_pipelined = 2;
  fixture f(opts);
  client c(f.port);
  std::string burst;
  for (int i = 0; i < 12; ++i) burst += get("/slow?ms=20&tag=" + std::to_string(i));
  REQUIRE(c.send(burst));
  for (int i = 0; i < 12; ++i) {
    const auto r = c.read();
    REQUIRE(r.has_value());
    CHECK(json_of(*r)["tag"] == std::to_string(i));
  }
  // Never more than two requests of the connection were taken up at once.
  CHECK(f.max_slow_in_flight.load() == 2);
}

TEST_CASE("a handler answering later from another thread") {
  fixture f;
  client c(f.port);
  REQUIRE(c.send(get("/slow?ms=100")));
  const auto r = c.read();
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
  CHECK(f.slow_started == 1);
}

TEST_CASE("a handler that drops its request without answering gets a 500, and the connection lives on") {
  fixture f;
  client c(f.port);
  REQUIRE(c.send(get("/drop") + get("/hello")));
  const auto r = c.read();
  REQUIRE(r.has_value());
  CHECK(r->status == 500);
  CHECK(json_of(*r)["error"]["code"] == "internal_error");
  const auto next = c.read();
  REQUIRE(next.has_value());
  CHECK(next->status == 200);
}

TEST_CASE("a body over the limit gets 413 with the JSON error, then the connection closes") {
  server_options opts;
  opts.body_limit = 1024;
  fixture f(opts);
  SUBCASE("declared by Content-Length") {
    client c(f.port);
    const std::string body(5000, 'x');
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n" + body));
    const auto r = c.read();
    REQUIRE(r.has_value());
    CHECK(r->status == 413);
    CHECK(json_of(*r)["error"]["code"] == "payload_too_large");
    CHECK(json_of(*r)["error"]["field"] == "");
    CHECK(r->header("connection") == "close");
    CHECK(c.closed_by_peer());
  }
  SUBCASE("chunked") {
    client c(f.port);
    std::string chunks;
    for (int i = 0; i < 4; ++i) chunks += "200\r\n" + std::string(512, 'y') + "\r\n";
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + "0\r\n\r\n"));
    const auto r = c.read();
    REQUIRE(r.has_value());
    CHECK(r->status == 413);
  }
  SUBCASE("a body at the limit is fine") {
    client c(f.port);
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n" + std::string(1024, 'z')));
    const auto r = c.read();
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
    CHECK(r->body.size() == 1024);
  }
  SUBCASE("Expect: 100-continue gets the interim response, or a 413 without the body being sent") {
    client c(f.port);
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
    const auto interim = c.read();
    REQUIRE(interim.has_value());
    CHECK(interim->status == 100);
    REQUIRE(c.send("ping"));
    const auto r = c.read();
    REQUIRE(r.has_value());
    CHECK(r->body == "ping");

    client big(f.port);
    REQUIRE(big.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 999999\r\nExpect: 100-continue\r\n\r\n"));
    const auto refused = big.read();
    REQUIRE(refused.has_value());
    CHECK(refused->status == 413);
  }
}

TEST_CASE("a request head over the limit gets 431") {
  server_options opts;
  opts.header_limit = 2048;
  fixture f(opts);
  client c(f.port);
  REQUIRE(c.send(get("/hello", "X-Big: " + std::string(4000, 'h') + "\r\n")));
  const auto r = c.read();
  REQUIRE(r.has_value());
  CHECK(r->status == 431);
  CHECK(json_of(*r)["error"]["code"] == "headers_too_large");
  CHECK(c.closed_by_peer());
}

TEST_CASE("malformed HTTP gets 400 and the connection closes") {
  fixture f;
  for (const std::string bad : {"GARBAGE\r\n\r\n", "GET /hello HTTP/9.9\r\n\r\n",
                                "POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"}) {
    client c(f.port);
    REQUIRE(c.send(bad));
    const auto r = c.read();
    REQUIRE(r.has_value());
    CHECK(r->status == 400);
    CHECK(json_of(*r)["error"]["code"] == "malformed_request");
    CHECK(c.closed_by_peer());
  }
}

TEST_CASE("timeouts close silent connections") {
  server_options opts;
  opts.read_timeout = 200ms;
  opts.idle_timeout = 300ms;
  fixture f(opts);
  SUBCASE("a request that stops half-way (read timeout)") {
    client c(f.port, 3s);
    REQUIRE(c.send("GET /hello HTTP/1.1\r\nHost:"));
    const auto start = std::chrono::steady_clock::now();
    CHECK(c.closed_by_peer());
    CHECK(std::chrono::steady_clock::now() - start < 2s);
  }
  SUBCASE("a slow drip does not extend the read deadline") {
    client c(f.port, 3s);
    const auto start = std::chrono::steady_clock::now();
    bool sent_all = true;
    for (const char ch : std::string("GET /hello HTTP/1.1\r\nHost: t\r\n")) {
      sent_all = sent_all && c.send(std::string(1, ch));
      std::this_thread::sleep_for(20ms);
      if (std::chrono::steady_clock::now() - start > 400ms) break;
    }
    CHECK(c.closed_by_peer());
    CHECK(std::chrono::steady_clock::now() - start < 2s);
  }
  SUBCASE("an idle keep-alive connection (idle timeout)") {
    client c(f.port, 3s);
    REQUIRE(c.send(get("/hello")));
    REQUIRE(c.read().has_value());
    const auto start = std::chrono::steady_clock::now();
    CHECK(c.closed_by_peer());
    const auto waited = std::chrono::steady_clock::now() - start;
    CHECK(waited >= 250ms);
    CHECK(waited < 2s);
  }
  SUBCASE("a slow handler is not cut off by the idle timeout") {
    client c(f.port, 3s);
    REQUIRE(c.send(get("/slow?ms=600")));
    const auto r = c.read();
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
  }
}

TEST_CASE("HEAD sends the GET headers without a body; Connection: close is honoured") {
  fixture f;
  client c(f.port);
  REQUIRE(c.send("HEAD /sdk/sw.js HTTP/1.1\r\nHost: t\r\n\r\n"));
  const auto head = c.read(true);
  REQUIRE(head.has_value());
  CHECK(head->status == 200);
  CHECK(head->header("cache-control") == "no-cache");
  CHECK(std::stoul(head->header("content-length")) > 0);
  REQUIRE(c.send(get("/sdk/sw.js")));
  const auto full = c.read();
  REQUIRE(full.has_value());
  CHECK(full->body.size() == std::stoul(head->header("content-length")));
  CHECK(full->header("content-type") == "text/javascript; charset=utf-8");

  REQUIRE(c.send(get("/sdk/sw.js", "If-None-Match: " + full->header("etag") + "\r\nConnection: close\r\n")));
  const auto cached = c.read();
  REQUIRE(cached.has_value());
  CHECK(cached->status == 304);
  CHECK(cached->header("connection") == "close");
  CHECK(c.closed_by_peer());
}

TEST_CASE("unknown paths, wrong methods and health over the wire") {
  fixture f;
  client c(f.port);
  REQUIRE(c.send(get("/nope") + "DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n" + get("/healthz")));
  const auto r404 = c.read();
  const auto r405 = c.read();
  const auto health = c.read();
  REQUIRE((r404 && r405 && health));
  CHECK(r404->status == 404);
  CHECK(r405->status == 405);
  CHECK(r405->header("allow") == "GET, HEAD");
  CHECK(health->status == 200);
  CHECK(json_of(*health)["status"] == "ok");
}

TEST_CASE("remote_ip is the peer unless X-Forwarded-For is trusted") {
  SUBCASE("untrusted") {
    fixture f;
    client c(f.port);
    REQUIRE(c.send(get("/ip", "X-Forwarded-For: 203.0.113.9\r\n")));
    const auto r = c.read();
    REQUIRE(r.has_value());
    CHECK(json_of(*r)["ip"] == "127.0.0.1");
  }
  SUBCASE("trusted: the entry our proxy appended") {
    server_options opts;
    opts.trust_forwarded_for = true;
    fixture f(opts);
    client c(f.port);
    REQUIRE(c.send(get("/ip", "X-Forwarded-For: 10.9.9.9, 203.0.113.9\r\n")));
    const auto r = c.read();
    REQUIRE(r.has_value());
    CHECK(json_of(*r)["ip"] == "203.0.113.9");
  }
}

TEST_CASE("1000 concurrent connections are served, at most max_connections at a time") {
  server_options opts;
  opts.max_connections = 50;
  fixture f(opts);
  constexpr int total = 1000;
  struct conn {
    int fd = -1;
    std::size_t sent = 0;
    std::string in;
    bool done = false;
  };
  const std::string request = get("/slow?ms=5", "Connection: close\r\n");
  std::vector<conn> conns(total);
  for (auto& c : conns) {
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    REQUIRE(c.fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(f.port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int rc = ::connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    REQUIRE((rc == 0 || errno == EINPROGRESS));
  }
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  int finished = 0;
  while (finished < total && std::chrono::steady_clock::now() < deadline) {
    std::vector<pollfd> fds;
    std::vector<conn*> owners;
    for (auto& c : conns) {
      if (c.done) continue;
      fds.push_back({c.fd, static_cast<short>(c.sent < request.size() ? POLLOUT : POLLIN), 0});
      owners.push_back(&c);
    }
    if (::poll(fds.data(), fds.size(), 200) <= 0) continue;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      auto& c = *owners[i];
      if (fds[i].revents == 0) continue;
      if (c.sent < request.size()) {
        const auto n = ::send(c.fd, request.data() + c.sent, request.size() - c.sent, MSG_NOSIGNAL);
        if (n > 0) c.sent += static_cast<std::size_t>(n);
        continue;
      }
      char buf[4096];
      const auto n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.in.append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EAGAIN) {
        c.done = true;
        ++finished;
        ::close(c.fd);
      }
    }
  }
  int ok = 0;
  for (auto& c : conns) {
    if (!c.done) ::close(c.fd);
    ok += c.in.starts_with("HTTP/1.1 200") ? 1 : 0;
  }
  CHECK(finished == total);
  CHECK(ok == total);
  CHECK(f.max_connections_seen.load() <= 50);
  CHECK(f.max_connections_seen.load() >= 2);
}

TEST_CASE("stop() drains: a slow request in flight still gets its answer, idle connections close") {
  fixture f;
  client busy(f.port);
  client idle(f.port);
  REQUIRE(idle.send(get("/hello")));
  REQUIRE(idle.read().has_value());
  REQUIRE(busy.send(get("/slow?ms=300")));
  for (int i = 0; i < 200 && f.slow_started == 0; ++i) std::this_thread::sleep_for(5ms);
  REQUIRE(f.slow_started == 1);

  const auto start = std::chrono::steady_clock::now();
  std::thread stopper([&] { f.server->stop(5s); });
  CHECK(idle.closed_by_peer());
  const auto r = busy.read();
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
  CHECK(r->header("connection") == "close");
  CHECK(busy.closed_by_peer());
  stopper.join();
  CHECK(std::chrono::steady_clock::now() - start < 3s);
  CHECK(f.server->connections() == 0);

  client late(f.port);
  CHECK_FALSE(late.connected());
}

TEST_CASE("start() reports an address it cannot bind") {
  router r;
  server_options opts;
  opts.host = "203.0.113.1";  // TEST-NET-3: not an address of this machine
  opts.port = 0;
  http_server s(opts, r);
  const auto p = s.start();
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error().code == "listen_failed");
}
