#include "ops/register.hpp"

namespace dbops::ops {

namespace check {
void register_kinds(runtime::JobKindRegistry& registry);
}
namespace command {
void register_kinds(runtime::JobKindRegistry& registry);
}

void register_job_kinds(runtime::JobKindRegistry& registry) {
  check::register_kinds(registry);
  command::register_kinds(registry);
}

}  // namespace dbops::ops
