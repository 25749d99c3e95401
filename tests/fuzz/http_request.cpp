// Raw bytes as a client writes them on one keep-alive connection: parsed by
// Beast exactly as the listener does (its parser limits, its refusals), each
// request routed through the daemon's own router and answered by the real
// handlers, and each answer turned into the message the listener writes.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/write.hpp>

#include "fuzz_app.hpp"
#include "http_wire.hpp"

namespace http = boost::beast::http;
namespace net = boost::asio;
using webpushd::fuzz::fixture;

namespace {

// Feeds `rest` to `parser` until a message is complete or fails; consumes
// what it used. End of input is end of stream, as when a client closes.
boost::beast::error_code parse_one(webpushd::api::wire::request_parser& parser, std::string_view& rest) {
  // As http::async_read does: the body is parsed in the same call as the head.
  parser.eager(true);
  boost::beast::error_code ec;
  while (!parser.is_done()) {
    ec = {};
    const auto used = parser.put(net::buffer(rest.data(), rest.size()), ec);
    rest.remove_prefix(used);
    if (ec && ec != http::error::need_more) return ec;
    if (used > 0 && !rest.empty()) continue;
    // Nothing more to give that the parser could use: the client closed.
    if (!rest.empty() && used == 0 && !ec) break;  // cannot happen with Beast; never spin
    ec = {};
    parser.put_eof(ec);
    if (!ec && !parser.is_done()) ec = http::error::partial_message;
    return ec;
  }
  return {};
}

// The written response must read back as exactly one response with the
// status and body that were sent: no header value split it.
void check_written(const webpushd::api::wire::beast_response& msg, bool head) {
  std::ostringstream out;
  out << msg;
  const std::string text = out.str();
  http::response_parser<http::string_body> back;
  back.skip(head);
  back.eager(true);
  boost::beast::error_code ec;
  const auto used = back.put(net::buffer(text.data(), text.size()), ec);
  FUZZ_CHECK(!ec && back.is_done() && used == text.size(), text);
  FUZZ_CHECK(back.get().result_int() == msg.result_int(), text);
  FUZZ_CHECK(back.get().body() == msg.body(), text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& app = fixture::instance();
  const auto& opts = app.listener_options();
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  // At most as many requests as the listener reads ahead on a connection.
  for (std::size_t n = 0; n < opts.max_pipelined && !rest.empty(); ++n) {
    webpushd::api::wire::request_parser parser;
    webpushd::api::wire::limit(parser, opts);
    const auto ec = parse_one(parser, rest);
    if (ec) {
      const auto refusal = webpushd::api::wire::read_refusal(ec, opts);
      if (!refusal) return 0;  // the connection just closes
      auto res = webpushd::api::error_response(*refusal);
      FUZZ_CHECK(res.status == 400 || res.status == 413 || res.status == 431, refusal->code);
      webpushd::fuzz::check_error_body(res);
      check_written(webpushd::api::wire::to_message(std::move(res), 11, false), false);
      return 0;  // the listener answers, then closes
    }
    auto msg = parser.release();
    const bool keep_alive = msg.keep_alive();
    const bool head = msg.method() == http::verb::head;
    const unsigned version = msg.version();
    auto res = app.dispatch(webpushd::api::wire::to_request(std::move(msg), "203.0.113.7", opts));
    check_written(webpushd::api::wire::to_message(std::move(res), version, head), head);
    if (!keep_alive) return 0;
  }
  return 0;
}
