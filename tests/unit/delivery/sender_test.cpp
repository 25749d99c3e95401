// The sender against the project's push-sink on loopback.
#include "webpushd/delivery/sender.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>

#include <doctest/doctest.h>

#include "sink_process.hpp"
#include "webpushd/delivery/classify.hpp"

using namespace webpushd;
using namespace webpushd::delivery;
using namespace std::chrono_literals;

namespace {

// One sink for the whole binary: tests isolate themselves with unique paths.
const test::sink_process& sink() {
  static test::sink_process instance({"--threads", "2"});
  return instance;
}

sender_options loopback_options() {
  sender_options o;
  o.rules.allowed_hosts = {"127.0.0.1"};
  o.rules.allow_http = true;
  o.rules.allow_private_addresses = true;
  o.connect_timeout = 2000ms;
  o.request_timeout = 5000ms;
  o.shutdown_grace = 1000ms;
  return o;
}

push_request request_to(const std::string& path) {
  push_request r;
  r.endpoint = sink().url(path);
  r.authorization = "vapid t=eyJ0eXAiOiJKV1QifQ.e30.sig, k=BPublicKey";
  r.body = bytes(120, 0x5a);
  r.body[10] = 0;  // binary: the length must come from the size, not strlen
  r.ttl_seconds = 60;
  return r;
}

http_response send_one(sender& s, push_request r) {
  auto promise = std::make_shared<std::promise<http_response>>();
  auto future = promise->get_future();
  s.submit(std::move(r), [promise](http_response resp) { promise->set_value(std::move(resp)); });
  REQUIRE(future.wait_for(15s) == std::future_status::ready);
  return future.get();
}

}  // namespace

TEST_CASE("201: Location captured, request headers sent exactly") {
  sender s(loopback_options());
  auto req = request_to("/push/ok/headers");
  req.urgency = "high";
  req.topic = "cart-42";
  const auto resp = send_one(s, req);
  CHECK(resp.status == 201);
  CHECK(resp.transport_error == 0);
  CHECK(resp.location.rfind(sink().url("/message/"), 0) == 0);
  CHECK(resp.elapsed > 0us);
  CHECK(resp.http_version == 11);  // push-sink speaks HTTP/1.1
  CHECK(classify(resp, std::chrono::system_clock::now()).kind == outcome::accepted);

  const auto recs = sink().records("/push/ok/headers");
  REQUIRE(recs.size() == 1);
  const auto& r = recs[0];
  CHECK(r["method"] == "POST");
  CHECK(r["ttl"] == "60");
  CHECK(r["urgency"] == "high");
  CHECK(r["topic"] == "cart-42");
  CHECK(r["content_encoding"] == "aes128gcm");
  CHECK(r["content_type"] == "application/octet-stream");
  CHECK(r["authorization"] == true);
  CHECK(r["body_bytes"] == 120);
  CHECK(r["user_agent"] == "webpushd/0.1");

  // Empty urgency and topic leave the headers out; TTL 0 is still sent.
  auto bare = request_to("/push/ok/bare");
  bare.ttl_seconds = 0;
  bare.authorization.clear();
  CHECK(send_one(s, bare).status == 201);
  const auto b = sink().records("/push/ok/bare").at(0);
  CHECK(b["ttl"] == "0");
  CHECK(b["urgency"] == "");
  CHECK(b["topic"] == "");
  CHECK(b["authorization"] == false);
}

TEST_CASE("a DELETE recalls a message at its Location: no body, no push headers; 204 once, then 404") {
  sender s(loopback_options());
  const auto accepted = send_one(s, request_to("/push/ok/recalled"));
  REQUIRE(accepted.status == 201);
  const auto path = accepted.location.substr(sink().url("").size());
  REQUIRE(path.rfind("/message/", 0) == 0);

  push_request recall;
  recall.method = push_method::delete_;
  recall.endpoint = accepted.location;
  recall.authorization = "vapid t=eyJ0eXAiOiJKV1QifQ.e30.sig, k=BPublicKey";
  recall.ttl_seconds = 60;  // ignored: TTL describes a message being delivered
  recall.urgency = "high";
  CHECK(send_one(s, recall).status == 204);
  CHECK(send_one(s, recall).status == 404);  // already gone

  const auto recs = sink().records(path);
  REQUIRE(recs.size() == 2);
  const auto& r = recs[0];
  CHECK(r["method"] == "DELETE");
  CHECK(r["authorization"] == true);
  CHECK(r["authorization_header"] == recall.authorization);
  CHECK(r["body_bytes"] == 0);
  CHECK(r["ttl"] == "");
  CHECK(r["urgency"] == "");
  CHECK(r["content_encoding"] == "");
  CHECK(r["content_type"] == "");

  // The pooled handle that carried the DELETEs posts again, body and headers.
  CHECK(send_one(s, request_to("/push/ok/after-recall")).status == 201);
  const auto again = sink().records("/push/ok/after-recall").at(0);
  CHECK(again["method"] == "POST");
  CHECK(again["body_bytes"] == 120);
  CHECK(again["ttl"] == "60");
  CHECK(again["content_encoding"] == "aes128gcm");
}

TEST_CASE("status codes come through with headers and body") {
  sender s(loopback_options());
  CHECK(send_one(s, request_to("/push/gone/a")).status == 410);
  CHECK(send_one(s, request_to("/push/notfound/a")).status == 404);
  CHECK(send_one(s, request_to("/push/toolarge/a")).status == 413);
  const auto unauth = send_one(s, request_to("/push/unauthorized/a"));
  CHECK(unauth.status == 401);
  CHECK(unauth.body.find("invalid VAPID") != std::string::npos);
  const auto c = classify(unauth, std::chrono::system_clock::now());
  CHECK(c.kind == outcome::rejected);
  CHECK(c.reason.find("invalid VAPID") != std::string::npos);

  const auto limited = send_one(s, request_to("/push/ratelimit/a?after=2"));
  CHECK(limited.status == 429);
  CHECK(limited.retry_after == "2");
  const auto lc = classify(limited, std::chrono::system_clock::now());
  CHECK(lc.kind == outcome::rate_limited);
  CHECK(lc.retry_after == std::chrono::seconds{2});

  const auto dated = send_one(s, request_to("/push/ratelimit/b?after=30&date=1"));
  const auto dc = classify(dated, std::chrono::system_clock::now());
  REQUIRE(dc.retry_after);
  CHECK(dc.retry_after->count() >= 28);
  CHECK(dc.retry_after->count() <= 31);
}

TEST_CASE("503 for the first requests, then 201") {
  sender s(loopback_options());
  const std::string path = "/push/error/e1?status=503&times=2&after=1";
  auto first = send_one(s, request_to(path));
  CHECK(first.status == 503);
  CHECK(first.retry_after == "1");
  const auto c = classify(first, std::chrono::system_clock::now());
  CHECK(c.kind == outcome::temporary_failure);
  CHECK(c.retry_after == std::chrono::seconds{1});
  CHECK(send_one(s, request_to(path)).status == 503);
  CHECK(send_one(s, request_to(path)).status == 201);
  CHECK(sink().count("/push/error/e1") == 3);
}

TEST_CASE("a slow push service hits the request timeout") {
  auto o = loopback_options();
  o.request_timeout = 300ms;
  sender s(o);
  const auto start = std::chrono::steady_clock::now();
  const auto resp = send_one(s, request_to("/push/slow/t1?ms=3000"));
  CHECK(resp.status == 0);
  CHECK(resp.transport_error == 28);  // CURLE_OPERATION_TIMEDOUT
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  const auto c = classify(resp, std::chrono::system_clock::now());
  CHECK(c.kind == outcome::temporary_failure);
  CHECK(c.reason == "timed out");
}

TEST_CASE("a connection reset is a transport error") {
  sender s(loopback_options());
  const auto resp = send_one(s, request_to("/push/reset/r1"));
  CHECK(resp.status == 0);
  CHECK(resp.transport_error != 0);
  CHECK_FALSE(resp.transport_message.empty());
  CHECK(classify(resp, std::chrono::system_clock::now()).kind == outcome::temporary_failure);
  // The next request on a fresh connection works.
  CHECK(send_one(s, request_to("/push/ok/after-reset")).status == 201);
}

TEST_CASE("connections are reused") {
  sink().clear_stats();
  {
    sender s(loopback_options());
    for (int i = 0; i < 50; ++i) REQUIRE(send_one(s, request_to("/push/ok/reuse-seq")).status == 201);
  }
  auto st = sink().stats();
  CHECK(st["paths"]["/push/ok/reuse-seq"]["count"] == 50);
  // One for the sender, one for this GET /stats.
  CHECK(st["connections"].get<int>() <= 2);

  sink().clear_stats();
  {
    auto o = loopback_options();
    o.max_connections_per_host = 4;
    sender s(o);
    std::atomic<int> ok{0};
    for (int i = 0; i < 200; ++i) {
      s.submit(request_to("/push/ok/reuse-par"), [&ok](http_response r) { ok += r.status == 201 ? 1 : 0; });
    }
    s.drain();
    CHECK(ok == 200);
    CHECK(s.in_flight() == 0);
  }
  st = sink().stats();
  CHECK(st["paths"]["/push/ok/reuse-par"]["count"] == 200);
  CHECK(st["connections"].get<int>() <= 4 + 1);
}

TEST_CASE("in-flight requests are bounded; submit blocks for backpressure") {
  auto o = loopback_options();
  o.max_in_flight = 8;
  sender s(o);
  std::atomic<int> done{0};
  std::atomic<std::size_t> max_seen{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> producers;
  for (int t = 0; t < 4; ++t) {
    producers.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        s.submit(request_to("/push/slow/bp?ms=100"), [&done](http_response r) { done += r.status == 201 ? 1 : 0; });
        auto now = s.in_flight();
        auto seen = max_seen.load();
        while (now > seen && !max_seen.compare_exchange_weak(seen, now)) {
        }
      }
    });
  }
  for (auto& p : producers) p.join();
  s.drain();
  CHECK(done == 40);
  CHECK(max_seen.load() <= 8);
  // 40 requests of 100 ms, 8 at a time: at least five rounds.
  CHECK(std::chrono::steady_clock::now() - start >= 450ms);
}

TEST_CASE("the connect-time guard refuses loopback even for an allowed name") {
  auto o = loopback_options();
  o.rules.allowed_hosts = {"localhost"};
  o.rules.allow_private_addresses = false;
  const std::string url = "http://localhost:" + std::to_string(sink().port()) + "/push/ok/guard";
  REQUIRE(check_endpoint(url, o.rules));  // the name itself looks harmless
  sender s(o);
  auto req = request_to("/push/ok/guard");
  req.endpoint = url;
  const auto resp = send_one(s, req);
  CHECK(resp.blocked);
  CHECK(resp.status == 0);
  CHECK(resp.transport_error == 7);  // CURLE_COULDNT_CONNECT
  CHECK(classify(resp, std::chrono::system_clock::now()).kind == outcome::rejected);
  CHECK(sink().count("/push/ok/guard") == 0);

  // The same sender refuses an IP-literal endpoint before connecting at all.
  const auto literal = send_one(s, request_to("/push/ok/guard"));
  CHECK(literal.blocked);
  CHECK(sink().count("/push/ok/guard") == 0);
}

TEST_CASE("a completion may submit again, even at the in-flight limit") {
  auto o = loopback_options();
  o.max_in_flight = 1;
  sender s(o);
  auto promise = std::make_shared<std::promise<long>>();
  auto future = promise->get_future();
  s.submit(request_to("/push/ok/chain"), [&s, promise](http_response) {
    s.submit(request_to("/push/ok/chain"), [promise](http_response r) { promise->set_value(r.status); });
  });
  REQUIRE(future.wait_for(10s) == std::future_status::ready);
  CHECK(future.get() == 201);
  s.drain();
}

TEST_CASE("a throwing completion does not stop the sender") {
  sender s(loopback_options());
  s.submit(request_to("/push/ok/throw"), [](http_response) { throw std::runtime_error("boom"); });
  s.drain();
  CHECK(send_one(s, request_to("/push/ok/throw")).status == 201);
}

TEST_CASE("destruction aborts what does not finish within the grace period") {
  auto o = loopback_options();
  o.shutdown_grace = 200ms;
  std::atomic<int> aborted{0};
  const auto start = std::chrono::steady_clock::now();
  {
    sender s(o);
    for (int i = 0; i < 3; ++i) {
      s.submit(request_to("/push/slow/shutdown?ms=5000"), [&aborted](http_response r) {
        if (r.status == 0 && r.transport_error == 42) ++aborted;  // CURLE_ABORTED_BY_CALLBACK
      });
    }
    std::this_thread::sleep_for(50ms);
  }
  CHECK(aborted == 3);
  CHECK(std::chrono::steady_clock::now() - start < 2s);
}

TEST_CASE("destruction lets quick requests finish") {
  std::atomic<int> ok{0};
  {
    sender s(loopback_options());
    for (int i = 0; i < 20; ++i) {
      s.submit(request_to("/push/ok/finish"), [&ok](http_response r) { ok += r.status == 201 ? 1 : 0; });
    }
  }
  CHECK(ok == 20);
}

TEST_CASE("pooled handles carry each request's own headers and body") {
  // Handles are reused without curl_easy_reset: nothing of one request may
  // leak into the next on the same handle.
  sender s(loopback_options());
  auto full = request_to("/push/ok/reuse-headers");
  full.urgency = "low";
  full.topic = "t1";
  full.ttl_seconds = 1234567;
  REQUIRE(send_one(s, full).status == 201);
  auto bare = request_to("/push/ok/reuse-headers");
  bare.authorization.clear();
  bare.body.clear();
  bare.ttl_seconds = 5;
  REQUIRE(send_one(s, bare).status == 201);
  const auto recs = sink().records("/push/ok/reuse-headers");
  REQUIRE(recs.size() == 2);
  CHECK(recs[0]["ttl"] == "1234567");
  CHECK(recs[0]["urgency"] == "low");
  CHECK(recs[0]["topic"] == "t1");
  CHECK(recs[0]["body_bytes"] == 120);
  CHECK(recs[1]["ttl"] == "5");
  CHECK(recs[1]["urgency"] == "");
  CHECK(recs[1]["topic"] == "");
  CHECK(recs[1]["authorization"] == false);
  CHECK(recs[1]["body_bytes"] == 0);
}

TEST_CASE("curl is given at most the per-origin cap; the rest wait in the sender's queue") {
  sink().clear_stats();
  auto o = loopback_options();
  o.max_connections_per_host = 2;
  o.max_in_flight = 100;
  std::atomic<int> ok{0};
  std::atomic<int> h1{0};
  {
    sender s(o);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) {
      s.submit(request_to("/push/slow/cap?ms=100"), [&](http_response r) {
        ok += r.status == 201 ? 1 : 0;
        h1 += r.http_version == 11 ? 1 : 0;
      });
    }
    // Far below max_in_flight: submit never waited for the slow origin.
    CHECK(std::chrono::steady_clock::now() - start < 500ms);
    CHECK(s.in_flight() == 20);
    std::this_thread::sleep_for(150ms);
    const auto mid = s.stats();
    CHECK(mid.in_curl <= 2);
    CHECK(mid.waiting >= 10);
    CHECK(mid.origins == 1);
    s.drain();
    const auto end = s.stats();
    CHECK(end.in_curl_peak == 2);
    CHECK(end.waiting == 0);
    CHECK(end.in_flight == 0);
  }
  CHECK(ok == 20);
  CHECK(h1 == 20);
  CHECK(sink().stats()["connections"].get<int>() <= 2 + 1);
}

TEST_CASE("submit blocks only when max_in_flight are queued or in flight") {
  auto o = loopback_options();
  o.max_connections_per_host = 1;
  o.max_in_flight = 6;
  sender s(o);
  std::atomic<int> ok{0};
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 6; ++i) {
    s.submit(request_to("/push/slow/block?ms=300"), [&ok](http_response r) { ok += r.status == 201 ? 1 : 0; });
  }
  // Five of them wait in the sender's queue, not in submit().
  CHECK(std::chrono::steady_clock::now() - start < 250ms);
  CHECK(s.in_flight() == 6);
  // The seventh waits until the first of the six has finished.
  s.submit(request_to("/push/slow/block?ms=1"), [&ok](http_response r) { ok += r.status == 201 ? 1 : 0; });
  CHECK(std::chrono::steady_clock::now() - start >= 250ms);
  CHECK(s.in_flight() <= 6);
  s.drain();
  CHECK(ok == 7);
  CHECK(s.stats().in_curl_peak == 1);
}

TEST_CASE("a slow origin does not hold back a fast one") {
  test::sink_process slow_sink({"--threads", "1"});
  auto o = loopback_options();
  o.max_connections_per_host = 2;
  o.max_in_flight = 100;
  sender s(o);
  std::atomic<int> slow_done{0};
  for (int i = 0; i < 30; ++i) {
    auto req = request_to("/push/slow/other");
    req.endpoint = slow_sink.url("/push/slow/other?ms=3000");
    s.submit(std::move(req), [&slow_done](http_response) { ++slow_done; });
  }
  // 28 requests wait for the slow origin; the fast origin's go right past them.
  std::vector<std::chrono::microseconds> fast;
  for (int i = 0; i < 10; ++i) {
    const auto resp = send_one(s, request_to("/push/ok/fast"));
    CHECK(resp.status == 201);
    fast.push_back(resp.elapsed);
  }
  CHECK(slow_done == 0);
  for (const auto e : fast) CHECK(e < 500ms);
  const auto st = s.stats();
  CHECK(st.origins == 2);
  CHECK(st.in_curl <= 2 + 2);  // the stats may predate the last fast completion
  CHECK(st.waiting >= 20);
}

TEST_CASE("the time a request waits in the sender's queue counts against its timeout") {
  // One connection and five requests that would each take 3 s: the four
  // queued behind the first must not get a fresh timeout when they start.
  auto o = loopback_options();
  o.max_connections_per_host = 1;
  o.request_timeout = 400ms;
  sender s(o);
  std::vector<std::future<http_response>> results;
  for (int i = 0; i < 5; ++i) {
    auto p = std::make_shared<std::promise<http_response>>();
    results.push_back(p->get_future());
    s.submit(request_to("/push/slow/queued?ms=3000"), [p](http_response r) { p->set_value(std::move(r)); });
  }
  for (auto& f : results) {
    REQUIRE(f.wait_for(5s) == std::future_status::ready);
    const auto r = f.get();
    CHECK(r.status == 0);
    CHECK(r.transport_error == 28);  // CURLE_OPERATION_TIMEDOUT
    CHECK(r.elapsed < 1200ms);
    CHECK(classify(r, std::chrono::system_clock::now()).kind == outcome::temporary_failure);
  }
}

namespace {

/// A self-signed certificate for 127.0.0.1 in a fresh temporary directory,
/// made with the openssl command (the test is skipped without it).
struct tls_files {
  std::string dir, cert, key;
  bool ok = false;
  tls_files() {
    char tmpl[] = "/tmp/webpushd-tls-XXXXXX";
    if (!::mkdtemp(tmpl)) return;
    dir = tmpl;
    cert = dir + "/cert.pem";
    key = dir + "/key.pem";
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1"
        " -addext subjectAltName=IP:127.0.0.1 -keyout " + key + " -out " + cert + " >/dev/null 2>&1";
    ok = std::system(cmd.c_str()) == 0;
  }
  ~tls_files() {
    if (dir.empty()) return;
    std::remove(cert.c_str());
    std::remove(key.c_str());
    ::rmdir(dir.c_str());
  }
};

}  // namespace

TEST_CASE("HTTPS: verified against a given CA file, connections reused; unverifiable certificates fail") {
  tls_files files;
  if (!files.ok) {
    MESSAGE("openssl command unavailable; HTTPS test skipped");
    return;
  }
  test::sink_process tls_sink({"--tls-cert", files.cert, "--tls-key", files.key});
  const std::string url = "https://127.0.0.1:" + std::to_string(tls_sink.port()) + "/push/ok/tls";

  auto o = loopback_options();
  o.ca_file = files.cert;
  {
    sender s(o);
    for (int i = 0; i < 10; ++i) {
      auto req = request_to("/push/ok/tls");
      req.endpoint = url;
      const auto resp = send_one(s, req);
      REQUIRE(resp.status == 201);
      CHECK(resp.location.rfind("https://", 0) == 0);
      CHECK(resp.http_version == 11);  // h2 offered, HTTP/1.1 chosen by the sink
    }
  }
  const auto st = tls_sink.stats();
  CHECK(st["paths"]["/push/ok/tls"]["count"] == 10);
  CHECK(st["connections"].get<int>() <= 2);

  // Without the CA the certificate cannot be verified: a transport error, never a silent accept.
  sender strict(loopback_options());
  auto req = request_to("/push/ok/tls-untrusted");
  req.endpoint = url;
  const auto resp = send_one(strict, req);
  CHECK(resp.status == 0);
  CHECK(resp.transport_error == 60);  // CURLE_PEER_FAILED_VERIFICATION
  CHECK(tls_sink.count("/push/ok/tls-untrusted") == 0);
}

namespace {

/// nghttpd (Debian's nghttp2-server) serving an empty file over h2 + TLS on
/// loopback, killed on destruction; `ok` is false when it is not installed
/// or does not come up within two seconds.
struct h2_server {
  std::string docroot;
  std::uint16_t port = 0;
  pid_t pid = 0;
  bool ok = false;
  h2_server(const tls_files& tls) {
    if (std::system("command -v nghttpd >/dev/null 2>&1") != 0) return;
    docroot = tls.dir + "/htdocs";
    if (::mkdir(docroot.c_str(), 0700) != 0) return;
    std::fclose(std::fopen((docroot + "/push").c_str(), "w"));
    port = free_port();
    if (port == 0) return;
    std::vector<std::string> args{"nghttpd", "-a", "127.0.0.1", "-n", "1", "-d", docroot, std::to_string(port),
                                  tls.key, tls.cert};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawnp(&pid, "nghttpd", nullptr, nullptr, argv.data(), environ) != 0) {
      pid = 0;
      return;
    }
    for (int i = 0; i < 100 && !ok; ++i) {
      ok = can_connect(port);
      if (!ok) std::this_thread::sleep_for(20ms);
    }
  }
  ~h2_server() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
    if (!docroot.empty()) {
      std::remove((docroot + "/push").c_str());
      ::rmdir(docroot.c_str());
    }
  }
  h2_server(const h2_server&) = delete;
  h2_server& operator=(const h2_server&) = delete;

  static std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    std::uint16_t port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    ::close(fd);
    return port;
  }
  static bool can_connect(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return connected;
  }
};

}  // namespace

TEST_CASE("HTTP/2: the version is reported and a multiplexed origin gets streams × connections") {
  tls_files files;
  if (!files.ok) {
    MESSAGE("openssl command unavailable; HTTP/2 test skipped");
    return;
  }
  h2_server server(files);
  if (!server.ok) {
    MESSAGE("nghttpd unavailable; HTTP/2 test skipped");
    return;
  }
  auto o = loopback_options();
  o.ca_file = files.cert;
  o.max_connections_per_host = 1;
  o.max_concurrent_streams = 50;
  o.max_in_flight = 1000;
  const std::string url = "https://127.0.0.1:" + std::to_string(server.port) + "/push";
  sender s(o);
  auto first = request_to("/push");
  first.endpoint = url;
  const auto resp = send_one(s, first);
  REQUIRE(resp.status == 200);  // nghttpd serves the empty file
  CHECK(resp.http_version == 20);

  // Now known to multiplex: curl may hold 1 connection × 50 streams.
  std::atomic<int> h2{0};
  for (int i = 0; i < 300; ++i) {
    auto req = request_to("/push");
    req.endpoint = url;
    s.submit(std::move(req), [&h2](http_response r) { h2 += r.status == 200 && r.http_version == 20 ? 1 : 0; });
  }
  s.drain();
  CHECK(h2 == 300);
  const auto st = s.stats();
  CHECK(st.in_curl_peak > 1);
  CHECK(st.in_curl_peak <= 50);
}
