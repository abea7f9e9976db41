// The `check` job: what can be known about a target without connecting to it.
// Its config resolves, its engine is known, and the engine's preflight passes
// (a SQLite file is a database; a host name resolves).
#include <nlohmann/json.hpp>

#include "core/json_text.hpp"
#include "core/log.hpp"
#include "engine/engine.hpp"
#include "runtime/job.hpp"

namespace dbops::ops::check {
namespace {

class CheckJob final : public runtime::JobKind {
 public:
  std::string_view name() const override { return "check"; }
  std::string_view description() const override {
    return "checks a target without connecting: engine known, address resolves, database "
           "file readable";
  }

  Result<runtime::JobOutcome> run(runtime::JobContext& ctx) override {
    const config::Target& target = *ctx.target();
    nlohmann::ordered_json result;
    result["engine"] = target.engine;

    // Find the engine.
    const engine::Engine* engine = engine::Registry::global().find(target.engine);
    if (!engine) {
      return fail(ErrorCode::kUnsupported, "engine " + target.engine + " is not in this build");
    }

    // Its preflight: files, names, connection strings.
    auto preflight = engine->preflight(target);
    result["preflight"] = preflight ? "passed" : preflight.error().message;
    if (!preflight) return std::unexpected(std::move(preflight).error());

    std::string where = target.path.empty() ? std::string() : " " + target.path;
    log::debug("preflight passed", {{"engine", target.engine}});
    return runtime::JobOutcome{.passed = true,
                               .summary = target.engine + where + ": preflight passed",
                               .result_json = json_text(result)};
  }
};

}  // namespace

void register_kinds(runtime::JobKindRegistry& registry) {
  registry.add(std::make_unique<CheckJob>());
}

}  // namespace dbops::ops::check
