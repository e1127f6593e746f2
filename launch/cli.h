// cli.h — the `sinkhorn` command line: subcommands parsed with Boost.Program_options.
//
//   sinkhorn reference-check CASE_DIR --dump OUT.safetensors [--mode eval|train] [--device cpu|cuda]
//   sinkhorn bench CONFIG.toml [--steps N] [--warmup N] [--device cpu|cuda] [--set table.key=value]...
//   sinkhorn train CONFIG.toml [--set table.key=value]... [--device cpu|cuda] [--resume]
//   sinkhorn sample CONFIG.toml --weights PATH [--prompt TEXT] [--len N] [--temperature T]
//                   [--filter top_k|top_p] [--thres X] [--eos ID] [--seed S] [--device cpu|cuda] [--set table.key=value]...
//   sinkhorn --help | --version
//
// Errors are thrown (sk::ConfigError, exit 2, for a bad option, config or named file; sk::Error,
// exit 1, at run time); main.cpp prints them as one line and exits with their code.
#pragma once
#include <string>
#include <vector>

namespace sk {

// Runs the command line (argv without the program name). Returns the exit code.
int run_cli(const std::vector<std::string>& args);

std::string version_string();

}  // namespace sk
