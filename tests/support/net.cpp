#include "support/net.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace dbops::testing {
namespace {

int bound_socket(sockaddr_in& addr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  addr = sockaddr_in{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return fd;
}

}  // namespace

int closed_port() {
  sockaddr_in addr;
  const int fd = bound_socket(addr);
  ::close(fd);
  return ntohs(addr.sin_port);
}

SilentListener::SilentListener(bool close_at_once) : close_(close_at_once) {
  sockaddr_in addr;
  fd_ = bound_socket(addr);
  EXPECT_EQ(::listen(fd_, 64), 0);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) != 1) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      if (close_) {
        ::close(c);
      } else {
        accepted_.push_back(c);
      }
    }
  });
}

SilentListener::~SilentListener() {
  stop_ = true;
  thread_.join();
  for (const int c : accepted_) ::close(c);
  ::close(fd_);
}

}  // namespace dbops::testing
