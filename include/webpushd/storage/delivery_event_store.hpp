#pragma once
/// @file
/// @brief What service workers report about delivered pushes: shown,
/// clicked (with the action button), closed.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::storage {

class database;

/// @brief One report.
struct delivery_event {
  std::string delivery_id;
  std::string type;    ///< "shown" | "clicked" | "closed"
  std::string action;  ///< the notification action clicked; empty: the body
  time_point at{};
};

/// @brief Repository interface (SQLite now; another backend later).
class delivery_event_store {
 public:
  virtual ~delivery_event_store() = default;
  /// @brief Records a report once: true when stored, false when the same
  /// (delivery, type) was already there (a browser retry).
  virtual result<bool> record(const delivery_event& e) = 0;
  /// @brief The reports of one delivery, oldest first.
  virtual result<std::vector<delivery_event>> for_delivery(const std::string& delivery_id) = 0;
};

/// @brief The SQLite implementation. Uses the given connection (not owned).
std::unique_ptr<delivery_event_store> make_sqlite_delivery_event_store(database& db);

}  // namespace webpushd::storage
