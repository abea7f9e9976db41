#include "engine/postgres/pgbackrest.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/strings.hpp"
#include "core/subprocess.hpp"

namespace dbops::engine::postgres::pgbackrest {
namespace {

using json = nlohmann::json;

// What a backup records about its stanza, for the drill and verify later.
struct Stanza {
  std::string stanza;
  std::string config;
  std::string run_as;
};

Stanza from_details(const std::map<std::string, std::string>& d) {
  const auto get = [&](const char* k) {
    const auto it = d.find(k);
    return it == d.end() ? std::string() : it->second;
  };
  return {get("pgbackrest.stanza"), get("pgbackrest.config"), get("pgbackrest.run_as")};
}

std::vector<std::string> argv_for(const Stanza& s, std::vector<std::string> command) {
  std::vector<std::string> argv = {"pgbackrest"};
  if (!s.config.empty()) argv.push_back("--config=" + s.config);
  argv.push_back("--stanza=" + s.stanza);
  argv.emplace_back("--log-level-console=info");
  argv.emplace_back("--log-level-stderr=off");
  argv.insert(argv.end(), command.begin(), command.end());
  return argv;
}

Result<ProcessResult> run(const Stanza& s, std::vector<std::string> command,
                          std::chrono::milliseconds timeout, const std::atomic<bool>* cancel) {
  const std::string what = "pgbackrest " + command.front();
  // pgBackRest refuses to run as root; it runs as the cluster's owner.
  std::optional<RunAsUser> as;
  if (::geteuid() == 0 && !s.run_as.empty()) {
    DBOPS_ASSIGN(as, user_by_name(s.run_as));
  }
  DBOPS_ASSIGN(auto r, run_process({.argv = argv_for(s, std::move(command)),
                                    .run_as = as,
                                    .timeout = timeout,
                                    .cancel = cancel,
                                    .stdout_sink = OutputSink::capture_tail(1 << 20),
                                    .stderr_sink = OutputSink::capture_tail(65536)}));
  if (!r.succeeded()) {
    // pgBackRest reports errors on stdout (console log).
    std::string last;
    for (const auto& line : split(r.stdout_text + r.stderr_text, '\n')) {
      if (line.find("ERROR") != std::string::npos) last = std::string(trim(line));
    }
    return fail(r.timed_out ? ErrorCode::kTimeout : ErrorCode::kIo,
                what + " " + r.describe() + (last.empty() ? "" : ": " + last));
  }
  return r;
}

// Problems `pgbackrest verify` reported: WARN and ERROR lines of its console
// log (it exits 0 for some of them).
std::vector<std::string> verify_problems(const ProcessResult& r) {
  std::vector<std::string> out;
  for (const auto& line : split(r.stdout_text + r.stderr_text, '\n')) {
    if (line.find(" WARN: ") != std::string::npos || line.find(" ERROR: ") != std::string::npos) {
      out.emplace_back(trim(line));
    }
  }
  return out;
}

Status run_verify(const Stanza& s, const std::atomic<bool>* cancel) {
  DBOPS_ASSIGN(auto r, run(s, {"verify"}, std::chrono::hours(6), cancel));
  const auto problems = verify_problems(r);
  if (!problems.empty()) {
    return fail(ErrorCode::kCheckFailed,
                "pgbackrest verify of stanza " + s.stanza + " reported: " + join(problems, "; "));
  }
  return ok();
}

// The WAL segment after `name` (16 MiB segments: 256 per log file).
std::string next_segment(const std::string& name) {
  const std::string tli = name.substr(0, 8);
  unsigned long log = std::stoul(name.substr(8, 8), nullptr, 16);
  unsigned long seg = std::stoul(name.substr(16, 8), nullptr, 16);
  if (++seg > 0xFF) {
    seg = 0;
    ++log;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08lX%08lX", log, seg);
  return tli + buf;
}

}  // namespace

Result<BackupResult> backup(const config::Target& target, const BackupRequest& request,
                            BackupOutput& output) {
  if (!target.backup.pgbackrest || target.backup.pgbackrest->stanza.empty()) {
    return fail(
        ErrorCode::kConfig,
        "method pgbackrest needs targets[].backup.pgbackrest.stanza for target " + target.name);
  }
  const auto& o = *target.backup.pgbackrest;
  const Stanza s{o.stanza, o.config, o.run_as};
  BackupResult result;
  {
    DBOPS_ASSIGN(auto v, run_process({.argv = {"pgbackrest", "version"},
                                      .timeout = std::chrono::seconds(10),
                                      .stdout_sink = OutputSink::capture(4096)}));
    DBOPS_TRY(v.check("pgbackrest"));
    result.tool = std::string(trim(v.stdout_text));
  }
  output.note("pgbackrest " + o.type + " backup of stanza " + o.stanza);
  DBOPS_TRY(run(s, {"backup", "--type=" + o.type}, request.timeout, output.cancel()));
  DBOPS_ASSIGN(auto info, run(s, {"info", "--output=json"}, std::chrono::minutes(5), nullptr));
  json j = json::parse(info.stdout_text, nullptr, false);
  if (!j.is_array() || j.empty() || !j[0].contains("backup") || j[0]["backup"].empty()) {
    return fail(ErrorCode::kIo, "pgbackrest info lists no backup for stanza " + o.stanza);
  }
  const json& set = j[0]["backup"].back();
  const std::string label = set.value("label", "");
  result.position["lsn"] = set.value("/lsn/stop"_json_pointer, "");
  result.position["start_lsn"] = set.value("/lsn/start"_json_pointer, "");
  result.details["pgbackrest.stanza"] = o.stanza;
  result.details["pgbackrest.config"] = o.config;
  result.details["pgbackrest.run_as"] = o.run_as;
  result.details["pgbackrest.label"] = label;
  result.details["pgbackrest.type"] = set.value("type", "");
  result.details["pgbackrest.archive_start"] = set.value("/archive/start"_json_pointer, "");
  result.details["pgbackrest.archive_stop"] = set.value("/archive/stop"_json_pointer, "");
  if (set.contains("info")) {
    result.details["pgbackrest.size"] = std::to_string(set["info"].value("size", 0ULL));
    result.details["pgbackrest.repo_size"] =
        std::to_string(set.value("/info/repository/size"_json_pointer, 0ULL));
  }
  if (j[0].contains("db") && !j[0]["db"].empty()) {
    result.server_version = j[0]["db"].back().value("version", "");
  }
  // pgBackRest's verify, failing on what it reports even with exit 0.
  DBOPS_TRY(run_verify(s, output.cancel()));
  result.details["pgbackrest.verify"] = "passed";
  // The set's record goes through the pipeline, like any object.
  const std::string record = set.dump(2);
  DBOPS_TRY(output.object("pgbackrest-set.json", "pgbackrest set",
                          [&](const BackupOutput::Write& write) { return write(record); }));
  return result;
}

Status verify(BackupInput& input) {
  return run_verify(from_details(input.details()), input.cancel());
}

Status restore(BackupInput& input, const std::filesystem::path& dir) {
  const Stanza s = from_details(input.details());
  const auto& d = input.details();
  const auto get = [&](const char* k) {
    const auto it = d.find(k);
    return it == d.end() ? std::string() : it->second;
  };
  // The set record is read back through the pipeline: its checksums are
  // checked like any object's.
  std::string record;
  DBOPS_TRY(input.read("pgbackrest-set.json", [&](std::string_view b) -> Status {
    record.append(b);
    return ok();
  }));
  const std::string label = get("pgbackrest.label");
  if (s.stanza.empty() || label.empty()) {
    return fail(ErrorCode::kCorrupt, "the manifest does not name a pgBackRest stanza and set");
  }
  // pgBackRest writes the files as the user it runs as.
  if (::geteuid() == 0 && !s.run_as.empty()) {
    DBOPS_ASSIGN(const RunAsUser user, user_by_name(s.run_as));
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && st.st_uid == 0 &&
        ::chown(dir.c_str(), user.uid, user.gid) != 0) {
      return fail(ErrorCode::kIo, "chown " + dir.string() + " to " + s.run_as);
    }
  }
  DBOPS_TRY(run(s,
                {"restore", "--set=" + label, "--pg1-path=" + dir.string(), "--type=none",
                 "--archive-mode=off"},
                std::chrono::hours(12), input.cancel()));
  // The WAL from the backup's start to its end, into pg_wal/.
  const std::string start = get("pgbackrest.archive_start"), stop = get("pgbackrest.archive_stop");
  if (start.size() != 24 || stop.size() != 24) {
    return fail(ErrorCode::kCorrupt, "the manifest lacks the set's WAL range");
  }
  for (std::string seg = start;; seg = next_segment(seg)) {
    DBOPS_TRY(run(s, {"archive-get", seg, (dir / "pg_wal" / seg).string()},
                  std::chrono::minutes(30), input.cancel()));
    if (seg == stop) break;
    if (seg > stop) return fail(ErrorCode::kCorrupt, "WAL range " + start + ".." + stop);
  }
  return ok();
}

}  // namespace dbops::engine::postgres::pgbackrest
