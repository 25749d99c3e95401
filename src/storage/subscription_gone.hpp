#pragma once
// Internal to the storage module: marking a subscription gone is shared by
// subscription_store::mark_gone and outbox_store::record (a 404/410); the
// state's text form by subscription_store and subscriber_store.

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string_view>

#include "webpushd/core/error.hpp"
#include "webpushd/storage/subscription_store.hpp"

namespace webpushd::storage::detail {

/// @brief Marks subscription `id` gone (unless erased) and finishes its
/// queued messages as `gone`. The caller holds a write transaction. Returns
/// false when no such subscription exists.
result<bool> mark_subscription_gone(sqlite3* db, std::int64_t id, std::string_view reason, std::int64_t now_ms);

/// @brief The state stored as `text`; nullopt for any other text.
std::optional<subscription_state> parse_subscription_state(std::string_view text) noexcept;

}  // namespace webpushd::storage::detail
