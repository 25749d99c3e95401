#include "fuzz_app.hpp"

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "webpushd/api/router.hpp"
#include "webpushd/app/daemon.hpp"
#include "webpushd/core/clock.hpp"

namespace webpushd::fuzz {

namespace {

// Long enough for a commit on a loaded machine; a request that is still
// unanswered after it has hung, which is a bug the fuzzer should report.
constexpr std::chrono::seconds answer_limit{60};

// A tmpfs when there is one: every accepted request is an fsync'd commit.
std::string make_data_dir() {
  std::string base = "/dev/shm";
  if (::access(base.c_str(), W_OK) != 0) base = std::filesystem::temp_directory_path().string();
  std::string pattern = base + "/webpushd-fuzz-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::perror("fuzz: mkdtemp");
    std::abort();
  }
  return pattern;
}

// What one request's respond_fn reports to the waiting fuzzer thread.
struct answer_box {
  std::mutex m;
  std::condition_variable cv;
  int calls = 0;
  bool dropped = false;  // every copy of the respond_fn died unanswered
  api::response res;
};

// Held only by the respond_fn's copies: its destruction without a call is
// the "handler dropped its request" case the server answers with a 500.
struct drop_watch {
  explicit drop_watch(std::shared_ptr<answer_box> b) : box(std::move(b)) {}
  drop_watch(const drop_watch&) = delete;
  drop_watch& operator=(const drop_watch&) = delete;
  std::shared_ptr<answer_box> box;
  ~drop_watch() {
    std::lock_guard lock(box->m);
    if (box->calls == 0) box->dropped = true;
    box->cv.notify_all();
  }
};

}  // namespace

struct fixture::impl {
  system_clock clk;
  std::unique_ptr<app::daemon> daemon;
};

fixture& fixture::instance() {
  static fixture f;
  return f;
}

fixture::fixture() : impl_(std::make_unique<impl>()) {
  spdlog::set_level(spdlog::level::off);
  auto cfg = app::load_config(std::filesystem::path(WEBPUSHD_SOURCE_DIR) / "examples" / "shop.yaml");
  if (!cfg) {
    std::fprintf(stderr, "fuzz: examples/shop.yaml: %s\n", cfg.error().message.c_str());
    std::abort();
  }
  dir_ = make_data_dir();
  cfg->data_dir = dir_;
  cfg->server.api_keys = {{"fuzz-backend", api_key}};
  cfg->server.cors_origins = {"https://www.example-shop.com"};
  cfg->server.identify_secret = "fuzz-identify-secret-0123456789";
  cfg_ = *cfg;
  auto d = app::daemon::create(cfg_, impl_->clk);
  if (!d) {
    std::fprintf(stderr, "fuzz: daemon::create: %s\n", d.error().message.c_str());
    std::abort();
  }
  impl_->daemon = std::move(*d);
  bool created = false;
  auto signer = tracking::delivery_signer::load_or_create(std::filesystem::path(dir_) / "tracking.key", created);
  if (!signer || created) {
    std::fprintf(stderr, "fuzz: the daemon's tracking key is not in %s\n", dir_.c_str());
    std::abort();
  }
  signer_ = std::make_unique<tracking::delivery_signer>(std::move(*signer));
}

fixture::~fixture() {
  impl_->daemon->stop(std::chrono::milliseconds{0});
  impl_->daemon.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

const api::server_options& fixture::listener_options() const { return impl_->daemon->listener().options(); }

api::request fixture::make_request(std::string method, std::string target,
                                   std::vector<std::pair<std::string, std::string>> headers, std::string body) {
  api::request req;
  req.method = std::move(method);
  req.target = std::move(target);
  req.headers = std::move(headers);
  req.body = std::move(body);
  req.remote_ip = "203.0.113.7";
  return req;
}

api::response fixture::dispatch(api::request req) const {
  // WEBPUSHD_FUZZ_TRACE=1: each request and its answer on stderr, to see
  // how far a seed gets (slow: not while fuzzing).
  static const bool trace = std::getenv("WEBPUSHD_FUZZ_TRACE") != nullptr;
  const std::string what = trace ? req.method + " " + req.target : std::string();
  auto box = std::make_shared<answer_box>();
  {
    auto watch = std::make_shared<drop_watch>(box);
    api::respond_fn respond = [box, watch](api::response r) {
      std::lock_guard lock(box->m);
      if (++box->calls == 1) box->res = std::move(r);
      box->cv.notify_all();
    };
    impl_->daemon->routes().dispatch(std::move(req), std::move(respond));
  }
  std::unique_lock lock(box->m);
  const bool settled = box->cv.wait_for(lock, answer_limit, [&] { return box->calls > 0 || box->dropped; });
  FUZZ_CHECK(settled, "no answer within 60 s");
  FUZZ_CHECK(!box->dropped || box->calls > 0, "the handler dropped the request without answering");
  FUZZ_CHECK(box->calls == 1, "answered " + std::to_string(box->calls) + " times");
  api::response res = std::move(box->res);
  if (trace) std::fprintf(stderr, "  %s -> %d %.300s\n", what.c_str(), res.status, res.body.c_str());
  FUZZ_CHECK(res.status >= 200 && res.status <= 599, "status " + std::to_string(res.status));
  // Bad input is the client's fault (4xx); a 500 is an exception or a
  // broken assumption in the daemon.
  FUZZ_CHECK(res.status != 500, res.body);
  if (res.status >= 400 && res.content_type.starts_with("application/json")) check_error_body(res);
  return res;
}

void check_error_body(const api::response& res) {
  const auto body = nlohmann::json::parse(res.body, nullptr, false);
  FUZZ_CHECK(body.is_object() && body.contains("error") && body["error"].is_object(), res.body);
  const auto& e = body["error"];
  FUZZ_CHECK(e.contains("code") && e["code"].is_string() && !e["code"].get<std::string>().empty(), res.body);
  FUZZ_CHECK(e.contains("message") && e["message"].is_string(), res.body);
  FUZZ_CHECK(e.contains("field") && e["field"].is_string(), res.body);
}

}  // namespace webpushd::fuzz
