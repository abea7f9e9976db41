// Redis backups: `redis-cli --rdb -` (the snapshot a replica would get)
// streamed into the repository; drills load the RDB into a throwaway
// redis-server and check it.
#pragma once

#include "engine/backup.hpp"

namespace dbops::engine::redis {

const BackupDriver& backup_driver();
const RestoreTarget& restore_target();

}  // namespace dbops::engine::redis
