#pragma once
/// @file
/// @brief Password hashes for the dashboard's users: scrypt (RFC 7914,
/// OpenSSL's EVP_PBE_scrypt) in a self-describing text form, so the cost can
/// be raised later without breaking the hashes already in config files:
///
///     $scrypt$ln=15,r=8,p=1$<salt, base64url>$<derived key, base64url>
///
/// `ln` is log2 of scrypt's N. The default (N = 2^15, r = 8, p = 1) needs
/// 32 MiB and about 0.1 s of one core per check: cheap for one login, costly
/// for someone trying millions of passwords from a stolen config file.

#include <cstdint>
#include <string>
#include <string_view>

#include "webpushd/core/bytes.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::crypto {

/// @brief scrypt's cost parameters.
struct scrypt_params {
  unsigned log2_n = 15;  ///< N = 2^log2_n (10–20)
  unsigned r = 8;        ///< block size (1–32)
  unsigned p = 1;        ///< parallelism (1–16)
};

/// @brief A parsed password hash.
struct password_hash {
  scrypt_params params;
  bytes salt;  ///< 16–64 bytes
  bytes key;   ///< the derived key, 16–64 bytes
};

/// @brief Hashes `password` with a fresh 16-byte random salt; the text form above.
std::string hash_password(std::string_view password, scrypt_params params = {});

/// @brief Parses the text form. Error `invalid_password_hash` with a message
/// saying what is wrong (never echoing the hash), for config errors.
result<password_hash> parse_password_hash(std::string_view text);

/// @brief Whether `password` matches `hash`. The derived keys are compared in
/// constant time; the time taken depends only on the hash's parameters.
bool verify_password(const password_hash& hash, std::string_view password);

}  // namespace webpushd::crypto
