// MariaDB/MySQL logical backups with mariadb-dump, restores with the mariadb
// client, drills on a throwaway mariadbd from the launcher.
#pragma once

#include "engine/backup.hpp"

namespace dbops::engine::mysql {

const BackupDriver& backup_driver();
const RestoreTarget& restore_target();

}  // namespace dbops::engine::mysql
