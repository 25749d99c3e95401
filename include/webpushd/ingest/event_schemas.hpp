#pragma once
/// @file
/// @brief The built-in event schemas (schemas/events/*.schema.json), embedded
/// in the binary at build time so a daemon never validates against a stale copy.

#include <span>
#include <string_view>

namespace webpushd::ingest {

/// @brief One embedded file: its name (e.g. "purchase.schema.json") and text.
struct embedded_schema {
  std::string_view path;
  std::string_view text;
};

/// @brief All embedded event schemas, sorted by name.
std::span<const embedded_schema> embedded_event_schemas();

}  // namespace webpushd::ingest
