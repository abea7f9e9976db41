// Where the repository meets the engines: a BackupOutput that streams the
// objects an engine's BackupDriver produces through the pipeline into the
// repository, a BackupInput that reads a stored backup back for a restore or a
// drill, the repository a config names, and fingerprints in manifest form.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/config/config.hpp"
#include "engine/backup.hpp"
#include "repo/pipeline.hpp"
#include "repo/repository.hpp"

namespace dbops::repo {

// The repository `config` names; kConfig when it names none.
Result<std::unique_ptr<Repository>> open_repository(const config::Config& config, Clock& clock);
// Compression and encryption as configured (the key parsed and checked).
Result<PipelineOptions> pipeline_options(const config::RepositoryConfig& config);

// Progress callbacks: phase ("backup", "restore", "verify"), bytes done,
// bytes expected (0: unknown), and a note for the user.
using ProgressFn = std::function<void(std::string_view phase, std::uint64_t done,
                                      std::uint64_t total, std::string_view note)>;

class BackupWriter final : public engine::BackupOutput {
 public:
  BackupWriter(Repository& repo, std::string target, std::string id, PipelineOptions options,
               std::filesystem::path spool_dir, const std::atomic<bool>* cancel,
               ProgressFn progress);
  ~BackupWriter() override;

  Status object(std::string_view name, std::string_view content,
                const std::function<Status(const Write&)>& produce) override;
  void note(std::string_view message) override;
  const std::atomic<bool>* cancel() const override { return cancel_; }
  const std::filesystem::path& spool_dir() const override { return spool_dir_; }

  // The manifest entries of the objects written so far.
  const std::vector<ObjectEntry>& objects() const { return objects_; }
  std::uint64_t plain_bytes() const { return plain_bytes_; }

 private:
  Repository& repo_;
  std::string target_;
  std::string id_;
  PipelineOptions options_;
  std::filesystem::path spool_dir_;
  const std::atomic<bool>* cancel_;
  ProgressFn progress_;
  std::vector<ObjectEntry> objects_;
  std::uint64_t plain_bytes_ = 0;
};

class StoredBackup final : public engine::BackupInput {
 public:
  StoredBackup(Repository& repo, Manifest manifest, std::optional<Secret> key,
               std::filesystem::path spool_dir, const std::atomic<bool>* cancel,
               ProgressFn progress, std::string phase = "restore");

  std::vector<std::pair<std::string, std::string>> objects() const override;
  Status read(std::string_view name,
              const std::function<Status(std::string_view bytes)>& consume) override;
  const std::string& method() const override { return manifest_.method; }
  const std::map<std::string, std::string>& details() const override { return manifest_.details; }
  const std::atomic<bool>* cancel() const override { return cancel_; }
  const std::filesystem::path& spool_dir() const override { return spool_dir_; }

  const Manifest& manifest() const { return manifest_; }

 private:
  Repository& repo_;
  Manifest manifest_;
  std::optional<Secret> key_;
  std::filesystem::path spool_dir_;
  const std::atomic<bool>* cancel_;
  ProgressFn progress_;
  std::string phase_;
  std::uint64_t done_ = 0;
};

std::vector<DatabaseFingerprint> to_manifest(const std::vector<engine::DatabaseFingerprint>& fps);
engine::DatabaseFingerprint from_manifest(const DatabaseFingerprint& fp);

}  // namespace dbops::repo
