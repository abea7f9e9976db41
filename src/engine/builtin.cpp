// The engines compiled into this binary. A new engine is a new folder plus
// one line here.
#include "engine/engine.hpp"

namespace dbops::engine {

namespace postgres {
void register_engine(Registry& registry);
}
namespace mysql {
void register_engine(Registry& registry);
}
namespace redis {
void register_engine(Registry& registry);
}
namespace sqlite {
void register_engine(Registry& registry);
}

void register_builtin_engines(Registry& registry) {
  postgres::register_engine(registry);
  mysql::register_engine(registry);
  redis::register_engine(registry);
  sqlite::register_engine(registry);
}

}  // namespace dbops::engine
