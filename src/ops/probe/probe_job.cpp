// The `probe` job: one probe round over the selected targets.
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/json_text.hpp"
#include "ops/probe/probe.hpp"
#include "ops/register.hpp"
#include "runtime/job.hpp"

namespace dbops::ops::probe {
namespace {

constexpr runtime::ParamDecl kParams[] = {
    {.name = "targets",
     .type = runtime::ParamType::kStringList,
     .description = "names of the targets to probe; all targets when empty"},
    {.name = "detail",
     .type = runtime::ParamType::kBool,
     .description = "keep every field of every target in the run's result (default true); the "
                    "agent keeps only the targets that are not up, so that frequent rounds stay "
                    "small in the state store"},
    {.name = "publish",
     .type = runtime::ParamType::kBool,
     .description = "export the round's series on the agent's /metrics (the agent's own rounds "
                    "do; a probe queued or run by a workflow leaves them as they are)"},
};

class ProbeJob final : public runtime::JobKind {
 public:
  explicit ProbeJob(obs::Registry* metrics) : metrics_(metrics) {}
  std::string_view name() const override { return "probe"; }
  std::string_view description() const override {
    return "probes targets: reachability, latency, version, role, replication lag, connections, "
           "size and engine health";
  }
  bool needs_target() const override { return false; }
  std::span<const runtime::ParamDecl> params() const override { return kParams; }

  Result<runtime::JobOutcome> run(runtime::JobContext& ctx) override {
    // Which targets.
    std::vector<const config::Target*> targets;
    const auto names = ctx.params().strings("targets");
    if (names.empty()) {
      for (const auto& t : ctx.config().targets) targets.push_back(&t);
    }
    for (const auto& name : names) {
      const config::Target* t = ctx.config().find_target(name);
      if (!t) return fail(ErrorCode::kNotFound, "unknown target \"" + name + "\"");
      targets.push_back(t);
    }

    // The round, through a prober that lives as long as this job kind; one
    // round at a time (the agent's own rounds and queued probes share it).
    std::lock_guard lock(mu_);
    if (!prober_) prober_ = std::make_unique<Prober>(ctx.config().probe, ctx.clock());
    const RoundResult round = prober_->round(targets);
    if (metrics_ && ctx.params().boolean("publish", false)) prober_->publish(round, *metrics_);

    int up = 0, down = 0, not_probed = 0;
    for (const auto& t : round.targets) {
      (t.status == Status::kUp ? up : t.status == Status::kDown ? down : not_probed)++;
    }
    std::string result;
    if (ctx.params().boolean("detail", true)) {
      result = to_json(round);
    } else {
      nlohmann::ordered_json j;
      j["duration_seconds"] = round.duration_seconds;
      j["up"] = up;
      j["down"] = down;
      j["not_probed"] = not_probed;
      j["problems"] = nlohmann::ordered_json::array();
      for (const auto& t : round.targets) {
        if (t.status == Status::kUp) continue;
        j["problems"].push_back(
            {{"target", t.target}, {"status", status_name(t.status)}, {"error", t.error}});
      }
      result = json_text(j);
    }
    return runtime::JobOutcome{.passed = true,
                               .summary = std::to_string(up) + " up, " + std::to_string(down) +
                                          " down, " + std::to_string(not_probed) + " not probed",
                               .result_json = std::move(result)};
  }

 private:
  obs::Registry* metrics_;
  std::mutex mu_;
  std::unique_ptr<Prober> prober_;  // guarded by mu_
};

}  // namespace

void register_kinds(runtime::JobKindRegistry& registry, const Environment& env) {
  registry.add(std::make_unique<ProbeJob>(env.metrics));
}

}  // namespace dbops::ops::probe
