#include "notify/notifier.hpp"

#include <curl/curl.h>

#include <nlohmann/json.hpp>

#include "core/clock.hpp"
#include "core/json_text.hpp"
#include "core/log.hpp"
#include "core/retry.hpp"
#include "core/time_format.hpp"

namespace dbops::notify {
namespace {

int severity_rank(std::string_view s) {
  if (s == "error") return 2;
  if (s == "warn") return 1;
  return 0;
}

void curl_global() {
  static const bool done = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  (void)done;
}

// One HTTP POST of a JSON body; 2xx is success, 429 and 5xx are retryable.
Status post_json(const Secret& url, const std::string& body, std::chrono::milliseconds timeout) {
  curl_global();
  CURL* curl = curl_easy_init();
  if (!curl) return fail(ErrorCode::kInternal, "cannot initialise libcurl");
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  std::string response;
  char errbuf[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_URL, url.reveal().c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "dbops");
  curl_easy_setopt(
      curl, CURLOPT_WRITEFUNCTION, +[](char* p, size_t s, size_t n, void* ud) -> size_t {
        auto* out = static_cast<std::string*>(ud);
        if (out->size() < 4096) out->append(p, std::min<size_t>(s * n, 4096 - out->size()));
        return s * n;
      });
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    // The URL is a secret; libcurl's messages may quote the host, never the path.
    return fail(rc == CURLE_OPERATION_TIMEDOUT ? ErrorCode::kTimeout : ErrorCode::kUnavailable,
                redact::scrub(std::string("delivery failed: ") +
                              (errbuf[0] ? errbuf : curl_easy_strerror(rc))));
  }
  if (status >= 200 && status < 300) return ok();
  return fail(
      status == 429 || status >= 500 ? ErrorCode::kUnavailable : ErrorCode::kInvalidArgument,
      "receiver answered HTTP " + std::to_string(status) + ": " +
          redact::scrub(response.substr(0, 200)));
}

class WebhookNotifier final : public Notifier {
 public:
  WebhookNotifier(const config::NotifyChannel& channel, bool slack)
      : name_(channel.name),
        min_severity_(channel.min_severity),
        url_(channel.url),
        timeout_(channel.timeout),
        slack_(slack) {}

  const std::string& name() const override { return name_; }
  const std::string& min_severity() const override { return min_severity_; }

  Status deliver(const Event& e) override {
    const std::string body = slack_ ? slack_body(e) : webhook_body(e);
    RetryPolicy policy{.max_attempts = 4,
                       .initial_backoff = std::chrono::milliseconds{200},
                       .max_backoff = std::chrono::milliseconds{5000},
                       .deadline = std::chrono::milliseconds{60'000}};
    auto st =
        retry(policy, real_clock(), [&](int) -> Status { return post_json(url_, body, timeout_); });
    if (!st) return std::unexpected(std::move(st).error().with_context("notify " + name_));
    return ok();
  }

 private:
  static std::string webhook_body(const Event& e) {
    nlohmann::ordered_json j;
    j["source"] = "dbops";
    j["at"] = format_utc(e.at);
    j["type"] = e.type;
    j["severity"] = e.severity;
    j["target"] = e.target;
    j["run_id"] = e.run_id;
    j["message"] = e.message;
    auto data = nlohmann::json::parse(e.data_json, nullptr, false);
    j["data"] = data.is_discarded() ? nlohmann::json::object() : data;
    return redact::scrub(json_text(j));
  }

  static std::string slack_body(const Event& e) {
    const char* icon = e.severity == "error"  ? ":red_circle:"
                       : e.severity == "warn" ? ":warning:"
                                              : ":information_source:";
    std::string text = std::string(icon) + " *dbops " + e.type + "*";
    if (!e.target.empty()) text += " on `" + e.target + "`";
    text += "\n" + e.message;
    if (!e.run_id.empty()) text += "\nrun `" + e.run_id + "` at " + format_utc(e.at);
    nlohmann::json j;
    j["text"] = text;
    return redact::scrub(json_text(j));
  }

  std::string name_;
  std::string min_severity_;
  Secret url_;
  std::chrono::milliseconds timeout_;
  bool slack_;
};

}  // namespace

bool severity_reaches(std::string_view severity, std::string_view min_severity) {
  return severity_rank(severity) >= severity_rank(min_severity);
}

Dispatcher::Dispatcher(std::vector<std::unique_ptr<Notifier>> channels)
    : channels_(std::move(channels)) {}

Status Dispatcher::dispatch(const Event& event) {
  std::string failures;
  ErrorCode code = ErrorCode::kUnavailable;
  for (const auto& channel : channels_) {
    if (!severity_reaches(event.severity, channel->min_severity())) continue;
    auto st = channel->deliver(event);
    if (st) {
      log::debug("event delivered", {{"channel", channel->name()}, {"type", event.type}});
      continue;
    }
    code = st.error().code;
    if (!failures.empty()) failures += "; ";
    failures += st.error().to_string();
  }
  if (!failures.empty()) return fail(code, failures);
  return ok();
}

Result<std::vector<std::unique_ptr<Notifier>>> make_notifiers(const config::Config& config) {
  std::vector<std::unique_ptr<Notifier>> out;
  for (const auto& channel : config.notify) {
    if (channel.type == "webhook" || channel.type == "slack") {
      out.push_back(std::make_unique<WebhookNotifier>(channel, channel.type == "slack"));
    } else {
      return fail(ErrorCode::kConfig, "notify " + channel.name + ": unknown type " + channel.type);
    }
  }
  return out;
}

}  // namespace dbops::notify
