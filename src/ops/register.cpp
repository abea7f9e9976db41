#include "ops/register.hpp"

namespace dbops::ops {

namespace check {
void register_kinds(runtime::JobKindRegistry& registry);
}
namespace command {
void register_kinds(runtime::JobKindRegistry& registry);
}
namespace backup {
void register_kinds(runtime::JobKindRegistry& registry);
}
namespace drill {
void register_kinds(runtime::JobKindRegistry& registry);
}
namespace probe {
void register_kinds(runtime::JobKindRegistry& registry, const Environment& env);
}
namespace workflow {
void register_kinds(runtime::JobKindRegistry& registry);
}

void register_job_kinds(runtime::JobKindRegistry& registry, const Environment& env) {
  check::register_kinds(registry);
  command::register_kinds(registry);
  probe::register_kinds(registry, env);
  backup::register_kinds(registry);
  drill::register_kinds(registry);
  workflow::register_kinds(registry);
}

}  // namespace dbops::ops
