// What push-service answers mean (RFC 8030 §5, §6.2, §8.4 and the services' docs).
#include "webpushd/delivery/classify.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include <curl/curl.h>

#include "text.hpp"

namespace webpushd::delivery {

const char* to_string(outcome o) noexcept {
  switch (o) {
    case outcome::accepted: return "accepted";
    case outcome::gone: return "gone";
    case outcome::payload_too_large: return "payload_too_large";
    case outcome::rejected: return "rejected";
    case outcome::rate_limited: return "rate_limited";
    case outcome::temporary_failure: return "temporary_failure";
  }
  return "temporary_failure";
}

namespace {

using std::chrono::seconds;

// Ten years: more than any service asks for, small enough that adding it to
// a time_point never overflows.
constexpr std::int64_t max_retry_after_seconds = 10LL * 366 * 24 * 3600;

using text::is_digit;
using text::trim;

// A small cursor over the date text; every step either consumes exactly what
// the grammar asks for or fails.
class cursor {
 public:
  explicit cursor(std::string_view s) : s_(s) {}
  bool literal(std::string_view lit) {
    if (s_.substr(0, lit.size()) != lit) return false;
    s_.remove_prefix(lit.size());
    return true;
  }
  bool digits(std::size_t n, int& out) {
    if (s_.size() < n || !std::all_of(s_.begin(), s_.begin() + static_cast<std::ptrdiff_t>(n), is_digit)) return false;
    out = 0;
    for (std::size_t i = 0; i < n; ++i) out = out * 10 + (s_[i] - '0');
    s_.remove_prefix(n);
    return true;
  }
  // Index of the first of `names` the text starts with (case-sensitive, as
  // the grammar's names are), consumed.
  template <std::size_t N>
  bool one_of(const std::array<std::string_view, N>& names, int& index) {
    for (std::size_t i = 0; i < N; ++i) {
      if (literal(names[i])) {
        index = static_cast<int>(i);
        return true;
      }
    }
    return false;
  }
  bool done() const noexcept { return s_.empty(); }

 private:
  std::string_view s_;
};

constexpr std::array<std::string_view, 7> short_days{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
// Longest first is unnecessary here: no long name is a prefix of another.
constexpr std::array<std::string_view, 7> long_days{"Monday", "Tuesday", "Wednesday", "Thursday",
                                                    "Friday", "Saturday", "Sunday"};
constexpr std::array<std::string_view, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

struct date_parts {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
};

bool time_of_day(cursor& c, date_parts& d) {
  return c.digits(2, d.hour) && c.literal(":") && c.digits(2, d.minute) && c.literal(":") && c.digits(2, d.second);
}

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
bool parse_imf(std::string_view s, date_parts& d) {
  cursor c(s);
  int ignored = 0;
  return c.one_of(short_days, ignored) && c.literal(", ") && c.digits(2, d.day) && c.literal(" ") &&
         c.one_of(months, d.month) && c.literal(" ") && c.digits(4, d.year) && c.literal(" ") && time_of_day(c, d) &&
         c.literal(" GMT") && c.done();
}

// rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT"
bool parse_rfc850(std::string_view s, date_parts& d, int current_year) {
  cursor c(s);
  int ignored = 0;
  int yy = 0;
  if (!(c.one_of(long_days, ignored) && c.literal(", ") && c.digits(2, d.day) && c.literal("-") &&
        c.one_of(months, d.month) && c.literal("-") && c.digits(2, yy) && c.literal(" ") && time_of_day(c, d) &&
        c.literal(" GMT") && c.done())) {
    return false;
  }
  // RFC 9110 §5.6.7: a two-digit year that would lie more than 50 years in
  // the future means the most recent past year with those digits.
  d.year = current_year - current_year % 100 + yy;
  if (d.year > current_year + 50) d.year -= 100;
  return true;
}

// asctime-date: "Sun Nov  6 08:49:37 1994" (day padded with a space)
bool parse_asctime(std::string_view s, date_parts& d) {
  cursor c(s);
  int ignored = 0;
  if (!(c.one_of(short_days, ignored) && c.literal(" ") && c.one_of(months, d.month) && c.literal(" "))) return false;
  if (c.literal(" ")) {
    if (!c.digits(1, d.day)) return false;
  } else if (!c.digits(2, d.day)) {
    return false;
  }
  return c.literal(" ") && time_of_day(c, d) && c.literal(" ") && c.digits(4, d.year) && c.done();
}

std::optional<time_point> to_time_point(const date_parts& d) {
  using namespace std::chrono;
  const year_month_day ymd{year{d.year}, month{static_cast<unsigned>(d.month + 1)}, day{static_cast<unsigned>(d.day)}};
  // Second 60 is a leap second in the grammar; it is treated as the next second.
  if (!ymd.ok() || d.hour > 23 || d.minute > 59 || d.second > 60) return std::nullopt;
  return time_point{sys_days{ymd}.time_since_epoch() + hours{d.hour} + minutes{d.minute} + seconds{d.second}};
}

// Printable ASCII only, short: a body excerpt goes into logs and the CLI.
std::string excerpt(std::string_view body, std::size_t limit = 200) {
  std::string out;
  for (char ch : body) {
    if (out.size() >= limit) {
      out += "…";
      break;
    }
    const auto u = static_cast<unsigned char>(ch);
    out.push_back(u >= 0x20 && u < 0x7f ? ch : ' ');
  }
  const auto last = out.find_last_not_of(' ');
  out.erase(last == std::string::npos ? 0 : last + 1);
  return out;
}

std::string with_body(std::string reason, std::string_view body) {
  auto text = excerpt(body);
  if (!text.empty()) reason += ": " + text;
  return reason;
}

classification transport_failure(const http_response& r) {
  if (r.blocked) {
    // Not retried: an endpoint that resolves to an internal address is an
    // attack or a misconfiguration, not an outage.
    return {outcome::rejected, std::nullopt, "endpoint not allowed (internal address or refused by endpoint rules)"};
  }
  std::string what;
  switch (r.transport_error) {
    case CURLE_OPERATION_TIMEDOUT: what = "timed out"; break;
    case CURLE_COULDNT_RESOLVE_HOST: what = "could not resolve the push service's host"; break;
    case CURLE_COULDNT_CONNECT: what = "could not connect to the push service"; break;
    case CURLE_SSL_CONNECT_ERROR: what = "TLS handshake failed"; break;
    case CURLE_PEER_FAILED_VERIFICATION: what = "TLS certificate verification failed"; break;
    case CURLE_GOT_NOTHING: what = "connection closed without a response"; break;
    case CURLE_SEND_ERROR: what = "connection failed while sending"; break;
    case CURLE_RECV_ERROR: what = "connection failed while receiving"; break;
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: what = "HTTP/2 error"; break;
    case CURLE_ABORTED_BY_CALLBACK: what = "aborted (sender shut down)"; break;
    default: what = "transport error " + std::to_string(r.transport_error); break;
  }
  return {outcome::temporary_failure, std::nullopt, what};
}

}  // namespace

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, time_point now) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), is_digit)) {
    // delta-seconds = 1*DIGIT; absurdly long values are clamped, not refused.
    std::int64_t n = 0;
    const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec == std::errc::result_out_of_range || n > max_retry_after_seconds) return seconds{max_retry_after_seconds};
    if (ec != std::errc{} || ptr != value.data() + value.size()) return std::nullopt;
    return seconds{n};
  }
  const auto current_year =
      static_cast<int>(std::chrono::year_month_day{std::chrono::floor<std::chrono::days>(now)}.year());
  // Each parser gets fresh parts, so a partial match of one leaves nothing behind.
  date_parts imf, rfc850, asc;
  std::optional<time_point> when;
  if (parse_imf(value, imf)) {
    when = to_time_point(imf);
  } else if (parse_rfc850(value, rfc850, current_year)) {
    when = to_time_point(rfc850);
  } else if (parse_asctime(value, asc)) {
    when = to_time_point(asc);
  }
  if (!when) return std::nullopt;
  // Round up: waiting slightly too long is harmless, too short earns another 429.
  const auto delta = std::chrono::ceil<seconds>(*when - now);
  if (delta.count() <= 0) return seconds{0};
  return std::min(delta, seconds{max_retry_after_seconds});
}

const char* failure_class(const http_response& r) noexcept {
  if (r.status == 0) return r.transport_error == CURLE_OPERATION_TIMEDOUT ? "timeout" : "network";
  if (r.status == 429) return "rate_limited";
  if (r.status >= 500 || r.status == 408 || r.status == 425) return "server_error";
  return "";
}

classification classify(const http_response& r, time_point now) {
  if (r.status == 0) return transport_failure(r);
  const long s = r.status;
  const auto status = std::to_string(s);
  if (s >= 200 && s < 300) {
    // RFC 8030 says 201 Created; autopush documents any 20x as accepted.
    return {outcome::accepted, std::nullopt, "accepted (" + status + ")"};
  }
  if (s == 404 || s == 410) {
    return {outcome::gone, std::nullopt, "subscription gone (" + status + ")"};
  }
  if (s == 413) {
    return {outcome::payload_too_large, std::nullopt,
            "payload too large (413): push services accept at most 4096 bytes of encrypted body"};
  }
  if (s == 429) {
    auto after = parse_retry_after(r.retry_after, now);
    return {outcome::rate_limited, after, after ? "rate limited (429), retry after " + std::to_string(after->count()) + " s"
                                               : std::string{"rate limited (429)"}};
  }
  if (s >= 500 || s == 408 || s == 425) {
    // 408 and 425 invite a retry of the same request; 5xx are the service's trouble.
    auto after = parse_retry_after(r.retry_after, now);
    return {outcome::temporary_failure, after, with_body("push service error (" + status + ")", r.body)};
  }
  if (s >= 300 && s < 400) {
    // Redirects are never followed: a push endpoint that moves is not one we trust.
    return {outcome::rejected, std::nullopt, "redirect (" + status + ") not followed"};
  }
  // Other 4xx, typically 400/401/403: a bad or mismatched VAPID key, an
  // expired JWT, a wrong `aud`, missing TTL or encoding headers. The body
  // usually says which, so an excerpt is kept.
  return {outcome::rejected, std::nullopt, with_body("rejected (" + status + ")", r.body)};
}

}  // namespace webpushd::delivery
