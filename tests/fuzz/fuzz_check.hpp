#pragma once
// Invariants in fuzz targets: a broken one prints what broke and aborts, so
// libFuzzer keeps the input as a crash and the corpus replay test fails.

#include <cstdio>
#include <cstdlib>
#include <string>

namespace webpushd::fuzz {

/// @brief A broken invariant: says which, and aborts, so that libFuzzer
/// keeps the input as a crash (and the replay test fails).
[[noreturn]] inline void fail_invariant(const char* what, const std::string& detail, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: invariant broken: %s\n  %s\n", file, line, what, detail.c_str());
  std::abort();
}
#define FUZZ_CHECK(cond, detail) \
  ((cond) ? static_cast<void>(0) : ::webpushd::fuzz::fail_invariant(#cond, (detail), __FILE__, __LINE__))

}  // namespace webpushd::fuzz
