// Declarative end-to-end cases: each file under tests/e2e/cases/ is one dbops
// command run in a fresh directory, with the files it needs, its expected
// exit code and what its output must (not) contain.
//
// Format: sections introduced by "--- <kind> [arg]" lines:
//   --- file NAME          the following lines are written to NAME
//   --- env NAME=VALUE     an environment variable for the command
//   --- run                the next line is the command ("dbops ..." runs the binary)
//   --- exit N             expected exit code
//   --- stdout / --- stderr            each following line must appear in it
//   --- stdout-not / --- stderr-not    no following line may appear in it
// Lines before the first section are a description. "{dir}" in any line
// stands for the case's directory.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "support/support.hpp"

namespace dbops::testing {
namespace {

struct Expectation {
  std::string stream;  // stdout | stderr
  bool present = true;
  std::vector<std::string> lines;
};

struct Case {
  std::vector<std::pair<std::string, std::string>> files;
  std::vector<std::pair<std::string, std::string>> env;
  std::string command;
  int exit_code = 0;
  std::vector<Expectation> expectations;
};

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  std::size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

Case parse_case(const std::string& text, const std::string& dir) {
  Case c;
  std::istringstream in(text);
  std::string line, kind, arg;
  std::string* file_body = nullptr;
  Expectation* expectation = nullptr;
  bool want_command = false;
  while (std::getline(in, line)) {
    line = replace_all(line, "{dir}", dir);
    if (line.starts_with("--- ")) {
      std::istringstream header(line.substr(4));
      kind.clear();
      arg.clear();
      header >> kind;
      std::getline(header >> std::ws, arg);
      file_body = nullptr;
      expectation = nullptr;
      want_command = false;
      if (kind == "file") {
        c.files.emplace_back(arg, "");
        file_body = &c.files.back().second;
      } else if (kind == "env") {
        const auto eq = arg.find('=');
        c.env.emplace_back(arg.substr(0, eq), arg.substr(eq + 1));
      } else if (kind == "run") {
        want_command = true;
      } else if (kind == "exit") {
        c.exit_code = std::stoi(arg);
      } else if (kind == "stdout" || kind == "stderr" || kind == "stdout-not" ||
                 kind == "stderr-not") {
        c.expectations.push_back(Expectation{
            .stream = kind.substr(0, 6), .present = !kind.ends_with("-not"), .lines = {}});
        expectation = &c.expectations.back();
      } else {
        ADD_FAILURE() << "unknown section: " << line;
      }
      continue;
    }
    if (file_body) {
      *file_body += line + "\n";
    } else if (want_command && !line.empty()) {
      c.command = line;
      want_command = false;
    } else if (expectation && !line.empty()) {
      expectation->lines.push_back(line);
    }
  }
  return c;
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(source_dir() / "tests/e2e/cases")) {
    if (entry.path().extension() == ".case") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

class CliCase : public ::testing::TestWithParam<std::string> {};

TEST_P(CliCase, Runs) {
  const auto file = source_dir() / "tests/e2e/cases" / (GetParam() + ".case");
  TempDir dir;
  const Case c = parse_case(read_file(file), dir.path().string());
  ASSERT_FALSE(c.command.empty()) << file << ": no --- run section";
  for (const auto& [name, body] : c.files) dir.write(name, body);
  auto argv = split_command(c.command);
  ASSERT_EQ(argv.front(), "dbops") << "a case runs dbops";
  argv.erase(argv.begin());
  const auto result = run_dbops(argv, dir.path(), c.env);
  const std::string context = "case " + file.string() + "\nstdout:\n" + result.stdout_text +
                              "\nstderr:\n" + result.stderr_text;
  EXPECT_EQ(result.exit_code, c.exit_code) << context;
  for (const auto& e : c.expectations) {
    const std::string& text = e.stream == "stdout" ? result.stdout_text : result.stderr_text;
    for (const auto& line : e.lines) {
      if (e.present) {
        EXPECT_NE(text.find(line), std::string::npos)
            << "missing in " << e.stream << ": " << line << "\n"
            << context;
      } else {
        EXPECT_EQ(text.find(line), std::string::npos)
            << "unexpected in " << e.stream << ": " << line << "\n"
            << context;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, CliCase, ::testing::ValuesIn(case_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace_if(
                               name.begin(), name.end(), [](char ch) { return !std::isalnum(ch); },
                               '_');
                           return name;
                         });

}  // namespace
}  // namespace dbops::testing
