#include "webpushd/crypto/secret_file.hpp"

#include <sys/stat.h>

#include <fstream>

#include "webpushd/crypto/primitives.hpp"

namespace webpushd::crypto {

result<std::string> read_secret_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return fail("secret_unreadable", "cannot read " + path.string());
  std::string text;
  std::getline(in, text);
  if (!text.empty() && text.back() == '\r') text.pop_back();
  return text;
}

result<void> write_secret_file(const std::filesystem::path& path, const std::string& text) {
  const auto tmp = path.string() + ".tmp";
  {
    // The umask makes the file private from its creation, not only after chmod.
    const mode_t old_mask = ::umask(077);
    std::ofstream out(tmp, std::ios::trunc);
    ::umask(old_mask);
    if (!out) return fail("secret_unwritable", "cannot write " + tmp);
    out << text << "\n";
    out.flush();
    if (!out) return fail("secret_unwritable", "cannot write " + tmp);
  }
  ::chmod(tmp.c_str(), 0600);
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return fail("secret_unwritable", "cannot move " + tmp + " into place: " + ec.message());
  return {};
}

result<bytes> load_or_create_key(const std::filesystem::path& path, std::size_t size, bool& created) {
  created = false;
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    auto text = read_secret_file(path);
    if (!text) return tl::unexpected(text.error());
    auto key = base64url_decode(*text);
    if (!key || key->size() < size) {
      return fail("invalid_key",
                  path.string() + " does not hold a base64url key of at least " + std::to_string(size) + " bytes");
    }
    return std::move(*key);
  }
  auto key = random_bytes(size);
  if (auto ok = write_secret_file(path, base64url_encode(key)); !ok) return tl::unexpected(ok.error());
  created = true;
  return key;
}

}  // namespace webpushd::crypto
