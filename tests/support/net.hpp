// Network stand-ins for tests: a port nothing listens on, and a listener that
// accepts connections and never answers (a hung server).
#pragma once

#include <atomic>
#include <thread>
#include <vector>

namespace dbops::testing {

// A TCP port on 127.0.0.1 that nothing listens on (bound, then closed).
int closed_port();

// A listener on 127.0.0.1 that accepts connections and then either holds them
// without a word or closes them at once.
class SilentListener {
 public:
  explicit SilentListener(bool close_at_once = false);
  ~SilentListener();
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  int port() const { return port_; }

 private:
  bool close_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::vector<int> accepted_;
  std::thread thread_;
};

}  // namespace dbops::testing
