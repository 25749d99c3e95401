#include <doctest/doctest.h>

#include <sys/stat.h>

#include <future>

#include "../storage/test_support.hpp"
#include "webpushd/storage/delivery_event_store.hpp"
#include "webpushd/tracking/beacons.hpp"

using namespace webpushd;
using namespace webpushd::tracking;
using namespace std::chrono_literals;

namespace {

result<bool> record_sync(beacon_recorder& r, beacon b) {
  std::promise<result<bool>> p;
  auto f = p.get_future();
  r.record(std::move(b), [&p](result<bool> out) { p.set_value(std::move(out)); });
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  return f.get();
}

}  // namespace

TEST_CASE("the signing key is made once (0600) and read back the same") {
  storage::testing::temp_dir dir;
  const auto path = dir.path() / "tracking.key";
  bool created = false;
  auto first = delivery_signer::load_or_create(path, created);
  REQUIRE(first.has_value());
  CHECK(created);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto again = delivery_signer::load_or_create(path, created);
  REQUIRE(again.has_value());
  CHECK_FALSE(created);
  const auto id = delivery_signer::new_delivery_id();
  CHECK(again->sign(id) == first->sign(id));
  CHECK(again->verify(id, first->sign(id)));
}

TEST_CASE("signatures bind the delivery id and the key") {
  delivery_signer a(bytes(32, 1));
  delivery_signer b(bytes(32, 2));
  const auto id = delivery_signer::new_delivery_id();
  CHECK(id.rfind("d_", 0) == 0);
  CHECK(id.size() == 24);
  CHECK(a.sign(id).size() == 22);
  CHECK(a.verify(id, a.sign(id)));
  CHECK_FALSE(a.verify(id, b.sign(id)));                       // another daemon's key
  CHECK_FALSE(a.verify(delivery_signer::new_delivery_id(), a.sign(id)));  // another delivery
  CHECK_FALSE(a.verify(id, ""));
  CHECK_FALSE(a.verify(id, a.sign(id) + "x"));
}

TEST_CASE("beacon fields are checked before anything else") {
  const auto good = beacon{"d_abc", "clicked", "open", "sig"};
  CHECK(validate_beacon(good).has_value());
  auto b = good;
  b.delivery_id = "d_a/../b";
  CHECK(validate_beacon(b).error().field == "id");
  b = good;
  b.delivery_id = std::string(65, 'a');
  CHECK(validate_beacon(b).error().code == "invalid_delivery_id");
  b = good;
  b.type = "purchased";
  CHECK(validate_beacon(b).error().field == "type");
  b = good;
  b.type = "shown";  // an action only belongs to a click
  CHECK(validate_beacon(b).error().field == "action");
  b = good;
  b.signature.clear();
  CHECK(validate_beacon(b).error().field == "sig");
}

TEST_CASE("a signed beacon is recorded once; forged or repeated ones change nothing") {
  storage::testing::temp_dir dir;
  auto writer_db = storage::testing::open_ok(dir.db_file());
  storage::write_queue writer(std::move(writer_db));
  manual_clock clock;
  delivery_signer signer(bytes(32, 7));
  beacon_recorder recorder(signer, writer, clock);
  const auto id = delivery_signer::new_delivery_id();

  CHECK(record_sync(recorder, {id, "shown", "", signer.sign(id)}).value() == true);
  CHECK(record_sync(recorder, {id, "clicked", "open", signer.sign(id)}).value() == true);
  CHECK(record_sync(recorder, {id, "clicked", "open", signer.sign(id)}).value() == false);  // browser retry

  const auto forged = record_sync(recorder, {id, "closed", "", delivery_signer(bytes(32, 8)).sign(id)});
  REQUIRE_FALSE(forged.has_value());
  CHECK(forged.error().code == "invalid_signature");
  const auto other = delivery_signer::new_delivery_id();
  CHECK_FALSE(record_sync(recorder, {other, "clicked", "", signer.sign(id)}).has_value());  // replayed onto another id

  writer.stop();
  auto reader = storage::testing::open_ok(dir.db_file());
  const auto events = storage::make_sqlite_delivery_event_store(reader)->for_delivery(id);
  REQUIRE(events.has_value());
  REQUIRE(events->size() == 2);
  CHECK((*events)[0].type == "clicked");
  CHECK((*events)[0].action == "open");
  CHECK((*events)[1].type == "shown");
  CHECK(storage::make_sqlite_delivery_event_store(reader)->for_delivery(other)->empty());
}
