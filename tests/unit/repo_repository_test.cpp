#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "repo/manifest.hpp"
#include "repo/pipeline.hpp"
#include "repo/repository.hpp"
#include "support/support.hpp"

namespace dbops::repo {
namespace {

namespace fs = std::filesystem;
using dbops::testing::TempDir;
using namespace std::chrono_literals;

TimePoint at_millis(std::int64_t ms) {
  return TimePoint{std::chrono::milliseconds{ms}};
}

ObjectEntry sample_entry(std::string name) {
  ObjectEntry o;
  o.name = std::move(name);
  o.content = "pg_dump custom";
  o.plain_size = 5;
  o.stored_size = 18;
  o.plain_list_sha256 = std::string(64, 'a');
  o.stored_sha256 = std::string(64, 'b');
  o.chunk_size = 4 << 20;
  o.plain_chunks = {std::string(64, 'c')};
  o.stored_chunks = {std::string(64, 'd')};
  o.compression_level = 3;
  o.encryption = "xchacha20poly1305-secretstream";
  o.key_id = "0123456789abcdef";
  return o;
}

Manifest sample_manifest() {
  Manifest m;
  m.id = "20261126T101522Z-3f9a";
  m.target = "pg-main";
  m.engine = "postgres";
  m.server_version = "15.8";
  m.method = "logical";
  m.tool = "pg_dump 15.8";
  m.dbops_version = "0.1.0";
  m.started_at = at_millis(1'795'000'000'123);
  m.finished_at = at_millis(1'795'000'100'456);
  m.position = {{"lsn", "0/3000060"}, {"timeline", "1"}};
  m.details = {{"databases", "app,reporting"}};
  m.objects = {sample_entry("app.dump.zst"), sample_entry("globals.sql.zst")};
  m.objects[1].encryption = "none";
  m.objects[1].key_id.clear();
  DatabaseFingerprint d;
  d.database = "app";
  d.mode = "full";
  d.tables = {{"public.accounts", 1000, "00112233445566ff", false},
              {"public.events", 123456789012, "ffeeddccbbaa0099", true}};
  m.fingerprints = {d};
  return m;
}

TEST(RepoManifestTest, JsonRoundTrip) {
  Manifest m = sample_manifest();
  std::string text = to_json(m);
  auto back = manifest_from_json(text);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->id, m.id);
  EXPECT_EQ(back->target, m.target);
  EXPECT_EQ(back->engine, m.engine);
  EXPECT_EQ(back->server_version, m.server_version);
  EXPECT_EQ(back->method, m.method);
  EXPECT_EQ(back->tool, m.tool);
  EXPECT_EQ(back->dbops_version, m.dbops_version);
  EXPECT_EQ(back->started_at, m.started_at);
  EXPECT_EQ(back->finished_at, m.finished_at);
  EXPECT_EQ(back->position, m.position);
  EXPECT_EQ(back->details, m.details);
  ASSERT_EQ(back->objects.size(), 2U);
  const ObjectEntry& o = back->objects[0];
  EXPECT_EQ(o.name, "app.dump.zst");
  EXPECT_EQ(o.content, "pg_dump custom");
  EXPECT_EQ(o.plain_size, 5U);
  EXPECT_EQ(o.stored_size, 18U);
  EXPECT_EQ(o.plain_chunks, m.objects[0].plain_chunks);
  EXPECT_EQ(o.stored_chunks, m.objects[0].stored_chunks);
  EXPECT_EQ(o.compression, "zstd");
  EXPECT_EQ(o.compression_level, 3);
  EXPECT_EQ(o.encryption, "xchacha20poly1305-secretstream");
  EXPECT_EQ(o.key_id, "0123456789abcdef");
  EXPECT_EQ(back->objects[1].encryption, "none");
  ASSERT_EQ(back->fingerprints.size(), 1U);
  ASSERT_EQ(back->fingerprints[0].tables.size(), 2U);
  EXPECT_EQ(back->fingerprints[0].tables[1].rows, 123456789012);
  EXPECT_TRUE(back->fingerprints[0].tables[1].sampled);
  EXPECT_EQ(to_json(*back), text);
  EXPECT_EQ(back->plain_size(), 10U);
  EXPECT_EQ(back->stored_size(), 36U);
  EXPECT_NE(back->find_object("globals.sql.zst"), nullptr);
  EXPECT_EQ(back->find_object("nope"), nullptr);

  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["started_at"], "2026-11-18T11:06:40.123Z");
  EXPECT_EQ(j["format"], 1);
}

// Applies `edit` to the sample manifest's JSON and parses it.
Result<Manifest> parse_edited(const std::function<void(nlohmann::json&)>& edit) {
  auto j = nlohmann::json::parse(to_json(sample_manifest()));
  edit(j);
  return manifest_from_json(j.dump());
}

void expect_corrupt(const Result<Manifest>& r, const std::string& needle) {
  ASSERT_FALSE(r) << "accepted; expected an error about " << needle;
  EXPECT_EQ(r.error().code, ErrorCode::kCorrupt) << r.error().to_string();
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
}

TEST(RepoManifestTest, StrictReading) {
  expect_corrupt(manifest_from_json("{"), "not valid JSON");
  expect_corrupt(manifest_from_json("[]"), "expected a JSON object");
  expect_corrupt(manifest_from_json(""), "not valid JSON");
  expect_corrupt(parse_edited([](auto& j) { j.erase("id"); }), "id: missing");
  expect_corrupt(parse_edited([](auto& j) { j.erase("format"); }), "format: missing");
  expect_corrupt(parse_edited([](auto& j) { j["engine"] = 5; }), "engine: expected a string");
  expect_corrupt(parse_edited([](auto& j) { j["started_at"] = "yesterday"; }), "started_at");
  expect_corrupt(parse_edited([](auto& j) { j["id"] = "latest"; }), "id:");
  expect_corrupt(parse_edited([](auto& j) { j["target"] = "a/b"; }), "target:");
  expect_corrupt(parse_edited([](auto& j) { j["objects"] = "none"; }),
                 "objects: expected an array");
  expect_corrupt(parse_edited([](auto& j) { j["objects"][1]["plain_size"] = -1; }),
                 "objects[1].plain_size");
  expect_corrupt(parse_edited([](auto& j) { j["objects"][0]["plain_size"] = "5"; }),
                 "objects[0].plain_size");
  expect_corrupt(parse_edited([](auto& j) { j["objects"][0].erase("stored_sha256"); }),
                 "objects[0].stored_sha256: missing");
  expect_corrupt(parse_edited([](auto& j) { j["objects"][0]["plain_list_sha256"] = "abc"; }),
                 "objects[0].plain_list_sha256");
  expect_corrupt(
      parse_edited([](auto& j) { j["objects"][0]["plain_chunks"] = nlohmann::json::array(); }),
      "objects[0].plain_chunks");
  expect_corrupt(parse_edited([](auto& j) { j["objects"][0]["stored_chunks"][0] = 1; }),
                 "objects[0].stored_chunks[0]");
  expect_corrupt(parse_edited([](auto& j) { j["objects"][0].erase("key_id"); }),
                 "objects[0].key_id");
  expect_corrupt(parse_edited([](auto& j) { j["objects"][1]["name"] = "app.dump.zst"; }),
                 "duplicate");
  expect_corrupt(parse_edited([](auto& j) { j["objects"][1]["name"] = "../x"; }),
                 "objects[1].name");
  expect_corrupt(parse_edited([](auto& j) { j["position"]["lsn"] = 1; }), "position.lsn");
  expect_corrupt(parse_edited([](auto& j) { j["fingerprints"][0]["tables"][0].erase("rows"); }),
                 "fingerprints[0].tables[0].rows: missing");

  auto newer = parse_edited([](auto& j) { j["format"] = 2; });
  ASSERT_FALSE(newer);
  EXPECT_EQ(newer.error().code, ErrorCode::kUnsupported);
  EXPECT_EQ(newer.error().message, "manifest format 2 is newer than this dbops");

  auto odd = parse_edited([](auto& j) { j["objects"][0]["compression"] = "lz4"; });
  ASSERT_FALSE(odd);
  EXPECT_EQ(odd.error().code, ErrorCode::kUnsupported);

  // Optional fields may be absent; unknown ones are ignored.
  auto lenient = parse_edited([](auto& j) {
    j.erase("fingerprints");
    j.erase("details");
    j["future_field"] = {1, 2};
  });
  ASSERT_TRUE(lenient) << lenient.error().to_string();
  EXPECT_TRUE(lenient->fingerprints.empty());

  // Times with offsets are read as the instants they are.
  auto offset = parse_edited([](auto& j) { j["started_at"] = "2026-11-18T13:06:40.123+02:00"; });
  ASSERT_TRUE(offset);
  EXPECT_EQ(offset->started_at, sample_manifest().started_at);
}

TEST(RepoManifestTest, BackupIds) {
  TimePoint t = at_millis(1'795'000'000'999);
  std::string id = new_backup_id(t);
  EXPECT_TRUE(id.starts_with("20261118T110640Z-")) << id;
  EXPECT_TRUE(is_backup_id(id)) << id;
  std::set<std::string> ids;
  for (int i = 0; i < 50; ++i) ids.insert(new_backup_id(t));
  EXPECT_GT(ids.size(), 40U);
  EXPECT_FALSE(is_backup_id("20261118T082640Z-3F9A"));
  EXPECT_FALSE(is_backup_id("20261118T082640Z3f9a0"));
  EXPECT_FALSE(is_backup_id("20261118T082640Z-3f9"));
  EXPECT_FALSE(is_backup_id("2026111xT082640Z-3f9a"));
  EXPECT_EQ(backup_prefix("pg-main", id), "pg-main/" + id + "/");
  EXPECT_EQ(manifest_key("pg-main", id), "pg-main/" + id + "/manifest.json");
}

class RepoRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override { repo_ = make_repo(60s); }

  std::unique_ptr<Repository> make_repo(std::chrono::milliseconds lease) {
    auto storage = open_posix(dir_ / "repo");
    EXPECT_TRUE(storage) << storage.error().to_string();
    return std::make_unique<Repository>(std::move(*storage), clock_, lease);
  }

  // Writes a real object and publishes a manifest for it.
  Manifest make_backup(const std::string& target, const std::string& id, bool publish_it = true) {
    Manifest m;
    m.id = id;
    m.target = target;
    m.engine = "sqlite";
    m.method = "file";
    m.started_at = clock_.now();
    m.finished_at = clock_.now();
    auto sink =
        ObjectSink::open(repo_->storage(), backup_prefix(target, id) + "db.zst", "db.zst", {});
    EXPECT_TRUE(sink);
    EXPECT_TRUE((*sink)->write("database bytes"));
    auto entry = (*sink)->finish();
    EXPECT_TRUE(entry) << entry.error().to_string();
    m.objects.push_back(*entry);
    if (publish_it) {
      auto published = repo_->publish(m);
      EXPECT_TRUE(published) << published.error().to_string();
    }
    return m;
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Repository> repo_;
};

TEST_F(RepoRepositoryTest, LockAcquireConflictRelease) {
  auto guard = repo_->lock("pg-main", "run-1");
  ASSERT_TRUE(guard) << guard.error().to_string();
  EXPECT_EQ(guard->key(), "pg-main/lock");
  EXPECT_TRUE(guard->healthy());

  auto holder = repo_->lock_holder("pg-main");
  ASSERT_TRUE(holder);
  ASSERT_TRUE(holder->has_value());
  EXPECT_EQ((*holder)->run_id, "run-1");
  EXPECT_NE((*holder)->owner.find(':'), std::string::npos);
  EXPECT_EQ((*holder)->acquired_at, clock_.now());
  EXPECT_EQ((*holder)->expires_at, clock_.now() + 60s);

  auto json = nlohmann::json::parse(*repo_->storage().get_bytes("pg-main/lock"));
  for (const char* field : {"owner", "host", "pid", "run_id", "acquired_at", "expires_at"}) {
    EXPECT_TRUE(json.contains(field)) << field;
  }

  auto second = repo_->lock("pg-main", "run-2");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::kConflict);
  EXPECT_NE(second.error().message.find("run-1"), std::string::npos) << second.error().message;
  EXPECT_NE(second.error().message.find((*holder)->owner), std::string::npos);
  EXPECT_NE(second.error().message.find("until 2027-01-15T08:01:00.000Z"), std::string::npos)
      << second.error().message;

  // Other targets are independent.
  auto other = repo_->lock("mysql-main", "run-3");
  ASSERT_TRUE(other) << other.error().to_string();

  ASSERT_TRUE(guard->release());
  ASSERT_TRUE(guard->release());  // idempotent
  EXPECT_FALSE(repo_->lock_holder("pg-main")->has_value());
  EXPECT_FALSE(*repo_->storage().stat("pg-main/lock"));
  auto again = repo_->lock("pg-main", "run-2");
  ASSERT_TRUE(again) << again.error().to_string();

  // Moving a guard moves the lock.
  LeaseGuard moved = std::move(*again);
  EXPECT_EQ(moved.key(), "pg-main/lock");
  EXPECT_TRUE(repo_->lock_holder("pg-main")->has_value());
  moved = LeaseGuard();
  EXPECT_FALSE(repo_->lock_holder("pg-main")->has_value());
}

TEST_F(RepoRepositoryTest, ExpiredLockIsTakenOver) {
  auto first = repo_->lock("pg-main", "run-1");
  ASSERT_TRUE(first);
  clock_.advance(59s);
  EXPECT_FALSE(repo_->lock("pg-main", "run-2"));
  clock_.advance(2s);
  EXPECT_FALSE(repo_->lock_holder("pg-main")->has_value());
  auto second = repo_->lock("pg-main", "run-2");
  ASSERT_TRUE(second) << second.error().to_string();
  EXPECT_EQ((*repo_->lock_holder("pg-main"))->run_id, "run-2");
  // The old holder's release leaves the new lock alone.
  ASSERT_TRUE(first->release());
  EXPECT_EQ((*repo_->lock_holder("pg-main"))->run_id, "run-2");
  // Nothing but the lock at the target's top.
  auto objects = repo_->storage().list("pg-main/");
  ASSERT_EQ(objects->size(), 1U);
  EXPECT_EQ((*objects)[0].key, "pg-main/lock");
}

TEST_F(RepoRepositoryTest, RacingTakeoversHaveExactlyOneWinner) {
  for (int round = 0; round < 25; ++round) {
    auto stale = repo_->lock("pg-main", "stale-" + std::to_string(round));
    ASSERT_TRUE(stale) << stale.error().to_string();
    clock_.advance(61s);
    constexpr int kThreads = 2;
    std::latch start(kThreads);
    std::vector<Result<LeaseGuard>> results;
    for (int i = 0; i < kThreads; ++i) results.emplace_back(fail(ErrorCode::kInternal, "not run"));
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        results[i] = repo_->lock("pg-main", "racer-" + std::to_string(i));
      });
    }
    for (auto& t : threads) t.join();
    int winners = 0;
    for (const auto& r : results) {
      if (r) {
        ++winners;
      } else {
        EXPECT_EQ(r.error().code, ErrorCode::kConflict) << r.error().to_string();
      }
    }
    ASSERT_EQ(winners, 1) << "round " << round;
    ASSERT_TRUE(stale->release());
    auto holder = repo_->lock_holder("pg-main");
    ASSERT_TRUE(holder && holder->has_value());
    EXPECT_TRUE((*holder)->run_id.starts_with("racer-"));
    for (auto& r : results) {
      if (r) {
        EXPECT_TRUE(r->healthy());
        ASSERT_TRUE(r->release());
      }
    }
    EXPECT_FALSE(repo_->lock_holder("pg-main")->has_value());
  }
  // No takeover leftovers.
  EXPECT_TRUE(repo_->storage().list("pg-main/")->empty());
}

TEST_F(RepoRepositoryTest, LockIsRenewed) {
  auto repo = make_repo(300ms);
  auto guard = repo->lock("pg-main", "run-1");
  ASSERT_TRUE(guard);
  clock_.advance(1h);
  // The renewal thread runs every 100 ms of real time.
  bool renewed = false;
  for (int i = 0; i < 100 && !renewed; ++i) {
    std::this_thread::sleep_for(20ms);
    auto holder = repo->lock_holder("pg-main");
    renewed = holder && holder->has_value() && (*holder)->expires_at == clock_.now() + 300ms;
  }
  EXPECT_TRUE(renewed);
  EXPECT_TRUE(guard->healthy());

  // Someone takes the lock over: the holder notices at its next renewal.
  clock_.advance(1s);
  auto thief = repo->lock("pg-main", "run-2");
  ASSERT_TRUE(thief) << thief.error().to_string();
  bool noticed = false;
  for (int i = 0; i < 100 && !noticed; ++i) {
    std::this_thread::sleep_for(20ms);
    noticed = !guard->healthy();
  }
  ASSERT_TRUE(noticed);
  EXPECT_EQ(guard->healthy().error().code, ErrorCode::kConflict);
  EXPECT_NE(guard->healthy().error().message.find("run-2"), std::string::npos);
  ASSERT_TRUE(guard->release());
  EXPECT_EQ((*repo->lock_holder("pg-main"))->run_id, "run-2");
}

TEST_F(RepoRepositoryTest, PublishListFind) {
  EXPECT_TRUE(repo_->list()->empty());
  Manifest a = make_backup("pg-main", "20261126T101522Z-3f9a");
  Manifest b = make_backup("pg-main", "20261126T111522Z-0001");
  Manifest c = make_backup("mysql-main", "20261126T105000Z-beef");
  // An incomplete one: objects, no manifest.
  make_backup("pg-main", "20261127T000000Z-dead", false);
  // A broken manifest.
  ASSERT_TRUE(repo_->storage().put_bytes("pg-main/20261125T000000Z-bad0/manifest.json", "{"));
  // Things that are not backups.
  ASSERT_TRUE(repo_->storage().put_bytes("pg-main/notes.txt", "x"));
  ASSERT_TRUE(repo_->storage().put_bytes("pg-main/other-dir/x", "x"));

  EXPECT_EQ(*repo_->targets(), (std::vector<std::string>{"mysql-main", "pg-main"}));

  auto all = repo_->list();
  ASSERT_TRUE(all) << all.error().to_string();
  std::vector<std::string> ids;
  for (const auto& l : *all) ids.push_back(l.target + "/" + l.id);
  EXPECT_EQ(ids, (std::vector<std::string>{
                     "pg-main/20261125T000000Z-bad0", "pg-main/20261126T101522Z-3f9a",
                     "mysql-main/20261126T105000Z-beef", "pg-main/20261126T111522Z-0001",
                     "pg-main/20261127T000000Z-dead"}));
  EXPECT_FALSE((*all)[0].manifest);
  EXPECT_NE((*all)[0].problem.find("not valid JSON"), std::string::npos) << (*all)[0].problem;
  ASSERT_TRUE((*all)[1].manifest);
  EXPECT_EQ((*all)[1].manifest->objects.size(), 1U);
  EXPECT_FALSE((*all)[4].manifest);
  EXPECT_NE((*all)[4].problem.find("no manifest"), std::string::npos);

  auto pg = repo_->list("pg-main");
  ASSERT_TRUE(pg);
  EXPECT_EQ(pg->size(), 4U);

  auto found = repo_->find("20261126T101522Z-3f9a");
  ASSERT_TRUE(found) << found.error().to_string();
  EXPECT_EQ(found->target, "pg-main");
  found = repo_->find("20261126T10");
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(found.error().message.find("pg-main/20261126T101522Z-3f9a"), std::string::npos);
  EXPECT_NE(found.error().message.find("mysql-main/20261126T105000Z-beef"), std::string::npos);
  found = repo_->find("20261126T105");
  ASSERT_TRUE(found) << found.error().to_string();
  EXPECT_EQ(found->id, c.id);
  found = repo_->find("2030");
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().code, ErrorCode::kNotFound);
  found = repo_->find("20261127");
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().code, ErrorCode::kNotFound);
  EXPECT_NE(found.error().message.find("no manifest"), std::string::npos);
  found = repo_->find("20261125T000000Z-bad0");
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().code, ErrorCode::kCorrupt);

  // The objects check out through the pipeline.
  const ObjectEntry& entry = a.objects[0];
  EXPECT_TRUE(read_object(repo_->storage(), backup_prefix(a.target, a.id) + entry.name, entry,
                          std::nullopt, nullptr));

  // Publishing twice, or without the objects, fails.
  auto twice = repo_->publish(a);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, ErrorCode::kConflict);
  Manifest missing = b;
  missing.id = "20261201T000000Z-0000";
  auto no_objects = repo_->publish(missing);
  ASSERT_FALSE(no_objects);
  EXPECT_NE(no_objects.error().message.find("missing"), std::string::npos);
  EXPECT_FALSE(*repo_->storage().stat(manifest_key(missing.target, missing.id)));
}

TEST_F(RepoRepositoryTest, RemoveBackup) {
  Manifest a = make_backup("pg-main", "20261126T101522Z-3f9a");
  Manifest b = make_backup("pg-main", "20261126T111522Z-0001");
  ASSERT_TRUE(repo_->remove_backup("pg-main", a.id));
  EXPECT_FALSE(fs::exists(dir_ / "repo/pg-main" / a.id));
  auto left = repo_->list("pg-main");
  ASSERT_EQ(left->size(), 1U);
  EXPECT_EQ((*left)[0].id, b.id);
  auto again = repo_->remove_backup("pg-main", a.id);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(repo_->remove_backup("pg-main", "../../etc"));
}

TEST_F(RepoRepositoryTest, PinsAreVisibleThenExpire) {
  Manifest a = make_backup("pg-main", "20261126T101522Z-3f9a");
  auto pin = repo_->pin("pg-main", a.id, "drill-7");
  ASSERT_TRUE(pin) << pin.error().to_string();
  EXPECT_EQ(pin->key(), "pg-main/" + a.id + "/pins/drill-7");
  auto listed = repo_->list("pg-main");
  ASSERT_EQ(listed->size(), 1U);
  EXPECT_EQ((*listed)[0].pins, std::vector<std::string>{"drill-7"});
  EXPECT_TRUE((*listed)[0].manifest);

  auto removal = repo_->remove_backup("pg-main", a.id);
  ASSERT_FALSE(removal);
  EXPECT_EQ(removal.error().code, ErrorCode::kConflict);
  EXPECT_NE(removal.error().message.find("drill-7"), std::string::npos);

  clock_.advance(61s);
  listed = repo_->list("pg-main");
  EXPECT_TRUE((*listed)[0].pins.empty());
  EXPECT_TRUE(repo_->remove_backup("pg-main", a.id));
  EXPECT_TRUE(pin->release());

  auto missing = repo_->pin("pg-main", "20261126T101522Z-0000", "drill-8");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(repo_->pin("pg-main", "latest", "drill-8"));
}

TEST_F(RepoRepositoryTest, PinReleaseRemovesIt) {
  Manifest a = make_backup("pg-main", "20261126T101522Z-3f9a");
  {
    auto pin = repo_->pin("pg-main", a.id, "restore-1");
    ASSERT_TRUE(pin);
    EXPECT_EQ((*repo_->list("pg-main"))[0].pins.size(), 1U);
  }
  EXPECT_TRUE((*repo_->list("pg-main"))[0].pins.empty());
  EXPECT_FALSE(*repo_->storage().stat("pg-main/" + a.id + "/pins/restore-1"));
}

TEST_F(RepoRepositoryTest, LeftoversAreRemoved) {
  Manifest done = make_backup("pg-main", "20261126T101522Z-3f9a");
  make_backup("pg-main", "20261126T111522Z-0001", false);
  make_backup("pg-main", "20261126T121522Z-0002", false);
  // A killed writer's temporary file inside a leftover.
  std::ofstream(dir_ / "repo/pg-main/20261126T111522Z-0001/base.tar.tmp.123.abcdef") << "junk";
  // A killed takeover's moved-aside lock.
  ASSERT_TRUE(repo_->storage().put_bytes(
      "pg-main/lock.takeover.0011223344556677",
      R"({"owner":"h:1","run_id":"r","expires_at":"2020-01-01T00:00:00.000Z"})"));
  auto guard = repo_->lock("pg-main", "run-9");
  ASSERT_TRUE(guard);
  auto removed = repo_->remove_leftovers("pg-main", "20261126T121522Z-0002");
  ASSERT_TRUE(removed) << removed.error().to_string();
  EXPECT_EQ(*removed, std::vector<std::string>{"20261126T111522Z-0001"});
  EXPECT_FALSE(fs::exists(dir_ / "repo/pg-main/20261126T111522Z-0001"));
  EXPECT_TRUE(fs::exists(dir_ / "repo/pg-main/20261126T121522Z-0002"));
  EXPECT_TRUE(repo_->read_manifest("pg-main", done.id));
  EXPECT_FALSE(*repo_->storage().stat("pg-main/lock.takeover.0011223344556677"));
  EXPECT_TRUE(*repo_->storage().stat("pg-main/lock"));
}

TEST_F(RepoRepositoryTest, ReadManifestChecksWhereItIs) {
  Manifest a = make_backup("pg-main", "20261126T101522Z-3f9a");
  std::string text = *repo_->storage().get_bytes(manifest_key("pg-main", a.id));
  ASSERT_TRUE(repo_->storage().put_bytes(manifest_key("pg-other", a.id), text));
  auto moved = repo_->read_manifest("pg-other", a.id);
  ASSERT_FALSE(moved);
  EXPECT_EQ(moved.error().code, ErrorCode::kCorrupt);
  auto missing = repo_->read_manifest("pg-main", "20261126T101522Z-0000");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace dbops::repo
