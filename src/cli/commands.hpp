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

}  // namespace dbops::cli
