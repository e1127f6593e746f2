#include "trainer/memory_check.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

#include "model/core/error.h"

namespace sk {

double estimated_parameters(const LMConfig& m) {
  const double V = static_cast<double>(m.num_tokens), D = static_cast<double>(m.dim);
  const double E = static_cast<double>(m.emb_dim_v()), H = static_cast<double>(m.heads);
  const double dh = static_cast<double>(m.dim_head_v());
  const double layers = m.weight_tie ? std::min<double>(1.0, static_cast<double>(m.depth)) : static_cast<double>(m.depth);
  const double ff = (m.ff_glu ? 12.0 : 8.0) * D * D;
  return 2.0 * V * E + (m.emb_dim_v() != m.dim ? 2.0 * E * D : 0.0) + layers * (4.0 * D * H * dh + ff);
}

namespace {

double weight_bytes(const MemoryShape& s) {
  const double p = estimated_parameters(s.model) / std::max(1, s.stages);
  return 8.0 * p + 8.0 * p / (s.zero ? std::max(1, s.replicas) : 1);  // weights + grads, m + v
}

double logits_bytes(const MemoryShape& s) {
  return 8.0 * static_cast<double>(s.micro_rows) * static_cast<double>(s.seq_len) *
         static_cast<double>(s.model.num_tokens);
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"};
  int u = 0;
  while (b >= 1024.0 && u < 8) {
    b /= 1024.0;
    ++u;
  }
  char buf[64];
  if (b >= 1e6) std::snprintf(buf, sizeof buf, "%.3g %s", b, units[u]);
  else std::snprintf(buf, sizeof buf, "%.1f %s", b, units[u]);
  return buf;
}

// A size key: its name, how to read and change it, and a generous "still reasonable" value.
struct SizeKey {
  const char* name;
  std::function<std::int64_t&(MemoryShape&)> ref;
  std::int64_t reasonable;
};

}  // namespace

double memory_lower_bound(const MemoryShape& s) { return std::max(weight_bytes(s), logits_bytes(s)); }

void check_fits_in_memory(const MemoryShape& s, std::size_t capacity_bytes, const std::string& device) {
  if (capacity_bytes == 0) return;
  const double need = memory_lower_bound(s), cap = static_cast<double>(capacity_bytes);
  if (!(need > cap)) return;
  const std::vector<SizeKey> keys = {
      {"model.dim", [](MemoryShape& m) -> std::int64_t& { return m.model.dim; }, 16384},
      {"model.depth", [](MemoryShape& m) -> std::int64_t& { return m.model.depth; }, 256},
      {"model.num_tokens", [](MemoryShape& m) -> std::int64_t& { return m.model.num_tokens; }, 1 << 18},
      {"model.heads", [](MemoryShape& m) -> std::int64_t& { return m.model.heads; }, 256},
      {"train.seq_len", [](MemoryShape& m) -> std::int64_t& { return m.seq_len; }, 1 << 20},
      {"train.batch_size", [](MemoryShape& m) -> std::int64_t& { return m.micro_rows; }, 1 << 12},
  };
  // The key whose reduction to a reasonable value (or, when every value is reasonable, halving)
  // lowers the bound most.
  const SizeKey* best = nullptr;
  double best_gain = 0.0;
  for (int pass = 0; pass < 2 && !best; ++pass)
    for (const SizeKey& k : keys) {
      MemoryShape t = s;
      std::int64_t& v = k.ref(t);
      const std::int64_t was = v;
      v = pass == 0 ? std::min(v, k.reasonable) : std::max<std::int64_t>(1, v / 2);
      if (v == was) continue;
      const double gain = need - memory_lower_bound(t);
      if (gain > best_gain) best_gain = gain, best = &k;
    }
  // model.dim_head / model.emb_dim, when set explicitly, can also be the culprit.
  std::string name = best ? best->name : "model.dim";
  std::int64_t value = s.model.dim;
  if (best) {
    MemoryShape t = s;
    value = name == "train.batch_size" ? s.batch_size : best->ref(t);
  }
  if (s.model.dim_head && *s.model.dim_head > 4096) name = "model.dim_head", value = *s.model.dim_head;
  if (s.model.emb_dim && *s.model.emb_dim > 65536) name = "model.emb_dim", value = *s.model.emb_dim;
  const bool weights = weight_bytes(s) >= logits_bytes(s);
  char pbuf[32];
  std::snprintf(pbuf, sizeof pbuf, "%.3g", estimated_parameters(s.model));
  const std::string what =
      weights ? cat("weights, gradients and AdamW state of about ", pbuf, " parameters",
                    s.stages > 1 ? cat(" over ", s.stages, " pipeline stages") : std::string())
              : cat("the logits of one micro-batch of ", s.micro_rows, " x ", s.seq_len, " tokens x ", s.model.num_tokens,
                    " classes and their gradient");
  throw ConfigError(cat(name, " = ", value, ": the run needs at least ", human_bytes(need), " per rank (", what,
                        "), more than the ", human_bytes(cap), " of memory of this ", device, " device"));
}

}  // namespace sk
