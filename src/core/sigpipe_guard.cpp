#include "core/sigpipe_guard.hpp"

#include <pthread.h>

#include <cerrno>
#include <ctime>

namespace dbops {
namespace {

bool sigpipe_pending() {
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  return sigismember(&pending, SIGPIPE) == 1;
}

}  // namespace

SigpipeGuard::SigpipeGuard() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set_, &old_);
  was_pending_ = sigpipe_pending();
}

SigpipeGuard::~SigpipeGuard() {
  consume();
  pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

void SigpipeGuard::consume() {
  if (was_pending_ || !sigpipe_pending()) return;
  struct timespec zero {};
  while (sigtimedwait(&set_, nullptr, &zero) < 0 && errno == EINTR) {
  }
}

}  // namespace dbops
