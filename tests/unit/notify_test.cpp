// Notifiers against a real local HTTP receiver.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "notify/notifier.hpp"

namespace dbops::notify {
namespace {

// An HTTP server on a loopback port chosen by the kernel; each request to
// /hook/... gets the next scripted status.
class Receiver {
 public:
  explicit Receiver(std::vector<int> statuses) : statuses_(std::move(statuses)) {
    server_.Post(R"(/hook/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      bodies_.push_back(req.body);
      content_types_.push_back(req.get_header_value("Content-Type"));
      const int status = calls_ < statuses_.size() ? statuses_[calls_] : 200;
      ++calls_;
      res.status = status;
      res.set_content(status == 200 ? "ok" : "nope", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/hook/T0/s3cr3t-token";
  }
  std::vector<std::string> bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }
  std::size_t calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  std::string content_type(std::size_t i) {
    std::lock_guard lock(mu_);
    return content_types_.at(i);
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<int> statuses_;
  std::size_t calls_ = 0;
  std::vector<std::string> bodies_;
  std::vector<std::string> content_types_;
};

Event failed_event() {
  return Event{.at = std::chrono::system_clock::time_point{std::chrono::seconds{1'790'000'000}},
               .run_id = "01RUN",
               .target = "pg-main",
               .type = "job.failed",
               .severity = "error",
               .message = "backup on pg-main: pg_dump exited 1",
               .data_json = R"({"step":"dump"})"};
}

std::unique_ptr<Notifier> make(const std::string& type, const std::string& url,
                               const std::string& min = "error") {
  config::Config c;
  c.notify.push_back(config::NotifyChannel{.name = "n1",
                                           .type = type,
                                           .url = Secret(url),
                                           .min_severity = min,
                                           .timeout = std::chrono::seconds(5)});
  auto made = make_notifiers(c);
  EXPECT_TRUE(made);
  return std::move(made->front());
}

TEST(Notify, WebhookPostsTheEventAsJson) {
  Receiver rx({});
  auto n = make("webhook", rx.url());
  ASSERT_TRUE(n->deliver(failed_event()));
  ASSERT_EQ(rx.bodies().size(), 1u);
  const auto j = nlohmann::json::parse(rx.bodies()[0]);
  EXPECT_EQ(j["type"], "job.failed");
  EXPECT_EQ(j["severity"], "error");
  EXPECT_EQ(j["target"], "pg-main");
  EXPECT_EQ(j["run_id"], "01RUN");
  EXPECT_EQ(j["data"]["step"], "dump");
  EXPECT_EQ(j["at"], "2026-09-21T14:13:20Z");
  EXPECT_EQ(rx.content_type(0), "application/json");
}

TEST(Notify, SlackUsesTheIncomingWebhookFormat) {
  Receiver rx({});
  auto n = make("slack", rx.url());
  ASSERT_TRUE(n->deliver(failed_event()));
  const auto j = nlohmann::json::parse(rx.bodies().at(0));
  ASSERT_TRUE(j.contains("text"));
  const std::string text = j["text"];
  EXPECT_NE(text.find("job.failed"), std::string::npos) << text;
  EXPECT_NE(text.find("`pg-main`"), std::string::npos) << text;
  EXPECT_NE(text.find("pg_dump exited 1"), std::string::npos) << text;
}

TEST(Notify, RetriesServerErrors) {
  Receiver rx({500, 503});
  auto n = make("webhook", rx.url());
  ASSERT_TRUE(n->deliver(failed_event()));
  EXPECT_EQ(rx.calls(), 3u);
}

TEST(Notify, ClientErrorIsNotRetriedAndNamesTheStatus) {
  Receiver rx({404});
  auto n = make("webhook", rx.url());
  auto st = n->deliver(failed_event());
  ASSERT_FALSE(st);
  EXPECT_EQ(rx.calls(), 1u);
  EXPECT_NE(st.error().to_string().find("HTTP 404"), std::string::npos) << st.error().to_string();
  EXPECT_EQ(st.error().to_string().find("s3cr3t-token"), std::string::npos);
}

TEST(Notify, UnreachableReceiverIsAClearErrorWithoutTheUrl) {
  // A port that was just bound and released: nothing listens there.
  int port = 0;
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port = ntohs(addr.sin_port);
    ::close(fd);
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/hook/unreach-token-9";
  auto n = make("webhook", url);
  auto st = n->deliver(failed_event());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(st.error().to_string().find("notify n1"), std::string::npos);
  EXPECT_EQ(st.error().to_string().find("unreach-token-9"), std::string::npos)
      << st.error().to_string();
}

TEST(Notify, DispatcherFiltersBySeverity) {
  Receiver rx({});
  std::vector<std::unique_ptr<Notifier>> channels;
  channels.push_back(make("webhook", rx.url(), "error"));
  Dispatcher d(std::move(channels));
  Event info = failed_event();
  info.severity = "warn";
  ASSERT_TRUE(d.dispatch(info));
  EXPECT_EQ(rx.calls(), 0u);
  ASSERT_TRUE(d.dispatch(failed_event()));
  EXPECT_EQ(rx.calls(), 1u);
  EXPECT_TRUE(severity_reaches("error", "info"));
  EXPECT_FALSE(severity_reaches("info", "warn"));
}

}  // namespace
}  // namespace dbops::notify
