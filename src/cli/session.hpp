// State shared by the commands of one dbops invocation: the global options,
// the config and the store (loaded on first use), the job kinds.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/output.hpp"
#include "core/clock.hpp"
#include "core/config/config.hpp"
#include "core/strings.hpp"
#include "engine/engine.hpp"
#include "notify/notifier.hpp"
#include "ops/register.hpp"
#include "repo/backup_io.hpp"
#include "runtime/job.hpp"
#include "store/queue.hpp"
#include "store/store.hpp"

namespace dbops::cli {

struct Globals {
  std::string config_path;
  std::string output = "table";
  std::string log_level = "warn";
  bool no_color = false;
};

// State shared by the commands of one invocation: the config and the store,
// loaded on first use.
class Session {
 public:
  explicit Session(Globals& g) : g_(g) {}

  OutputFormat format() const {
    return g_.output == "json" ? OutputFormat::kJson : OutputFormat::kTable;
  }
  bool color() const { return !g_.no_color && isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR"); }

  Result<const config::Config*> config(std::vector<config::Problem>* problems = nullptr) {
    if (config_) return &*config_;
    config::LoadOptions options;
    options.engines = engine::Registry::global().shapes();
    auto loaded =
        config::load_config(config::resolve_config_path(g_.config_path), options, problems);
    if (!loaded) return std::unexpected(std::move(loaded).error());
    config_ = std::move(*loaded);
    return &*config_;
  }

  Result<store::Store*> store() {
    if (store_) return store_.get();
    DBOPS_ASSIGN(const config::Config* c, config());
    DBOPS_ASSIGN(store_, store::open_store(c->state));
    return store_.get();
  }

  // The job queue in the state store, opened on first use.
  Result<store::JobQueue*> queue() {
    if (queue_) return queue_.get();
    DBOPS_ASSIGN(const config::Config* c, config());
    DBOPS_ASSIGN(queue_, store::open_queue(c->state));
    return queue_.get();
  }

  // The backup repository the config names, opened on first use.
  Result<repo::Repository*> repository() {
    if (repository_) return repository_.get();
    DBOPS_ASSIGN(const config::Config* c, config());
    DBOPS_ASSIGN(repository_, repo::open_repository(*c, real_clock()));
    return repository_.get();
  }

  // The job kinds; `env` applies to the first call.
  runtime::JobKindRegistry& kinds(const ops::Environment& env = {}) {
    if (kinds_.all().empty()) ops::register_job_kinds(kinds_, env);
    return kinds_;
  }

  // Targets chosen by --target and --tag (all targets when neither is given).
  Result<std::vector<const config::Target*>> select_targets(const std::vector<std::string>& names,
                                                            const std::vector<std::string>& tags) {
    DBOPS_ASSIGN(const config::Config* c, config());
    std::vector<const config::Target*> out;
    for (const auto& name : names) {
      const config::Target* t = c->find_target(name);
      if (!t) {
        std::vector<std::string> known;
        for (const auto& x : c->targets) known.push_back(x.name);
        std::string msg = "unknown target \"" + name + "\"";
        if (auto guess = did_you_mean(name, known)) msg += " (did you mean \"" + *guess + "\"?)";
        return fail(ErrorCode::kNotFound, msg, "the config defines: " + join(known, ", "));
      }
      out.push_back(t);
    }
    if (names.empty()) {
      for (const auto& t : c->targets) out.push_back(&t);
    }
    for (const auto& tag : tags) {
      const auto eq = tag.find('=');
      if (eq == std::string::npos || eq == 0) {
        return fail(ErrorCode::kInvalidArgument, "--tag " + tag + ": expected key=value");
      }
      const std::string key = tag.substr(0, eq), value = tag.substr(eq + 1);
      std::erase_if(out, [&](const config::Target* t) {
        const auto it = t->tags.find(key);
        return it == t->tags.end() || it->second != value;
      });
    }
    if (out.empty()) {
      return fail(ErrorCode::kNotFound, "no target matches the selection",
                  "check --target and --tag against `dbops config show`");
    }
    return out;
  }

  // The notifiers of the config, for runs that can fail.
  notify::Dispatcher* dispatcher() {
    if (!dispatcher_) {
      auto c = config();
      std::vector<std::unique_ptr<notify::Notifier>> channels;
      if (c) {
        if (auto made = notify::make_notifiers(**c)) channels = std::move(*made);
      }
      dispatcher_ = std::make_unique<notify::Dispatcher>(std::move(channels));
    }
    return dispatcher_.get();
  }

 private:
  Globals& g_;
  std::optional<config::Config> config_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::JobQueue> queue_;
  std::unique_ptr<repo::Repository> repository_;
  runtime::JobKindRegistry kinds_;
  std::unique_ptr<notify::Dispatcher> dispatcher_;
};

// Prints an error (redacted) on stderr and returns its exit code.
int report(const Error& error);
// The exit code of a finished run: 0 succeeded, 1 a check failed, 3 failed.
int run_exit_code(const store::RunRecord& run);
// "1.234s" (or "12.3s") for a finished run, "-" for a running one.
std::string duration_text(const store::RunRecord& run);
// Writes to stdout and flushes.
void print(const std::string& text);

}  // namespace dbops::cli
