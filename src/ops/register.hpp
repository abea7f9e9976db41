// Every capability's job kinds, registered in one place.
#pragma once

#include "obs/metrics.hpp"
#include "runtime/job.hpp"

namespace dbops::ops {

// What long-lived job kinds may hold on to.
struct Environment {
  // Where probe rounds publish their series (the agent's /metrics); may be null.
  obs::Registry* metrics = nullptr;
};

void register_job_kinds(runtime::JobKindRegistry& registry, const Environment& env = {});

}  // namespace dbops::ops
