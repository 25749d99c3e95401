#include "webpushd/tracking/beacons.hpp"

#include <algorithm>

#include "webpushd/crypto/primitives.hpp"
#include "webpushd/crypto/secret_file.hpp"
#include "webpushd/storage/delivery_event_store.hpp"
#include "webpushd/storage/pacing_store.hpp"
#include "webpushd/storage/tracking_store.hpp"

namespace webpushd::tracking {
namespace {

constexpr std::size_t key_bytes = 32;
constexpr std::size_t signature_bytes = 16;

bool is_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

}  // namespace

delivery_signer::delivery_signer(bytes key) : key_(std::move(key)) {}

result<delivery_signer> delivery_signer::load_or_create(const std::filesystem::path& path, bool& created) {
  auto key = crypto::load_or_create_key(path, key_bytes, created);
  if (!key) return tl::unexpected(std::move(key.error()));
  return delivery_signer(std::move(*key));
}

std::string delivery_signer::new_delivery_id() { return "d_" + crypto::random_token(16); }

std::string delivery_signer::sign(std::string_view delivery_id) const {
  const auto mac = crypto::hmac_sha256(key_, as_bytes(delivery_id));
  return base64url_encode(byte_view(mac.data(), signature_bytes));
}

bool delivery_signer::verify(std::string_view delivery_id, std::string_view signature) const {
  return crypto::constant_time_equal(sign(delivery_id), signature);
}

result<void> validate_beacon(const beacon& b) {
  if (b.delivery_id.empty() || b.delivery_id.size() > 64 ||
      !std::all_of(b.delivery_id.begin(), b.delivery_id.end(), is_id_char)) {
    return fail("invalid_delivery_id", "not a delivery id", "id");
  }
  if (b.type != "shown" && b.type != "clicked" && b.type != "closed") {
    return fail("invalid_type", "type must be shown, clicked or closed", "type");
  }
  if (b.action.size() > 64 || (!b.action.empty() && b.type != "clicked")) {
    return fail("invalid_action", "action is the clicked button's name (at most 64 characters), only for clicked",
                "action");
  }
  if (b.signature.empty()) return fail("missing_field", "sig is required", "sig");
  return {};
}

std::string click_metric(std::string_view action) {
  if (action.empty()) return "clicked:body";
  const bool action_name = action.size() <= 64 && action.front() >= 'a' && action.front() <= 'z' &&
                           std::all_of(action.begin(), action.end(), [](char c) {
                             return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
                           });
  return action_name ? "clicked:" + std::string{action} : std::string{"clicked:other"};
}

result<bool> count_report(storage::database& db, const storage::delivery_event& report) {
  auto touches = storage::make_sqlite_tracking_store(db);
  auto push = touches->find_delivery(report.delivery_id);
  if (!push) return tl::unexpected(std::move(push.error()));
  // A signed id with no message (sent by another tool, or a database
  // restored from before it): nothing to count it for.
  if (!*push) return false;
  const auto& p = **push;
  const auto [source, step] = storage::split_source(p.source);
  auto counters = storage::make_sqlite_pacing_store(db);
  if (auto r = counters->count(source, step, p.variant, report.at, report.type, 1); !r) {
    return tl::unexpected(std::move(r.error()));
  }
  if (report.type == "clicked") {
    if (auto r = counters->count(source, step, p.variant, report.at, click_metric(report.action), 1); !r) {
      return tl::unexpected(std::move(r.error()));
    }
  }
  // The counters hold no person; a touch would hold one again after an erasure.
  if (report.type != "closed" && !p.subscription_erased) {
    const auto kind = report.type == "shown" ? storage::touch_kind::shown : storage::touch_kind::clicked;
    if (auto r = touches->touch(p.subscription_id, kind, p.outbox_id, report.at); !r) {
      return tl::unexpected(std::move(r.error()));
    }
  }
  return true;
}

beacon_recorder::beacon_recorder(const delivery_signer& signer, storage::write_queue& writer, const clock& clk)
    : signer_(signer), writer_(writer), clock_(clk) {}

void beacon_recorder::set_recorded_observer(std::function<void(std::string_view type)> observer) {
  observer_ = std::move(observer);
}

void beacon_recorder::record(beacon b, std::function<void(result<bool>)> done) {
  if (auto ok = validate_beacon(b); !ok) return done(tl::unexpected(ok.error()));
  if (!signer_.verify(b.delivery_id, b.signature)) {
    return done(fail("invalid_signature", "this report is not signed for that delivery", "sig"));
  }
  if (observer_) {
    done = [done = std::move(done), observer = observer_, type = b.type](result<bool> stored) {
      if (stored && *stored) observer(type);
      done(std::move(stored));
    };
  }
  storage::delivery_event e{std::move(b.delivery_id), std::move(b.type), std::move(b.action), clock_.now()};
  auto submitted = writer_.submit_value<bool>(
      [e = std::move(e)](storage::database& db) -> result<bool> {
        auto fresh = storage::make_sqlite_delivery_event_store(db)->record(e);
        if (!fresh || !*fresh) return fresh;  // a repeat counts nothing again
        if (auto counted = count_report(db, e); !counted) return tl::unexpected(std::move(counted.error()));
        return true;
      },
      done);
  if (!submitted) done(tl::unexpected(submitted.error()));
}

}  // namespace webpushd::tracking
