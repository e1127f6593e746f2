// MetricsLog: a fresh run truncates; appending cuts a torn last line so the next record never
// glues onto it; resuming at step S drops the records of steps after S; repairs are atomic (no
// temporary file left); the old two-argument constructor keeps working.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_train_util.h"
#include "trainer/metrics.h"

namespace sk {
namespace {

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

void put(const std::string& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

// Every line parses as a JSON object; returns their "step" values in order.
std::vector<std::int64_t> steps_of(const std::string& text) {
  std::vector<std::int64_t> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);  // throws on a glued or torn line
    out.push_back(j.at("step").get<std::int64_t>());
  }
  return out;
}

nlohmann::ordered_json rec(std::int64_t step) { return {{"step", step}, {"loss", 1.5}}; }

const char* kFive = "{\"step\":1,\"loss\":2}\n{\"step\":2,\"val_loss\":2}\n{\"step\":3,\"loss\":2}\n"
                    "{\"step\":4,\"loss\":2}\n{\"step\":5,\"sample\":\"ab\"}\n";

TEST(MetricsLog, FreshRunTruncates) {
  const std::string dir = test::fresh_dir("mlog_fresh");
  put(dir + "/metrics.jsonl", kFive);
  {
    MetricsLog log(dir, /*append=*/false);
    log.write(rec(1));
  }
  EXPECT_EQ(steps_of(slurp(dir + "/metrics.jsonl")), (std::vector<std::int64_t>{1}));
}

TEST(MetricsLog, ResumeDropsStepsAfterTheCheckpoint) {
  const std::string dir = test::fresh_dir("mlog_resume");
  put(dir + "/metrics.jsonl", kFive);
  {
    MetricsLog log(dir, /*append=*/true, /*resume_step=*/3);
    EXPECT_EQ(log.dropped_records(), 2);
    EXPECT_FALSE(log.cut_torn_line());
    log.write(rec(4));
  }
  EXPECT_EQ(steps_of(slurp(dir + "/metrics.jsonl")), (std::vector<std::int64_t>{1, 2, 3, 4}));
  // Nothing to drop: the file is left as it is (same bytes) and appended to.
  const std::string before = slurp(dir + "/metrics.jsonl");
  {
    MetricsLog log(dir, true, 10);
    EXPECT_EQ(log.dropped_records(), 0);
  }
  EXPECT_EQ(slurp(dir + "/metrics.jsonl"), before);
}

TEST(MetricsLog, TornLastLineIsCutNotGlued) {
  const std::string dir = test::fresh_dir("mlog_torn");
  // A disk-full write cut the record of step 4 short.
  put(dir + "/metrics.jsonl", "{\"step\":1,\"loss\":2}\n{\"step\":2,\"loss\":2}\n{\"step\":3,\"lo");
  {
    MetricsLog log(dir, true, 2);
    EXPECT_TRUE(log.cut_torn_line());
    log.write(rec(3));
  }
  EXPECT_EQ(steps_of(slurp(dir + "/metrics.jsonl")), (std::vector<std::int64_t>{1, 2, 3}));
  // The old constructor (append without a resume step) also cuts it.
  put(dir + "/metrics.jsonl", "{\"step\":1,\"loss\":2}\n{\"step\":7,\"loss\":");
  {
    MetricsLog log(dir, true);
    EXPECT_TRUE(log.cut_torn_line());
    log.write(rec(2));
  }
  EXPECT_EQ(steps_of(slurp(dir + "/metrics.jsonl")), (std::vector<std::int64_t>{1, 2}));
  // A complete last record without its newline is torn too (the newline is part of the record).
  put(dir + "/metrics.jsonl", "{\"step\":1,\"loss\":2}\n{\"step\":2,\"loss\":2}");
  {
    MetricsLog log(dir, true);
    log.write(rec(2));
  }
  EXPECT_EQ(steps_of(slurp(dir + "/metrics.jsonl")), (std::vector<std::int64_t>{1, 2}));
}

TEST(MetricsLog, GluedAndGarbageLinesAreDropped) {
  const std::string dir = test::fresh_dir("mlog_glued");
  // What an old version left after a torn write: two records on one line, and a blank line.
  put(dir + "/metrics.jsonl", "{\"step\":1,\"loss\":2}\n{\"step\":2,\"lo{\"step\":3,\"loss\":2}\n\n{\"step\":3,\"loss\":2}\n");
  {
    MetricsLog log(dir, true, 3);
    EXPECT_EQ(log.dropped_records(), 1);
  }
  EXPECT_EQ(steps_of(slurp(dir + "/metrics.jsonl")), (std::vector<std::int64_t>{1, 3}));
}

TEST(MetricsLog, RepairLeavesNoTemporaryFile) {
  const std::string dir = test::fresh_dir("mlog_tmp");
  put(dir + "/metrics.jsonl", kFive);
  { MetricsLog log(dir, true, 1); }
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    ++n;
    EXPECT_EQ(e.path().filename(), "metrics.jsonl");
  }
  EXPECT_EQ(n, 1);
  EXPECT_EQ(steps_of(slurp(dir + "/metrics.jsonl")), (std::vector<std::int64_t>{1}));
}

TEST(MetricsLog, AppendToAMissingFileCreatesIt) {
  const std::string dir = test::fresh_dir("mlog_new") + "/sub";
  {
    MetricsLog log(dir, true, 5);
    log.write(rec(6));
  }
  EXPECT_EQ(steps_of(slurp(dir + "/metrics.jsonl")), (std::vector<std::int64_t>{6}));
  EXPECT_THROW(MetricsLog(dir, true, -1), Error);
}

}  // namespace
}  // namespace sk
