#include "webpushd/api/failure_limiter.hpp"

#include <arpa/inet.h>

#include <algorithm>

#include "text.hpp"
#include "webpushd/core/bytes.hpp"

namespace webpushd::api {

failure_limiter::failure_limiter(limits l) : limits_(l) {}

std::string failure_limiter::key_of(std::string_view address) {
  // One IPv6 host usually owns a whole /64: count the /64, or changing the
  // last bits of the address would give every guess a fresh budget.
  if (address.find(':') == std::string_view::npos) return std::string(address);
  unsigned char raw[16];
  const std::string text(address);
  if (::inet_pton(AF_INET6, text.c_str(), raw) != 1) return text;
  return "v6:" + hex_encode(byte_view(raw, 8));
}

std::optional<std::chrono::seconds> failure_limiter::blocked_for(std::string_view address, time_point now) const {
  std::lock_guard lock(mutex_);
  const auto it = failures_.find(key_of(address));
  if (it == failures_.end()) return std::nullopt;
  const auto& times = it->second;
  const auto recent = std::count_if(times.begin(), times.end(), [&](time_point t) { return now - t < limits_.window; });
  if (recent < static_cast<std::ptrdiff_t>(limits_.max_failures)) return std::nullopt;
  // Blocked until enough of the recent failures age out of the window.
  const auto oldest_counted = times[times.size() - limits_.max_failures];
  const auto wait = std::chrono::ceil<std::chrono::seconds>(oldest_counted + limits_.window - now);
  return std::max(wait, std::chrono::seconds{1});
}

void failure_limiter::failed(std::string_view address, time_point now) {
  std::lock_guard lock(mutex_);
  auto key = key_of(address);
  auto it = failures_.find(key);
  if (it == failures_.end()) {
    if (failures_.size() >= limits_.max_addresses) {
      // Forget the address whose latest failure is oldest.
      const auto oldest = std::min_element(failures_.begin(), failures_.end(), [](const auto& a, const auto& b) {
        return a.second.back() < b.second.back();
      });
      failures_.erase(oldest);
    }
    it = failures_.emplace(std::move(key), std::deque<time_point>{}).first;
  }
  auto& times = it->second;
  times.push_back(now);
  while (!times.empty() && (times.size() > limits_.max_failures || now - times.front() >= limits_.window)) {
    times.pop_front();
  }
}

void failure_limiter::succeeded(std::string_view address) {
  std::lock_guard lock(mutex_);
  const auto it = failures_.find(key_of(address));
  if (it != failures_.end()) failures_.erase(it);
}

}  // namespace webpushd::api
