#pragma once
/// @file
/// @brief What the scenario engine keeps about a person — journeys, their
/// log, product interest (schema v5) — seen from GDPR: listed for exports,
/// erased with the person. The engine itself owns how these rows are
/// written; this is the one place that knows how to find and remove them
/// by person.
///
/// A person is "c:<customer id>" (a shop customer, whichever device) or
/// "s:<public subscription id>" (a subscriber not linked to a customer).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"
#include "webpushd/storage/journey_store.hpp"

namespace webpushd::storage {

class database;

/// @brief The person key of a shop customer: "c:<customer id>".
inline std::string customer_person(std::string_view customer_id) { return "c:" + std::string{customer_id}; }

/// @brief The person key of a subscriber: "s:<public id>".
inline std::string subscriber_person(std::string_view public_id) { return "s:" + std::string{public_id}; }

/// @brief One journey of a person as journey_store reads it, with its log.
struct person_journey : journey_row {
  std::vector<journey_log_entry> log;  ///< oldest first
};

/// @brief One product_interest row.
struct product_interest_entry {
  std::string product_id;
  std::string person;
  time_point at{};
};

/// @brief What erase_person_data removed.
struct person_data_erased {
  std::size_t journeys = 0;
  std::size_t log_entries = 0;
  std::size_t product_interest = 0;
};

/// @brief Every journey of these persons (oldest first), each with its log.
result<std::vector<person_journey>> list_person_journeys(database& db, const std::vector<std::string>& persons);

/// @brief Every product_interest row of these persons (oldest first).
result<std::vector<product_interest_entry>> list_person_interest(database& db,
                                                                 const std::vector<std::string>& persons);

/// @brief Deletes the persons' journeys (whatever their state; the engine
/// finds no timer of theirs afterwards), the journey_log rows of those
/// journeys or naming those persons, the journey_log rows about a message
/// to one of `subscription_ids` (internal row ids of erased subscribers, also
/// in journeys that are kept), and the persons' product_interest rows; for
/// each of `subscription_ids` also its pacing history, the unsubscribes
/// attributed to it, its tracking touches and its conversions (schema v9).
/// One transaction scope (a savepoint inside a write_queue item).
result<person_data_erased> erase_person_data(database& db, const std::vector<std::string>& persons,
                                             const std::vector<std::int64_t>& subscription_ids = {});

}  // namespace webpushd::storage
