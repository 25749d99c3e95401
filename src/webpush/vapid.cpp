#include "webpushd/webpush/vapid.hpp"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <sstream>
#include <stdexcept>

#include "openssl_util.hpp"
#include "webpushd/crypto/secret_file.hpp"

namespace webpushd::webpush {
namespace {

using detail::p256_group;
using detail::p256_point_size;
using detail::p256_scalar_size;

using bio_ptr = std::unique_ptr<BIO, detail::openssl_deleter<&BIO_free>>;
using ecdsa_sig_ptr = std::unique_ptr<ECDSA_SIG, detail::openssl_deleter<&ECDSA_SIG_free>>;
using param_bld_ptr = std::unique_ptr<OSSL_PARAM_BLD, detail::openssl_deleter<&OSSL_PARAM_BLD_free>>;
using params_ptr = std::unique_ptr<OSSL_PARAM, detail::openssl_deleter<&OSSL_PARAM_free>>;

// A PEM private key is a few hundred bytes; anything far larger is not one.
constexpr std::uintmax_t max_pem_file_size = 64 * 1024;

/// Answers "no passphrase" so an encrypted PEM fails instead of prompting on a terminal.
int no_passphrase(char*, int, int, void*) { return 0; }

/// The uncompressed public point d · G.
std::optional<std::array<std::uint8_t, p256_point_size>> public_point_of(const BIGNUM* d) {
  const detail::bn_ctx_ptr bn_ctx{BN_CTX_new()};
  const detail::ec_point_ptr point{EC_POINT_new(p256_group())};
  std::array<std::uint8_t, p256_point_size> out{};
  if (!bn_ctx || !point || EC_POINT_mul(p256_group(), point.get(), d, nullptr, nullptr, bn_ctx.get()) != 1 ||
      EC_POINT_point2oct(p256_group(), point.get(), POINT_CONVERSION_UNCOMPRESSED, out.data(), out.size(),
                         bn_ctx.get()) != out.size())
    return std::nullopt;
  return out;
}

bool is_p256(const EVP_PKEY* pkey) {
  if (EVP_PKEY_is_a(pkey, "EC") != 1) return false;
  std::array<char, 64> name{};
  std::size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name.data(), name.size(), &len) != 1)
    return false;
  const std::string_view group{name.data(), len};
  return group == "prime256v1" || group == "P-256" || group == "secp256r1";
}

/// JSON string contents for a hand-built JWT: quotes, backslashes and
/// control characters escaped; UTF-8 passes through unchanged.
std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\u00";
      out += hex[u >> 4];
      out += hex[u & 0x0f];
    } else {
      out += c;
    }
  }
  return out;
}

bool has_space_or_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

/// An origin taken from an absolute URL, normalised (lower-case scheme and host).
struct origin {
  std::string scheme;
  std::string host;
  std::optional<std::uint16_t> port;
};

/// Splits `scheme://host[:port]` off a URL. Returns nullopt with `why` set for
/// userinfo, an empty or malformed host, or a bad port.
std::optional<origin> parse_origin(std::string_view url, std::string& why) {
  if (url.empty()) return why = "URL is empty", std::nullopt;
  if (has_space_or_control(url)) return why = "URL contains whitespace or control characters", std::nullopt;
  const auto sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0 || !is_alpha(url[0]))
    return why = "URL must be absolute (scheme://host)", std::nullopt;
  origin o;
  for (const char c : url.substr(0, sep)) {
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return why = "bad URL scheme", std::nullopt;
    o.scheme += ascii_lower(c);
  }
  const std::string_view rest = url.substr(sep + 3);
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos) return why = "URL must not contain userinfo", std::nullopt;

  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority[0] == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return why = "unterminated IPv6 literal", std::nullopt;
    host = authority.substr(0, close + 1);
    const std::string_view inner = host.substr(1, host.size() - 2);
    const bool ok = !inner.empty() && std::all_of(inner.begin(), inner.end(), [](char c) {
      return is_digit(c) || (ascii_lower(c) >= 'a' && ascii_lower(c) <= 'f') || c == ':' || c == '.';
    });
    if (!ok) return why = "bad IPv6 literal", std::nullopt;
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return why = "unexpected characters after IPv6 literal", std::nullopt;
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    const auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
    const bool ok = std::all_of(host.begin(), host.end(), [](char c) {
      return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
    });
    if (!ok) return why = "URL host contains characters a host name cannot have", std::nullopt;
  }
  if (host.empty()) return why = "URL has no host", std::nullopt;
  std::transform(host.begin(), host.end(), std::back_inserter(o.host), ascii_lower);

  // RFC 3986 §3.2.3: an empty port ("host:") means the scheme's default.
  if (has_port && !port_text.empty()) {
    if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), is_digit))
      return why = "bad URL port", std::nullopt;
    unsigned value = 0;
    for (const char c : port_text) value = value * 10 + static_cast<unsigned>(c - '0');
    if (value == 0 || value > 65535) return why = "URL port out of range", std::nullopt;
    o.port = static_cast<std::uint16_t>(value);
  }
  return o;
}

}  // namespace

// ---------------------------------------------------------------- vapid_key

struct vapid_key::impl {
  detail::evp_pkey_ptr pkey;
  std::array<std::uint8_t, p256_point_size> public_key{};

  /// Takes ownership of a key once it is known to be a P-256 private key.
  static result<vapid_key> adopt(detail::evp_pkey_ptr pkey);
};

vapid_key::vapid_key(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
vapid_key::vapid_key(vapid_key&&) noexcept = default;
vapid_key& vapid_key::operator=(vapid_key&&) noexcept = default;
vapid_key::~vapid_key() = default;

namespace {

/// Checks that `pkey` is a P-256 private key and derives its public point
/// from the private scalar (so a PEM without a public part still works, and a
/// mismatched one cannot slip through).
result<std::array<std::uint8_t, p256_point_size>> checked_public_key(const EVP_PKEY* pkey) {
  if (!is_p256(pkey)) return fail("invalid_key", "VAPID key must be a P-256 (prime256v1) EC key", "key");
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &raw) != 1) {
    ERR_clear_error();
    return fail("invalid_key", "VAPID key has no private part", "key");
  }
  const detail::bn_ptr d{raw};
  const auto pub = public_point_of(d.get());
  if (!pub) {
    ERR_clear_error();
    return fail("invalid_key", "VAPID private key is out of range", "key");
  }
  return *pub;
}

}  // namespace

result<vapid_key> vapid_key::impl::adopt(detail::evp_pkey_ptr pkey) {
  auto pub = checked_public_key(pkey.get());
  if (!pub) return tl::unexpected(pub.error());
  auto p = std::make_unique<impl>();
  p->pkey = std::move(pkey);
  p->public_key = *pub;
  return vapid_key{std::move(p)};
}

result<vapid_key> vapid_key::generate() {
  detail::evp_pkey_ptr pkey{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")};
  if (!pkey) {
    ERR_clear_error();
    return fail("crypto_error", "OpenSSL could not generate a P-256 key");
  }
  return impl::adopt(std::move(pkey));
}

result<vapid_key> vapid_key::from_pem(std::string_view pem) {
  if (pem.empty() || pem.size() > max_pem_file_size) return fail("invalid_key", "not a PEM private key", "key");
  const bio_ptr bio{BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
  if (!bio) return fail("crypto_error", "out of memory reading a PEM key");
  detail::evp_pkey_ptr pkey{PEM_read_bio_PrivateKey(bio.get(), nullptr, &no_passphrase, nullptr)};
  if (!pkey) {
    ERR_clear_error();
    return fail("invalid_key", "not an unencrypted PEM private key (PKCS#8 or SEC1)", "key");
  }
  return impl::adopt(std::move(pkey));
}

result<vapid_key> vapid_key::load_pem_file(const std::filesystem::path& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return fail("key_unreadable", "cannot read " + path.string() + ": " + ec.message(), "key");
  if (size > max_pem_file_size) return fail("invalid_key", path.string() + " is too large to be a PEM key", "key");
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail("key_unreadable", "cannot open " + path.string(), "key");
  std::string pem(static_cast<std::size_t>(size), '\0');
  in.read(pem.data(), static_cast<std::streamsize>(pem.size()));
  if (!in && !in.eof()) return fail("key_unreadable", "cannot read " + path.string(), "key");
  pem.resize(static_cast<std::size_t>(in.gcount()));
  auto key = from_pem(pem);
  OPENSSL_cleanse(pem.data(), pem.size());
  return key;
}

result<vapid_key> vapid_key::from_private_scalar(byte_view d) {
  const detail::bn_ptr scalar{BN_new()};
  if (!scalar) return fail("crypto_error", "out of memory");
  if (!detail::load_p256_scalar(d, scalar.get()))
    return fail("invalid_key", "private scalar must be 32 bytes in [1, n-1]", "key");
  const auto pub = public_point_of(scalar.get());
  if (!pub) return fail("crypto_error", "cannot derive the public key");

  const param_bld_ptr bld{OSSL_PARAM_BLD_new()};
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, scalar.get()) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, pub->data(), pub->size()) != 1)
    return fail("crypto_error", "cannot build key parameters");
  const params_ptr params{OSSL_PARAM_BLD_to_param(bld.get())};
  const detail::evp_pkey_ctx_ptr ctx{EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr)};
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_KEYPAIR, params.get()) != 1) {
    ERR_clear_error();
    return fail("crypto_error", "OpenSSL could not import the key");
  }
  return impl::adopt(detail::evp_pkey_ptr{raw});
}

result<void> vapid_key::save_pem_file(const std::filesystem::path& path) const {
  const bio_ptr bio{BIO_new(BIO_s_mem())};
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), impl_->pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    ERR_clear_error();
    return fail("crypto_error", "cannot encode the key as PEM");
  }
  std::string pem(BIO_ctrl_pending(bio.get()), '\0');
  if (BIO_read(bio.get(), pem.data(), static_cast<int>(pem.size())) != static_cast<int>(pem.size()))
    return fail("crypto_error", "cannot encode the key as PEM");
  struct wipe_pem {
    std::string& s;
    ~wipe_pem() { OPENSSL_cleanse(s.data(), s.size()); }
  } wipe{pem};

  // Readers see either the old key or the whole new one, never a torn or
  // world-readable file (crypto's private-file writer).
  if (auto written = crypto::write_private_file(path, pem); !written) {
    return fail("key_unwritable", written.error().message, "key");
  }
  return {};
}

const std::array<std::uint8_t, 65>& vapid_key::public_key() const { return impl_->public_key; }

std::string vapid_key::public_key_b64url() const { return base64url_encode(impl_->public_key); }

bytes vapid_key::sign_es256(byte_view message) const {
  const detail::evp_md_ctx_ptr ctx{EVP_MD_CTX_new()};
  std::array<std::uint8_t, 80> der{};  // a DER P-256 ECDSA signature is at most 72 bytes
  std::size_t der_len = der.size();
  if (!ctx || EVP_DigestSignInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, impl_->pkey.get(), nullptr) != 1 ||
      EVP_DigestSign(ctx.get(), der.data(), &der_len, message.data(), message.size()) != 1) {
    ERR_clear_error();
    throw std::runtime_error("OpenSSL failed to sign with the VAPID key");
  }
  // JOSE (RFC 7518 §3.4) wants the raw r ‖ s, each left-padded to 32 bytes.
  const unsigned char* p = der.data();
  const ecdsa_sig_ptr sig{d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len))};
  if (!sig) throw std::runtime_error("OpenSSL produced an unparsable ECDSA signature");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  bytes out(2 * p256_scalar_size);
  if (BN_bn2binpad(r, out.data(), p256_scalar_size) != p256_scalar_size ||
      BN_bn2binpad(s, out.data() + p256_scalar_size, p256_scalar_size) != p256_scalar_size)
    throw std::runtime_error("ECDSA signature component does not fit 32 bytes");
  return out;
}

// ---------------------------------------------------------------- subject, audience

result<void> validate_subject(std::string_view subject) {
  static constexpr const char* code = "invalid_vapid_subject";
  static constexpr const char* field = "subject";
  if (subject.empty()) return fail(code, "VAPID subject is empty", field);
  if (has_space_or_control(subject))
    return fail(code, "VAPID subject must not contain whitespace or control characters", field);
  // Apple compares the scheme literally, so only the lower-case forms are accepted.
  if (subject.starts_with("mailto:")) {
    const std::string_view address = subject.substr(7);
    const auto at = address.find('@');
    if (at == std::string_view::npos || at == 0 || address.find('@', at + 1) != std::string_view::npos)
      return fail(code, "mailto: subject needs one address, like mailto:ops@example.com", field);
    const std::string_view local = address.substr(0, at);
    const std::string_view domain = address.substr(at + 1);
    const bool domain_ok = !domain.empty() && domain.front() != '.' && domain.back() != '.' &&
                           std::all_of(domain.begin(), domain.end(),
                                       [](char c) { return is_alpha(c) || is_digit(c) || c == '-' || c == '.'; });
    if (!domain_ok || local.find_first_of("?#/:<>,;\"\\") != std::string_view::npos)
      return fail(code, "mailto: subject has a malformed address", field);
    return {};
  }
  if (subject.starts_with("https://")) {
    std::string why;
    if (!parse_origin(subject, why)) return fail(code, "https: subject is not a valid URL: " + why, field);
    return {};
  }
  return fail(code, "VAPID subject must be a mailto: address or an https: URL", field);
}

result<std::string> audience_of(std::string_view endpoint_url) {
  static constexpr const char* code = "invalid_endpoint";
  static constexpr const char* field = "endpoint";
  std::string why;
  const auto o = parse_origin(endpoint_url, why);
  if (!o) return fail(code, "endpoint " + why, field);
  const bool https = o->scheme == "https";
  if (!https && o->scheme != "http") return fail(code, "endpoint must be an http(s) URL", field);
  std::string aud = o->scheme + "://" + o->host;
  const std::uint16_t default_port = https ? 443 : 80;
  if (o->port && *o->port != default_port) aud += ":" + std::to_string(*o->port);
  return aud;
}

// ---------------------------------------------------------------- vapid_signer

struct vapid_signer::cache {
  struct entry {
    std::string authorization;
    time_point expires;
  };
  std::shared_mutex mutex;
  std::map<std::string, entry, std::less<>> entries;
  std::atomic<std::uint64_t> tokens_signed{0};
};

vapid_signer::vapid_signer(vapid_key key, std::string subject, const clock& clk, std::chrono::seconds lifetime)
    : key_(std::move(key)),
      subject_(std::move(subject)),
      clock_(clk),
      lifetime_(lifetime),
      public_key_b64url_(key_.public_key_b64url()),
      cache_(std::make_unique<cache>()) {}

vapid_signer::~vapid_signer() = default;

result<std::unique_ptr<vapid_signer>> vapid_signer::create(vapid_key key, std::string subject, const clock& clk,
                                                           std::chrono::seconds lifetime) {
  if (auto ok = validate_subject(subject); !ok) return tl::unexpected(ok.error());
  if (lifetime < std::chrono::minutes{1} || lifetime > max_lifetime)
    return fail("invalid_vapid_lifetime", "VAPID token lifetime must be between 60 s and 24 h", "lifetime");
  return std::unique_ptr<vapid_signer>(new vapid_signer(std::move(key), std::move(subject), clk, lifetime));
}

std::string vapid_signer::make_jwt(std::string_view audience, time_point expires) const {
  static const std::string header = base64url_encode(as_bytes(R"({"typ":"JWT","alg":"ES256"})"));
  const std::string claims = R"({"aud":")" + json_escape(audience) + R"(","exp":)" +
                             std::to_string(unix_seconds(expires)) + R"(,"sub":")" + json_escape(subject_) + "\"}";
  std::string token = header + "." + base64url_encode(as_bytes(claims));
  const bytes signature = key_.sign_es256(as_bytes(token));
  cache_->tokens_signed.fetch_add(1, std::memory_order_relaxed);
  token += '.';
  token += base64url_encode(signature);
  return token;
}

std::string vapid_signer::authorization(std::string_view audience) {
  const time_point now = clock_.now();
  // Fresh while more than half the lifetime remains; a token that claims to
  // live longer than the lifetime means the clock went back, so renew it too.
  const auto fresh = [&](const cache::entry& e) {
    return now >= e.expires - lifetime_ && now < e.expires - lifetime_ / 2;
  };
  {
    std::shared_lock lock(cache_->mutex);
    if (const auto it = cache_->entries.find(audience); it != cache_->entries.end() && fresh(it->second))
      return it->second.authorization;
  }
  std::unique_lock lock(cache_->mutex);
  auto it = cache_->entries.find(audience);
  if (it != cache_->entries.end() && fresh(it->second)) return it->second.authorization;
  // Audiences are push-service origins, so the map stays small; still, drop
  // expired tokens now and then so a long-running daemon cannot accumulate them.
  if (cache_->entries.size() >= 64)
    std::erase_if(cache_->entries, [&](const auto& kv) { return kv.second.expires <= now; });
  const time_point expires = now + lifetime_;
  cache::entry e{"vapid t=" + make_jwt(audience, expires) + ", k=" + public_key_b64url_, expires};
  it = cache_->entries.insert_or_assign(std::string(audience), std::move(e)).first;
  return it->second.authorization;
}

std::uint64_t vapid_signer::tokens_signed() const { return cache_->tokens_signed.load(std::memory_order_relaxed); }

}  // namespace webpushd::webpush
