// Fault points: named places in long operations where a test can make dbops
// die, exit or stall, so kill tests hit exactly the step they name.
//
//   fault::point("backup.after_upload");
//
// does nothing unless the DBOPS_FAULT environment variable names it. The
// variable holds a comma-separated list of entries:
//
//   name             kill the process with SIGKILL, as `kill -9` would
//   name=kill        the same
//   name=exit:N      _exit(N) without running destructors or flushing (0..255)
//   name=sleep:MS    sleep MS milliseconds, then continue (to widen a window)
//
// e.g. DBOPS_FAULT=backup.after_upload or
// DBOPS_FAULT=restore.before_swap=sleep:2000,restore.after_swap=exit:3.
// The first entry naming a point wins. Before acting, one line goes to stderr:
// "fault point <name> reached: killing process" (or "exiting with code N",
// "sleeping MS ms"). Malformed entries are reported on stderr and ignored.
//
// The variable is read once, on the first call; point() is then a single
// atomic load when no fault is configured. All functions are thread-safe.
#pragma once

#include <string_view>

namespace dbops::fault {

// Declares a fault point; acts on it when DBOPS_FAULT (or set_for_testing())
// names it. Names are dotted lowercase, "<operation>.<step>".
void point(std::string_view name);

// Replaces the configuration with `spec` (DBOPS_FAULT syntax; empty disables
// every point), ignoring the environment from then on.
void set_for_testing(std::string_view spec);

}  // namespace dbops::fault
