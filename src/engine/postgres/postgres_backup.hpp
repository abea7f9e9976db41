// PostgreSQL backups with PostgreSQL's own tools: pg_dump -Fc in a snapshot
// dbops exports (logical), pg_basebackup -Ft -X fetch (physical); restores
// with pg_restore and tar; drills on throwaway instances from the launcher.
#pragma once

#include "engine/backup.hpp"

namespace dbops::engine::postgres {

const BackupDriver& backup_driver();
const RestoreTarget& restore_target();

}  // namespace dbops::engine::postgres
