#pragma once
// Internal to the storage module: the schema, as an ordered list of SQL
// migrations. Version N is the N-th entry; `PRAGMA user_version` records the
// last one applied.

#include <span>
#include <string_view>

namespace webpushd::storage::detail {

/// @brief One schema step.
struct migration {
  int version;           ///< 1, 2, 3 … without gaps
  std::string_view sql;  ///< one or more statements, run in one transaction
};

/// @brief Every migration, in order.
std::span<const migration> migrations() noexcept;

}  // namespace webpushd::storage::detail
