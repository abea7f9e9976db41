// libFuzzer harness for the config loader: any bytes must give a Config or a
// list of problems, never a crash, a hang or a leak.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace dbops::config;
  static const LoadOptions options = [] {
    LoadOptions o;
    o.load_dotenv = false;
    o.engines = {
        {.name = "postgres",
         .aliases = {"pg"},
         .file_based = false,
         .dsn_schemes = {"postgresql", "postgres"},
         .accepts_key_value_dsn = true},
        {.name = "mysql",
         .aliases = {"mariadb"},
         .file_based = false,
         .dsn_schemes = {"mysql", "mariadb"}},
        {.name = "redis", .file_based = false, .dsn_schemes = {"redis"}},
        {.name = "sqlite", .file_based = true},
    };
    return o;
  }();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<Problem> problems;
  auto config = parse_config(text, "/nonexistent/fuzz/dbops.yaml", options, &problems);
  if (config) {
    (void)to_yaml(*config);
    (void)to_json(*config);
  }
  return 0;
}
