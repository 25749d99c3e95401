#pragma once
// The server's wire steps that do not need a socket: how a request parser is
// limited, how a parsed Beast request becomes the handlers' plain request,
// which read errors get an answer, and how a handler's response becomes the
// Beast message that is written. http_server.cpp uses exactly these, and so
// does the http_request fuzzer (tests/fuzz/), so what is fuzzed is what runs.
// Not a public header: Beast stays inside the api target and its tests.

#include <optional>
#include <string>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "webpushd/api/http.hpp"
#include "webpushd/api/http_server.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::api::wire {

using beast_request = boost::beast::http::request<boost::beast::http::string_body>;
using beast_response = boost::beast::http::response<boost::beast::http::string_body>;
using request_parser = boost::beast::http::request_parser<boost::beast::http::string_body>;

/// @brief Applies the listener's body and header limits to a fresh parser.
void limit(request_parser& parser, const server_options& opts);

/// @brief The handlers' request from a parsed message; `remote_ip` is the
/// peer's, replaced by the last X-Forwarded-For entry when `opts` trust it.
request to_request(beast_request&& msg, std::string remote_ip, const server_options& opts);

/// @brief The answer to a request that could not be read: 413, 431 or 400
/// (`payload_too_large`, `headers_too_large`, `malformed_request`). nullopt
/// for errors that only close the connection (end of stream, a message cut
/// short, timeouts, resets).
std::optional<error> read_refusal(boost::beast::error_code ec, const server_options& opts);

/// @brief The message written for a handler's response to a request of HTTP
/// `version`, without its body for `head`: a status outside 200–599 becomes
/// a 500, header lines that could split the response are dropped, and the
/// server's own headers are set. Keep-alive is decided by the caller.
beast_response to_message(response&& res, unsigned version, bool head);

}  // namespace webpushd::api::wire
