// The `command` job: runs a program against a target, the way cron would run
// a maintenance script, with the target's connection details in the
// environment the engine's own tools read (PGHOST/PGPASSWORD, MYSQL_PWD,
// REDISCLI_AUTH, DBOPS_TARGET_*). Secrets reach the child only there, never
// through its command line.
#include <nlohmann/json.hpp>

#include "core/json_text.hpp"
#include "core/log.hpp"
#include "core/subprocess.hpp"
#include "engine/engine.hpp"
#include "runtime/job.hpp"

namespace dbops::ops::command {
namespace {

constexpr runtime::ParamDecl kParams[] = {
    {.name = "argv",
     .type = runtime::ParamType::kStringList,
     .required = true,
     .description = "the program and its arguments (no shell)"},
    {.name = "timeout",
     .type = runtime::ParamType::kDuration,
     .description = "stop the program after this long (default 1h)"},
};

class CommandJob final : public runtime::JobKind {
 public:
  std::string_view name() const override { return "command"; }
  std::string_view description() const override {
    return "runs a program with the target's connection details in its environment";
  }
  bool changes_target() const override { return true; }
  std::span<const runtime::ParamDecl> params() const override { return kParams; }

  Result<runtime::JobOutcome> run(runtime::JobContext& ctx) override {
    const config::Target& target = *ctx.target();
    const auto argv = ctx.params().strings("argv");
    if (argv.empty()) return fail(ErrorCode::kInvalidArgument, "argv: expected a program to run");

    // The target's environment for native tools.
    const engine::Engine* engine = engine::Registry::global().find(target.engine);
    if (!engine) {
      return fail(ErrorCode::kUnsupported, "engine " + target.engine + " is not in this build");
    }
    DBOPS_ASSIGN(auto env, engine->client_environment(target));
    env.emplace_back("DBOPS_RUN_ID", ctx.run_id());

    // Run it, keeping the tail of its output for the record.
    ProcessOptions options;
    options.argv = argv;
    options.env = std::move(env);
    options.timeout = ctx.params().duration("timeout", std::chrono::hours{1});
    options.cancel = ctx.cancel_flag();
    options.stdout_sink = OutputSink::capture_tail(16384);
    options.stderr_sink = OutputSink::capture_tail(16384);
    log::info("running command", {{"program", argv.front()}});
    DBOPS_ASSIGN(auto result, run_process(options));

    nlohmann::ordered_json j;
    j["program"] = argv.front();
    j["exit_code"] = result.exit_code;
    if (result.signal) j["signal"] = result.signal;
    j["duration_seconds"] = std::chrono::duration<double>(result.duration).count();
    j["stdout_tail"] = redact::scrub(result.stdout_text);
    j["stderr_tail"] = redact::scrub(result.stderr_text);
    if (!result.stdout_text.empty()) log::debug("command output", {{"stdout", result.stdout_text}});
    DBOPS_TRY(result.check(argv.front()));
    return runtime::JobOutcome{.passed = true,
                               .summary = argv.front() + " " + result.describe(),
                               .result_json = json_text(j)};
  }
};

}  // namespace

void register_kinds(runtime::JobKindRegistry& registry) {
  registry.add(std::make_unique<CommandJob>());
}

}  // namespace dbops::ops::command
