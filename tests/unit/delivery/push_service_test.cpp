#include "webpushd/delivery/push_service.hpp"

#include <doctest/doctest.h>

#include "webpushd/delivery/classify.hpp"

using namespace webpushd::delivery;

TEST_CASE("push_service_of: the browsers' push services by host, everything else is other") {
  CHECK(push_service_of("https://fcm.googleapis.com/fcm/send/abc:def") == push_service::fcm);
  CHECK(push_service_of("https://android.googleapis.com/gcm/send/abc") == push_service::fcm);
  CHECK(push_service_of("https://updates.push.services.mozilla.com/wpush/v2/gAAA") == push_service::mozilla);
  CHECK(push_service_of("https://push.services.mozilla.com/wpush/v1/x") == push_service::other);  // no subdomain
  CHECK(push_service_of("https://web.push.apple.com/QGhb…") == push_service::apple);
  CHECK(push_service_of("https://api.push.apple.com:443/3/device/x") == push_service::apple);
  CHECK(push_service_of("https://wns2-db5p.notify.windows.com/w/?token=x") == push_service::windows);
  CHECK(push_service_of("HTTPS://FCM.GoogleAPIs.com/fcm/send/x") == push_service::fcm);
  // Look-alikes and anything that is not an absolute URL with a host.
  CHECK(push_service_of("https://fcm.googleapis.com.evil.example/x") == push_service::other);
  CHECK(push_service_of("https://evilpush.apple.com/x") == push_service::other);
  CHECK(push_service_of("https://user@fcm.googleapis.com@evil.example/x") == push_service::other);
  CHECK(push_service_of("http://127.0.0.1:8090/notify/abc") == push_service::other);
  CHECK(push_service_of("https://[::1]:443/x") == push_service::other);
  CHECK(push_service_of("fcm.googleapis.com/fcm/send/x") == push_service::other);
  CHECK(push_service_of("") == push_service::other);
  CHECK(std::string(to_string(push_service::mozilla)) == "mozilla");
  CHECK(std::string(to_string(push_service::other)) == "other");
}

TEST_CASE("failure_class: why an attempt that may be retried failed, in four classes") {
  http_response r;
  r.status = 429;
  CHECK(std::string(failure_class(r)) == "rate_limited");
  for (long s : {500L, 502L, 503L, 408L, 425L}) {
    r.status = s;
    CHECK(std::string(failure_class(r)) == "server_error");
  }
  r.status = 0;
  r.transport_error = 28;  // CURLE_OPERATION_TIMEDOUT
  CHECK(std::string(failure_class(r)) == "timeout");
  r.transport_error = 7;  // CURLE_COULDNT_CONNECT
  CHECK(std::string(failure_class(r)) == "network");
  for (long s : {201L, 404L, 410L, 413L, 400L}) {
    r.status = s;
    CHECK(std::string(failure_class(r)).empty());
  }
}
