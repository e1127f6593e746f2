// cli.cpp — `sinkhorn` subcommands (see cli.h).
#include "launch/cli.h"

#include <boost/program_options.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "launch/config.h"
#include "launch/reference_check.h"
#include "model/backends.h"
#include "model/core/backend.h"
#include "model/core/error.h"
#include "parallel/communicator.h"
#include "trainer/bench.h"

#ifndef SK_VERSION
#define SK_VERSION "0.0.0"
#endif

namespace po = boost::program_options;

namespace sk {
namespace {

const char* kUsage =
    "usage: sinkhorn <command> [options]\n"
    "\n"
    "A C++/CUDA trainer of the Sinkhorn Transformer LM (reference: lucidrains/sinkhorn-transformer 0.11.4).\n"
    "\n"
    "commands:\n"
    "  reference-check CASE_DIR --dump OUT.safetensors [--mode eval|train] [--device cpu|cuda]\n"
    "      run one PyTorch reference case folder and write its outputs, loss and gradients\n"
    "  bench CONFIG.toml [--steps N] [--warmup N] [--device cpu|cuda] [--set table.key=value]...\n"
    "      time full training steps (forward, loss, backward, AdamW) on random tokens;\n"
    "      prints one JSON line last\n"
    "\n"
    "options:\n"
    "  -h, --help     this help (also: sinkhorn <command> --help)\n"
    "  --version      version and build features\n";

Device parse_device(const std::string& cmd, const std::string& s) {
  if (s == "cpu") return Device::cpu;
  if (s == "cuda") return Device::cuda;
  throw Error(cat(cmd, ": --device ", s, ": expected cpu or cuda"));
}

// Parses a subcommand's options; returns false when --help was asked (help printed).
bool parse(const std::string& cmd, const std::vector<std::string>& args, const po::options_description& opts,
           const po::positional_options_description& pos, po::variables_map& vm, const std::string& usage) {
  try {
    po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: sinkhorn " << usage << "\n\n" << opts;
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw Error(cat(cmd, ": ", e.what(), " (usage: sinkhorn ", usage, ")"));
  }
  return true;
}

int cmd_reference_check(const std::vector<std::string>& args) {
  const std::string usage = "reference-check CASE_DIR --dump OUT.safetensors [--mode eval|train] [--device cpu|cuda]";
  po::options_description opts("reference-check options");
  auto add = opts.add_options();
  add("help,h", "this help");
  add("case-dir", po::value<std::string>(), "reference case folder (config.toml, weights, batch)");
  add("dump", po::value<std::string>()->required(), "output safetensors file");
  add("mode", po::value<std::string>()->default_value("eval"), "eval | train");
  add("device", po::value<std::string>()->default_value("cpu"), "cpu | cuda");
  po::positional_options_description pos;
  pos.add("case-dir", 1);
  po::variables_map vm;
  if (!parse("reference-check", args, opts, pos, vm, usage)) return 0;
  SK_CHECK(vm.count("case-dir"), "reference-check: missing CASE_DIR (usage: sinkhorn ", usage, ")");
  const std::string mode = vm["mode"].as<std::string>();
  SK_CHECK(mode == "eval" || mode == "train", "reference-check: --mode ", mode, ": expected eval or train");
  const Device dev = parse_device("reference-check", vm["device"].as<std::string>());
  SK_CHECK(has_backend(dev), "reference-check: --device ", device_name(dev), ": no such backend in this process",
           dev == Device::cuda ? (cuda_compiled() ? " (no GPU visible)" : " (built without CUDA)") : "");
  return reference_check_main(vm["case-dir"].as<std::string>(), vm["dump"].as<std::string>(), mode, dev);
}

int cmd_bench(const std::vector<std::string>& args) {
  const std::string usage =
      "bench CONFIG.toml [--steps N] [--warmup N] [--device cpu|cuda] [--set table.key=value]... [--quiet]";
  po::options_description opts("bench options");
  auto add = opts.add_options();
  add("help,h", "this help");
  add("config", po::value<std::string>(), "workload TOML ([model], [train])");
  add("steps", po::value<std::int64_t>(), "timed steps (default: [train] measure_steps)");
  add("warmup", po::value<std::int64_t>(), "untimed warm-up steps (default: [train] warmup_steps)");
  add("device", po::value<std::string>()->default_value("cpu"), "cpu | cuda");
  add("set", po::value<std::vector<std::string>>()->composing(), "override a config value, e.g. train.lr=3e-4");
  add("quiet,q", "no per-step progress lines on stderr");
  po::positional_options_description pos;
  pos.add("config", 1);
  po::variables_map vm;
  if (!parse("bench", args, opts, pos, vm, usage)) return 0;
  SK_CHECK(vm.count("config"), "bench: missing CONFIG.toml (usage: sinkhorn ", usage, ")");

  const std::string path = vm["config"].as<std::string>();
  std::vector<std::string> sets;
  if (vm.count("set")) sets = vm["set"].as<std::vector<std::string>>();
  RunConfig cfg = load_run_config(path, sets);
  if (vm.count("steps")) {
    const auto n = vm["steps"].as<std::int64_t>();
    SK_CHECK(n >= 1, "bench: --steps ", n, ": must be >= 1");
    cfg.train.measure_steps = n;
  }
  if (vm.count("warmup")) {
    const auto n = vm["warmup"].as<std::int64_t>();
    SK_CHECK(n >= 0, "bench: --warmup ", n, ": must be >= 0");
    cfg.train.warmup_steps = n;
  }
  const Device dev = parse_device("bench", vm["device"].as<std::string>());
  SK_CHECK(has_backend(dev), "bench: --device ", device_name(dev), ": no such backend in this process",
           dev == Device::cuda ? (cuda_compiled() ? " (no GPU visible)" : " (built without CUDA)") : "");

  BenchSpec spec;
  spec.workload = std::filesystem::path(path).stem().string();
  spec.model = cfg.model;
  spec.batch_size = cfg.train.batch_size;
  spec.seq_len = cfg.train.seq_len;
  spec.optim.lr = cfg.train.lr;
  spec.optim.pkm_lr = cfg.train.pkm_lr;
  spec.optim.beta1 = cfg.train.adam_beta1;
  spec.optim.beta2 = cfg.train.adam_beta2;
  spec.optim.eps = cfg.train.adam_eps;
  spec.optim.weight_decay = cfg.train.weight_decay;
  spec.warmup_steps = cfg.train.warmup_steps;
  spec.measure_steps = cfg.train.measure_steps;
  spec.seed = cfg.train.seed;
  spec.device = dev;

  const bool quiet = vm.count("quiet") > 0;
  if (!quiet)
    std::fprintf(stderr, "bench %s on %s: B=%lld T=%lld, %lld warm-up + %lld timed steps\n", spec.workload.c_str(),
                 std::string(device_name(dev)).c_str(), static_cast<long long>(spec.batch_size),
                 static_cast<long long>(spec.seq_len), static_cast<long long>(spec.warmup_steps),
                 static_cast<long long>(spec.measure_steps));
  auto progress = [&](std::int64_t step, double s, double loss, bool timed) {
    if (!quiet)
      std::fprintf(stderr, "  step %3lld%s  %.4f s  loss %.4f\n", static_cast<long long>(step), timed ? "" : " (warm-up)",
                   s, loss);
  };
  BenchResult r = run_bench(spec, progress);
  std::cout << bench_result_json(r) << std::endl;
  return 0;
}

}  // namespace

std::string version_string() {
  std::ostringstream os;
  os << "sinkhorn " << SK_VERSION << " (Sinkhorn Transformer LM; reference lucidrains/sinkhorn-transformer 0.11.4)\n"
     << "build: CUDA " << (cuda_compiled() ? "yes" : "no") << ", NCCL " << (par::nccl_compiled() ? "yes" : "no")
     << "; backends here: ";
  bool first = true;
  for (Device d : available_devices()) {
    os << (first ? "" : ", ") << device_name(d);
    first = false;
  }
  return os.str();
}

int run_cli(const std::vector<std::string>& args) {
  // Global options come before the command; everything after the command is the command's.
  std::size_t i = 0;
  for (; i < args.size() && !args[i].empty() && args[i][0] == '-'; ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (a == "--version") {
      std::cout << version_string() << "\n";
      return 0;
    }
    throw Error(cat("unknown option ", a, " (see sinkhorn --help)"));
  }
  SK_CHECK(i < args.size(), "no command given (commands: reference-check, bench; see sinkhorn --help)");
  const std::string cmd = args[i];
  std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(i + 1), args.end());
  if (cmd == "reference-check") return cmd_reference_check(rest);
  if (cmd == "bench") return cmd_bench(rest);
  if (cmd == "help") {
    std::cout << kUsage;
    return 0;
  }
  throw Error(cat("unknown command '", cmd, "' (commands: reference-check, bench; see sinkhorn --help)"));
}

}  // namespace sk
