#include "repo/backup_io.hpp"

#include <charconv>
#include <cstdio>

namespace dbops::repo {

Result<std::unique_ptr<Repository>> open_repository(const config::Config& config, Clock& clock) {
  if (config.repository.path.empty()) {
    return fail(ErrorCode::kConfig, "no backup repository is configured",
                "add a `repository:` section with a path to " + config.file.string());
  }
  DBOPS_ASSIGN(auto storage, open_posix(config.repository.path));
  return std::make_unique<Repository>(std::move(storage), clock, config.repository.lock_lease);
}

Result<PipelineOptions> pipeline_options(const config::RepositoryConfig& config) {
  PipelineOptions options;
  options.zstd_level = config.compression_level;
  options.zstd_threads = config.compression_threads;
  if (!config.encryption_key.empty()) {
    DBOPS_ASSIGN(auto key, parse_encryption_key(config.encryption_key));
    options.key = std::move(key);
  }
  return options;
}

BackupWriter::BackupWriter(Repository& repo, std::string target, std::string id,
                           PipelineOptions options, std::filesystem::path spool_dir,
                           const std::atomic<bool>* cancel, ProgressFn progress)
    : repo_(repo),
      target_(std::move(target)),
      id_(std::move(id)),
      options_(std::move(options)),
      spool_dir_(std::move(spool_dir)),
      cancel_(cancel),
      progress_(std::move(progress)) {}

BackupWriter::~BackupWriter() = default;

Status BackupWriter::object(std::string_view name, std::string_view content,
                            const std::function<Status(const Write&)>& produce) {
  DBOPS_TRY(validate_key(std::string(name)));
  const std::string key = backup_prefix(target_, id_) + std::string(name);
  DBOPS_ASSIGN(auto sink, ObjectSink::open(repo_.storage(), key, std::string(name), options_));
  const Status produced = produce([&](std::string_view bytes) -> Status {
    if (cancel_ && cancel_->load()) return fail(ErrorCode::kCancelled, "backup cancelled");
    DBOPS_TRY(sink->write(bytes));
    plain_bytes_ += bytes.size();
    if (progress_) progress_("backup", plain_bytes_, 0, {});
    return ok();
  });
  if (!produced) {
    sink->abandon();
    return produced;
  }
  DBOPS_ASSIGN(ObjectEntry entry, sink->finish());
  entry.content = std::string(content);
  objects_.push_back(std::move(entry));
  return ok();
}

void BackupWriter::note(std::string_view message) {
  if (progress_) progress_("backup", plain_bytes_, 0, message);
}

StoredBackup::StoredBackup(Repository& repo, Manifest manifest, std::optional<Secret> key,
                           std::filesystem::path spool_dir, const std::atomic<bool>* cancel,
                           ProgressFn progress, std::string phase)
    : repo_(repo),
      manifest_(std::move(manifest)),
      key_(std::move(key)),
      spool_dir_(std::move(spool_dir)),
      cancel_(cancel),
      progress_(std::move(progress)),
      phase_(std::move(phase)) {}

std::vector<std::pair<std::string, std::string>> StoredBackup::objects() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& o : manifest_.objects) out.emplace_back(o.name, o.content);
  return out;
}

Status StoredBackup::read(std::string_view name,
                          const std::function<Status(std::string_view bytes)>& consume) {
  const ObjectEntry* entry = manifest_.find_object(name);
  if (!entry) {
    return fail(ErrorCode::kNotFound,
                "backup " + manifest_.id + " has no object " + std::string(name));
  }
  const std::uint64_t total = manifest_.plain_size();
  return read_object(repo_.storage(), backup_prefix(manifest_.target, manifest_.id) + entry->name,
                     *entry, key_, [&](std::string_view bytes) -> Status {
                       if (cancel_ && cancel_->load()) {
                         return fail(ErrorCode::kCancelled, phase_ + " cancelled");
                       }
                       done_ += bytes.size();
                       if (progress_) progress_(phase_, done_, total, {});
                       return consume ? consume(bytes) : ok();
                     });
}

std::vector<DatabaseFingerprint> to_manifest(const std::vector<engine::DatabaseFingerprint>& fps) {
  std::vector<DatabaseFingerprint> out;
  for (const auto& fp : fps) {
    DatabaseFingerprint d;
    d.database = fp.database;
    d.mode = std::string(engine::fingerprint_mode_name(fp.mode));
    d.approximate = fp.approximate;
    for (const auto& t : fp.tables) {
      char hex[17];
      std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(t.hash));
      d.tables.push_back(
          TableFingerprint{.table = t.table, .rows = t.rows, .hash = hex, .sampled = t.sampled});
    }
    out.push_back(std::move(d));
  }
  return out;
}

engine::DatabaseFingerprint from_manifest(const DatabaseFingerprint& fp) {
  engine::DatabaseFingerprint out;
  out.database = fp.database;
  out.mode = engine::parse_fingerprint_mode(fp.mode).value_or(engine::FingerprintMode::kFull);
  out.approximate = fp.approximate;
  for (const auto& t : fp.tables) {
    engine::TableFingerprint e{.table = t.table, .rows = t.rows, .sampled = t.sampled};
    std::from_chars(t.hash.data(), t.hash.data() + t.hash.size(), e.hash, 16);
    out.tables.push_back(std::move(e));
  }
  return out;
}

}  // namespace dbops::repo
