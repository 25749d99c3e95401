#include "webpushd/crypto/secret_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

namespace {

// Owns a file descriptor.
class fd_owner {
 public:
  explicit fd_owner(int fd) : fd_(fd) {}
  ~fd_owner() {
    if (fd_ >= 0) ::close(fd_);
  }
  fd_owner(const fd_owner&) = delete;
  fd_owner& operator=(const fd_owner&) = delete;
  int get() const { return fd_; }
  // Closes now and reports whether close succeeded (it can report write errors).
  bool close() {
    const int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0;
  }

 private:
  int fd_;
};

}  // namespace

result<void> write_private_file(const std::filesystem::path& path, std::string_view content) {
  // A private temp file beside the target (created 0600 with O_EXCL, never
  // world-readable, whatever the umask), synced, then renamed: readers see
  // the old content or the whole new one, even after a power loss.
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path{"."};
  const auto tmp = dir / ("." + path.filename().string() + ".tmp-" + random_token(8));
  const auto os_error = [&](const char* what) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return fail("secret_unwritable", std::string(what) + " " + path.string() + ": " + std::strerror(err));
  };
  {
    fd_owner fd{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, S_IRUSR | S_IWUSR)};
    if (fd.get() < 0) {
      return fail("secret_unwritable", "cannot create a file beside " + path.string() + ": " + std::strerror(errno));
    }
    // The umask can only remove bits; fchmod makes 0600 exact either way.
    if (::fchmod(fd.get(), S_IRUSR | S_IWUSR) != 0) return os_error("cannot set the mode of");
    std::size_t written = 0;
    while (written < content.size()) {
      const ssize_t n = ::write(fd.get(), content.data() + written, content.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return os_error("cannot write");
      written += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0) return os_error("cannot sync");
    if (!fd.close()) return os_error("cannot close");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return os_error("cannot rename a temp file to");
  // Make the rename itself durable; failing to sync the directory is not fatal.
  if (const fd_owner dir_fd{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)}; dir_fd.get() >= 0) {
    (void)::fsync(dir_fd.get());
  }
  return {};
}

result<void> write_secret_file(const std::filesystem::path& path, const std::string& text) {
  return write_private_file(path, text + "\n");
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
