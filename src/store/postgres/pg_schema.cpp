#include "store/postgres/pg_schema.hpp"

#include "core/log.hpp"

namespace dbops::store::postgres {

using engine::Param;
using engine::postgres::PostgresSession;

std::int64_t to_us(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

TimePoint from_us(std::int64_t us) {
  return TimePoint{std::chrono::duration_cast<TimePoint::duration>(std::chrono::microseconds{us})};
}

std::string us(std::string_view column) {
  return "(extract(epoch FROM " + std::string(column) + ") * 1000000)::int8";
}

std::string at(std::string_view param) {
  return "(timestamptz 'epoch' + " + std::string(param) + "::int8 * interval '1 microsecond')";
}

Result<int> migrate(PostgresSession& s, std::string_view table,
                    std::span<const Migration> migrations, std::string_view what) {
  const std::string t(table);
  const int latest = migrations.back().version;
  const auto current_version = [&]() -> Result<int> {
    DBOPS_ASSIGN(auto exists, s.query("SELECT to_regclass('" + t + "') IS NOT NULL"));
    if (exists.text(0, 0) != "t") return 0;
    DBOPS_ASSIGN(auto v, s.query("SELECT coalesce(max(version), 0) FROM " + t));
    return static_cast<int>(v.integer(0, 0));
  };
  DBOPS_ASSIGN(int version, current_version());
  if (version < latest) {
    DBOPS_TRY(in_transaction(s, [&]() -> Status {
      DBOPS_TRY(s.query("SELECT pg_advisory_xact_lock(hashtext('" + t + "'))"));
      DBOPS_TRY(s.exec("SET LOCAL lock_timeout = '30s'"));
      DBOPS_TRY(s.exec("CREATE TABLE IF NOT EXISTS " + t +
                       " (version integer PRIMARY KEY, description text NOT NULL,"
                       " applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"));
      DBOPS_ASSIGN(version, current_version());
      for (const auto& m : migrations) {
        if (m.version <= version) continue;
        if (auto applied = s.exec(m.sql); !applied) {
          return fail(std::move(applied).error().with_context(
              "schema migration " + std::to_string(m.version) + " (" + m.description + ")"));
        }
        const Param params[] = {static_cast<std::int64_t>(m.version), std::string(m.description)};
        DBOPS_TRY(
            s.query("INSERT INTO " + t + " (version, description) VALUES ($1::int, $2)", params));
        log::info(std::string(what) + ": schema migrated",
                  {{"version", m.version}, {"description", m.description}});
        version = m.version;
      }
      return ok();
    }));
  }
  if (version > latest) {
    // Migrations only expand, so a newer schema still serves this release
    // (agents are upgraded one at a time).
    log::debug(std::string(what) + ": the schema is newer than this dbops knows",
               {{"version", version}, {"known", latest}});
  }
  return version;
}

config::Target store_target(const Secret& dsn, std::string name) {
  config::Target target;
  target.name = std::move(name);
  target.engine = "postgres";
  target.dsn = dsn;
  return target;
}

Result<SchemaPart> read_schema_part(engine::postgres::PostgresSession& s, std::string name,
                                    std::string table, std::span<const Migration> migrations) {
  SchemaPart part{.name = std::move(name),
                  .table = std::move(table),
                  .known = migrations.empty() ? 0 : migrations.back().version};
  const Param regclass[] = {part.table};
  DBOPS_ASSIGN(auto exists, s.query("SELECT (to_regclass($1) IS NOT NULL)::int", regclass));
  if (exists.integer(0, 0) != 0) {
    DBOPS_ASSIGN(auto r, s.query("SELECT coalesce(max(version), 0) FROM " + part.table));
    part.version = static_cast<int>(r.integer(0, 0));
  }
  for (const auto& m : migrations) {
    if (m.version > part.version) part.pending.push_back({m.version, m.description});
  }
  return part;
}

}  // namespace dbops::store::postgres
