#include "cli/app.hpp"

int main(int argc, char** argv) {
  return dbops::cli::run(argc, argv);
}
