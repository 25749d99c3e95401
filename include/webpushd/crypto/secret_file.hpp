#pragma once
/// @file
/// @brief Small secrets the daemon keeps in its data folder (a signing key,
/// an initial password): one line of text, mode 0600, written beside the
/// target and renamed so a crash never leaves half a secret.

#include <filesystem>
#include <string>
#include <string_view>

#include "webpushd/core/bytes.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::crypto {

/// @brief The first line of `path`. Error `secret_unreadable`.
result<std::string> read_secret_file(const std::filesystem::path& path);

/// @brief Writes `content` to `path` with mode 0600, durably and
/// atomically: a private temporary file beside it (O_EXCL, whatever the
/// umask), synced, renamed, and the folder synced. Error `secret_unwritable`.
result<void> write_private_file(const std::filesystem::path& path, std::string_view content);

/// @brief write_private_file with `text` and a line break.
result<void> write_secret_file(const std::filesystem::path& path, const std::string& text);

/// @brief The key in `path` (base64url text of at least `size` bytes), or a
/// new random one of `size` bytes written there; `created` tells which.
/// Errors `secret_unreadable`, `invalid_key`, `secret_unwritable`.
result<bytes> load_or_create_key(const std::filesystem::path& path, std::size_t size, bool& created);

}  // namespace webpushd::crypto
