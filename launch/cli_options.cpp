// cli_options.cpp — see cli_options.h.
#include "launch/cli_options.h"

#include <iostream>

#include "model/core/error.h"

namespace sk {

namespace po = boost::program_options;

bool parse_command_options(const std::string& cmd, const std::vector<std::string>& args,
                           const po::options_description& opts, const po::positional_options_description& pos,
                           po::variables_map& vm, const std::string& usage) {
  try {
    po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: sinkhorn " << usage << "\n\n" << opts;
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw ConfigError(cat(cmd, ": ", e.what(), " (usage: sinkhorn ", usage, ")"));
  }
  return true;
}

}  // namespace sk
