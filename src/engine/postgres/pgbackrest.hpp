// The pgbackrest method: for sites that already run pgBackRest, dbops runs
// pgBackRest's own backup of a configured stanza, records the backup set,
// runs `pgbackrest verify` (failing on any problem it reports, also when it
// exits 0), and restores the set into a directory for drills.
#pragma once

#include <filesystem>

#include "engine/backup.hpp"

namespace dbops::engine::postgres::pgbackrest {

Result<BackupResult> backup(const config::Target& target, const BackupRequest& request,
                            BackupOutput& output);

// Restores the set recorded in `input` into the empty directory `dir`, with
// the WAL segments the backup needs to reach consistency fetched into
// pg_wal/ (`archive-get`), so that the data directory recovers on its own
// like a base backup, without touching the stanza's archive again.
Status restore(BackupInput& input, const std::filesystem::path& dir);

// `pgbackrest verify` of the set's stanza: kCheckFailed naming what it found.
Status verify(BackupInput& input);

}  // namespace dbops::engine::postgres::pgbackrest
