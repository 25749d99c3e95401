#pragma once
// Runs the project's push-sink as a child process on loopback for the sender
// tests, and reads its /stats with a minimal HTTP/1.1 GET.

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

extern char** environ;

namespace webpushd::test {

/// A push-sink child process; killed and reaped on destruction.
class sink_process {
 public:
  explicit sink_process(std::vector<std::string> extra_args = {}) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    std::vector<std::string> args{PUSH_SINK_PATH, "--port", "0"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    const int rc = posix_spawn(&pid_, PUSH_SINK_PATH, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (rc != 0) {
      ::close(fds[0]);
      throw std::runtime_error("cannot start push-sink at " PUSH_SINK_PATH);
    }
    // The first stdout line is {"port":N,...}; wait at most 10 s for it.
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fds[0], POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[256];
      const auto n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    const auto info = nlohmann::json::parse(line.substr(0, line.find('\n')), nullptr, false);
    if (info.is_discarded() || !info.contains("port")) {
      stop();
      throw std::runtime_error("push-sink did not report its port");
    }
    port_ = info["port"].get<std::uint16_t>();
    // A TLS sink serves /stats on a second, plain listener.
    stats_port_ = info.contains("plain_port") ? info["plain_port"].get<std::uint16_t>() : port_;
  }
  ~sink_process() { stop(); }
  sink_process(const sink_process&) = delete;
  sink_process& operator=(const sink_process&) = delete;

  std::uint16_t port() const { return port_; }
  /// "http://127.0.0.1:<port><path>"
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

  /// GET /stats, parsed.
  nlohmann::json stats() const { return nlohmann::json::parse(request("GET", "/stats")); }
  /// DELETE /stats: forget counts and records.
  void clear_stats() const { (void)request("DELETE", "/stats"); }
  /// The records for one path (empty array if none).
  nlohmann::json records(const std::string& path) const {
    auto s = stats();
    if (!s["paths"].contains(path)) return nlohmann::json::array();
    return s["paths"][path]["requests"];
  }
  std::uint64_t count(const std::string& path) const {
    auto s = stats();
    return s["paths"].contains(path) ? s["paths"][path]["count"].get<std::uint64_t>() : 0;
  }

 private:
  std::string request(const char* method, const char* path) const {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(stats_port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      throw std::runtime_error("cannot connect to push-sink");
    }
    const std::string req = std::string(method) + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    std::string resp;
    char buf[4096];
    for (;;) {
      const auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      resp.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    const auto split = resp.find("\r\n\r\n");
    return split == std::string::npos ? std::string{} : resp.substr(split + 4);
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 50; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = 0;
        return;
      }
      ::usleep(20'000);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }

  pid_t pid_ = 0;
  std::uint16_t port_ = 0;
  std::uint16_t stats_port_ = 0;
};

}  // namespace webpushd::test
