// metrics.cpp — see metrics.h.
#include "trainer/metrics.h"

#include <sys/resource.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>

#include "model/core/error.h"
#include "trainer/file_io.h"

namespace sk {

nlohmann::ordered_json step_metrics_json(const StepMetrics& m) {
  nlohmann::ordered_json j;
  j["step"] = m.step;
  j["loss"] = m.loss;
  j["lr"] = m.lr;
  j["grad_norm"] = m.grad_norm;
  j["tokens_per_s"] = m.tokens_per_s;
  j["elapsed"] = m.elapsed;
  j["eta"] = m.eta;
  j["memory_bytes"] = m.memory_bytes;
  return j;
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) s = 0;
  const auto t = static_cast<long long>(std::llround(s));
  char buf[48];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%lldh%02lldm", t / 3600, (t % 3600) / 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%llds", t);
  return buf;
}

std::string format_bytes(std::int64_t b) {
  if (b < 0) return "?";
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024.0 && u < 4) v /= 1024.0, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string progress_line(const StepMetrics& m) {
  char tok[32];
  if (m.tokens_per_s >= 1e6) std::snprintf(tok, sizeof tok, "%.2fM", m.tokens_per_s / 1e6);
  else if (m.tokens_per_s >= 1e3) std::snprintf(tok, sizeof tok, "%.1fk", m.tokens_per_s / 1e3);
  else std::snprintf(tok, sizeof tok, "%.0f", m.tokens_per_s);
  char buf[320];
  std::snprintf(buf, sizeof buf, "step %*lld/%lld | loss %.4f | lr %.2e | grad %.3f | %s tok/s | mem %s | %s | ETA %s",
                static_cast<int>(std::to_string(m.total).size()), static_cast<long long>(m.step),
                static_cast<long long>(m.total), m.loss, m.lr, m.grad_norm, tok, format_bytes(m.memory_bytes).c_str(),
                format_duration(m.elapsed).c_str(), format_duration(m.eta).c_str());
  return buf;
}

std::int64_t peak_rss_bytes() {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
  return static_cast<std::int64_t>(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

namespace {

// The kept lines of an existing metrics.jsonl (see metrics.h), and what was removed.
struct Repair {
  std::string kept;
  std::int64_t dropped = 0;
  bool torn = false;
};

Repair repair_log(const std::string& text, std::optional<std::int64_t> resume_step) {
  Repair r;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {  // no final newline: a torn write
      r.torn = true;
      break;
    }
    const std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    const bool ok = j.is_object() && j.contains("step") && j["step"].is_number_integer();
    if (!ok || (resume_step && j["step"].get<std::int64_t>() > *resume_step)) {
      ++r.dropped;
      continue;
    }
    r.kept.append(line);
    r.kept.push_back('\n');
  }
  return r;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream os;
  os << in.rdbuf();
  SK_CHECK(!in.bad(), "cannot read '", path, "': ", std::strerror(errno));
  return os.str();
}

}  // namespace

MetricsLog::MetricsLog(const std::string& dir, bool append) { open_file(dir, append, -1); }

MetricsLog::MetricsLog(const std::string& dir, bool append, std::int64_t resume_step) {
  SK_CHECK(resume_step >= 0, "MetricsLog: resume step ", resume_step, " must be >= 0");
  open_file(dir, append, resume_step);
}

void MetricsLog::open_file(const std::string& dir, bool append, std::int64_t resume_step) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  SK_CHECK(!ec, "log.dir '", dir, "': cannot create the folder: ", ec.message());
  path_ = (std::filesystem::path(dir) / "metrics.jsonl").string();
  if (append && std::filesystem::exists(path_)) {
    const std::string text = read_all(path_);
    const Repair r = repair_log(text, resume_step >= 0 ? std::optional<std::int64_t>(resume_step) : std::nullopt);
    if (r.torn || r.dropped > 0) replace_file_atomically(path_, r.kept);
    dropped_ = r.dropped;
    cut_torn_ = r.torn;
  }
  f_ = std::fopen(path_.c_str(), append ? "a" : "w");
  SK_CHECK(f_ != nullptr, "cannot open '", path_, "' for writing: ", std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (f_) std::fclose(f_);
}

void MetricsLog::write(const nlohmann::ordered_json& record) {
  if (!f_) return;
  const std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  SK_CHECK(std::fwrite(line.data(), 1, line.size(), f_) == line.size() && std::fflush(f_) == 0,
           "cannot write '", path_, "': ", std::strerror(errno));
}

}  // namespace sk
