#pragma once
/// @file
/// @brief The HTTP client that POSTs push requests: libcurl's multi interface
/// driven on a thread of its own, many requests in flight, connections reused.
///
/// curl.h stays out of this header; the implementation owns every curl handle.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "webpushd/delivery/endpoint_rules.hpp"
#include "webpushd/delivery/push_request.hpp"

namespace webpushd::delivery {

/// @brief What came back for one request (or why nothing did).
struct http_response {
  long status = 0;                 ///< HTTP status; 0 when no response arrived
  int transport_error = 0;         ///< a CURLcode value; 0 when a response arrived
  std::string transport_message;   ///< curl's error text (may name the host; for logs, not clients)
  bool blocked = false;            ///< refused by the endpoint rules or the connect-time address guard; nothing was sent
  std::string location;            ///< Location header (RFC 8030 §5: the push message resource)
  std::string retry_after;         ///< raw Retry-After header
  std::string body;                ///< the response body, at most the first 4 KiB (diagnosis)
  std::chrono::microseconds elapsed{};  ///< from submit() to completion
};

/// @brief Most bytes of a response body kept in http_response::body.
inline constexpr std::size_t max_response_body = 4096;

/// @brief Tuning and safety settings for a sender.
struct sender_options {
  std::size_t max_in_flight = 2000;              ///< submit() blocks (backpressure) beyond this
  std::chrono::milliseconds connect_timeout{5000};
  /// @brief Whole request, connect included, and also the time a request
  /// waits inside curl for a free connection when max_connections_per_host
  /// are all busy (HTTP/1.1): size it with the backlog in mind.
  std::chrono::milliseconds request_timeout{30000};
  long max_connections_per_host = 32;
  bool http2 = true;  ///< HTTP/2 over TLS where offered (multiplexed); HTTP/1.1 keep-alive otherwise
  endpoint_rules rules;  ///< rechecked per request, and enforced on resolved addresses at connect time
  std::string user_agent = "webpushd/0.1";
  /// @brief Optional CA bundle (PEM) that replaces the system's for peer
  /// verification (tests with a self-signed sink); empty: the system bundle.
  std::string ca_file;
  std::string proxy;    ///< empty: no proxy, and proxy environment variables are ignored
  /// @brief How long the destructor lets in-flight requests finish before aborting them.
  std::chrono::milliseconds shutdown_grace{5000};
};

/// @brief Sends push requests concurrently.
///
/// One thread runs a curl multi handle with curl_multi_poll; submit() hands
/// work over and wakes it with curl_multi_wakeup. Easy handles are pooled and
/// connections are kept alive per origin (and multiplexed over HTTP/2).
/// Redirects are never followed, only http/https are spoken, and every
/// socket's peer address passes is_internal_address() unless the rules allow
/// private addresses.
class sender {
 public:
  /// @brief Called exactly once per submitted request, on the sender's
  /// thread: keep it quick (hand the result to another thread for real work).
  /// Exceptions it throws are swallowed.
  using completion = std::function<void(http_response)>;

  /// @brief Starts the sender thread. Throws std::runtime_error only if
  /// libcurl cannot be initialised (out of memory, broken installation).
  explicit sender(sender_options options);
  /// @brief Lets in-flight and queued requests finish for up to
  /// `shutdown_grace`, completes the rest with a transport error
  /// (CURLE_ABORTED_BY_CALLBACK, "sender shut down"), then joins the thread.
  ~sender();
  sender(const sender&) = delete;
  sender& operator=(const sender&) = delete;

  /// @brief Queues a request. Thread-safe. Blocks while `max_in_flight`
  /// requests are queued or in flight, except when called from a completion
  /// (the sender's own thread), which must never wait on itself.
  /// A request whose endpoint fails the rules completes at once with `blocked`.
  void submit(push_request req, completion done);
  /// @brief Blocks until nothing is queued or in flight.
  void drain();
  /// @brief Requests queued or in flight right now.
  std::size_t in_flight() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace webpushd::delivery
