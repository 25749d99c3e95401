#pragma once
/// @file
/// @brief The HTTP/1.1 listener: keep-alive, bounded request sizes, read and
/// idle timeouts, bounded pipelining, a connection cap, and a draining stop.
/// Beast stays inside the implementation.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "webpushd/core/error.hpp"

namespace webpushd::api {

class router;

/// @brief Listener settings; the defaults suit a daemon behind a reverse proxy.
struct server_options {
  std::string host = "127.0.0.1";  ///< address or name to bind
  std::uint16_t port = 8080;       ///< 0 picks a free port (see http_server::start)
  unsigned threads = 0;            ///< I/O threads; 0 = one per core
  std::size_t body_limit = 1024 * 1024;  ///< larger request bodies get 413
  std::size_t header_limit = 16 * 1024;  ///< larger request heads get 431
  /// @brief Time to receive a whole request once its first byte arrived.
  std::chrono::milliseconds read_timeout{std::chrono::seconds{10}};
  /// @brief Time an idle keep-alive connection is kept open.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds{60}};
  /// @brief Time to write one response to a client that does not read.
  std::chrono::milliseconds write_timeout{std::chrono::seconds{30}};
  std::size_t max_pipelined = 8;  ///< requests read ahead of their responses per connection
  std::size_t max_connections = 10000;  ///< beyond it, new connections wait in the listen backlog
  /// @brief Take remote_ip from the last `X-Forwarded-For` entry (set only
  /// behind a reverse proxy that appends it).
  bool trust_forwarded_for = false;
};

/// @brief The server. Start once, stop once; the router must outlive it.
class http_server {
 public:
  /// @brief Nothing listens until start().
  http_server(server_options opts, const router& routes);
  /// @brief Stops without grace if still running.
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// @brief Binds, listens and starts the I/O threads; the bound port (the
  /// chosen one when options.port is 0). Error `listen_failed` naming the address.
  result<std::uint16_t> start();

  /// @brief Drains: stops accepting, closes idle keep-alive connections,
  /// lets requests in flight finish (their responses say `Connection: close`),
  /// then after at most `grace` closes what is left and joins the threads.
  /// Responses a handler delivers later are dropped. Idempotent.
  void stop(std::chrono::milliseconds grace);

  /// @brief Open connections now (for tests and metrics).
  std::size_t connections() const;

  /// @brief The settings it was made with (limits, timeouts).
  const server_options& options() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace webpushd::api
