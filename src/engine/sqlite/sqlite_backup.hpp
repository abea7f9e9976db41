// SQLite backups: the online backup API into a spool file, streamed into the
// repository; restores copy the file back; drills check a restored copy.
#pragma once

#include "engine/backup.hpp"

namespace dbops::engine::sqlite {

const BackupDriver& backup_driver();
const RestoreTarget& restore_target();

// The content fingerprint of the SQLite database at `path` (read-only).
Result<DatabaseFingerprint> fingerprint_file(const std::string& path, FingerprintMode mode);

}  // namespace dbops::engine::sqlite
