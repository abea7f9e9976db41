// PostgreSQL: connections, sessions and the health probe through libpq.
#include <libpq-fe.h>

#include "core/uri.hpp"
#include "engine/engine.hpp"
#include "engine/postgres/postgres_backup.hpp"
#include "engine/postgres/postgres_probe.hpp"
#include "engine/postgres/postgres_session.hpp"

namespace dbops::engine::postgres {
namespace {

class PostgresEngine final : public Engine {
 public:
  std::string_view name() const override { return "postgres"; }
  std::vector<std::string> aliases() const override { return {"postgresql", "pg"}; }
  std::string_view description() const override { return "PostgreSQL (libpq)"; }
  int default_port() const override { return 5432; }
  std::vector<std::string> dsn_schemes() const override { return {"postgresql", "postgres"}; }
  bool accepts_key_value_dsn() const override { return true; }
  std::string client_library() const override {
    const int v = PQlibVersion();
    return "libpq " + std::to_string(v / 10000) + "." + std::to_string(v % 10000);
  }

  Result<std::unique_ptr<Session>> connect(const config::Target& target,
                                           const ConnectOptions& options) const override {
    DBOPS_ASSIGN(auto session, postgres::connect(target, options));
    return std::unique_ptr<Session>(std::move(session));
  }

  const HealthProbe* health_probe() const override { return &postgres::health_probe(); }
  const BackupDriver* backup_driver() const override { return &postgres::backup_driver(); }
  const RestoreTarget* restore_target() const override { return &postgres::restore_target(); }

  std::vector<CapabilityStatus> capabilities() const override {
    return {
        {.capability = "connect", .implemented = true, .live_tested = true},
        {.capability = "connect",
         .variant = "TLS (sslmode, CA)",
         .implemented = true,
         .live_tested = true},
        {.capability = "connect",
         .variant = "TLS client certificate",
         .implemented = true,
         .live_tested = false,
         .note = "sslcert/sslkey pass through to libpq; no certificate-authenticated server in "
                 "the tests"},
        {.capability = "connect",
         .variant = "PgBouncer (transaction pooling)",
         .implemented = true,
         .live_tested = false,
         .note = "unnamed statements and SET LOCAL only; pgbouncer is not installed here"},
        {.capability = "HealthProbe", .implemented = true, .live_tested = true},
        {.capability = "BackupDriver",
         .variant = "logical",
         .implemented = true,
         .live_tested = true,
         .note = "pg_dump -Fc in an exported snapshot, with its fingerprint"},
        {.capability = "BackupDriver",
         .variant = "physical",
         .implemented = true,
         .live_tested = true,
         .note = "pg_basebackup -Ft -X fetch, WAL held by a temporary slot"},
        {.capability = "BackupDriver",
         .variant = "pgbackrest",
         .implemented = true,
         .live_tested = true,
         .note = "pgBackRest's backup of a configured stanza, its verify, drills from the set"},
        {.capability = "RestoreTarget", .implemented = true, .live_tested = true},
        {.capability = "HealthProbe",
         .variant = "PostgreSQL 17+",
         .implemented = true,
         .live_tested = false,
         .note = "checkpoint counters from pg_stat_checkpointer; tests run PostgreSQL 15"},
    };
  }

  Result<Environment> client_environment(const config::Target& t) const override {
    Environment env;
    std::string host = t.host, user = t.user, database = t.database;
    int port = t.port;
    if (!t.dsn.empty()) {
      // libpq knows which environment variable stands for each keyword.
      char* err = nullptr;
      PQconninfoOption* options = PQconninfoParse(t.dsn.reveal().c_str(), &err);
      if (!options) {
        std::string msg = "invalid connection string";
        if (err) {
          msg += ": ";
          msg += err;
          PQfreemem(err);
        }
        return fail(ErrorCode::kConfig, redact::scrub(msg));
      }
      for (PQconninfoOption* o = options; o->keyword; ++o) {
        if (!o->val || !*o->val) continue;
        const std::string_view keyword = o->keyword;
        if (keyword == "host") host = o->val;
        if (keyword == "port") port = std::atoi(o->val);
        if (keyword == "user") user = o->val;
        if (keyword == "dbname") database = o->val;
        if (o->envvar) env.emplace_back(o->envvar, o->val);
      }
      PQconninfoFree(options);
    } else {
      if (!t.host.empty()) env.emplace_back("PGHOST", t.host);
      if (t.port) env.emplace_back("PGPORT", std::to_string(t.port));
      if (!t.user.empty()) env.emplace_back("PGUSER", t.user);
      if (!t.password.empty()) env.emplace_back("PGPASSWORD", t.password.reveal());
      if (!t.database.empty()) env.emplace_back("PGDATABASE", t.database);
      if (!t.tls.mode.empty()) env.emplace_back("PGSSLMODE", t.tls.mode);
      if (!t.tls.ca_file.empty()) env.emplace_back("PGSSLROOTCERT", t.tls.ca_file);
      if (!t.tls.cert_file.empty()) env.emplace_back("PGSSLCERT", t.tls.cert_file);
      if (!t.tls.key_file.empty()) env.emplace_back("PGSSLKEY", t.tls.key_file);
    }
    env.emplace_back("PGAPPNAME", "dbops");
    auto base = detail::base_environment(t, host, port ? port : default_port(), user, database);
    base.insert(base.end(), env.begin(), env.end());
    return base;
  }

  Status preflight(const config::Target& t) const override {
    DBOPS_ASSIGN(auto env, client_environment(t));
    for (const auto& [k, v] : env) {
      if (k == "PGHOST") {
        // libpq accepts a comma-separated host list.
        std::size_t start = 0;
        while (start <= v.size()) {
          const auto comma = v.find(',', start);
          const auto h = v.substr(start, comma == std::string::npos ? comma : comma - start);
          DBOPS_TRY(detail::check_host_resolves(h));
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
      }
    }
    return ok();
  }
};

}  // namespace

void register_engine(Registry& registry) {
  registry.add(std::make_unique<PostgresEngine>());
}

}  // namespace dbops::engine::postgres
