// `sinkhorn train` in one process: the loss falls, the schedule, checkpoints (layout, bit-identical
// resume, corruption detection, no overwrite), bad input.
#include <gtest/gtest.h>

#include <csignal>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "data/batch.h"
#include "data/byte_dataset.h"
#include "data/data_error.h"
#include "data/sampler.h"
#include "model/core/backend.h"
#include "model/core/error.h"
#include "model/lm/autoregressive.h"
#include "model/lm/sinkhorn_lm.h"
#include "test_train_util.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/checkpoint/model_metadata.h"
#include "trainer/lr_schedule.h"
#include "trainer/metrics.h"
#include "trainer/memory_check.h"
#include "trainer/stage.h"
#include "trainer/stop_signal.h"

namespace sk {
namespace {

namespace fs = std::filesystem;
using test::tiny_spec;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(LrSchedule, WarmupCosineConstant) {
  LrSchedule s;
  s.lr = 1.0;
  s.min_lr = 0.1;
  s.warmup_steps = 4;
  s.decay_steps = 14;
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.25);
  EXPECT_DOUBLE_EQ(s.lr_at(3), 1.0);
  EXPECT_DOUBLE_EQ(s.lr_at(4), 1.0);
  EXPECT_NEAR(s.lr_at(9), 0.55, 1e-12);  // half way: (1 + 0.1) / 2
  EXPECT_DOUBLE_EQ(s.lr_at(14), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(100), 0.1);
  for (std::int64_t i = 5; i < 14; ++i) EXPECT_LT(s.lr_at(i), s.lr_at(i - 1));
  s.decay = LrSchedule::Decay::constant;
  EXPECT_DOUBLE_EQ(s.lr_at(100), 1.0);
  EXPECT_DOUBLE_EQ(s.scale_at(1), 0.5);
  s.min_lr = 2.0;
  EXPECT_THROW(s.check(), Error);
  EXPECT_THROW(parse_lr_decay("linear"), Error);
}

TEST(Metrics, JsonAndProgressLine) {
  StepMetrics m;
  m.step = 20;
  m.total = 300;
  m.loss = 2.5;
  m.lr = 1e-3;
  m.grad_norm = 0.75;
  m.tokens_per_s = 5120;
  m.elapsed = 61;
  m.eta = 3700;
  m.memory_bytes = 3 << 20;
  const auto j = step_metrics_json(m);
  for (const char* k : {"step", "loss", "lr", "grad_norm", "tokens_per_s", "elapsed", "eta"}) EXPECT_TRUE(j.contains(k)) << k;
  const std::string line = progress_line(m);
  EXPECT_NE(line.find("step  20/300"), std::string::npos) << line;
  EXPECT_NE(line.find("5.1k tok/s"), std::string::npos) << line;
  EXPECT_NE(line.find("3.0 MiB"), std::string::npos) << line;
  EXPECT_NE(line.find("ETA 1h01m"), std::string::npos) << line;
}

TEST(Checkpoint, Crc32KnownValue) {
  const std::string s = "123456789";
  EXPECT_EQ(crc32(s.data(), s.size()), 0xCBF43926u);
  EXPECT_EQ(checkpoint_dir_name(120), "step-00000120");
}

// 30 CPU steps of a tiny model on tinyshakespeare: the loss clearly falls, metrics are written.
TEST(Train, LossFallsOnTinyShakespeare) {
  TrainSpec s = tiny_spec();
  s.steps = 30;
  s.schedule.warmup_steps = 3;
  s.schedule.decay_steps = 30;
  s.log_interval = 10;
  s.log_dir = test::fresh_dir("loss");
  s.eval_interval = 30;
  s.eval_batches = 2;
  s.sample_interval = 30;
  s.sample_len = 8;
  s.sample_prompt = "ROMEO:";
  const TrainResult r = run_training(s);
  ASSERT_EQ(r.losses.size(), 30u);
  const double first = r.losses.front();
  const double last5 = std::accumulate(r.losses.end() - 5, r.losses.end(), 0.0) / 5;
  EXPECT_NEAR(first, std::log(256.0), 0.5);
  EXPECT_LT(last5, first - 1.5) << "first " << first << " last " << last5;
  ASSERT_EQ(r.val_losses.size(), 1u);
  EXPECT_LT(r.val_losses[0], first - 1.0);
  ASSERT_EQ(r.samples.size(), 1u);
  EXPECT_EQ(r.samples[0].rfind("ROMEO:", 0), 0u);
  EXPECT_EQ(r.tokens_seen, 30 * 4 * 32);

  std::ifstream in(s.log_dir + "/metrics.jsonl");
  std::string line;
  int steps = 0, evals = 0, samples = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) {
      ++steps;
      for (const char* k : {"step", "lr", "grad_norm", "tokens_per_s", "elapsed", "eta"}) EXPECT_TRUE(j.contains(k));
    }
    evals += j.contains("val_loss");
    samples += j.contains("sample");
  }
  EXPECT_EQ(steps, 3);
  EXPECT_EQ(evals, 1);
  EXPECT_EQ(samples, 1);
  fs::remove_all(s.log_dir);
}

// 2N steps straight vs N steps, then --resume for N more: the same losses and parameters, bit for bit.
TEST(Train, ResumeIsBitIdentical) {
  const std::string root = test::fresh_dir("resume");
  TrainSpec s = tiny_spec();
  s.model.ff_dropout = 0.1;  // randomness must resume too
  s.model.attn_dropout = 0.1;
  s.steps = 8;
  s.checkpoint_dir = root + "/straight";
  s.checkpoint_interval = 4;
  s.keep_last = 0;
  const TrainResult full = run_training(s);

  TrainSpec a = s;
  a.checkpoint_dir = root + "/split";
  a.steps = 4;  // the schedule still decays over 8 steps (decay_steps)
  const TrainResult first = run_training(a);
  TrainSpec b = a;
  b.steps = 8;
  b.resume = true;
  const TrainResult second = run_training(b);

  ASSERT_EQ(full.losses.size(), 8u);
  ASSERT_EQ(first.losses.size(), 4u);
  ASSERT_EQ(second.losses.size(), 4u);
  EXPECT_EQ(second.start_step, 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(full.losses[static_cast<std::size_t>(i)], first.losses[static_cast<std::size_t>(i)]) << i;
    EXPECT_EQ(full.losses[static_cast<std::size_t>(i + 4)], second.losses[static_cast<std::size_t>(i)]) << i;
  }
  EXPECT_EQ(full.tokens_seen, second.tokens_seen);
  for (const char* f : {"model-stage-0-of-1.safetensors", "optim-stage-0-of-1.safetensors"})
    EXPECT_EQ(test::max_abs_diff(s.checkpoint_dir + "/step-00000008/" + f, a.checkpoint_dir + "/step-00000008/" + f), 0.0)
        << f;

  // Layout: step folders, latest, the four files, index entries with checksums.
  for (const char* f : {"model-stage-0-of-1.safetensors", "optim-stage-0-of-1.safetensors", "trainer.json", "index.json"})
    EXPECT_TRUE(fs::exists(s.checkpoint_dir + "/step-00000004/" + f)) << f;
  std::ifstream latest(s.checkpoint_dir + "/latest");
  std::string name;
  latest >> name;
  EXPECT_EQ(name, "step-00000008");
  std::ifstream idx(s.checkpoint_dir + "/step-00000008/index.json");
  const auto index = nlohmann::json::parse(idx);
  const auto& emb = index.at("tensors").at("to_token_emb.weight");
  EXPECT_EQ(emb.at("file"), "model-stage-0-of-1.safetensors");
  EXPECT_EQ(emb.at("dtype"), "F32");
  EXPECT_EQ(emb.at("shape"), nlohmann::json({256, 32}));
  EXPECT_EQ(emb.at("crc32").get<std::string>().size(), 8u);
  EXPECT_TRUE(index.at("tensors").contains("exp_avg.to_token_emb.weight"));
  EXPECT_TRUE(index.at("tensors").contains("step"));
  std::ifstream tj(s.checkpoint_dir + "/step-00000008/trainer.json");
  const auto trainer = nlohmann::json::parse(tj);
  EXPECT_EQ(trainer.at("step"), 8);
  EXPECT_EQ(trainer.at("sampler").at("step"), 8);
  EXPECT_EQ(trainer.at("world_size"), 1);
  EXPECT_EQ(trainer.at("layout").at("pipeline_stages"), 1);
  EXPECT_EQ(trainer.at("layout").at("stage_layers"), nlohmann::json({1}));
  EXPECT_EQ(index.at("files").at("model-stage-0-of-1.safetensors").at("kind"), "model");
  fs::remove_all(root);
}

TEST(Train, KeepLastPrunesOldCheckpoints) {
  const std::string root = test::fresh_dir("keep");
  TrainSpec s = tiny_spec();
  s.steps = 4;
  s.checkpoint_dir = root;
  s.checkpoint_interval = 1;
  s.keep_last = 2;
  run_training(s);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  // .lock: the run's lock file (trainer/checkpoint/lock.h), left in place.
  EXPECT_EQ(names, (std::vector<std::string>{".lock", "latest", "step-00000003", "step-00000004"}));
  fs::remove_all(root);
}

TEST(Train, CorruptCheckpointIsRefused) {
  const std::string root = test::fresh_dir("corrupt");
  TrainSpec s = tiny_spec();
  s.steps = 2;
  s.checkpoint_dir = root;
  run_training(s);
  const std::string model = root + "/step-00000002/model-stage-0-of-1.safetensors";
  {
    std::fstream f(model, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-5, std::ios::end);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x5A);
    f.seekp(-5, std::ios::end);
    f.write(&c, 1);
  }
  const auto before = fs::last_write_time(model);
  TrainSpec r = s;
  r.steps = 4;
  r.resume = true;
  const std::string m = error_of([&] { run_training(r); });
  EXPECT_NE(m.find("model-stage-0-of-1.safetensors' tensor "), std::string::npos) << m;
  EXPECT_NE(m.find("checksum mismatch"), std::string::npos) << m;
  EXPECT_FALSE(fs::exists(root + "/step-00000004"));
  EXPECT_EQ(fs::last_write_time(model), before);

  // A fresh run into a folder that already holds a run is refused, nothing written.
  TrainSpec f = s;
  const std::string m2 = error_of([&] { run_training(f); });
  EXPECT_NE(m2.find("already holds a run"), std::string::npos) << m2;

  // --resume goes by the step folders, not by `latest`: with the only folder gone and `latest`
  // naming a missing one there is nothing to resume, and a fresh run is still refused.
  fs::remove_all(root + "/step-00000002");
  { std::ofstream(root + "/latest") << "step-00000099\n"; }
  const std::string m3 = error_of([&] { run_training(r); });
  EXPECT_NE(m3.find("holds no complete checkpoint"), std::string::npos) << m3;
  const std::string m4 = error_of([&] { run_training(f); });
  EXPECT_NE(m4.find("already holds a run"), std::string::npos) << m4;
  fs::remove_all(root);
}

// A stop signal before step 1 ends the run after that step with a checkpoint and StoppedError
// (exit 4); resuming it reaches the uninterrupted run's parameters bit for bit.
TEST(Train, StopSignalSavesAndResumes) {
  TrainSpec s = tiny_spec();
  s.steps = 4;
  s.checkpoint_dir = test::fresh_dir("stop_ref");
  run_training(s);
  const std::string ref = s.checkpoint_dir + "/step-00000004/model-stage-0-of-1.safetensors";

  TrainSpec t = s;
  t.checkpoint_dir = test::fresh_dir("stop");
  {
    const StopSignals guard;
    std::raise(SIGUSR1);  // recorded by the handler, acted on after the step
    ASSERT_EQ(stop_requested(), SIGUSR1);
    try {
      run_training(t);
      ADD_FAILURE() << "the run did not stop";
    } catch (const StoppedError& e) {
      EXPECT_EQ(e.exit_code(), kExitStopped);
      EXPECT_NE(std::string(e.what()).find("SIGUSR1 at step 1/4: checkpoint "), std::string::npos) << e.what();
    }
    clear_stop_request();
  }
  std::ifstream latest(t.checkpoint_dir + "/latest");
  std::string name;
  latest >> name;
  EXPECT_EQ(name, "step-00000001");
  t.resume = true;
  const TrainResult r = run_training(t);
  EXPECT_EQ(r.start_step, 1);
  EXPECT_EQ(test::max_abs_diff(ref, t.checkpoint_dir + "/step-00000004/model-stage-0-of-1.safetensors"), 0.0);
  fs::remove_all(s.checkpoint_dir);
  fs::remove_all(t.checkpoint_dir);
}

// A huge learning rate: the first update sends the weights far out, the next steps' gradient
// norms are not finite. They are skipped (no update) until max_skipped_steps in a row raise
// DivergedError; `latest` stays the last checkpoint written before, which holds finite values.
TEST(Train, NonFiniteStepsAreSkippedThenDiverge) {
  TrainSpec s = tiny_spec();
  s.steps = 30;
  s.optim.lr = s.schedule.lr = 3e7;
  s.schedule.min_lr = 0;
  s.schedule.warmup_steps = 0;
  s.max_skipped_steps = 4;
  s.checkpoint_dir = test::fresh_dir("diverge");
  s.checkpoint_interval = 1;
  s.log_dir = s.checkpoint_dir + "/logs";
  try {
    run_training(s);
    ADD_FAILURE() << "the run did not stop";
  } catch (const DivergedError& e) {
    EXPECT_EQ(e.exit_code(), kExitDiverged);
    const std::string m = e.what();
    EXPECT_NE(m.find("4 in a row, train.max_skipped_steps = 4"), std::string::npos) << m;
  }
  std::ifstream latest(s.checkpoint_dir + "/latest");
  std::string name;
  latest >> name;
  ASSERT_FALSE(name.empty());
  const TensorMap t = read_safetensors(s.checkpoint_dir + "/" + name + "/model-stage-0-of-1.safetensors");
  for (const auto& [k, v] : t) {
    if (v.dtype() != DType::f32) continue;
    for (float x : v.to_vector<float>()) ASSERT_TRUE(std::isfinite(x)) << k;
  }
  // Every step after the last checkpoint was skipped: 4 "skipped" records, none written later.
  std::ifstream in(s.log_dir + "/metrics.jsonl");
  int skipped = 0;
  for (std::string line; std::getline(in, line);) skipped += nlohmann::json::parse(line).contains("skipped");
  EXPECT_EQ(skipped, 4);
  const std::int64_t saved = std::stoll(name.substr(5));
  EXPECT_FALSE(fs::exists(s.checkpoint_dir + "/" + checkpoint_dir_name(saved + 1)));
  fs::remove_all(s.checkpoint_dir);
}

TEST(CheckpointDir, ResumePointIsTheNewestCompleteStep) {
  const std::string root = test::fresh_dir("resume_point");
  EXPECT_FALSE(find_resume_checkpoint(root));
  EXPECT_FALSE(find_resume_checkpoint(root + "/missing"));
  EXPECT_NO_THROW(refuse_existing_run(root));
  for (const char* n : {"step-00000003", "step-00000006", "step-00000009"}) fs::create_directories(root + "/" + n);
  for (const char* n : {"step-00000003", "step-00000006"}) std::ofstream(root + "/" + n + "/index.json") << "{}";
  { std::ofstream(root + "/latest") << "step-00000003\n"; }
  const auto p = find_resume_checkpoint(root);
  ASSERT_TRUE(p);
  EXPECT_EQ(fs::path(p->step_dir).filename(), "step-00000006");  // 9 is incomplete, 3 is only `latest`
  EXPECT_NE(p->note.find("step-00000009"), std::string::npos) << p->note;
  EXPECT_NE(p->note.find("'latest' names step-00000003"), std::string::npos) << p->note;
  EXPECT_EQ(step_folders(root), (std::vector<std::string>{"step-00000003", "step-00000006", "step-00000009"}));
  // A fresh run refuses step folders with or without `latest`.
  fs::remove(root + "/latest");
  try {
    refuse_existing_run(root);
    ADD_FAILURE() << "not refused";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("already holds a run (3 step folders"), std::string::npos) << e.what();
  }
  // Usable dirs: an existing folder, one to create; not a file or a path through one.
  EXPECT_NO_THROW(check_checkpoint_dir_usable(root));
  EXPECT_NO_THROW(check_checkpoint_dir_usable(root + "/a/b/c"));
  EXPECT_FALSE(fs::exists(root + "/a"));
  std::ofstream(root + "/file") << "x";
  EXPECT_THROW(check_checkpoint_dir_usable(root + "/file"), ConfigError);
  EXPECT_THROW(check_checkpoint_dir_usable(root + "/file/ck"), ConfigError);
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(root)) left.push_back(e.path().filename().string());
  EXPECT_EQ(left.size(), 4u);  // 3 step folders + file: no probe file left behind
  fs::remove_all(root);
}

// The memory bound never exceeds what the model really holds (it is a lower bound), and absurd
// sizes name their key.
TEST(MemoryCheck, LowerBoundAndTheKeyItNames) {
  for (int variant = 0; variant < 4; ++variant) {
    LMConfig m = tiny_spec().model;
    m.dim = 64;
    m.depth = 3;
    if (variant == 1) m.ff_glu = true;
    if (variant == 2) m.weight_tie = true;
    if (variant == 3) m.emb_dim = 16;
    ParamSet ps;
    SinkhornLM lm(m, ps);
    std::int64_t n = 0;
    for (const auto& p : ps.params()) n += shape_numel(p->shape);
    EXPECT_LE(estimated_parameters(m), static_cast<double>(n)) << variant;
    EXPECT_GE(estimated_parameters(m), 0.8 * static_cast<double>(n)) << variant;
  }
  MemoryShape s;
  s.model = tiny_spec().model;
  s.micro_rows = 4;
  s.batch_size = 4;
  s.seq_len = 32;
  EXPECT_NO_THROW(check_fits_in_memory(s, std::size_t{1} << 30, "cpu"));
  auto message = [](const MemoryShape& x) {
    try {
      check_fits_in_memory(x, std::size_t{1} << 30, "cpu");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  MemoryShape d = s;
  d.model.dim = 1000000000;
  EXPECT_EQ(message(d).rfind("model.dim = 1000000000: the run needs at least", 0), 0u) << message(d);
  MemoryShape v = s;
  v.model.num_tokens = 100000000000;
  EXPECT_EQ(message(v).rfind("model.num_tokens = 100000000000:", 0), 0u) << message(v);
  MemoryShape b = s;
  b.micro_rows = b.batch_size = 100000000;
  EXPECT_EQ(message(b).rfind("train.batch_size = 100000000:", 0), 0u) << message(b);
  MemoryShape l = s;
  l.model.depth = 1000000000;
  EXPECT_EQ(message(l).rfind("model.depth = 1000000000:", 0), 0u) << message(l);
}

TEST(Train, BadInput) {
  TrainSpec s = tiny_spec();
  s.data_path = "/nonexistent/corpus.txt";
  const std::string m = error_of([&] { run_training(s); });
  EXPECT_NE(m.find("/nonexistent/corpus.txt"), std::string::npos) << m;

  TrainSpec r = tiny_spec();
  r.checkpoint_dir = test::fresh_dir("noresume");
  r.resume = true;
  const std::string m2 = error_of([&] { run_training(r); });
  EXPECT_NE(m2.find("holds no complete checkpoint"), std::string::npos) << m2;
  fs::remove_all(r.checkpoint_dir);

  TrainSpec b = tiny_spec();
  b.batch_size = 3;
  b.grad_accum = 2;
  EXPECT_NE(error_of([&] { run_training(b); }).find("divisible"), std::string::npos);
}

// checkpoint.init_from: a fresh run starts from another run's weights. The loaded parameters are
// the file's bytes exactly, and the first-step loss equals those weights' loss on the first batch.
TEST(Train, InitFromLoadsWeightsByName) {
  const std::string root = test::fresh_dir("init_from");
  TrainSpec a = tiny_spec();
  a.steps = 3;
  a.checkpoint_dir = root + "/a";
  const TrainResult ra = run_training(a);
  const std::string model_file = ra.last_checkpoint + "/model-stage-0-of-1.safetensors";
  ASSERT_TRUE(fs::exists(model_file));

  // The loader (checkpoint dir -> latest -> its model files, or one file): byte-for-byte the same tensors.
  for (const std::string& src : {a.checkpoint_dir, ra.last_checkpoint, model_file}) {
    ParamSet ps;
    SinkhornLM lm(a.model, ps);
    ps.finalize(Device::cpu, /*seed=*/99);
    EXPECT_EQ(load_model_weights(src, ps), src == model_file ? model_file : ra.last_checkpoint);
    const std::string copy = root + "/copy.safetensors";
    Metadata meta = model_metadata(a.model);  // what checkpoints write beside the tensors
    meta["format"] = "pt";
    save_params_file(copy, ps, /*with_aliases=*/true, meta);
    std::ifstream f1(model_file, std::ios::binary), f2(copy, std::ios::binary);
    const std::string b1((std::istreambuf_iterator<char>(f1)), {}), b2((std::istreambuf_iterator<char>(f2)), {});
    EXPECT_EQ(b1, b2) << src;
  }

  // A fresh run (another seed: its own init would differ) initialised from a's final weights.
  TrainSpec b = tiny_spec();
  b.steps = 1;
  b.seed = 123;
  b.checkpoint_dir = root + "/b";
  b.init_from = a.checkpoint_dir;
  const TrainResult rb = run_training(b);
  ASSERT_EQ(rb.losses.size(), 1u);
  // The same loss computed by hand: a's weights, b's first batch and context.
  {
    ParamSet ps;
    SinkhornLM lm(b.model, ps);
    ps.finalize(Device::cpu, b.seed);
    load_model_weights(model_file, ps);
    ARConfig arc;
    arc.pad_value = 0;
    arc.ignore_index = -100;
    arc.pad_left = true;
    AutoregressiveWrapper ar(lm, arc);
    data::ByteDataset ds(b.data_path, b.val_fraction);
    data::SamplerConfig sc;
    sc.seq_len = b.seq_len;
    sc.global_batch = b.batch_size;
    sc.seed = b.seed;
    sc.order = b.order;
    data::Sampler sampler(ds.train().size, sc);
    const data::TokenBatch tb = data::assemble_batch(ds.train(), sampler.next(), b.seq_len);
    Context ctx;
    ctx.be = &backend_for(Device::cpu);
    ctx.training = true;
    ctx.seed = b.seed;
    ctx.step = 0;
    ctx.micro = 0;
    ARLossStash st;
    const double want = static_cast<double>(
        ar.loss(Tensor::from_vector(tb.tokens, {tb.rows, tb.cols}), Tensor(), false, st, ctx).item());
    EXPECT_NEAR(rb.losses[0], want, 1e-6);
  }
  // Without init_from the same run starts elsewhere.
  TrainSpec c = b;
  c.init_from.clear();
  c.checkpoint_dir.clear();
  EXPECT_GT(std::abs(run_training(c).losses[0] - rb.losses[0]), 1e-3);

  // Wrong shapes and missing paths: one line naming the option, the file and the tensor.
  TrainSpec w = b;
  w.model.dim = 48;
  w.checkpoint_dir = root + "/w";
  const std::string m = error_of([&] { run_training(w); });
  EXPECT_NE(m.find("checkpoint.init_from"), std::string::npos) << m;
  EXPECT_NE(m.find("[model] dim = 48 in the config, 32 in the weights' metadata"), std::string::npos) << m;
  EXPECT_NE(m.find(ra.last_checkpoint), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  EXPECT_FALSE(fs::exists(w.checkpoint_dir));
  w = b;
  w.init_from = root + "/nope";
  w.checkpoint_dir = root + "/w";
  const std::string m2 = error_of([&] { run_training(w); });
  EXPECT_NE(m2.find(root + "/nope"), std::string::npos) << m2;
  EXPECT_NE(m2.find("no such file or folder"), std::string::npos) << m2;
  fs::remove_all(root);
}

// Gradient accumulation: 2 micro-batches of 2 rows = 1 batch of 4 rows (dropout 0), to float rounding.
TEST(Train, GradAccumMatchesOneBigBatch) {
  TrainSpec a = tiny_spec();
  a.steps = 4;
  TrainSpec b = a;
  b.grad_accum = 2;
  const TrainResult ra = run_training(a), rb = run_training(b);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_NEAR(ra.losses[i], rb.losses[i], 2e-4) << i;
}

// random_truncate = true: a short run trains on variable-length prefixes, the loss is finite, falls,
// and differs from the untruncated run; samples use top_p and stop at sample_eos.
TEST(Train, RandomTruncateAndTopPEosSampling) {
  TrainSpec s = tiny_spec();
  s.steps = 12;
  s.schedule.decay_steps = 12;
  s.random_truncate = true;
  s.sample_interval = 12;
  s.sample_len = 64;
  s.sample_prompt = "ROMEO:";
  s.sample_filter = SampleFilter::top_p;
  s.sample_filter_thres = 0.5;
  s.sample_eos = ' ';  // the most frequent byte: a 64-byte sample meets it
  const TrainResult r = run_training(s);
  ASSERT_EQ(r.losses.size(), 12u);
  for (double l : r.losses) EXPECT_TRUE(std::isfinite(l)) << l;
  const double last3 = std::accumulate(r.losses.end() - 3, r.losses.end(), 0.0) / 3;
  EXPECT_LT(last3, r.losses.front() - 0.3) << "first " << r.losses.front() << " last " << last3;

  TrainSpec plain = s;
  plain.random_truncate = false;
  plain.steps = 2;
  plain.sample_interval = 0;
  const TrainResult rp = run_training(plain);
  EXPECT_NE(rp.losses[0], r.losses[0]);  // the first step already sees truncated rows

  ASSERT_EQ(r.samples.size(), 1u);
  const std::string& text = r.samples[0];
  ASSERT_EQ(text.rfind("ROMEO:", 0), 0u) << text;
  const std::string gen = text.substr(6);
  ASSERT_FALSE(gen.empty());
  EXPECT_EQ(gen.find(' '), gen.size() - 1) << "generation must stop at the first eos: '" << gen << "'";
  EXPECT_LT(gen.size(), 64u) << gen;

  TrainSpec bad = tiny_spec();
  bad.model.causal = false;
  bad.random_truncate = true;
  EXPECT_NE(error_of([&] { run_training(bad); }).find("random_truncate needs a causal model"), std::string::npos);
  TrainSpec bad_eos = tiny_spec();
  bad_eos.sample_eos = 256;
  EXPECT_NE(error_of([&] { run_training(bad_eos); }).find("sample_eos must be in [0, num_tokens = 256)"),
            std::string::npos);
}

// A stage's micro-batch (trainer/stage.h: prepare_micro_batch + Stage on the whole model) against
// the autoregressive wrapper: with random truncation it draws the wrapper's own lengths, and on
// data without byte 0 a wrapper whose ignore_index is its pad value (padding ignored) gives the
// same loss and gradients; without truncation, the wrapper's plain loss.
TEST(Train, StageMicroBatchMatchesTheWrapper) {
  TrainSpec s = tiny_spec();
  s.model.depth = 2;
  ParamSet ps;
  Stage stage(s.model, ps, LayerRange{});
  ps.finalize(Device::cpu, 3);
  AutoregressiveWrapper pad_ignoring_ar(stage.lm(), ARConfig{});
  const std::int64_t B = 4, n = 33;
  std::vector<std::int64_t> xs(static_cast<std::size_t>(B * n));
  for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = 1 + static_cast<std::int64_t>((i * 37 + 11) % 255);
  const Tensor x = Tensor::from_vector(xs, {B, n}, Device::cpu);
  Context c;
  c.be = &backend_for(Device::cpu);
  c.training = true;
  c.seed = 5;
  c.step = 2;
  c.micro = 8;
  MicroBatchOptions o;
  o.truncate = true;
  o.multiple = s.model.bucket_size;
  for (const bool truncate : {true, false}) {
    o.truncate = truncate;
    const MicroBatch mb = prepare_micro_batch(xs, B, n, o, c);
    if (truncate) {
      EXPECT_LT(mb.T, n - 1);  // some truncation happened (lengths drawn from 2 … 32 for 4 rows)
      EXPECT_GT(mb.pad, 0);    // and the rows were left-padded to a bucket multiple
    }
    MicroState st;
    ps.zero_grad();
    stage.forward(mb, Tensor(), st, true, 1.f);
    stage.backward(mb, Tensor(), st);
    const std::vector<float> ga = ps.flat_grads().to_vector<float>();
    ARLossStash sb;
    ps.zero_grad();
    const float lb = pad_ignoring_ar.loss(x, Tensor(), truncate, sb, c).item();
    EXPECT_EQ(sb.T, mb.T);
    pad_ignoring_ar.loss_backward(sb, c, 1.f);
    const std::vector<float> gb = ps.flat_grads().to_vector<float>();
    EXPECT_NEAR(st.loss_t.item(), lb, 1e-6) << truncate;
    ASSERT_EQ(ga.size(), gb.size());
    double diff = 0, norm = 0;
    for (std::size_t i = 0; i < ga.size(); ++i) {
      diff = std::max(diff, static_cast<double>(std::abs(ga[i] - gb[i])));
      norm += static_cast<double>(ga[i]) * ga[i];
    }
    EXPECT_GT(norm, 0.0);
    EXPECT_LT(diff, 1e-6) << truncate;
  }
}

}  // namespace
}  // namespace sk
