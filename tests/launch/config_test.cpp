// Config loading and validation: values, overrides, and the one-line errors naming file, table,
// key, value and rule.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "data/data_error.h"
#include "launch/config.h"
#include "launch/dataset_spec.h"
#include "tests/tools/test_util.h"
#include "model/core/error.h"

namespace sk {
namespace {

const std::string kWorkloads = std::string(SK_SOURCE_DIR) + "/tests/bench/workloads/";

// The [model] of shared/bench/small.toml (every argument spelled out).
const char* kModel = R"([model]
num_tokens = 256
dim = 128
max_seq_len = 512
depth = 2
heads = 4
bucket_size = 32
causal = true
non_permutative = true
sinkhorn_iter = 5
n_sortcut = 0
temperature = 0.75
reversible = true
ff_chunks = 1
ff_glu = false
return_embeddings = false
ff_dropout = 0.0
attn_dropout = 0.0
attn_layer_dropout = 0.0
layer_dropout = 0.0
emb_dropout = 0.0
weight_tie = false
use_simple_sort_net = false
receives_context = false
context_n_sortcut = 0
n_local_attn_heads = 2
use_rezero = false
n_top_buckets = 2
pkm_layers = []
pkm_num_keys = 128
)";

const char* kTrain = R"(
[train]
batch_size = 4
seq_len = 512
lr = 0.0001
)";

struct TempToml {
  std::string path;
  explicit TempToml(const std::string& text) {
    char tmpl[] = "/tmp/sk_config_test_XXXXXX.toml";
    int fd = ::mkstemps(tmpl, 5);
    EXPECT_GE(fd, 0);
    ::close(fd);
    path = tmpl;
    std::ofstream(path) << text;
  }
  ~TempToml() { std::remove(path.c_str()); }
};

// Loads and returns the error message ("" when it loads).
std::string run_error(const std::string& text, const std::vector<std::string>& sets = {}) {
  TempToml f(text);
  try {
    load_run_config(f.path, sets);
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << "not one line: " << m;
    EXPECT_NE(m.find(f.path), std::string::npos) << "file not named: " << m;
    EXPECT_EQ(e.exit_code(), kExitUsage) << "a config error must exit 2: " << m;
    return m;
  }
  return "";
}

std::string with_model_line(const std::string& from, const std::string& to) {
  std::string m = kModel;
  auto p = m.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  m.replace(p, from.size(), to);
  return m + kTrain;
}

std::string with_train(const std::string& extra) { return std::string(kModel) + kTrain + extra + "\n"; }

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << "missing '" << (part) << "' in: " << (msg)

TEST(RunConfig, LoadsBenchWorkloads) {
  RunConfig small = load_run_config(kWorkloads + "small.toml");
  EXPECT_EQ(small.model.num_tokens, 256);
  EXPECT_EQ(small.model.dim, 128);
  EXPECT_EQ(small.model.depth, 2);
  EXPECT_EQ(small.model.bucket_size, 32);
  EXPECT_TRUE(small.model.causal);
  EXPECT_TRUE(small.model.reversible);
  EXPECT_EQ(small.model.n_local_attn_heads, 2);
  EXPECT_FALSE(small.model.emb_dim.has_value());
  EXPECT_TRUE(small.model.pkm_layers.empty());
  EXPECT_EQ(small.train.batch_size, 4);
  EXPECT_EQ(small.train.seq_len, 512);
  EXPECT_DOUBLE_EQ(small.train.lr, 1e-4);
  EXPECT_DOUBLE_EQ(small.train.adam_beta2, 0.999);
  EXPECT_EQ(small.train.warmup_steps, 3);
  EXPECT_EQ(small.train.measure_steps, 10);
  RunConfig lite = load_run_config(kWorkloads + "enwik8_lite.toml");
  EXPECT_EQ(lite.model.emb_dim, 128);
  EXPECT_EQ(lite.model.ff_chunks, 2);
  EXPECT_EQ(lite.train.seq_len, 1024);
}

TEST(RunConfig, LoadsEveryWorkloadInTestsBench) {
  for (const char* f : {"reversible_depth2.toml", "reversible_depth12.toml", "scaling_seq1024.toml",
                        "scaling_seq4096.toml"}) {
    EXPECT_NO_THROW(load_run_config(kWorkloads + f)) << f;
  }
}

TEST(RunConfig, AllTrainKeysAndDefaults) {
  TempToml f(std::string(kModel) + R"(
[train]
batch_size = 2
seq_len = 0
lr = 1
adam_beta1 = 0.8
adam_beta2 = 0.95
adam_eps = 1e-6
weight_decay = 0.1
warmup_steps = 0
measure_steps = 4
steps = 7
seed = 42
pkm_lr = 0.02
)");
  RunConfig c = load_run_config(f.path);
  EXPECT_EQ(c.path, f.path);
  EXPECT_EQ(c.train.seq_len, 512);  // 0 -> max_seq_len
  EXPECT_DOUBLE_EQ(c.train.lr, 1.0);  // integer accepted for a number
  EXPECT_DOUBLE_EQ(c.train.adam_beta1, 0.8);
  EXPECT_DOUBLE_EQ(c.train.adam_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.train.weight_decay, 0.1);
  EXPECT_EQ(c.train.warmup_steps, 0);
  EXPECT_EQ(c.train.measure_steps, 4);
  EXPECT_EQ(c.train.steps, 7);
  EXPECT_EQ(c.train.seed, 42u);
  EXPECT_DOUBLE_EQ(c.train.pkm_lr, 0.02);

  TempToml no_train(kModel);
  RunConfig d = load_run_config(no_train.path);
  EXPECT_EQ(d.train.seq_len, 512);
  EXPECT_EQ(d.train.batch_size, TrainConfig{}.batch_size);
}

TEST(RunConfig, OptionalModelKeys) {
  TempToml f(with_model_line("heads = 4\n", "heads = 4\ndim_head = 16\nkv_bucket_size = 32\nemb_dim = 64\n"));
  RunConfig c = load_run_config(f.path);
  EXPECT_EQ(c.model.dim_head, 16);
  EXPECT_EQ(c.model.kv_bucket_size, 32);
  EXPECT_EQ(c.model.emb_dim, 64);
  EXPECT_FALSE(c.model.context_bucket_size.has_value());
}

TEST(ConfigErrors, UnknownKeyNamesKeyValueAndSuggests) {
  std::string m = run_error(with_model_line("bucket_size = 32", "bucket_sise = 32"));
  EXPECT_HAS(m, "[model]");
  EXPECT_HAS(m, "bucket_sise = 32");
  EXPECT_HAS(m, "unknown key");
  EXPECT_HAS(m, "did you mean bucket_size?");
  m = run_error(with_train("warmup = 3"));
  EXPECT_HAS(m, "[train]: warmup = 3: unknown key");
}

TEST(ConfigErrors, LineNumberOfTheBadKey) {
  std::string m = run_error(with_model_line("depth = 2", "depth = \"two\""));
  EXPECT_HAS(m, ":5 [model]: depth = \"two\": expected an integer");
}

TEST(ConfigErrors, WrongTypes) {
  EXPECT_HAS(run_error(with_model_line("dim = 128", "dim = 128.0")), "dim = 128.0: expected an integer (write it without a decimal point)");
  EXPECT_HAS(run_error(with_model_line("causal = true", "causal = 1")), "causal = 1: expected true or false");
  EXPECT_HAS(run_error(with_model_line("temperature = 0.75", "temperature = \"hot\"")),
             "temperature = \"hot\": expected a number");
  EXPECT_HAS(run_error(with_model_line("pkm_layers = []", "pkm_layers = [1, \"2\"]")),
             "pkm_layers = [1, \"2\"]: expected an array of integers");
  EXPECT_HAS(run_error(with_model_line("pkm_layers = []", "pkm_layers = 1")), "pkm_layers = 1: expected an array");
  std::string m = run_error(std::string(kModel) + "\n[train]\nbatch_size = [4]\n");
  EXPECT_HAS(m, "[train]: batch_size = [4]: expected an integer");
  m = run_error(std::string(kModel) + "\n[train]\nlr = nan\n");
  EXPECT_HAS(m, "lr = nan: must be a finite number");
  m = run_error(std::string(kModel) + "\n[train]\nseed = -1\n");
  EXPECT_HAS(m, "[train]: seed = -1: must be >= 0");
}

TEST(ConfigErrors, BadValues) {
  std::string base = kModel;
  EXPECT_HAS(run_error(base + "\n[train]\nbatch_size = -1\n"), "[train]: batch_size = -1: must be >= 1");
  EXPECT_HAS(run_error(base + "\n[train]\nseq_len = 1024\n"), "[train]: seq_len = 1024: must be <= model.max_seq_len = 512");
  EXPECT_HAS(run_error(base + "\n[train]\nseq_len = 100\n"), "seq_len = 100: must be a multiple of model.bucket_size = 32");
  EXPECT_HAS(run_error(base + "\n[train]\nlr = 0\n"), "[train]: lr = 0: must be > 0");
  EXPECT_HAS(run_error(base + "\n[train]\nadam_beta1 = 1.0\n"), "adam_beta1 = 1: must be in [0, 1)");
  EXPECT_HAS(run_error(base + "\n[train]\nadam_eps = -1e-8\n"), "adam_eps = -1e-08: must be > 0");
  EXPECT_HAS(run_error(base + "\n[train]\nweight_decay = -0.5\n"), "weight_decay = -0.5: must be >= 0");
  EXPECT_HAS(run_error(base + "\n[train]\nwarmup_steps = -1\n"), "warmup_steps = -1: must be >= 0");
  EXPECT_HAS(run_error(base + "\n[train]\nmeasure_steps = 0\n"), "measure_steps = 0: must be >= 1");
  EXPECT_HAS(run_error(base + "\n[train]\nsteps = 0\n"), "steps = 0: must be >= 1");
  EXPECT_HAS(run_error(with_model_line("return_embeddings = false", "return_embeddings = true")),
             "[model]: return_embeddings = true");
}

TEST(ConfigErrors, ModelRulesComeFromValidateLmConfigWithTheFile) {
  std::string m = run_error(with_model_line("depth = 2", "depth = -3"));
  EXPECT_HAS(m, "[model]");
  EXPECT_HAS(m, "depth = -3");
  m = run_error(with_model_line("n_local_attn_heads = 2", "n_local_attn_heads = 9"));
  EXPECT_HAS(m, "[model]");
  EXPECT_HAS(m, "n_local_attn_heads = 9");
}

TEST(ConfigErrors, MissingAndUnknownTables) {
  std::string m = run_error(kTrain);
  EXPECT_HAS(m, "missing table [model]");
  m = run_error(with_model_line("num_tokens = 256\n", ""));
  EXPECT_HAS(m, "[model]: num_tokens: missing (required)");
  m = run_error(std::string(kModel) + kTrain + "\n[optim]\nlr = 1\n");
  EXPECT_HAS(m, "[optim]: unknown table");
  m = run_error(std::string(kModel) + kTrain + "\n[trian]\nlr = 1\n");
  EXPECT_HAS(m, "did you mean train?");
  m = run_error("lr = 3\n" + std::string(kModel));
  EXPECT_HAS(m, "lr = 3: key outside any table");
}

// A misspelt required key is reported as the unknown key with its hint, before any "missing".
TEST(ConfigErrors, UnknownKeyBeforeMissingRequired) {
  std::string m = run_error(with_model_line("dim = 128", "dimm = 64"));
  EXPECT_HAS(m, "[model]: dimm = 64: unknown key (did you mean dim?)");
  EXPECT_EQ(m.find("missing"), std::string::npos) << m;
  m = run_error(with_model_line("dim = 128\nmax_seq_len = 512", "dimm = 64"));  // two required keys absent
  EXPECT_HAS(m, "dimm = 64: unknown key (did you mean dim?)");
  m = run_error(with_model_line("dim = 128\nmax_seq_len = 512", "heads2 = 4"));  // no hint: still unknown first
  EXPECT_HAS(m, "heads2 = 4: unknown key");
  // Only missing keys: the first one in reading order.
  m = run_error(with_model_line("dim = 128\nmax_seq_len = 512", ""));
  EXPECT_HAS(m, "[model]: dim: missing (required)");
}

TEST(RunConfig, ParallelTable) {
  RunConfig d = load_run_config(kWorkloads + "small.toml");
  EXPECT_EQ(d.parallel.pipeline_stages, 1);
  EXPECT_EQ(d.parallel.schedule, "1f1b");
  EXPECT_TRUE(d.parallel.stage_layers.empty());
  EXPECT_FALSE(d.parallel.allow_shared_gpu);
  EXPECT_EQ(d.parallel.timeout_s, 300.0);
  TempToml f(std::string(kModel) + kTrain +
             "\n[parallel]\npipeline_stages = 2\nschedule = \"gpipe\"\nstage_layers = [1, 1]\n"
             "allow_shared_gpu = true\ntimeout_s = 42.5\n");
  RunConfig c = load_run_config(f.path);
  EXPECT_EQ(c.parallel.pipeline_stages, 2);
  EXPECT_EQ(c.parallel.schedule, "gpipe");
  EXPECT_EQ(c.parallel.stage_layers, (std::vector<std::int64_t>{1, 1}));
  EXPECT_TRUE(c.parallel.allow_shared_gpu);
  EXPECT_EQ(c.parallel.timeout_s, 42.5);
  RunConfig o = load_run_config(kWorkloads + "small.toml", {"parallel.allow_shared_gpu=true"});
  EXPECT_TRUE(o.parallel.allow_shared_gpu);
}

TEST(ConfigErrors, ParallelTable) {
  const std::string base = std::string(kModel) + kTrain + "\n[parallel]\n";
  EXPECT_HAS(run_error(base + "allow_shared_gpu = 1\n"), "[parallel]: allow_shared_gpu = 1: expected true or false");
  EXPECT_HAS(run_error(base + "allow_shared_gpu = \"yes\"\n"), "allow_shared_gpu = \"yes\": expected true or false");
  EXPECT_HAS(run_error(base + "timeout_s = 0\n"), "[parallel]: timeout_s = 0: must be > 0");
  EXPECT_HAS(run_error(base + "timeout_s = -5\n"), "[parallel]: timeout_s = -5: must be > 0");
  EXPECT_HAS(run_error(base + "allow_shared_gpus = true\n"), "unknown key (did you mean allow_shared_gpu?)");
}

// Every sk::Error carries its exit code; adding context keeps it.
TEST(ErrorCodes, ClassesAndContext) {
  EXPECT_EQ(Error("x").exit_code(), kExitFailure);
  EXPECT_EQ(ConfigError("x").exit_code(), kExitUsage);
  EXPECT_EQ(DivergedError("x").exit_code(), kExitDiverged);
  EXPECT_EQ(StoppedError("x").exit_code(), kExitStopped);
  EXPECT_EQ(static_cast<int>(kExitOk), 0);
  EXPECT_EQ(static_cast<int>(kExitFailure), 1);
  EXPECT_EQ(static_cast<int>(kExitUsage), 2);
  EXPECT_EQ(static_cast<int>(kExitDiverged), 3);
  EXPECT_EQ(static_cast<int>(kExitStopped), 4);
  for (int code : {1, 2, 3, 4}) {
    try {
      try {
        throw Error("inner", code);
      } catch (const Error& e) {
        rethrow_with_context(e, "outer: ");
      }
    } catch (const Error& e) {
      EXPECT_EQ(e.exit_code(), code);
      EXPECT_EQ(std::string(e.what()), "outer: inner");
    }
  }
  // A plain error from reading a user's file becomes exit 2; a derived or classified one keeps its code.
  struct DeviceError : Error {
    DeviceError() : Error("device") {}
  };
  auto code_as_config = [](const Error& in) {
    try {
      rethrow_as_config_error(in, "file: ");
    } catch (const Error& e) {
      return e.exit_code();
    }
    return -1;
  };
  EXPECT_EQ(code_as_config(Error("bad header")), kExitUsage);
  EXPECT_EQ(code_as_config(DeviceError()), kExitFailure);
  EXPECT_EQ(code_as_config(StoppedError("x")), kExitStopped);
  try {
    SK_CHECK_CONFIG(1 + 1 == 3, "arithmetic: ", 2, " != 3");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "arithmetic: 2 != 3");
  }
}

TEST(ConfigErrors, SyntaxErrorWithPosition) {
  std::string m = run_error(std::string(kModel) + "\n[train]\nlr = = 3\n");
  EXPECT_HAS(m, "TOML syntax error");
  EXPECT_HAS(m, ":33:6: TOML syntax error");
  // A table header the TOML library (3.3) asserted on (tests/fuzz/corpus/config/regress_*): a syntax error.
  EXPECT_HAS(run_error("[.0\n"), ":1:2: TOML syntax error");
  // Non-ASCII characters where whitespace may appear (the TOML library's classifier reached
  // __builtin_unreachable for them): syntax errors.
  EXPECT_HAS(run_error("\xc3\xa9 = 1\n"), ":1:1: TOML syntax error");
  EXPECT_HAS(run_error("\xef\xb8\xbb\xef\xbb\xbf\xd9\x84"), "TOML syntax error");
}

TEST(ConfigErrors, MissingFile) {
  try {
    load_run_config("/nonexistent/run.toml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_HAS(std::string(e.what()), "cannot read config file '/nonexistent/run.toml'");
    EXPECT_EQ(e.exit_code(), kExitUsage);
  }
}

TEST(Overrides, Parse) {
  ConfigOverride o = parse_override("train.lr=3e-4");
  EXPECT_EQ(o.table, "train");
  EXPECT_EQ(o.key, "lr");
  EXPECT_EQ(o.value, "3e-4");
  EXPECT_EQ(o.text, "train.lr=3e-4");
  o = parse_override(" model.pkm_layers = [1, 2] ");
  EXPECT_EQ(o.table, "model");
  EXPECT_EQ(o.key, "pkm_layers");
  EXPECT_EQ(o.value, "[1, 2]");
  o = parse_override("case.name=a=b");
  EXPECT_EQ(o.value, "a=b");
  for (const char* bad : {"train.lr", "lr=3", "a.b.c=1", "train.lr=", ".lr=1", "train.=1"}) {
    try {
      parse_override(bad);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_HAS(std::string(e.what()), std::string("--set ") + bad);
    }
  }
}

TEST(Overrides, ApplyTypedValues) {
  TempToml f(std::string(kModel) + kTrain);
  RunConfig c = load_run_config(f.path, {"train.lr=0.5", "model.pkm_layers=[1]", "model.causal=false",
                                         "train.batch_size=2", "model.emb_dim=64", "train.seed=9"});
  EXPECT_DOUBLE_EQ(c.train.lr, 0.5);
  EXPECT_EQ(c.model.pkm_layers, (std::vector<std::int64_t>{1}));
  EXPECT_FALSE(c.model.causal);
  EXPECT_EQ(c.train.batch_size, 2);
  EXPECT_EQ(c.model.emb_dim, 64);
  EXPECT_EQ(c.train.seed, 9u);
  // Later overrides win.
  c = load_run_config(f.path, {"train.lr=0.5", "train.lr=0.25"});
  EXPECT_DOUBLE_EQ(c.train.lr, 0.25);
  // A [train] table absent from the file is created.
  TempToml g(kModel);
  c = load_run_config(g.path, {"train.batch_size=3"});
  EXPECT_EQ(c.train.batch_size, 3);
}

TEST(RunConfig, TruncationAndSamplingKeys) {
  TempToml d(std::string(kModel) + kTrain);
  RunConfig c = load_run_config(d.path);
  EXPECT_FALSE(c.train.random_truncate);
  EXPECT_EQ(c.log.sample_filter, "top_k");
  EXPECT_DOUBLE_EQ(c.log.sample_filter_thres, 0.9);
  EXPECT_EQ(c.log.sample_eos, -1);
  TempToml f(std::string(kModel) + kTrain +
             "random_truncate = true\n[log]\nsample_filter = \"top_p\"\nsample_filter_thres = 0.5\nsample_eos = 10\n");
  c = load_run_config(f.path);
  EXPECT_TRUE(c.train.random_truncate);
  EXPECT_EQ(c.log.sample_filter, "top_p");
  EXPECT_DOUBLE_EQ(c.log.sample_filter_thres, 0.5);
  EXPECT_EQ(c.log.sample_eos, 10);
  c = load_run_config(d.path, {"train.random_truncate=true", "log.sample_filter=top_p", "log.sample_eos=255"});
  EXPECT_TRUE(c.train.random_truncate);
  EXPECT_EQ(c.log.sample_filter, "top_p");
  EXPECT_EQ(c.log.sample_eos, 255);
}

TEST(ConfigErrors, TruncationAndSamplingKeys) {
  const std::string base = std::string(kModel) + kTrain;
  std::string m = run_error(base + "random_truncate = 1\n");
  EXPECT_HAS(m, "[train]: random_truncate = 1: expected true or false");
  m = run_error(with_model_line("causal = true", "causal = false") + "random_truncate = true\n");
  EXPECT_HAS(m, "[train]: random_truncate = true: needs a causal model");
  m = run_error(base, {"train.random_truncate=true", "model.causal=false"});
  EXPECT_HAS(m, "[train]: random_truncate = true: needs a causal model");
  EXPECT_EQ(run_error(with_model_line("causal = true", "causal = false")), "");  // off: fine without causal

  m = run_error(base + "[log]\nsample_filter = \"top_z\"\n");
  EXPECT_HAS(m, "[log]: sample_filter = \"top_z\": must be one of \"top_k\", \"top_p\"");
  m = run_error(base + "[log]\nsample_filter = 1\n");
  EXPECT_HAS(m, "[log]: sample_filter = 1: expected a string");
  m = run_error(base + "[log]\nsample_filter_thres = 1.0\n");
  EXPECT_HAS(m, "[log]: sample_filter_thres = 1: must be in (0, 1)");
  m = run_error(base + "[log]\nsample_filter_thres = 0\n");
  EXPECT_HAS(m, "[log]: sample_filter_thres = 0: must be in (0, 1)");
  m = run_error(base + "[log]\nsample_filter_thres = \"high\"\n");
  EXPECT_HAS(m, "[log]: sample_filter_thres = \"high\": expected a number");
  m = run_error(base + "[log]\nsample_eos = 256\n");
  EXPECT_HAS(m, "[log]: sample_eos = 256: must be -1 (none) or in [0, model.num_tokens = 256)");
  m = run_error(base + "[log]\nsample_eos = -2\n");
  EXPECT_HAS(m, "[log]: sample_eos = -2: must be -1 (none) or in [0, model.num_tokens = 256)");
  m = run_error(base + "[log]\nsample_eos = 1.5\n");
  EXPECT_HAS(m, "[log]: sample_eos = 1.5: expected an integer");
  m = run_error(base, {"log.sample_filter_thres=2"});
  EXPECT_HAS(m, "[log]: sample_filter_thres = 2: must be in (0, 1)");
  m = run_error(base + "[log]\nsample_filtr = \"top_p\"\n");
  EXPECT_HAS(m, "did you mean sample_filter?");
}

TEST(RunConfig, PrecisionKey) {
  TempToml d(std::string(kModel) + kTrain);
  EXPECT_EQ(load_run_config(d.path).train.precision, "fp32");
  TempToml f(std::string(kModel) + kTrain + "precision = \"bf16\"\n");
  EXPECT_EQ(load_run_config(f.path).train.precision, "bf16");
  EXPECT_EQ(load_run_config(d.path, {"train.precision=bf16"}).train.precision, "bf16");
}

TEST(ConfigErrors, PrecisionValue) {
  const std::string base = std::string(kModel) + kTrain;
  std::string m = run_error(base + "precision = \"fp16\"\n");
  EXPECT_HAS(m, "[train]: precision = \"fp16\": must be one of \"bf16\", \"fp32\"");
  m = run_error(base + "precision = 16\n");
  EXPECT_HAS(m, "[train]: precision = 16: expected a string");
  m = run_error(base, {"train.precision=half"});
  EXPECT_HAS(m, "[train]: precision = \"half\"");
  EXPECT_HAS(m, "must be one of");
}

TEST(RunConfig, ParallelKeys) {
  const std::string base = std::string(kModel) + kTrain;
  TempToml d(base);
  const RunConfig c = load_run_config(d.path);
  EXPECT_EQ(c.parallel.pipeline_stages, 1);
  EXPECT_EQ(c.parallel.schedule, "1f1b");
  EXPECT_TRUE(c.parallel.stage_layers.empty());
  TempToml f(base + "[parallel]\npipeline_stages = 2\nschedule = \"gpipe\"\nstage_layers = [1, 1]\n");
  const RunConfig p = load_run_config(f.path);
  EXPECT_EQ(p.parallel.pipeline_stages, 2);
  EXPECT_EQ(p.parallel.schedule, "gpipe");
  EXPECT_EQ(p.parallel.stage_layers, (std::vector<std::int64_t>{1, 1}));
  EXPECT_EQ(load_run_config(d.path, {"parallel.pipeline_stages=2"}).parallel.pipeline_stages, 2);
}

TEST(ConfigErrors, ParallelRules) {
  const std::string base = std::string(kModel) + kTrain;  // depth 2
  std::string m = run_error(base + "[parallel]\npipeline_stages = 3\n");
  EXPECT_HAS(m, "[parallel]: pipeline_stages = 3: must be <= model.depth = 2");
  m = run_error(base + "[parallel]\npipeline_stages = 0\n");
  EXPECT_HAS(m, "[parallel]: pipeline_stages = 0: must be >= 1");
  m = run_error(base + "[parallel]\nschedule = \"zb1p\"\n");
  EXPECT_HAS(m, "[parallel]: schedule = \"zb1p\": must be one of \"1f1b\", \"gpipe\"");
  m = run_error(base + "[parallel]\npipeline_stages = 2\nstage_layers = [2]\n");
  EXPECT_HAS(m, "[parallel]: stage_layers = [2]: needs one entry per pipeline stage (pipeline_stages = 2), got 1");
  m = run_error(base + "[parallel]\npipeline_stages = 2\nstage_layers = [2, 1]\n");
  EXPECT_HAS(m, "[parallel]: stage_layers = [2, 1]: must sum to model.depth = 2, got 3");
  m = run_error(base + "[parallel]\npipeline_stages = 2\nstage_layers = [2, 0]\n");
  EXPECT_HAS(m, "every stage needs at least one layer");
  m = run_error(base + "[parallel]\nstages = 2\n");
  EXPECT_HAS(m, "[parallel]: stages = 2: unknown key");
  m = run_error(base, {"parallel.pipeline_stages=4"});
  EXPECT_HAS(m, "[parallel]: pipeline_stages = 4: must be <= model.depth = 2");
  // The world size must be a multiple of the stages (checked by `sinkhorn train` with its rank count).
  TempToml f(base + "[data]\npath = \"x.txt\"\n[parallel]\npipeline_stages = 2\n");
  const RunConfig c = load_run_config(f.path);
  try {
    validate_for_training(c, 3);
    ADD_FAILURE() << "3 ranks accepted for 2 stages";
  } catch (const Error& e) {
    EXPECT_HAS(std::string(e.what()), "[parallel]: pipeline_stages = 2: must divide the number of ranks (3)");
  }
  EXPECT_NO_THROW(validate_for_training(c, 4));
  try {
    validate_for_training(load_run_config(f.path, {"train.batch_size=6"}), 4);  // 2 replicas x grad_accum 1: fine
  } catch (const Error& e) {
    ADD_FAILURE() << e.what();
  }
  try {
    validate_for_training(load_run_config(f.path, {"train.batch_size=6", "train.grad_accum=2"}), 4);
    ADD_FAILURE() << "batch 6 accepted for 2 replicas x 2 micro-batches";
  } catch (const Error& e) {
    EXPECT_HAS(std::string(e.what()), "data-parallel replicas (2) * grad_accum (2) = 4");
  }
}

TEST(Overrides, ErrorsNameTheOverride) {
  std::string m = run_error(std::string(kModel) + kTrain, {"train.batch_size=2.5"});
  EXPECT_HAS(m, "[train]: batch_size = 2.5 (from --set train.batch_size=2.5): expected an integer");
  m = run_error(std::string(kModel) + kTrain, {"train.lr=fast"});
  EXPECT_HAS(m, "lr = \"fast\" (from --set train.lr=fast): expected a number");
  m = run_error(std::string(kModel) + kTrain, {"model.depht=3"});
  EXPECT_HAS(m, "depht = 3 (from --set model.depht=3): unknown key (did you mean depth?)");
  m = run_error(std::string(kModel) + kTrain, {"optim.lr=3"});
  EXPECT_HAS(m, "[optim]: unknown table");
  m = run_error(std::string(kModel) + kTrain, {"train.lr=-1"});
  EXPECT_HAS(m, "[train]: lr = -1: must be > 0");
  TempToml f(std::string(kModel) + kTrain);
  try {
    load_run_config(f.path, {"model.pkm_layers=[1"});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_HAS(std::string(e.what()), "--set model.pkm_layers=[1: value [1 is not a valid TOML value");
  }
}

// ---- reference case configs ----
std::string case_table(const std::string& kind, const std::string& extra = "") {
  return "\n[case]\nname = \"t\"\nkind = \"" + kind +
         "\"\nfeatures = [\"a\", \"b\"]\nbatch_size = 2\nseq_len = 128\nautopad = \"none\"\nloss = \"" +
         (kind == "embeddings" ? "mse_probe" : "cross_entropy") + "\"\nmode = \"eval\"\ntrain_expected = false\nseed = 7\n" +
         extra;
}

std::string case_error(const std::string& text) {
  TempToml f(text);
  try {
    load_reference_case_config(f.path);
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_NE(m.find(f.path), std::string::npos) << m;
    return m;
  }
  return "";
}

TEST(CaseConfig, LmCaseWithCheckTables) {
  TempToml f(std::string(kModel) + case_table("lm") + "\n[check_margins]\nwhatever = 1\n");
  ReferenceCaseConfig c = load_reference_case_config(f.path);
  ASSERT_TRUE(c.model.has_value());
  EXPECT_FALSE(c.encoder.has_value());
  EXPECT_EQ(c.model->dim, 128);
  EXPECT_EQ(c.info.name, "t");
  EXPECT_EQ(c.info.kind, "lm");
  EXPECT_EQ(c.info.features, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c.info.batch_size, 2);
  EXPECT_EQ(c.info.seq_len, 128);
  EXPECT_EQ(c.info.seed, 7);
}

TEST(CaseConfig, EncoderDecoder) {
  std::string enc = kModel, dec = kModel;
  enc.replace(0, 7, "[encoder]");
  enc.replace(enc.find("return_embeddings = false"), 25, "return_embeddings = true");
  dec.replace(0, 7, "[decoder]");
  dec.replace(dec.find("receives_context = false"), 24, "receives_context = true");
  TempToml f(enc + dec + case_table("encoder_decoder", "context_seq_len = 128\n"));
  ReferenceCaseConfig c = load_reference_case_config(f.path);
  ASSERT_TRUE(c.encoder && c.decoder);
  EXPECT_FALSE(c.model.has_value());
  EXPECT_TRUE(c.encoder->return_embeddings);
  EXPECT_TRUE(c.decoder->receives_context);
  EXPECT_EQ(c.info.context_seq_len, 128);

  std::string m = case_error(enc + case_table("encoder_decoder", "context_seq_len = 128\n"));
  EXPECT_HAS(m, "needs tables [encoder] and [decoder]");
  m = case_error(std::string(kModel) + dec + enc + case_table("encoder_decoder", "context_seq_len = 128\n"));
  EXPECT_HAS(m, "not [model]");
}

TEST(CaseConfig, EveryReferenceCaseLoads) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(SK_TEST_DATA) / "reference";
  if (!fs::is_directory(dir)) GTEST_SKIP() << "no reference cases under " << dir;
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const fs::path cfg = e.path() / "config.toml";
    if (!fs::exists(cfg)) continue;
    ReferenceCaseConfig c;
    ASSERT_NO_THROW(c = load_reference_case_config(cfg.string())) << cfg;
    EXPECT_EQ(c.info.name, e.path().filename().string());
    EXPECT_EQ(c.info.kind == "encoder_decoder", c.encoder.has_value());
    ++n;
  }
  EXPECT_GE(n, 1);
}

TEST(CaseConfig, Errors) {
  EXPECT_HAS(case_error(std::string(kModel) + case_table("lm", "extra = 1\n")), "[case]: extra = 1: unknown key");
  EXPECT_HAS(case_error(std::string(kModel) + case_table("language")), "[case]: kind = \"language\": must be one of");
  EXPECT_HAS(case_error(std::string(kModel) + case_table("lm").replace(case_table("lm").find("\"none\""), 6, "\"both\"")),
             "autopad = \"both\": must be one of");
  EXPECT_HAS(case_error(std::string(kModel) + case_table("embeddings")), "[model]: return_embeddings = false: must be true");
  EXPECT_HAS(case_error(std::string(kModel)), "missing table [case]");
  EXPECT_HAS(case_error(case_table("lm")), "needs a table [model]");
  EXPECT_HAS(case_error(std::string(kModel) + case_table("lm") + "\n[train]\nlr = 1\n"), "[train]: unknown table");
}

TEST(RunConfig, DataKeys) {
  const std::string base = std::string(kModel) + kTrain;
  TempToml d(base);
  RunConfig c = load_run_config(d.path);
  EXPECT_EQ(c.data.format, "bytes");
  EXPECT_TRUE(c.data.paths.empty());
  EXPECT_TRUE(c.data.tokenizer.empty());
  EXPECT_FALSE(c.log.tensorboard);
  const std::string dir = std::filesystem::path(d.path).parent_path().string();
  TempToml f(base + "[data]\nformat = \"tokens\"\npath = [\"shards/a-*.bin\", \"/abs/b.npy\"]\nval_path = \"val.bin\"\n"
                    "tokenizer = \"tok.model\"\n[log]\ntensorboard = true\neval_batches = 0\n");
  c = load_run_config(f.path);
  EXPECT_EQ(c.data.format, "tokens");
  // Relative paths (globs too) from the config file's folder; the first is also data.path.
  ASSERT_EQ(c.data.paths.size(), 2u);
  EXPECT_EQ(c.data.paths[0], dir + "/shards/a-*.bin");
  EXPECT_EQ(c.data.paths[1], "/abs/b.npy");
  EXPECT_EQ(c.data.path, c.data.paths[0]);
  EXPECT_EQ(c.data.val_paths, std::vector<std::string>{dir + "/val.bin"});
  EXPECT_EQ(c.data.tokenizer, dir + "/tok.model");
  EXPECT_TRUE(c.log.tensorboard);
  EXPECT_EQ(c.log.eval_batches, 0);
  // --set paths are from the working directory; a single string is a one-element list.
  c = load_run_config(f.path, {"data.path=x.bin", "data.tokenizer=t.model"});
  EXPECT_EQ(c.data.paths, std::vector<std::string>{"x.bin"});
  EXPECT_EQ(c.data.tokenizer, "t.model");
  TempToml g(base + "[data]\npath = \"text.txt\"\n");
  c = load_run_config(g.path);
  EXPECT_EQ(c.data.path, dir + "/text.txt");
  EXPECT_EQ(c.data.paths, std::vector<std::string>{dir + "/text.txt"});
}

TEST(ConfigErrors, DataKeys) {
  const std::string base = std::string(kModel) + kTrain;
  std::string m = run_error(base + "[data]\nformat = \"shards\"\n");
  EXPECT_HAS(m, "[data]: format = \"shards\": must be one of \"bytes\", \"tokens\"");
  m = run_error(base + "[data]\npath = 3\n");
  EXPECT_HAS(m, "[data]: path = 3: expected a string or an array of strings");
  m = run_error(base + "[data]\npath = [\"a\", 1]\n");
  EXPECT_HAS(m, "expected a string or an array of strings");
  m = run_error(base + "[data]\npath = []\n");
  EXPECT_HAS(m, "an empty array names no file");
  m = run_error(base + "[data]\npath = [\"a.txt\", \"b.txt\"]\n");
  EXPECT_HAS(m, "[data]: path = [2 paths]: format = \"bytes\" reads one text file");
  m = run_error(base + "[data]\npath = \"a.txt\"\nval_path = \"b.txt\"\n");
  EXPECT_HAS(m, "needs format = \"tokens\"");
  m = run_error(base + "[data]\npath = \"a.txt\"\ntokenizer = \"t.model\"\n");
  EXPECT_HAS(m, "[data]: tokenizer = ");
  m = run_error(base + "[log]\neval_batches = -1\n");
  EXPECT_HAS(m, "[log]: eval_batches = -1: must be >= 0");
  m = run_error(base + "[log]\ntensorboard = 1\n");
  EXPECT_HAS(m, "[log]: tensorboard = 1: expected true or false");
  m = run_error(base + "[data]\ntokeniser = \"t.model\"\n");
  EXPECT_HAS(m, "did you mean tokenizer?");
}

TEST(ConfigErrors, TrainingTakesTokensTensorBoardAndWholeSplitEvaluation) {
  const std::string base = std::string(kModel) + kTrain + "[data]\npath = \"text.txt\"\n";
  auto train_error = [](const std::string& text) {
    TempToml f(text);
    try {
      validate_for_training(load_run_config(f.path), 1);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(train_error(base), "");
  EXPECT_EQ(train_error(base + "format = \"tokens\"\n"), "");
  EXPECT_EQ(train_error(base + "[log]\neval_batches = 0\n"), "");
  EXPECT_EQ(train_error(base + "[log]\ntensorboard = true\ndir = \"runs\"\n"), "");
  EXPECT_HAS(train_error(base + "[log]\ntensorboard = true\n"), "[log]: tensorboard = true: needs log.dir");
  // Byte tokens need a vocabulary of 256; token shards only need their ids below num_tokens.
  EXPECT_HAS(train_error(with_model_line("num_tokens = 256", "num_tokens = 100") + "[data]\npath = \"t.txt\"\n"),
             "num_tokens = 100: must be >= 256");
  EXPECT_EQ(train_error(with_model_line("num_tokens = 256", "num_tokens = 100") +
                        "[data]\npath = \"t.bin\"\nformat = \"tokens\"\n"),
            "");
}

TEST(DatasetSpec, OpensTheShardsOfAConfig) {
  sk::test::TempDir d;
  std::vector<std::int64_t> ids(600);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i % 250);
  data::write_llmc_shard(d / "s-000.bin", ids.data(), 600, 256);
  data::write_llmc_shard(d / "s-001.bin", ids.data(), 600, 256);
  const std::string toml = std::string(kModel) + kTrain + "[data]\nformat = \"tokens\"\npath = \"s-*.bin\"\nval_fraction = 0.1\n";
  std::ofstream(d / "run.toml") << toml;
  RunConfig cfg = load_run_config(d / "run.toml", {"train.seq_len=256", "model.max_seq_len=256"});
  const data::DatasetSpec spec = dataset_spec(cfg);
  EXPECT_EQ(spec.paths, std::vector<std::string>{d / "s-*.bin"});
  EXPECT_EQ(spec.vocab_size, 256);
  EXPECT_EQ(spec.seq_len, 256);
  data::Dataset ds(spec);
  EXPECT_EQ(ds.train().segments(), (std::vector<std::int64_t>{600, 480}));
  EXPECT_EQ(ds.val().size(), 120);
  EXPECT_FALSE(open_run_tokenizer(cfg).has_value());
  // seq_len 1024: a shard of 600 tokens holds no window.
  cfg.train.seq_len = 1024;
  EXPECT_THROW(data::Dataset x(dataset_spec(cfg)), data::DataError);
  cfg.data.tokenizer = d / "missing.model";
  EXPECT_HAS(std::string(sk::test::error_of<Error>([&] { open_run_tokenizer(cfg); })),
             "[data]: tokenizer = \"" + d / "missing.model" + "\": tokenizer '");
}

}  // namespace
}  // namespace sk
