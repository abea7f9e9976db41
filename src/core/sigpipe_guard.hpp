// Keeps SIGPIPE from killing dbops while code it does not control writes to a
// socket or pipe that the other side may have closed (hiredis and OpenSSL
// write with write(2), not send(MSG_NOSIGNAL); so do our pipes to children).
#pragma once

#include <signal.h>

namespace dbops {

// Blocks SIGPIPE in the calling thread for its lifetime. A SIGPIPE raised
// meanwhile is discarded when the guard ends; one that was already pending
// when it began is left alone. dbops's own signal dispositions never change.
class SigpipeGuard {
 public:
  SigpipeGuard();
  ~SigpipeGuard();
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

  // Discards a SIGPIPE our writes raised, now rather than at the end.
  void consume();

 private:
  sigset_t set_;
  sigset_t old_;
  bool was_pending_ = false;
};

}  // namespace dbops
