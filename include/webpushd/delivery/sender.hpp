#pragma once
/// @file
/// @brief The HTTP client that sends push requests (a POST delivers a message,
/// a DELETE recalls one): libcurl's multi interface driven on a thread of its
/// own, many requests in flight, connections reused.
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
  /// @brief HTTP version the response came over: 10, 11, 20 (HTTP/2) or 30;
  /// 0 when no response arrived.
  int http_version = 0;
  std::chrono::microseconds elapsed{};  ///< from submit() to completion
};

/// @brief Most bytes of a response body kept in http_response::body.
inline constexpr std::size_t max_response_body = 4096;

/// @brief Tuning and safety settings for a sender.
struct sender_options {
  std::size_t max_in_flight = 2000;              ///< submit() blocks (backpressure) beyond this
  std::chrono::milliseconds connect_timeout{5000};
  /// @brief Whole request, connect included, and also the time a request
  /// waits in the sender's queue for its origin to have a free connection
  /// (or HTTP/2 stream): size it with the backlog in mind. A request whose
  /// time runs out while queued completes with CURLE_OPERATION_TIMEDOUT
  /// without being sent.
  std::chrono::milliseconds request_timeout{30000};
  long max_connections_per_host = 32;
  /// @brief HTTP/2 streams per connection (CURLMOPT_MAX_CONCURRENT_STREAMS;
  /// the server's own limit may be lower). An origin that answered over
  /// HTTP/2 is given up to max_connections_per_host × this many requests at
  /// once, an HTTP/1.1 origin max_connections_per_host.
  long max_concurrent_streams = 100;
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

/// @brief A snapshot of the sender's queues, for metrics and tests.
struct sender_stats {
  std::size_t in_flight = 0;     ///< queued or in flight (what in_flight() returns)
  std::size_t in_curl = 0;       ///< requests handed to curl right now
  std::size_t in_curl_peak = 0;  ///< most requests curl held at once since the sender started
  std::size_t waiting = 0;       ///< requests in per-origin queues, waiting for a connection or stream
  std::size_t origins = 0;       ///< origins (scheme://host:port) the sender keeps state for
};

/// @brief Sends push requests concurrently.
///
/// One thread runs a curl multi handle with curl_multi_poll; submit() hands
/// work over and wakes it with curl_multi_wakeup. Requests wait in a queue
/// per origin, and curl is given only what it can start at once (per origin:
/// max_connections_per_host, times max_concurrent_streams once the origin
/// answered over HTTP/2), so a slow or failing origin holds back only its own
/// requests, and curl never walks a long backlog. Origins with work take
/// turns. Easy handles are pooled with their invariant options set once, and
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
  /// @brief Queue figures as of the sender thread's last pass.
  sender_stats stats() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace webpushd::delivery
