#include "webpushd/crypto/password.hpp"

#include <charconv>
#include <cstdlib>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "webpushd/crypto/primitives.hpp"

namespace webpushd::crypto {
namespace {

constexpr std::string_view prefix = "$scrypt$";
constexpr std::size_t salt_bytes = 16;
constexpr std::size_t key_bytes = 32;

bool params_in_range(const scrypt_params& p) {
  return p.log2_n >= 10 && p.log2_n <= 20 && p.r >= 1 && p.r <= 32 && p.p >= 1 && p.p <= 16;
}

// scrypt needs 128·r·N·p bytes; OpenSSL refuses more than maxmem, whose
// default (32 MiB) is exactly what the default parameters need, so it is
// raised to what the parameters in range can ask for.
std::uint64_t memory_for(const scrypt_params& p) {
  return 128ULL * p.r * (1ULL << p.log2_n) * p.p + (1ULL << 20);
}

bytes derive(std::string_view password, byte_view salt, const scrypt_params& p, std::size_t length) {
  bytes out(length);
  if (EVP_PBE_scrypt(password.data(), password.size(), salt.data(), salt.size(), 1ULL << p.log2_n, p.r, p.p,
                     memory_for(p), out.data(), out.size()) != 1) {
    // Parameters are checked before we get here, so only memory exhaustion
    // or a broken OpenSSL remain: nothing a caller could do about it.
    std::abort();
  }
  return out;
}

std::optional<unsigned> number_after(std::string_view item, std::string_view name) {
  if (!item.starts_with(name) || item.size() == name.size() || item[name.size()] != '=') return std::nullopt;
  const auto digits = item.substr(name.size() + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

}  // namespace

std::string hash_password(std::string_view password, scrypt_params params) {
  if (!params_in_range(params)) std::abort();  // a programming error: the CLI passes the defaults
  const auto salt = random_bytes(salt_bytes);
  const auto key = derive(password, salt, params, key_bytes);
  return std::string(prefix) + "ln=" + std::to_string(params.log2_n) + ",r=" + std::to_string(params.r) +
         ",p=" + std::to_string(params.p) + "$" + base64url_encode(salt) + "$" + base64url_encode(key);
}

result<password_hash> parse_password_hash(std::string_view text) {
  const auto invalid = [](std::string why) {
    return fail("invalid_password_hash", "not a password hash made by 'webpushctl dashboard hash-password': " + why);
  };
  if (!text.starts_with(prefix)) return invalid("it must start with $scrypt$");
  text.remove_prefix(prefix.size());
  const auto first = text.find('$');
  const auto second = first == std::string_view::npos ? first : text.find('$', first + 1);
  if (second == std::string_view::npos || text.find('$', second + 1) != std::string_view::npos) {
    return invalid("it has four parts separated by $");
  }
  const auto params_text = text.substr(0, first);
  password_hash h;
  const auto comma1 = params_text.find(',');
  const auto comma2 = comma1 == std::string_view::npos ? comma1 : params_text.find(',', comma1 + 1);
  if (comma2 == std::string_view::npos) return invalid("the parameters are ln=…,r=…,p=…");
  const auto ln = number_after(params_text.substr(0, comma1), "ln");
  const auto r = number_after(params_text.substr(comma1 + 1, comma2 - comma1 - 1), "r");
  const auto p = number_after(params_text.substr(comma2 + 1), "p");
  if (!ln || !r || !p) return invalid("the parameters are ln=…,r=…,p=…");
  h.params = {*ln, *r, *p};
  if (!params_in_range(h.params)) return invalid("its parameters are out of range (ln 10-20, r 1-32, p 1-16)");
  auto salt = base64url_decode(text.substr(first + 1, second - first - 1));
  auto key = base64url_decode(text.substr(second + 1));
  if (!salt || salt->size() < 16 || salt->size() > 64) return invalid("the salt is not 16-64 bytes of base64url");
  if (!key || key->size() < 16 || key->size() > 64) return invalid("the key is not 16-64 bytes of base64url");
  h.salt = std::move(*salt);
  h.key = std::move(*key);
  return h;
}

bool verify_password(const password_hash& hash, std::string_view password) {
  const auto key = derive(password, hash.salt, hash.params, hash.key.size());
  return CRYPTO_memcmp(key.data(), hash.key.data(), key.size()) == 0;
}

}  // namespace webpushd::crypto
