// webpushctl bench encrypt: single-thread message encryption + VAPID
// authorisation, beside OpenSSL's own P-256 speed measured in the same run.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "commands.hpp"
#include "webpushd/core/bytes.hpp"
#include "webpushd/core/clock.hpp"
#include "webpushd/webpush/content_encryption.hpp"
#include "webpushd/webpush/openssl_baseline.hpp"
#include "webpushd/webpush/subscription_keys.hpp"
#include "webpushd/webpush/vapid.hpp"

namespace webpushctl {
namespace {

namespace wp = webpushd::webpush;
using std::chrono::duration;
using std::chrono::nanoseconds;
using op = wp::openssl_p256_baseline::operation;

struct bench_options {
  double seconds = 5;
  std::size_t payload_bytes = 200;
  bool json = false;
};

[[noreturn]] void stop(const std::string& message) {
  // CLI11 prints nothing for a RuntimeError, only exits with its code.
  std::cerr << "error: " << message << '\n';
  throw CLI::RuntimeError(exit_usage);
}

/// Operations and time accumulated over interleaved slices.
struct tally {
  std::uint64_t operations = 0;
  nanoseconds elapsed{0};
  void add(std::uint64_t ops, nanoseconds t) {
    operations += ops;
    elapsed += t;
  }
  double seconds_per_op() const { return duration<double>(elapsed).count() / static_cast<double>(operations); }
};

/// What one delivery does on a crypto worker: derive the audience, encrypt,
/// and take the (cached) VAPID header.
class message_pipeline {
 public:
  message_pipeline(std::size_t payload_bytes, const webpushd::clock& clk) : payload_(payload_bytes, 'x') {
    // A subscriber as a browser makes one: its P-256 public key and a 16-byte secret.
    auto ua = wp::vapid_key::generate();
    auto server = wp::vapid_key::generate();
    if (!ua || !server) stop("cannot generate P-256 keys");
    auto keys = wp::parse_subscription_keys(ua->public_key_b64url(), "AAECAwQFBgcICQoLDA0ODw");
    auto signer = wp::vapid_signer::create(std::move(*server), "mailto:bench@webpushd.invalid", clk);
    if (!keys || !signer) stop("cannot set up the benchmark subscription");
    keys_ = *keys;
    signer_ = std::move(*signer);
  }

  tally run(nanoseconds budget) {
    using steady = std::chrono::steady_clock;
    const auto start = steady::now();
    tally t;
    do {
      const auto audience = wp::audience_of(endpoint_);
      const auto body = encryptor_.encrypt(keys_, payload_);
      if (!audience || !body) stop("encryption failed during the benchmark");
      const std::string authorization = signer_->authorization(*audience);
      bytes_out_ += body->size() + authorization.size();
      ++t.operations;
      t.elapsed = steady::now() - start;
    } while (t.elapsed < budget);
    return t;
  }

  std::uint64_t tokens_signed() const { return signer_->tokens_signed(); }
  std::size_t body_size() { return encryptor_.encrypt(keys_, payload_)->size(); }

 private:
  static constexpr const char* endpoint_ = "https://fcm.googleapis.com/fcm/send/bench-subscription";
  webpushd::bytes payload_;
  wp::subscription_keys keys_;
  wp::content_encryptor encryptor_;
  std::unique_ptr<wp::vapid_signer> signer_;
  std::uint64_t bytes_out_ = 0;  // keeps the work observable to the optimiser
};

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

void run_encrypt_bench(const bench_options& opt) {
  if (!(opt.seconds > 0) || opt.seconds > 3600) stop("--seconds must be in (0, 3600]");
  if (opt.payload_bytes > wp::max_plaintext_size)
    stop("--payload-bytes must be at most " + std::to_string(wp::max_plaintext_size));

  const webpushd::system_clock clk;
  message_pipeline pipeline(opt.payload_bytes, clk);
  wp::openssl_p256_baseline baseline;

  // The machine may be shared, so the three measurements run interleaved in
  // short slices: a burst of load from elsewhere then hits all of them alike.
  const nanoseconds budget = std::chrono::duration_cast<nanoseconds>(duration<double>(opt.seconds));
  const nanoseconds slice = std::min<nanoseconds>(budget, std::chrono::milliseconds{200});
  if (!opt.json)
    std::cerr << "measuring " << opt.seconds << " s each of: encrypt+authorize (" << opt.payload_bytes
              << "-byte payload), OpenSSL EVP keygen, EVP ECDH, bare EC_POINT_mul (fixed and variable base); "
              << "one thread, interleaved in " << std::chrono::duration_cast<std::chrono::milliseconds>(slice).count()
              << " ms slices\n";
  pipeline.run(slice / 4);  // warm-up: first token signature, caches, CPU clocks
  tally ours, keygen, ecdh, raw_keygen, raw_ecdh;
  const auto measure = [&](tally& t, op which) {
    if (t.elapsed >= budget) return;
    const auto s = baseline.run(which, slice);
    t.add(s.operations, s.elapsed);
  };
  while (ours.elapsed < budget || keygen.elapsed < budget || ecdh.elapsed < budget || raw_keygen.elapsed < budget ||
         raw_ecdh.elapsed < budget) {
    if (ours.elapsed < budget) {
      const tally t = pipeline.run(slice);
      ours.add(t.operations, t.elapsed);
    }
    measure(keygen, op::evp_keygen);
    measure(ecdh, op::evp_ecdh);
    measure(raw_keygen, op::ec_keygen);
    measure(raw_ecdh, op::ec_ecdh);
  }

  const double rate = 1.0 / ours.seconds_per_op();
  const double bound = 1.0 / (keygen.seconds_per_op() + ecdh.seconds_per_op());
  const double raw_bound = 1.0 / (raw_keygen.seconds_per_op() + raw_ecdh.seconds_per_op());
  const auto us = [](const tally& t) { return t.seconds_per_op() * 1e6; };
  if (opt.json) {
    std::cout << R"({"impl":"webpushd","threads":1,"payload_bytes":)" << opt.payload_bytes << R"(,"seconds":)"
              << opt.seconds << R"(,"messages_per_second":)" << fixed(rate, 1) << R"(,"us_per_message":)"
              << fixed(us(ours), 2) << R"(,"tokens_signed":)" << pipeline.tokens_signed() << R"(,"openssl_keygen_us":)"
              << fixed(us(keygen), 2) << R"(,"openssl_ecdh_us":)" << fixed(us(ecdh), 2)
              << R"(,"bound_messages_per_second":)" << fixed(bound, 1) << R"(,"ratio":)" << fixed(rate / bound, 3)
              << R"(,"ec_point_keygen_us":)" << fixed(us(raw_keygen), 2) << R"(,"ec_point_ecdh_us":)"
              << fixed(us(raw_ecdh), 2) << R"(,"ec_point_bound_messages_per_second":)" << fixed(raw_bound, 1)
              << R"(,"ec_point_ratio":)" << fixed(rate / raw_bound, 3) << "}\n";
    return;
  }
  std::cout << "encrypt + VAPID authorize (" << opt.payload_bytes << " B payload, " << pipeline.body_size()
            << " B body, 1 thread)\n"
            << "  webpushd                         " << fixed(rate, 0) << " messages/s  (" << fixed(us(ours), 1)
            << " us/message, " << ours.operations << " messages, " << pipeline.tokens_signed() << " JWT signed)\n"
            << "OpenSSL P-256 bound, same run (EVP API, the bound as defined)\n"
            << "  t_keygen  EVP_PKEY_keygen        " << fixed(us(keygen), 1) << " us\n"
            << "  t_ecdh    EVP_PKEY_derive        " << fixed(us(ecdh), 1) << " us\n"
            << "  bound = 1/(t_keygen + t_ecdh)    " << fixed(bound, 0) << " messages/s\n"
            << "  ratio                            " << fixed(100.0 * rate / bound, 1) << " %\n"
            << "bare EC_POINT_mul, same run (stricter: the multiplications alone, no EVP objects)\n"
            << "  fixed base (keygen)              " << fixed(us(raw_keygen), 1) << " us\n"
            << "  variable base (ECDH)             " << fixed(us(raw_ecdh), 1) << " us\n"
            << "  bound                            " << fixed(raw_bound, 0) << " messages/s\n"
            << "  ratio                            " << fixed(100.0 * rate / raw_bound, 1) << " %\n";
}

}  // namespace

CLI::App* bench_group(CLI::App& app) {
  // Made by whichever bench command registers first, so no command depends
  // on the registration order.
  try {
    return app.get_subcommand("bench");
  } catch (const CLI::OptionNotFound&) {
    auto* bench = app.add_subcommand("bench", "Benchmarks");
    bench->require_subcommand(1);
    return bench;
  }
}

void add_bench_commands(CLI::App& app) {
  auto* bench = bench_group(app);
  auto opt = std::make_shared<bench_options>();
  auto* enc =
      bench->add_subcommand("encrypt",
                            "Encrypt + VAPID-authorize messages on one thread and compare with OpenSSL's P-256 bound "
                            "1/(t_keygen + t_ecdh) measured in the same run");
  enc->add_option("--seconds", opt->seconds, "Seconds for each measurement (default 5)");
  enc->add_option("--payload-bytes", opt->payload_bytes, "Plaintext size (default 200)");
  enc->add_flag("--json", opt->json, "Print one JSON line instead of a table");
  enc->callback([opt] { run_encrypt_bench(*opt); });
}

}  // namespace webpushctl
