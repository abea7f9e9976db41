// Every capability's job kinds, registered in one place.
#pragma once

#include "runtime/job.hpp"

namespace dbops::ops {

void register_job_kinds(runtime::JobKindRegistry& registry);

}  // namespace dbops::ops
