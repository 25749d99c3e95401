#pragma once
/// @file
/// @brief An injectable source of randomness.
///
/// Cryptographic randomness (salts, ephemeral keys, tokens) comes from
/// OpenSSL's DRBG inside the webpush module; this interface is for the
/// non-secret randomness the rest of the daemon needs (retry jitter), so tests
/// can make it deterministic.

#include <cstdint>
#include <random>

namespace webpushd {

/// @brief Uniform random numbers. Implementations need not be thread-safe;
/// give each thread its own.
class random_source {
 public:
  virtual ~random_source() = default;
  /// @brief A uniform double in [0, 1).
  virtual double uniform() = 0;
};

/// @brief A seeded PRNG (std::mt19937_64).
class prng_source final : public random_source {
 public:
  explicit prng_source(std::uint64_t seed = std::random_device{}()) : engine_(seed) {}
  double uniform() override { return std::uniform_real_distribution<double>(0.0, 1.0)(engine_); }

 private:
  std::mt19937_64 engine_;
};

}  // namespace webpushd
