// run_process_fed(): a push-based producer feeding a child's stdin.
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "core/subprocess.hpp"

namespace dbops {
namespace {

// A bounded byte queue between the producer thread and the child's stdin.
class Channel {
 public:
  static constexpr std::size_t kCapacity = std::size_t{4} << 20;

  Status push(std::string_view bytes) {
    std::unique_lock lock(mu_);
    while (!bytes.empty()) {
      can_push_.wait(lock, [&] { return closed_ || size_ < kCapacity; });
      if (closed_) {
        refused_ = true;
        return fail(ErrorCode::kIo, "the receiving program stopped reading");
      }
      const std::size_t n = std::min(bytes.size(), kCapacity - size_);
      chunks_.emplace_back(bytes.substr(0, n));
      size_ += n;
      bytes.remove_prefix(n);
      can_pull_.notify_one();
    }
    return ok();
  }

  void finish(Status status) {
    std::lock_guard lock(mu_);
    done_ = true;
    producer_status_ = std::move(status);
    can_pull_.notify_all();
  }

  // Stops the producer (the child is gone).
  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    can_push_.notify_all();
  }

  Result<std::size_t> pull(char* buf, std::size_t cap) {
    std::unique_lock lock(mu_);
    can_pull_.wait(lock, [&] { return done_ || !chunks_.empty(); });
    if (chunks_.empty()) {
      if (!producer_status_) return std::unexpected(producer_status_.error());
      return std::size_t{0};
    }
    std::size_t n = 0;
    while (n < cap && !chunks_.empty()) {
      std::string& front = chunks_.front();
      const std::size_t take = std::min(cap - n, front.size() - offset_);
      std::memcpy(buf + n, front.data() + offset_, take);
      n += take;
      offset_ += take;
      if (offset_ == front.size()) {
        chunks_.pop_front();
        offset_ = 0;
      }
    }
    size_ -= n;
    can_push_.notify_one();
    return n;
  }

  Status producer_status() {
    std::lock_guard lock(mu_);
    return producer_status_;
  }
  // The producer failed only because the child had gone.
  bool refused() {
    std::lock_guard lock(mu_);
    return refused_;
  }

 private:
  std::mutex mu_;
  std::condition_variable can_push_, can_pull_;
  std::deque<std::string> chunks_;
  std::size_t offset_ = 0;
  std::size_t size_ = 0;
  bool done_ = false;
  bool closed_ = false;
  bool refused_ = false;
  Status producer_status_ = ok();
};

}  // namespace

Result<ProcessResult> run_process_fed(ProcessOptions options,
                                      const std::function<Status(const PushWrite&)>& produce) {
  Channel channel;
  options.stdin_data.reset();
  options.stdin_source = [&](char* buf, std::size_t cap) { return channel.pull(buf, cap); };
  std::thread producer([&] {
    Status st = produce([&](std::string_view bytes) { return channel.push(bytes); });
    channel.finish(std::move(st));
  });
  auto result = run_process(options);
  channel.close();
  producer.join();
  if (!result) {
    // A failing producer is the cause; the child was stopped because of it.
    if (auto st = channel.producer_status(); !st) return std::unexpected(st.error());
    return result;
  }
  if (result->succeeded() && !channel.refused()) {
    if (auto st = channel.producer_status(); !st) return std::unexpected(st.error());
  }
  return result;
}

}  // namespace dbops
