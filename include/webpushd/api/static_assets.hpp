#pragma once
/// @file
/// @brief Files served from memory: the browser SDK, its service worker and
/// the dashboard's page. They are embedded into the binary at build time
/// from web/ (cmake/EmbedFiles.cmake), so a deployed daemon never serves a
/// copy that does not match its own API.

#include <map>
#include <span>
#include <string>
#include <string_view>

#include "webpushd/api/http.hpp"

namespace webpushd::api {

class router;
enum class access;

/// @brief One file embedded by webpushd_embed_files().
struct embedded_file {
  std::string_view path;     ///< relative to the embedded folder, '/'-separated: "sdk/sw.js"
  std::string_view content;  ///< the bytes
};

/// @brief The files of web/, generated at build time.
std::span<const embedded_file> embedded_web_files();

/// @brief URL path → file, served with a content type, a strong ETag
/// (`If-None-Match` → 304) and a Cache-Control per file.
class static_assets {
 public:
  /// @brief One served file.
  struct asset {
    std::string body;
    std::string content_type;
    std::string cache_control;
    std::string etag;  ///< quoted, from SHA-256 of the body
  };

  /// @brief Adds or replaces the file at `url_path` ("/sdk/sw.js").
  void add(std::string url_path, std::string_view body, std::string content_type, std::string cache_control);
  /// @brief The file at `url_path`, or nullptr.
  const asset* find(std::string_view url_path) const;
  /// @brief 200 with the file, or 304 if `If-None-Match` names its ETag; 404 if unknown.
  response serve(const request& req) const;
  /// @brief Adds a `GET` route for every file, by default access::browser
  /// (the SDK's files, loaded by shop pages on other origins); the router
  /// keeps a copy of the files.
  void install(router& r, access who) const;
  /// @brief install(r, access::browser).
  void install(router& r) const;
  /// @brief How many files.
  std::size_t size() const { return assets_.size(); }

 private:
  std::map<std::string, asset, std::less<>> assets_;
};

/// @brief Content type by file extension (".js" → "text/javascript; charset=utf-8");
/// "application/octet-stream" if unknown.
std::string content_type_for(std::string_view path);

/// @brief The embedded web/ files under "/<path>": service worker scripts
/// (`sw.js`) and HTML with `no-cache` (always revalidated, as browsers expect
/// for a worker that must update), everything else `public, max-age=3600`.
static_assets web_assets(std::span<const embedded_file> files = embedded_web_files());

/// @brief The same for the files under `folder` ("sdk/") only, excluding
/// those whose name ends with `except_suffix` (e.g. ".html" for pages a
/// handler serves itself).
static_assets web_assets(std::string_view folder, std::string_view except_suffix = {},
                         std::span<const embedded_file> files = embedded_web_files());

/// @brief The embedded file at `path` ("dashboard/index.html"), or nullptr.
const embedded_file* find_embedded(std::string_view path, std::span<const embedded_file> files = embedded_web_files());

}  // namespace webpushd::api
