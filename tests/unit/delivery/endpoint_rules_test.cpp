#include "webpushd/delivery/endpoint_rules.hpp"

#include <array>
#include <string>

#include <arpa/inet.h>
#include <doctest/doctest.h>

using namespace webpushd;
using namespace webpushd::delivery;

namespace {

endpoint_rules rules_with(std::vector<std::string> hosts, bool http = false, bool priv = false) {
  endpoint_rules r;
  r.allowed_hosts = std::move(hosts);
  r.allow_http = http;
  r.allow_private_addresses = priv;
  return r;
}

std::string code_of(std::string_view url, const endpoint_rules& rules) {
  auto r = check_endpoint(url, rules);
  if (r) return "ok";
  CHECK(r.error().field == "endpoint");
  return r.error().code;
}

bool internal(const char* text) {
  std::array<std::uint8_t, 16> buf{};
  if (inet_pton(AF_INET, text, buf.data()) == 1) return is_internal_address({buf.data(), 4});
  REQUIRE(inet_pton(AF_INET6, text, buf.data()) == 1);
  return is_internal_address({buf.data(), 16});
}

}  // namespace

TEST_CASE("default rules accept the real push services") {
  const auto rules = default_endpoint_rules();
  for (const char* url : {
           "https://fcm.googleapis.com/fcm/send/dGVzdA:APA91bH",
           "https://fcm.googleapis.com/wp/abc",
           "https://android.googleapis.com/gcm/send/abc",
           "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABk",
           "https://web.push.apple.com/QGb3n0Qb",
           "https://wns2-par02p.notify.windows.com/w/?token=BQYAAAD",
       }) {
    CAPTURE(url);
    CHECK(code_of(url, rules) == "ok");
  }
}

TEST_CASE("check_endpoint splits the URL and computes the origin") {
  const auto rules = rules_with({"push.example.com"}, true);
  auto ep = check_endpoint("HTTPS://Push.Example.COM/send/x?y=1", rules);
  REQUIRE(ep);
  CHECK(ep->scheme == "https");
  CHECK(ep->host == "push.example.com");
  CHECK(ep->port == 443);
  CHECK(ep->origin == "https://push.example.com");
  CHECK(ep->url == "HTTPS://Push.Example.COM/send/x?y=1");

  ep = check_endpoint("https://push.example.com:8443/x", rules);
  REQUIRE(ep);
  CHECK(ep->port == 8443);
  CHECK(ep->origin == "https://push.example.com:8443");

  ep = check_endpoint("http://push.example.com:80", rules);
  REQUIRE(ep);
  CHECK(ep->origin == "http://push.example.com");
}

TEST_CASE("allowlist: exact and suffix patterns match on label boundaries") {
  CHECK(host_matches("web.push.apple.com", "*.push.apple.com"));
  CHECK(host_matches("WEB.Push.Apple.com", "*.push.apple.com"));
  CHECK(host_matches("a.b.push.apple.com", "*.push.apple.com"));
  CHECK_FALSE(host_matches("push.apple.com", "*.push.apple.com"));
  CHECK_FALSE(host_matches("xpush.apple.com", "*.push.apple.com"));
  CHECK_FALSE(host_matches("evilpush.apple.com.attacker.io", "*.push.apple.com"));
  CHECK_FALSE(host_matches("push.apple.com.attacker.io", "*.push.apple.com"));
  CHECK(host_matches("fcm.googleapis.com", "fcm.googleapis.com"));
  CHECK_FALSE(host_matches("fcm.googleapis.com.evil.io", "fcm.googleapis.com"));
  CHECK_FALSE(host_matches("xfcm.googleapis.com", "fcm.googleapis.com"));

  const auto rules = default_endpoint_rules();
  CHECK(code_of("https://evilpush.apple.com.attacker.io/x", rules) == "endpoint_not_allowed");
  CHECK(code_of("https://xpush.apple.com/x", rules) == "endpoint_not_allowed");
  CHECK(code_of("https://push.apple.com/x", rules) == "endpoint_not_allowed");
  CHECK(code_of("https://example.com/x", rules) == "endpoint_not_allowed");
  CHECK(code_of("https://example.com/x", endpoint_rules{}) == "endpoint_not_allowed");
}

TEST_CASE("plain http is refused unless allowed") {
  CHECK(code_of("http://fcm.googleapis.com/fcm/send/x", default_endpoint_rules()) == "endpoint_not_allowed");
  CHECK(code_of("http://push.test/x", rules_with({"push.test"}, true)) == "ok");
}

TEST_CASE("IP-literal hosts are refused in every spelling") {
  auto rules = rules_with({"127.0.0.1", "::1", "169.254.169.254", "0x7f.1", "2130706433", "8.8.8.8"}, true);
  for (const char* url : {
           "http://127.0.0.1/x",
           "http://127.0.0.1:8080/x",
           "http://[::1]/x",
           "http://[::1]:8080/x",
           "http://0x7f.1/x",
           "http://2130706433/x",
           "http://0177.0.0.1/x",
           "http://127.1/x",
           "http://169.254.169.254/latest/meta-data",
           "http://8.8.8.8/x",
           "http://[::ffff:127.0.0.1]/x",
       }) {
    CAPTURE(url);
    CHECK(code_of(url, rules) == "endpoint_not_allowed");
  }
  // With private addresses allowed (tests only), a listed canonical literal
  // passes; non-canonical spellings never do.
  rules.allow_private_addresses = true;
  CHECK(code_of("http://127.0.0.1:8080/x", rules) == "ok");
  auto v6 = check_endpoint("http://[::1]:8080/x", rules);
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->origin == "http://[::1]:8080");
  CHECK(code_of("http://0x7f.1/x", rules) == "endpoint_not_allowed");
  CHECK(code_of("http://2130706433/x", rules) == "endpoint_not_allowed");
  CHECK(code_of("http://10.0.0.1/x", rules) == "endpoint_not_allowed");  // not listed
}

TEST_CASE("malformed endpoints are invalid") {
  const auto rules = rules_with({"push.example.com", "*.example.com"}, true, true);
  for (const char* url : {
           "",
           "push.example.com/x",
           "ftp://push.example.com/x",
           "file:///etc/passwd",
           "gopher://push.example.com/",
           "https:///x",
           "https://:443/x",
           "https://push.example.com:/x",
           "https://push.example.com:0/x",
           "https://push.example.com:65536/x",
           "https://push.example.com:99999999/x",
           "https://push.example.com:44a/x",
           "https://push.example.com/x#frag",
           "https://push.example.com/x y",
           "https://push.example.com/x\ny",
           "https://push.example.com/\xc3\xa9",
           "https://push.example.com/x%zz",
           "https://push.example.com/a\\b",
           "https://push..example.com/x",
           "https://push.example.com./x",
           "https://-push.example.com/x",
           "https://push_1.example.com/x",
           "https://push%2eexample.com/x",
           "https://[::1/x",
           "https://[zz::1]/x",
       }) {
    CAPTURE(url);
    CHECK(code_of(url, rules) == "invalid_endpoint");
  }
  CHECK(code_of("https://push.example.com/" + std::string(2100, 'a'), rules) == "invalid_endpoint");
}

TEST_CASE("userinfo is refused") {
  const auto rules = rules_with({"push.example.com", "evil.io"}, true, true);
  CHECK(code_of("https://user:pw@push.example.com/x", rules) == "invalid_endpoint");
  CHECK(code_of("https://push.example.com@evil.io/x", rules) == "invalid_endpoint");
  CHECK(code_of("https://@push.example.com/x", rules) == "invalid_endpoint");
  // An '@' in the path is not userinfo.
  CHECK(code_of("https://push.example.com/a@b", rules) == "ok");
}

TEST_CASE("internal addresses are recognised at connect time") {
  for (const char* ip : {"0.0.0.0", "0.1.2.3", "10.1.2.3", "100.64.0.1", "100.127.255.255", "127.0.0.1", "127.255.0.1",
                         "169.254.169.254", "172.16.0.1", "172.31.255.255", "192.0.0.8", "192.0.2.1", "192.168.1.1",
                         "198.18.0.1", "198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1",
                         "255.255.255.255", "::", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "febf::1", "fec0::1",
                         "ff02::1", "2001:db8::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
                         "::127.0.0.1", "64:ff9b::a00:1", "2002:7f00:1::1", "100::1"}) {
    CAPTURE(ip);
    CHECK(internal(ip));
  }
  for (const char* ip : {"8.8.8.8", "142.250.74.106", "100.63.255.255", "100.128.0.1", "172.15.255.255", "172.32.0.1",
                         "192.169.0.1", "1.1.1.1", "2a00:1450:4001:80b::200a", "2606:4700::1111", "::ffff:8.8.8.8",
                         "64:ff9b::808:808", "2002:808:808::1"}) {
    CAPTURE(ip);
    CHECK_FALSE(internal(ip));
  }
  const std::uint8_t odd[3] = {1, 2, 3};
  CHECK(is_internal_address({odd, 3}));
}
