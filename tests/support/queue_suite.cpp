// The JobQueue contract, run against every implementation (see
// queue_suite.hpp). Leases and delays are a few hundred milliseconds, with
// waits well past them, so that a slow machine does not make a test flaky.
#include "support/queue_suite.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace dbops::testing {

using namespace std::chrono_literals;
using store::ClaimRequest;
using store::JobSpec;
using store::JobState;
using store::QueuedJob;

int link_queue_suite() {
  return 1;
}

void QueueSuite::SetUp() {
  queue_ = open();
  ASSERT_NE(queue_, nullptr);
}

std::unique_ptr<store::JobQueue> QueueSuite::open(const store::RetryPolicy& retry) {
  auto q = GetParam().make(retry);
  EXPECT_TRUE(q) << q.error().to_string();
  return q ? std::move(*q) : nullptr;
}

store::RetryPolicy QueueSuite::fast_retry() {
  return {.base = 10ms, .max = 40ms, .jitter = 0.25};
}

namespace {

// The value of a Result, or a test failure (and a default value).
template <typename T>
T value(Result<T> r) {
  EXPECT_TRUE(r) << r.error().to_string();
  return r ? std::move(*r) : T{};
}
void value(const Status& s) {
  EXPECT_TRUE(s) << s.error().to_string();
}

JobSpec spec(std::string kind, std::string target = "db1") {
  JobSpec s;
  s.kind = std::move(kind);
  s.target = std::move(target);
  return s;
}

std::vector<QueuedJob> claim(store::JobQueue& q, std::string owner, std::size_t max = 10,
                             std::chrono::milliseconds lease = 30s) {
  auto r = q.claim({.owner = std::move(owner), .max_jobs = max, .lease = lease});
  EXPECT_TRUE(r) << r.error().to_string();
  return r ? *r : std::vector<QueuedJob>{};
}

JobState state_of(store::JobQueue& q, std::int64_t id) {
  auto j = q.get(id);
  EXPECT_TRUE(j && *j);
  return j && *j ? (*j)->state : JobState::kFailed;
}

}  // namespace

TEST_P(QueueSuite, ClaimsInPriorityThenDueOrderAndRecordsTheLease) {
  auto low = value(queue_->enqueue(spec("probe")));
  auto high = spec("backup");
  high.priority = 10;
  auto hi = value(queue_->enqueue(high));
  auto mid = value(queue_->enqueue(spec("verify")));
  EXPECT_TRUE(low.created);
  EXPECT_EQ(state_of(*queue_, low.id), JobState::kAvailable);

  const auto got = claim(*queue_, "agent-a", 2);
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got[0].id, hi.id);
  EXPECT_EQ(got[1].id, low.id);
  for (const auto& j : got) {
    EXPECT_EQ(j.state, JobState::kRunning);
    EXPECT_EQ(j.attempt, 1);
    EXPECT_EQ(j.lease_owner, "agent-a");
    ASSERT_TRUE(j.lease_expires_at.has_value());
    EXPECT_GT(*j.lease_expires_at, std::chrono::system_clock::now() + 20s);
  }
  EXPECT_NE(got[0].lease_token, got[1].lease_token);
  const auto rest = claim(*queue_, "agent-b");
  ASSERT_EQ(rest.size(), 1U);
  EXPECT_EQ(rest[0].id, mid.id);
  EXPECT_TRUE(claim(*queue_, "agent-b").empty());
}

TEST_P(QueueSuite, AnIdempotencyKeyEnqueuesOnce) {
  auto s = spec("backup");
  s.idempotency_key = "schedule:nightly:2026-11-26T03:00";
  const auto first = value(queue_->enqueue(s));
  const auto second = value(queue_->enqueue(s));
  EXPECT_TRUE(first.created);
  EXPECT_FALSE(second.created);
  EXPECT_EQ(first.id, second.id);
  // Also within one batch, and against a job that already finished.
  const auto got = claim(*queue_, "a");
  ASSERT_EQ(got.size(), 1U);
  value(queue_->succeed(got[0].id, got[0].lease_token, "{}"));
  auto other = spec("drill");
  other.idempotency_key = "k2";
  const std::vector<JobSpec> batch = {s, other, other};
  const auto results = value(queue_->enqueue_batch(batch));
  ASSERT_EQ(results.size(), 3U);
  EXPECT_EQ(results[0].id, first.id);
  EXPECT_FALSE(results[0].created);
  EXPECT_TRUE(results[1].created);
  EXPECT_EQ(results[2].id, results[1].id);
  EXPECT_FALSE(results[2].created);
  EXPECT_EQ(value(queue_->list({})).size(), 2U);
}

TEST_P(QueueSuite, ABadSpecIsRefusedAndTheBatchWithIt) {
  auto bad = spec("backup");
  bad.max_attempts = 0;
  auto r = queue_->enqueue(bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  const std::vector<JobSpec> batch = {spec("probe"), bad};
  EXPECT_FALSE(queue_->enqueue_batch(batch));
  EXPECT_TRUE(value(queue_->list({})).empty());
  EXPECT_FALSE(queue_->enqueue(spec("")));
}

TEST_P(QueueSuite, AScheduledJobIsNotDueBeforeItsTime) {
  auto s = spec("drill");
  s.run_at = std::chrono::system_clock::now() + 600ms;
  const auto id = value(queue_->enqueue(s)).id;
  EXPECT_EQ(state_of(*queue_, id), JobState::kScheduled);
  EXPECT_TRUE(claim(*queue_, "a").empty());
  std::this_thread::sleep_for(900ms);
  const auto got = claim(*queue_, "a");
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].id, id);
}

TEST_P(QueueSuite, AnExpiredLeaseReturnsTheJobAndFencesTheOldWorker) {
  const auto id = value(queue_->enqueue(spec("backup"))).id;
  const auto first = claim(*queue_, "agent-a", 1, 300ms);
  ASSERT_EQ(first.size(), 1U);
  EXPECT_TRUE(claim(*queue_, "agent-b", 1, 300ms).empty());
  std::this_thread::sleep_for(700ms);
  const auto second = claim(*queue_, "agent-b", 1, 30s);
  ASSERT_EQ(second.size(), 1U);
  EXPECT_EQ(second[0].id, id);
  EXPECT_EQ(second[0].attempt, 2);
  EXPECT_EQ(second[0].lease_owner, "agent-b");
  EXPECT_NE(second[0].lease_token, first[0].lease_token);
  // agent-a comes back late: every change it tries is refused.
  for (const auto& r : {queue_->heartbeat(id, first[0].lease_token, 30s),
                        queue_->succeed(id, first[0].lease_token, "{\"late\":true}"),
                        queue_->release(id, first[0].lease_token)}) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::kConflict);
    EXPECT_NE(r.error().message.find("lease lost"), std::string::npos) << r.error().message;
  }
  auto late_fail = queue_->fail_attempt(id, first[0].lease_token, "late", true);
  ASSERT_FALSE(late_fail);
  EXPECT_EQ(late_fail.error().code, ErrorCode::kConflict);
  value(queue_->succeed(id, second[0].lease_token, "{\"ok\":true}"));
  const auto done = value(queue_->get(id));
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->state, JobState::kSucceeded);
  EXPECT_EQ(done->result_json, "{\"ok\":true}");
  EXPECT_TRUE(done->finished_at.has_value());
}

TEST_P(QueueSuite, AHeartbeatKeepsTheLease) {
  value(queue_->enqueue(spec("backup")));
  const auto got = claim(*queue_, "a", 1, 400ms);
  ASSERT_EQ(got.size(), 1U);
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(200ms);
    value(queue_->heartbeat(got[0].id, got[0].lease_token, 400ms));
  }
  EXPECT_TRUE(claim(*queue_, "b").empty());
}

TEST_P(QueueSuite, FailuresRetryWithBackoffThenTheJobIsDead) {
  auto q = open({.base = 500ms, .max = 500ms, .jitter = 0.0});
  ASSERT_NE(q, nullptr);
  auto s = spec("backup");
  s.max_attempts = 2;
  const auto id = value(q->enqueue(s)).id;
  auto got = claim(*q, "a");
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(value(q->fail_attempt(id, got[0].lease_token, "server gone", true)),
            JobState::kRetrying);
  const auto retrying = value(q->get(id));
  EXPECT_EQ(retrying->last_error, "server gone");
  EXPECT_GT(retrying->run_at, std::chrono::system_clock::now() + 200ms);
  EXPECT_TRUE(claim(*q, "a").empty());
  std::this_thread::sleep_for(800ms);
  got = claim(*q, "a");
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].attempt, 2);
  EXPECT_EQ(value(q->fail_attempt(id, got[0].lease_token, "still gone", true)), JobState::kDead);
  EXPECT_EQ(state_of(*q, id), JobState::kDead);
  EXPECT_TRUE(value(q->get(id))->finished_at.has_value());
  std::this_thread::sleep_for(700ms);
  EXPECT_TRUE(claim(*q, "a").empty());
}

TEST_P(QueueSuite, ANonRetryableFailureIsFinal) {
  const auto id = value(queue_->enqueue(spec("drill"))).id;
  const auto got = claim(*queue_, "a");
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(value(queue_->fail_attempt(id, got[0].lease_token, "check failed", false)),
            JobState::kFailed);
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(claim(*queue_, "a").empty());
}

TEST_P(QueueSuite, ExclusiveJobsRunOneAtATimePerTarget) {
  auto e1 = spec("backup", "pg-main");
  e1.exclusive = true;
  auto e2 = spec("drill", "pg-main");
  e2.exclusive = true;
  auto other = spec("backup", "maria");
  other.exclusive = true;
  const auto a = value(queue_->enqueue(e1)).id;
  const auto b = value(queue_->enqueue(e2)).id;
  const auto c = value(queue_->enqueue(spec("probe", "pg-main"))).id;
  const auto d = value(queue_->enqueue(other)).id;
  auto got = claim(*queue_, "a", 10);
  std::set<std::int64_t> ids;
  for (const auto& j : got) ids.insert(j.id);
  EXPECT_EQ(ids, (std::set<std::int64_t>{a, c, d}));
  EXPECT_TRUE(claim(*queue_, "b", 10).empty());
  for (const auto& j : got) {
    if (j.id == a) value(queue_->succeed(j.id, j.lease_token, "{}"));
  }
  got = claim(*queue_, "b", 10);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].id, b);
}

TEST_P(QueueSuite, AnExpiredLeaseWithoutAttemptsLeftIsReapedDead) {
  auto s = spec("backup");
  s.max_attempts = 1;
  const auto id = value(queue_->enqueue(s)).id;
  ASSERT_EQ(claim(*queue_, "agent-a", 1, 200ms).size(), 1U);
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(claim(*queue_, "agent-b").empty());
  const auto reaped = value(queue_->reap_expired());
  ASSERT_EQ(reaped.size(), 1U);
  EXPECT_EQ(reaped[0].id, id);
  EXPECT_EQ(reaped[0].state, JobState::kDead);
  EXPECT_NE(reaped[0].last_error.find("agent-a"), std::string::npos) << reaped[0].last_error;
  EXPECT_TRUE(value(queue_->reap_expired()).empty());
}

TEST_P(QueueSuite, CancellingFencesTheRunningWorker) {
  const auto id = value(queue_->enqueue(spec("backup"))).id;
  const auto waiting = value(queue_->enqueue(spec("drill"))).id;
  const auto got = claim(*queue_, "a", 1);
  ASSERT_EQ(got.size(), 1U);
  ASSERT_EQ(got[0].id, id);
  EXPECT_EQ(value(queue_->cancel(id)), JobState::kRunning);
  auto hb = queue_->heartbeat(id, got[0].lease_token, 30s);
  ASSERT_FALSE(hb);
  EXPECT_EQ(hb.error().code, ErrorCode::kConflict);
  EXPECT_EQ(state_of(*queue_, id), JobState::kCancelled);
  EXPECT_EQ(value(queue_->cancel(id)), JobState::kCancelled);
  EXPECT_EQ(value(queue_->cancel(waiting)), JobState::kAvailable);
  EXPECT_TRUE(claim(*queue_, "a").empty());
  auto unknown = queue_->cancel(987654321);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
}

TEST_P(QueueSuite, ReleaseGivesTheJobBackWithoutCountingTheAttempt) {
  const auto id = value(queue_->enqueue(spec("backup"))).id;
  auto got = claim(*queue_, "a");
  ASSERT_EQ(got.size(), 1U);
  value(queue_->release(id, got[0].lease_token));
  EXPECT_EQ(state_of(*queue_, id), JobState::kAvailable);
  got = claim(*queue_, "b");
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].attempt, 1);
}

TEST_P(QueueSuite, ABatchOfCompletionsRecordsThoseWhoseLeaseHeld) {
  for (int i = 0; i < 3; ++i) value(queue_->enqueue(spec("probe")));
  auto got = claim(*queue_, "a", 3);
  ASSERT_EQ(got.size(), 3U);
  // The second one's lease is lost: cancelled meanwhile.
  value(queue_->cancel(got[1].id));
  const store::Completion done[] = {{got[0].id, got[0].lease_token, R"({"n":0})"},
                                    {got[1].id, got[1].lease_token, R"({"n":1})"},
                                    {got[2].id, got[2].lease_token + 1000, R"({"n":2})"}};
  auto r = queue_->succeed_batch(done);
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->size(), 3U);
  EXPECT_TRUE((*r)[0]);
  ASSERT_FALSE((*r)[1]);
  EXPECT_EQ((*r)[1].error().code, ErrorCode::kConflict);
  ASSERT_FALSE((*r)[2]);  // a wrong token
  EXPECT_EQ((*r)[2].error().code, ErrorCode::kConflict);
  auto first = value(queue_->get(got[0].id));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->state, JobState::kSucceeded);
  EXPECT_EQ(first->result_json, R"({"n":0})");
  EXPECT_EQ(state_of(*queue_, got[1].id), JobState::kCancelled);
  EXPECT_EQ(state_of(*queue_, got[2].id), JobState::kRunning);
  auto empty = queue_->succeed_batch({});
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TEST_P(QueueSuite, ClaimsFilterByKind) {
  value(queue_->enqueue(spec("probe")));
  const auto b = value(queue_->enqueue(spec("backup"))).id;
  auto r = queue_->claim({.owner = "a", .max_jobs = 10, .kinds = {"backup", "drill"}});
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->size(), 1U);
  EXPECT_EQ((*r)[0].id, b);
  EXPECT_FALSE(queue_->claim({.owner = "", .max_jobs = 1}));
}

TEST_P(QueueSuite, ClaimsLeaveOutExcludedKinds) {
  const auto w = value(queue_->enqueue(spec("workflow"))).id;
  const auto p = value(queue_->enqueue(spec("probe"))).id;
  auto r = queue_->claim({.owner = "a", .max_jobs = 10, .exclude_kinds = {"workflow"}});
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->size(), 1U);
  EXPECT_EQ((*r)[0].id, p);
  r = queue_->claim({.owner = "a", .max_jobs = 10, .kinds = {"workflow"}});
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->size(), 1U);
  EXPECT_EQ((*r)[0].id, w);
}

TEST_P(QueueSuite, FinishedJobsArePurgedInBatches) {
  for (int i = 0; i < 5; ++i) value(queue_->enqueue(spec("probe")));
  const auto kept = value(queue_->enqueue(spec("backup"))).id;
  for (const auto& j : claim(*queue_, "a", 5)) value(queue_->succeed(j.id, j.lease_token, "{}"));
  const auto later = std::chrono::system_clock::now() + 5s;
  EXPECT_EQ(value(queue_->purge_finished(std::chrono::system_clock::now() - 60s, 2)), 0U);
  EXPECT_EQ(value(queue_->purge_finished(later, 2)), 2U);
  EXPECT_EQ(value(queue_->purge_finished(later, 2)), 2U);
  EXPECT_EQ(value(queue_->purge_finished(later, 2)), 1U);
  EXPECT_EQ(value(queue_->purge_finished(later, 2)), 0U);
  const auto left = value(queue_->list({}));
  ASSERT_EQ(left.size(), 1U);
  EXPECT_EQ(left[0].id, kept);
}

TEST_P(QueueSuite, ListsAndCountsByState) {
  for (int i = 0; i < 3; ++i) value(queue_->enqueue(spec("probe", "t" + std::to_string(i))));
  const auto got = claim(*queue_, "a", 1);
  ASSERT_EQ(got.size(), 1U);
  std::map<JobState, std::int64_t> counts;
  for (const auto& [s, n] : value(queue_->counts())) counts[s] = n;
  EXPECT_EQ(counts[JobState::kAvailable], 2);
  EXPECT_EQ(counts[JobState::kRunning], 1);
  const auto running = value(queue_->list({.state = JobState::kRunning}));
  ASSERT_EQ(running.size(), 1U);
  EXPECT_EQ(running[0].id, got[0].id);
  const auto newest = value(queue_->list({.limit = 1}));
  ASSERT_EQ(newest.size(), 1U);
  EXPECT_EQ(newest[0].spec.target, "t2");
  EXPECT_EQ(value(queue_->list({.target = "t1"})).size(), 1U);
}

// The scheduler finds where each schedule stands with newest_key(); keys
// that a locale's collation sorts among the prefix's own (other case, other
// punctuation) must not be taken for them.
TEST_P(QueueSuite, TheNewestKeyOfAPrefixIsTheGreatestInByteOrder) {
  EXPECT_EQ(value(queue_->newest_key("schedule:nightly:")), std::nullopt);
  EXPECT_EQ(value(queue_->newest_key("")), std::nullopt);
  const std::vector<std::string> keys = {
      "schedule:nightly:2026-03-29T01:00:00Z",
      "schedule:nightly:2026-10-25T00:30:00Z",
      "schedule:nightly:2026-10-25T01:00:00Z",
      "schedule:nightly:2026-10-24T23:59:59Z",
      "schedule:nightly-eu:2027-01-01T00:00:00Z",
      "schedule:nightly.eu:2027-01-01T00:00:00Z",
      "schedule:nightlz:2027-01-01T00:00:00Z",
      "Schedule:Nightly:2027-01-01T00:00:00Z",
      "schedule-nightly:2027-01-01T00:00:00Z",
      "schedule:nightly",
      "sauvegarde:\xc3\xa9t\xc3\xa9:1",
      "sauvegarde:\xc3\xa9t\xc3\xa9:2",
      "sauvegarde:f:3",
  };
  for (const auto& key : keys) {
    auto s = spec("backup");
    s.idempotency_key = key;
    value(queue_->enqueue(s));
  }
  value(queue_->enqueue(spec("probe")));  // no key
  // Whatever the job's state: finish the newest.
  for (const auto& j : claim(*queue_, "a", 20)) {
    if (j.spec.idempotency_key == "schedule:nightly:2026-10-25T01:00:00Z") {
      value(queue_->succeed(j.id, j.lease_token, "{}"));
    }
  }
  EXPECT_EQ(value(queue_->newest_key("schedule:nightly:")),
            "schedule:nightly:2026-10-25T01:00:00Z");
  EXPECT_EQ(value(queue_->newest_key("schedule:nightly:2026-03")),
            "schedule:nightly:2026-03-29T01:00:00Z");
  EXPECT_EQ(value(queue_->newest_key("schedule:nightly:2025")), std::nullopt);
  EXPECT_EQ(value(queue_->newest_key("schedule:nightly")), "schedule:nightly:2026-10-25T01:00:00Z");
  EXPECT_EQ(value(queue_->newest_key("schedule:nightly.")),
            "schedule:nightly.eu:2027-01-01T00:00:00Z");
  EXPECT_EQ(value(queue_->newest_key("schedule:Nightly:")), std::nullopt);
  // A prefix that ends in a multi-byte character.
  EXPECT_EQ(value(queue_->newest_key("sauvegarde:\xc3\xa9t\xc3\xa9")),
            "sauvegarde:\xc3\xa9t\xc3\xa9:2");
  EXPECT_EQ(value(queue_->newest_key("")), *std::max_element(keys.begin(), keys.end()));
  // Purged jobs are forgotten.
  EXPECT_EQ(value(queue_->purge_finished(std::chrono::system_clock::now() + 5s, 100)), 1U);
  EXPECT_EQ(value(queue_->newest_key("schedule:nightly:")),
            "schedule:nightly:2026-10-25T00:30:00Z");
}

TEST_P(QueueSuite, MembersHeartbeatExpireAndLeave) {
  value(queue_->heartbeat_member("host:1", R"({"version":"x"})", 300ms));
  value(queue_->heartbeat_member("host:2", "{}", 30s));
  value(queue_->enqueue(spec("backup")));
  ASSERT_EQ(claim(*queue_, "host:2").size(), 1U);
  auto members = value(queue_->members());
  ASSERT_EQ(members.size(), 2U);
  EXPECT_EQ(members[0].id, "host:1");
  EXPECT_EQ(members[0].info_json, R"({"version":"x"})");
  EXPECT_TRUE(members[0].alive);
  EXPECT_EQ(members[1].running_jobs, 1);
  std::this_thread::sleep_for(700ms);
  members = value(queue_->members());
  ASSERT_EQ(members.size(), 2U);
  EXPECT_FALSE(members[0].alive);
  EXPECT_TRUE(members[1].alive);
  EXPECT_GE(members[1].last_heartbeat, members[1].started_at);
  value(queue_->leave_member("host:1"));
  members = value(queue_->members());
  ASSERT_EQ(members.size(), 1U);
  EXPECT_EQ(members[0].id, "host:2");
}

TEST_P(QueueSuite, OneLeaderAtATimeAndEveryNewHolderANewTerm) {
  auto a = value(queue_->lead("a", 400ms));
  EXPECT_TRUE(a.leader);
  const auto first = a.term;
  EXPECT_GT(first, 0);
  auto b = value(queue_->lead("b", 400ms));
  EXPECT_FALSE(b.leader);
  EXPECT_EQ(b.holder, "a");
  EXPECT_EQ(b.term, first);
  // Renewing keeps the term.
  a = value(queue_->lead("a", 400ms));
  EXPECT_TRUE(a.leader);
  EXPECT_EQ(a.term, first);
  value(queue_->heartbeat_member("a", "{}", 30s));
  EXPECT_TRUE(value(queue_->members()).at(0).leader);
  // The lease runs out: the next to try leads, in the next term.
  std::this_thread::sleep_for(800ms);
  b = value(queue_->lead("b", 30s));
  EXPECT_TRUE(b.leader);
  EXPECT_EQ(b.term, first + 1);
  a = value(queue_->lead("a", 400ms));
  EXPECT_FALSE(a.leader);
  EXPECT_EQ(a.holder, "b");
  EXPECT_FALSE(value(queue_->members()).at(0).leader);
  // Leaving resigns: a leads at once, in a third term.
  value(queue_->heartbeat_member("b", "{}", 30s));
  value(queue_->leave_member("b"));
  a = value(queue_->lead("a", 30s));
  EXPECT_TRUE(a.leader);
  EXPECT_EQ(a.term, first + 2);
  // The history: newest first, terms that never overlap.
  const auto terms = value(queue_->leader_terms(10));
  ASSERT_EQ(terms.size(), 3U);
  EXPECT_EQ(terms[0].holder, "a");
  EXPECT_EQ(terms[1].holder, "b");
  EXPECT_EQ(terms[2].holder, "a");
  for (std::size_t i = 0; i + 1 < terms.size(); ++i) {
    EXPECT_EQ(terms[i].term, terms[i + 1].term + 1);
    EXPECT_GE(terms[i].started_at, terms[i + 1].held_until) << "term " << terms[i].term;
  }
}

TEST_P(QueueSuite, ContendingLeadersNeverOverlap) {
  // One queue object shared by three threads (another from the factory would
  // be a store of its own).
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      const std::string id = "agent-" + std::to_string(i);
      auto& q = *queue_;
      while (!stop) {
        auto r = q.lead(id, 150ms);
        if (!r) ++errors;
        // The leader sometimes stops renewing, so that others take over.
        std::this_thread::sleep_for(r && r->leader && (std::rand() % 4 == 0) ? 250ms : 30ms);
      }
    });
  }
  std::this_thread::sleep_for(2500ms);
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  const auto terms = value(queue_->leader_terms(1000));
  ASSERT_GE(terms.size(), 2U) << "no takeover happened";
  for (std::size_t i = 0; i + 1 < terms.size(); ++i) {
    EXPECT_EQ(terms[i].term, terms[i + 1].term + 1);
    EXPECT_GE(terms[i].started_at, terms[i + 1].held_until) << "term " << terms[i].term;
  }
}

TEST_P(QueueSuite, ConcurrentWorkersClaimEveryJobExactlyOnce) {
  std::vector<JobSpec> specs;
  for (int i = 0; i < 300; ++i) specs.push_back(spec("noop", "t" + std::to_string(i % 7)));
  ASSERT_EQ(value(queue_->enqueue_batch(specs)).size(), 300U);
  std::mutex mu;
  std::map<std::int64_t, int> seen;
  std::atomic<int> errors{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      const std::string owner = "worker-" + std::to_string(w);
      for (int empty = 0; empty < 3;) {
        auto got = queue_->claim({.owner = owner, .max_jobs = 8});
        if (!got) {
          ++errors;
          return;
        }
        if (got->empty()) {
          ++empty;
          std::this_thread::sleep_for(20ms);
          continue;
        }
        for (const auto& j : *got) {
          {
            std::lock_guard lock(mu);
            ++seen[j.id];
          }
          if (!queue_->succeed(j.id, j.lease_token, "{}")) ++errors;
        }
      }
    });
  }
  for (auto& t : workers) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(seen.size(), 300U);
  for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << "job " << id;
  std::map<JobState, std::int64_t> counts;
  for (const auto& [s, n] : value(queue_->counts())) counts[s] = n;
  EXPECT_EQ(counts[JobState::kSucceeded], 300);
}

}  // namespace dbops::testing
