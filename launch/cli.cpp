// cli.cpp — `sinkhorn` subcommands (see cli.h).
#include "launch/cli.h"

#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "data/sampler.h"
#include "launch/config.h"
#include "launch/reference_check.h"
#include "model/backends.h"
#include "model/core/backend.h"
#include "model/core/error.h"
#include "parallel/communicator.h"
#include "trainer/bench.h"
#include "trainer/trainer.h"

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
    "  train CONFIG.toml [--set table.key=value]... [--device cpu|cuda] [--resume]\n"
    "      train the LM on a text file ([data], [train], [log], [checkpoint] tables); one process,\n"
    "      or data-parallel under mpirun / srun (one rank per GPU, or CPU ranks)\n"
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

// Whether this process was started by an MPI launcher (mpirun, srun with PMI/PMIx): only then
// does `train` initialise MPI.
bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}

// Whether every rank has a GPU of its own: one rank per node, or each rank's CUDA_VISIBLE_DEVICES
// names one device and no two ranks of a node name the same one (launch/scripts/mpirun.sh and
// Slurm's --gpus-per-task=1 arrange that). Collective over the world.
bool one_gpu_per_rank(const par::World& world) {
  const char* cvd = std::getenv("CUDA_VISIBLE_DEVICES");
  const std::string vis = cvd ? cvd : "";
  const bool single = cvd && !vis.empty() && vis.find(',') == std::string::npos;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  const unsigned long long key = std::hash<std::string>{}(std::string(host) + "|" + (single ? vis : "*"));
  std::vector<unsigned long long> keys(static_cast<std::size_t>(world.size()));
  MPI_CHECK(MPI_Allgather(&key, 1, MPI_UNSIGNED_LONG_LONG, keys.data(), 1, MPI_UNSIGNED_LONG_LONG, world.comm().get()));
  int my_single = single ? 1 : 0, all_single = 0;
  MPI_CHECK(MPI_Allreduce(&my_single, &all_single, 1, MPI_INT, MPI_MIN, world.comm().get()));
  std::sort(keys.begin(), keys.end());
  const bool distinct = std::adjacent_find(keys.begin(), keys.end()) == keys.end();
  int one_per_node = world.local_size() == 1 ? 1 : 0, all_one_per_node = 0;
  MPI_CHECK(MPI_Allreduce(&one_per_node, &all_one_per_node, 1, MPI_INT, MPI_MIN, world.comm().get()));
  return all_one_per_node == 1 || (all_single == 1 && distinct);
}

nlohmann::json config_snapshot(const RunConfig& cfg, Device dev, int world_size) {
  nlohmann::json j;
  j["file"] = cfg.path;
  j["toml"] = cfg.text;
  j["overrides"] = cfg.overrides;
  j["device"] = std::string(device_name(dev));
  j["world_size"] = world_size;
  j["resolved"] = {{"batch_size", cfg.train.batch_size}, {"seq_len", cfg.train.seq_len},
                   {"steps", cfg.train.steps},           {"grad_accum", cfg.train.grad_accum},
                   {"lr", cfg.train.lr},                 {"seed", cfg.train.seed},
                   {"data_path", cfg.data.path}};
  return j;
}

TrainSpec train_spec(const RunConfig& cfg, Device dev, bool resume) {
  TrainSpec s;
  s.name = std::filesystem::path(cfg.path).stem().string();
  s.model = cfg.model;
  const TrainConfig& t = cfg.train;
  s.batch_size = t.batch_size;
  s.seq_len = t.seq_len;
  s.steps = t.steps;
  s.grad_accum = t.grad_accum;
  s.grad_clip = t.grad_clip;
  s.random_truncate = t.random_truncate;
  s.optim.lr = t.lr;
  s.optim.pkm_lr = t.pkm_lr;
  s.optim.beta1 = t.adam_beta1;
  s.optim.beta2 = t.adam_beta2;
  s.optim.eps = t.adam_eps;
  s.optim.weight_decay = t.weight_decay;
  s.schedule.lr = t.lr;
  s.schedule.min_lr = t.min_lr;
  s.schedule.warmup_steps = t.lr_warmup_steps;
  s.schedule.decay_steps = std::max(t.lr_decay_steps > 0 ? t.lr_decay_steps : t.steps, t.lr_warmup_steps);
  s.schedule.decay = parse_lr_decay(t.lr_decay);
  s.seed = t.seed;
  s.data_path = cfg.data.path;
  s.val_fraction = cfg.data.val_fraction;
  s.order = data::parse_sample_order(cfg.data.order);
  s.log_interval = cfg.log.interval;
  s.log_dir = cfg.log.dir;
  s.eval_interval = cfg.log.eval_interval;
  s.eval_batches = cfg.log.eval_batches;
  s.sample_interval = cfg.log.sample_interval;
  s.sample_len = cfg.log.sample_len;
  s.sample_prompt = cfg.log.sample_prompt;
  s.sample_temperature = cfg.log.sample_temperature;
  s.sample_filter = cfg.log.sample_filter == "top_p" ? SampleFilter::top_p : SampleFilter::top_k;
  s.sample_filter_thres = cfg.log.sample_filter_thres;
  if (cfg.log.sample_eos >= 0) s.sample_eos = cfg.log.sample_eos;
  s.checkpoint_dir = cfg.checkpoint.dir;
  s.checkpoint_interval = cfg.checkpoint.interval;
  s.keep_last = cfg.checkpoint.keep_last;
  s.resume = resume;
  s.device = dev;
  return s;
}

int train_main(const RunConfig& cfg, Device dev, bool resume, par::World* world) {
  const int ranks = world ? world->size() : 1;
  validate_for_training(cfg, ranks);
  TrainSpec spec = train_spec(cfg, dev, resume);
  spec.config_snapshot = config_snapshot(cfg, dev, ranks);
  std::unique_ptr<par::Communicator> comm;
  if (world && ranks > 1) {
    const bool nccl = dev == Device::cuda && par::nccl_compiled() && one_gpu_per_rank(*world);
    if (dev == Device::cuda && !nccl && world->rank() == 0)
      std::fprintf(stderr,
                   "sinkhorn: warning: GPU ranks share devices (or NCCL is not built): gradients go over MPI; "
                   "give each rank its own GPU (launch/scripts/mpirun.sh, or srun --gpus-per-task=1) for NCCL\n");
    comm = nccl ? par::make_nccl_communicator(world->comm(), 0) : par::make_mpi_communicator(world->comm());
    if (world->rank() == 0)
      std::fprintf(stdout, "data parallel: %d ranks, %s communicator\n", ranks, comm->kind());
  }
  TrainResult r = run_training(spec, comm.get());
  (void)r;
  return 0;
}

int cmd_train(const std::vector<std::string>& args) {
  const std::string usage = "train CONFIG.toml [--set table.key=value]... [--device cpu|cuda] [--resume]";
  po::options_description opts("train options");
  auto add = opts.add_options();
  add("help,h", "this help");
  add("config", po::value<std::string>(), "run TOML ([model], [train], [data], [log], [checkpoint])");
  add("set", po::value<std::vector<std::string>>()->composing(), "override a config value, e.g. train.lr=3e-4");
  add("device", po::value<std::string>()->default_value("cpu"), "cpu | cuda");
  add("resume", "continue from <checkpoint.dir>/latest (bit-identical to an uninterrupted run)");
  po::positional_options_description pos;
  pos.add("config", 1);
  po::variables_map vm;
  if (!parse("train", args, opts, pos, vm, usage)) return 0;
  SK_CHECK(vm.count("config"), "train: missing CONFIG.toml (usage: sinkhorn ", usage, ")");
  std::vector<std::string> sets;
  if (vm.count("set")) sets = vm["set"].as<std::vector<std::string>>();
  const Device dev = parse_device("train", vm["device"].as<std::string>());
  const bool resume = vm.count("resume") > 0;

  if (!launched_by_mpi()) {
    const RunConfig cfg = load_run_config(vm["config"].as<std::string>(), sets);
    SK_CHECK(has_backend(dev), "train: --device ", device_name(dev), ": no such backend in this process",
             dev == Device::cuda ? (cuda_compiled() ? " (no GPU visible)" : " (built without CUDA)") : "");
    return train_main(cfg, dev, resume, nullptr);
  }
  // Under an MPI launcher. On an error the World is left running (not finalised) so that main()
  // can report it and MPI_Abort the other ranks instead of leaving them in a collective.
  auto* world = new par::World(nullptr, nullptr);
  try {
    const RunConfig cfg = load_run_config(vm["config"].as<std::string>(), sets);
    SK_CHECK(has_backend(dev), "train: --device ", device_name(dev), ": no such backend in this process",
             dev == Device::cuda ? (cuda_compiled() ? " (no GPU visible)" : " (built without CUDA)") : "");
    const int rc = train_main(cfg, dev, resume, world);
    world->barrier();
    delete world;
    return rc;
  } catch (...) {
    if (world->size() == 1) delete world;  // nobody to abort: finalise normally
    throw;
  }
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
  SK_CHECK(i < args.size(), "no command given (commands: reference-check, bench, train; see sinkhorn --help)");
  const std::string cmd = args[i];
  std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(i + 1), args.end());
  if (cmd == "reference-check") return cmd_reference_check(rest);
  if (cmd == "bench") return cmd_bench(rest);
  if (cmd == "train") return cmd_train(rest);
  if (cmd == "help") {
    std::cout << kUsage;
    return 0;
  }
  throw Error(cat("unknown command '", cmd, "' (commands: reference-check, bench, train; see sinkhorn --help)"));
}

}  // namespace sk
