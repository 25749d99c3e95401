#pragma once
/// @file
/// @brief Log output set-up: one JSON object a line for log collectors, or
/// plain text for a terminal. Every module logs through spdlog's default
/// logger; this only decides how lines look and where they go (stderr).
///
/// What may be logged: message ids, subscription ids, endpoint origins,
/// status codes, reasons. Never full endpoints, keys, tokens or payloads.

#include <string>

#include "webpushd/core/error.hpp"

namespace webpushd::app {

/// @brief Configures the default logger. `format`: auto | json | text (auto:
/// text when stderr is a terminal). `level`: trace … error.
result<void> setup_logging(const std::string& format, const std::string& level);

/// @brief Escapes a string for a JSON string literal (no quotes added).
std::string json_escape(std::string_view text);

}  // namespace webpushd::app
