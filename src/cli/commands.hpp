// Commands implemented outside app.cpp.
#pragma once

#include <string>
#include <vector>

#include "cli/session.hpp"

namespace dbops::cli {

// `dbops probe`: one probe round over the selected targets; exit 3 when any
// selected target is unreachable.
int cmd_probe(Session& s, const std::vector<std::string>& targets,
              const std::vector<std::string>& tags);

struct AgentArgs {
  std::string listen;  // overrides agent.listen
};

// `dbops agent`: probe rounds every agent.probe_interval, /metrics, /healthz,
// /readyz; exits 0 on SIGTERM or SIGINT.
int cmd_agent(Session& s, const AgentArgs& args);

struct BackupArgs {
  std::vector<std::string> targets;
  std::vector<std::string> tags;
  std::string method;
  std::string fingerprint;
  std::string backup;  // an id or unique prefix
  std::string to;      // restore destination: a target or a path
  bool yes = false;
  bool dry_run = false;
  bool all = false;  // list incomplete backups too
  std::string metrics_textfile;
};

// `dbops backup run|list|show|verify|prune|restore|reindex` and `dbops drill`.
int cmd_backup_run(Session& s, const BackupArgs& a);
int cmd_backup_list(Session& s, const BackupArgs& a);
int cmd_backup_show(Session& s, const BackupArgs& a);
int cmd_backup_verify(Session& s, const BackupArgs& a);
int cmd_backup_prune(Session& s, const BackupArgs& a);
int cmd_backup_restore(Session& s, const BackupArgs& a);
int cmd_backup_reindex(Session& s);
int cmd_drill(Session& s, const BackupArgs& a);

// `dbops store status|migrate`: where the state store's schema stands, and
// applying what is pending.
int cmd_store_status(Session& s);
int cmd_store_migrate(Session& s);

struct WorkflowArgs {
  std::string name;             // workflow run NAME
  std::string run;              // workflow show RUN
  std::string idempotency_key;  // of the run
  bool enqueue = false;         // queue it for the agents instead of running it here
};

// `dbops workflow list|run|show`.
int cmd_workflow_list(Session& s);
int cmd_workflow_run(Session& s, const WorkflowArgs& a);
int cmd_workflow_show(Session& s, const WorkflowArgs& a);

}  // namespace dbops::cli
