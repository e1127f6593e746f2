// metrics.h — training metrics: the rank-0 progress line and metrics.jsonl (one JSON object per
// line) in the log folder (docs/architecture.md "Logs").
//
//   {"step":120,"loss":2.31,"lr":0.0003,"grad_norm":0.84,"tokens_per_s":5120.3,"elapsed":61.2,"eta":40.8,
//    "memory_bytes":123456789}
//   evaluation records: {"step":120,"val_loss":2.40,"elapsed":...}; samples: {"step":120,"sample":"..."}
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

namespace sk {

struct StepMetrics {
  std::int64_t step = 0;   // steps done (1-based: the first step logs step 1)
  std::int64_t total = 0;  // steps of the run
  double loss = 0, lr = 0, grad_norm = 0;
  double tokens_per_s = 0;  // over the last log interval, all ranks
  double elapsed = 0;       // seconds since this process started training
  double eta = 0;           // seconds left at the interval's pace
  std::int64_t memory_bytes = 0;  // CUDA: peak device bytes; CPU: peak resident set
};

nlohmann::ordered_json step_metrics_json(const StepMetrics& m);
// "step  120/1000 | loss 2.3100 | lr 3.00e-04 | grad 0.840 | 5.1k tok/s | mem 117.7 MiB | 1m01s elapsed | ETA 40s"
std::string progress_line(const StepMetrics& m);

std::string format_duration(double seconds);  // "1h02m", "3m05s", "41s"
std::string format_bytes(std::int64_t bytes);  // "117.7 MiB"
std::int64_t peak_rss_bytes();                 // getrusage of this process (-1 if unknown)

// Appends JSON lines to <dir>/metrics.jsonl (creates the folder). Each record is flushed.
//
// Surviving faults: on opening for append, a torn last line (a write cut short, e.g. by a full
// disk: no final '\n') is cut off, so the next record never glues onto it; with a resume step S,
// records of steps after S (written by the run after the checkpoint it resumes from) are dropped,
// so every step appears once. A file that needs either repair is rewritten to a temporary file
// beside it, fsynced and renamed over it (a crash leaves the old or the new file, never half).
// Lines that are not JSON objects with an integer "step" are dropped too (and counted).
class MetricsLog {
 public:
  MetricsLog() = default;
  // append = false truncates an existing file (a fresh run); true continues it (--resume), cutting
  // a torn last line.
  MetricsLog(const std::string& dir, bool append);
  // Resuming from a checkpoint of step `resume_step`: as append = true, and drops every record
  // with step > resume_step. (append = false ignores resume_step.)
  MetricsLog(const std::string& dir, bool append, std::int64_t resume_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  bool open() const { return f_ != nullptr; }
  const std::string& path() const { return path_; }
  void write(const nlohmann::ordered_json& record);
  // What opening repaired: records dropped (after the resume step, or malformed lines) and whether
  // a torn last line was cut. For the trainer's log line.
  std::int64_t dropped_records() const { return dropped_; }
  bool cut_torn_line() const { return cut_torn_; }

 private:
  void open_file(const std::string& dir, bool append, std::int64_t resume_step);
  std::string path_;
  std::FILE* f_ = nullptr;
  std::int64_t dropped_ = 0;
  bool cut_torn_ = false;
};

}  // namespace sk
