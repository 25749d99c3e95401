#pragma once
/// @file
/// @brief Errors as values: what untrusted input and I/O failures become.
///
/// A `webpushd::error` carries a stable machine-readable `code`, a message fit
/// to show a client, and the `field` of the input at fault (empty if none).
/// The API maps codes to HTTP status in one place; the CLI maps them to exit
/// codes. Nothing in the domain throws for bad input.

#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace webpushd {

/// @brief A failure described for the caller.
struct error {
  std::string code;     ///< stable identifier, e.g. "invalid_p256dh"
  std::string message;  ///< human-readable, safe to show a client
  std::string field;    ///< input field at fault, e.g. "keys.p256dh"; may be empty
};

/// @brief Either a value or the error that prevented it.
template <class T>
using result = tl::expected<T, error>;

/// @brief Shorthand for returning an error from a function returning result<T>.
inline tl::unexpected<error> fail(std::string code, std::string message, std::string field = {}) {
  return tl::unexpected<error>(error{std::move(code), std::move(message), std::move(field)});
}

}  // namespace webpushd
