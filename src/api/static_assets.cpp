#include "webpushd/api/static_assets.hpp"

#include <memory>

#include "text.hpp"
#include "webpushd/api/router.hpp"
#include "webpushd/core/bytes.hpp"
#include "webpushd/crypto/primitives.hpp"

namespace webpushd::api {

namespace {

// If-None-Match uses the weak comparison (RFC 9110 §13.1.2): W/ is ignored.
bool etag_listed(std::string_view header, std::string_view etag) {
  std::size_t start = 0;
  while (start <= header.size()) {
    auto end = header.find(',', start);
    if (end == std::string_view::npos) end = header.size();
    auto item = trim(header.substr(start, end - start));
    if (item == "*") return true;
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == etag) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

void static_assets::add(std::string url_path, std::string_view body, std::string content_type,
                        std::string cache_control) {
  const auto digest = crypto::sha256(as_bytes(body));
  asset a{std::string(body), std::move(content_type), std::move(cache_control),
          "\"" + hex_encode(byte_view(digest).first(16)) + "\""};
  assets_.insert_or_assign(std::move(url_path), std::move(a));
}

const static_assets::asset* static_assets::find(std::string_view url_path) const {
  const auto it = assets_.find(url_path);
  return it == assets_.end() ? nullptr : &it->second;
}

response static_assets::serve(const request& req) const {
  const asset* a = find(req.path);
  if (a == nullptr) return error_response("not_found", "no such file");
  response res;
  res.set_header("ETag", a->etag).set_header("Cache-Control", a->cache_control);
  if (const auto inm = req.header("If-None-Match"); !inm.empty() && etag_listed(inm, a->etag)) {
    res.status = 304;
    res.content_type.clear();
    return res;
  }
  res.content_type = a->content_type;
  res.body = a->body;
  return res;
}

void static_assets::install(router& r, access who) const {
  auto files = std::make_shared<const static_assets>(*this);
  for (const auto& [path, a] : assets_) {
    r.add("GET", path, who, [files](request&& req, respond_fn respond) { respond(files->serve(req)); });
  }
}

void static_assets::install(router& r) const { install(r, access::browser); }

std::string content_type_for(std::string_view path) {
  struct mapping {
    std::string_view ext;
    std::string_view type;
  };
  static constexpr mapping types[] = {
      {".js", "text/javascript; charset=utf-8"}, {".mjs", "text/javascript; charset=utf-8"},
      {".html", "text/html; charset=utf-8"},     {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},             {".map", "application/json"},
      {".webmanifest", "application/manifest+json"},
      {".svg", "image/svg+xml"},                 {".png", "image/png"},
      {".ico", "image/x-icon"},                  {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
  };
  for (const auto& m : types) {
    if (path.ends_with(m.ext)) return std::string(m.type);
  }
  return "application/octet-stream";
}

static_assets web_assets(std::span<const embedded_file> files) { return web_assets("", "", files); }

const embedded_file* find_embedded(std::string_view path, std::span<const embedded_file> files) {
  for (const auto& f : files) {
    if (f.path == path) return &f;
  }
  return nullptr;
}

static_assets web_assets(std::string_view folder, std::string_view except_suffix, std::span<const embedded_file> files) {
  static_assets out;
  for (const auto& f : files) {
    if (!f.path.starts_with(folder) || (!except_suffix.empty() && f.path.ends_with(except_suffix))) continue;
    // A service worker and HTML pages must be revalidated each time, or a
    // browser keeps running an old worker; the rest may be cached a while
    // (the ETag makes the revalidation after that cheap).
    const bool revalidate = f.path.ends_with("sw.js") || f.path.ends_with(".html");
    out.add("/" + std::string(f.path), f.content, content_type_for(f.path),
            revalidate ? "no-cache" : "public, max-age=3600");
  }
  return out;
}

}  // namespace webpushd::api
