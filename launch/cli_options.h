// cli_options.h — the option parsing every `sinkhorn` subcommand shares (Boost.Program_options).
#pragma once
#include <boost/program_options.hpp>
#include <string>
#include <vector>

namespace sk {

// Parses a subcommand's options into `vm`; returns false when --help was asked (help printed to
// stdout). A parse error throws sk::Error "<cmd>: <what> (usage: sinkhorn <usage>)".
bool parse_command_options(const std::string& cmd, const std::vector<std::string>& args,
                           const boost::program_options::options_description& opts,
                           const boost::program_options::positional_options_description& pos,
                           boost::program_options::variables_map& vm, const std::string& usage);

// `sinkhorn tokenize train|encode|decode ...` (launch/tokenize.cpp).
int cmd_tokenize(const std::vector<std::string>& args);

}  // namespace sk
