#include "autoregressive.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace sk {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Indices sorted by descending value, ties by ascending index.
std::vector<std::size_t> order_desc(const std::vector<float>& v) {
  std::vector<std::size_t> o(v.size());
  std::iota(o.begin(), o.end(), std::size_t{0});
  std::stable_sort(o.begin(), o.end(), [&](std::size_t a, std::size_t b) { return v[a] > v[b]; });
  return o;
}
}  // namespace

void filter_top_k(std::vector<float>& logits, double thres) {
  const auto V = static_cast<std::int64_t>(logits.size());
  auto k = static_cast<std::int64_t>((1.0 - thres) * static_cast<double>(V));  // int() as in the reference
  k = std::clamp<std::int64_t>(k, 1, V);                                       // D15: keep at least one
  std::vector<std::size_t> o = order_desc(logits);
  for (std::int64_t i = k; i < V; ++i) logits[o[static_cast<std::size_t>(i)]] = kNegInf;
}

void filter_top_p(std::vector<float>& logits, double thres) {
  if (logits.empty()) return;
  std::vector<std::size_t> o = order_desc(logits);
  const double mx = logits[o[0]];
  double z = 0.0;
  for (float l : logits) z += std::exp(static_cast<double>(l) - mx);
  double cum = 0.0;
  std::vector<bool> remove(logits.size(), false);
  for (std::size_t i = 0; i < o.size(); ++i) {
    if (i > 0 && cum > 1.0 - thres) remove[o[i]] = true;  // cumulative probability *before* this entry
    cum += std::exp(static_cast<double>(logits[o[i]]) - mx) / z;
  }
  for (std::size_t i = 0; i < logits.size(); ++i)
    if (remove[i]) logits[i] = kNegInf;
}

std::int64_t sample_from_logits(const std::vector<float>& logits, double temperature, float u) {
  SK_CHECK(temperature > 0.0, "generate: temperature must be > 0, got ", temperature);
  double mx = -std::numeric_limits<double>::infinity();
  for (float l : logits) mx = std::max(mx, static_cast<double>(l) / temperature);
  SK_CHECK(std::isfinite(mx), "generate: every logit was filtered out");
  std::vector<double> p(logits.size());
  double z = 0.0;
  for (std::size_t i = 0; i < logits.size(); ++i) z += p[i] = std::exp(static_cast<double>(logits[i]) / temperature - mx);
  const double target = static_cast<double>(u) * z;
  double cum = 0.0;
  std::int64_t last = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] <= 0.0) continue;
    last = static_cast<std::int64_t>(i);
    cum += p[i];
    if (cum > target) return last;
  }
  return last;  // rounding at the top end
}

Truncated random_truncate(const Tensor& x, const Tensor& mask, std::int64_t pad_value, RngKey key) {
  SK_CHECK(x.ndim() == 2 && x.dtype() == DType::i64, "random_truncate: expected i64 [B, n], got ", x.str());
  const std::int64_t B = x.dim(0), n = x.dim(1);
  SK_CHECK(n >= 3, "random_truncate: sequences need at least 3 tokens (lengths are drawn from 2 … n−1), got ", n);
  std::vector<std::int64_t> xs = x.to_vector<std::int64_t>();
  std::vector<std::uint8_t> ms;
  if (mask.defined()) {
    SK_CHECK(mask.dtype() == DType::u8 && mask.shape() == x.shape(), "random_truncate: mask must be u8 ",
             shape_str(x.shape()), ", got ", mask.str());
    ms = mask.to_vector<std::uint8_t>();
  }
  SK_CHECK(key.rows == 0 || key.rows == static_cast<std::uint64_t>(B), "random_truncate: a per-row key for ", key.rows,
           " rows used on ", B, " rows");
  key = philox_resolve(key, static_cast<std::uint64_t>(B));
  std::vector<std::int64_t> len(static_cast<std::size_t>(B));
  std::int64_t Lmax = 0;
  for (std::int64_t b = 0; b < B; ++b) {
    const float u = philox_uniform_at(key, static_cast<std::uint64_t>(b));
    std::int64_t L = 2 + static_cast<std::int64_t>(u * static_cast<float>(n - 2));
    L = std::min(L, n - 1);
    len[static_cast<std::size_t>(b)] = L;
    Lmax = std::max(Lmax, L);
  }
  std::vector<std::int64_t> tok(static_cast<std::size_t>(B * Lmax), pad_value);
  std::vector<std::uint8_t> m(static_cast<std::size_t>(B * Lmax), 0);
  for (std::int64_t b = 0; b < B; ++b) {
    const std::int64_t L = len[static_cast<std::size_t>(b)], off = Lmax - L;
    for (std::int64_t j = 0; j < L; ++j) {
      const auto src = static_cast<std::size_t>(b * n + j), dst = static_cast<std::size_t>(b * Lmax + off + j);
      tok[dst] = xs[src];
      m[dst] = ms.empty() ? 1 : ms[src];
    }
  }
  return {Tensor::from_vector(tok, {B, Lmax}, x.device()), Tensor::from_vector(m, {B, Lmax}, x.device())};
}

RngKey ar_truncate_key(const std::string& lm_prefix, const Context& c, std::int64_t rows) {
  Context base = c;
  base.block = 0;
  return base.key(layer_id_of(lm_prefix + "#autoregressive"), AutoregressiveWrapper::kSiteTruncate, rows);
}

AutoregressiveWrapper::AutoregressiveWrapper(SinkhornLM& lm, const ARConfig& cfg)
    : lm_(lm), cfg_(cfg), pad_(lm, cfg.pad_left), id_(layer_id_of(lm.prefix() + "#autoregressive")) {
  SK_CHECK(!lm.config().return_embeddings, "AutoregressiveWrapper needs an LM with logits (return_embeddings = false)");
}

Tensor AutoregressiveWrapper::loss(const Tensor& x_in, const Tensor& mask_in, bool randomly_truncate, ARLossStash& st,
                                   const Context& c) const {
  Backend& be = c.backend();
  SK_CHECK(x_in.ndim() == 2 && x_in.dtype() == DType::i64 && x_in.dim(1) >= 2,
           "AutoregressiveWrapper: expected token ids i64 [B, T+1] with T >= 1, got ", x_in.str());
  SK_CHECK(!mask_in.defined() || (mask_in.dtype() == DType::u8 && mask_in.shape() == x_in.shape()),
           "AutoregressiveWrapper: input mask must be u8 of the input's shape ", shape_str(x_in.shape()), ", got ",
           mask_in.str());
  Tensor x = x_in, mask = mask_in;
  if (randomly_truncate) {
    Truncated t = random_truncate(x, mask, cfg_.pad_value, truncate_key(c, x.dim(0)));
    x = t.tokens;
    mask = t.mask;
  }
  st = ARLossStash{};
  st.B = x.dim(0);
  st.T = x.dim(1) - 1;
  Tensor xi = be.narrow(x, 1, 0, st.T);  // [B, T]
  Tensor xo = be.narrow(x, 1, 1, st.T);  // [B, T]
  Context lc = c;
  lc.input_mask = mask.defined() ? be.narrow(mask, 1, 0, st.T) : Tensor();
  Tensor logits = pad_.forward(xi, st.pad, lc);  // [B, T, V]
  const std::int64_t V = logits.dim(2);
  st.logits = logits.reshape({st.B * st.T, V});
  st.targets = xo.reshape({st.B * st.T});
  st.ce = be.cross_entropy(st.logits, st.targets, ignore_index());
  return st.ce.loss;
}

void AutoregressiveWrapper::loss_backward(ARLossStash& st, const Context& c, float dloss) {
  Backend& be = c.backend();
  SK_ASSERT(st.logits.defined(), "AutoregressiveWrapper::loss_backward without loss");
  const std::int64_t V = st.logits.dim(1);
  Tensor dlogits = be.cross_entropy_backward(dloss, st.logits, st.targets, st.ce, ignore_index());
  st.logits = Tensor();  // neither the logits nor this handle on dlogits are needed in the model's backward
  dlogits = dlogits.reshape({st.B, st.T, V});
  pad_.backward(std::move(dlogits), st.pad, c);
  st = ARLossStash{};
}

RngKey ar_sample_key(const std::string& lm_prefix, const Context& c) {
  Context ec = c;
  ec.training = false;
  ec.block = 0;
  return ec.call_key(layer_id_of(lm_prefix + "#autoregressive"), AutoregressiveWrapper::kSiteSample);
}

std::vector<std::int64_t> generate_tokens(const std::vector<std::int64_t>& start, const std::vector<std::uint8_t>& mask,
                                          std::int64_t B, const GenerateOptions& o, RngKey key, std::int64_t max_len,
                                          std::int64_t pad_value, const LastLogitsFn& last_logits,
                                          std::int64_t* steps_out) {
  SK_CHECK(B >= 1 && !start.empty() && start.size() % static_cast<std::size_t>(B) == 0,
           "generate: start tokens must be [B, t] with B, t >= 1");
  const std::int64_t t0 = static_cast<std::int64_t>(start.size()) / B;
  SK_CHECK(mask.empty() || mask.size() == start.size(), "generate: mask must have the start tokens' shape");
  std::vector<std::vector<std::int64_t>> toks(static_cast<std::size_t>(B));
  std::vector<std::vector<std::uint8_t>> msk(static_cast<std::size_t>(B));
  for (std::int64_t b = 0; b < B; ++b) {
    toks[static_cast<std::size_t>(b)].assign(start.begin() + b * t0, start.begin() + (b + 1) * t0);
    if (mask.empty()) msk[static_cast<std::size_t>(b)].assign(static_cast<std::size_t>(t0), 1);
    else msk[static_cast<std::size_t>(b)].assign(mask.begin() + b * t0, mask.begin() + (b + 1) * t0);
  }
  std::vector<bool> done(static_cast<std::size_t>(B), false);
  std::int64_t steps = 0;
  for (std::int64_t i = 0; i < o.seq_len; ++i) {
    const std::int64_t len = static_cast<std::int64_t>(toks[0].size());
    const std::int64_t w = std::min(len, max_len), off = len - w;
    std::vector<std::int64_t> xs(static_cast<std::size_t>(B * w));
    std::vector<std::uint8_t> ms(static_cast<std::size_t>(B * w));
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t j = 0; j < w; ++j) {
        xs[static_cast<std::size_t>(b * w + j)] = toks[static_cast<std::size_t>(b)][static_cast<std::size_t>(off + j)];
        ms[static_cast<std::size_t>(b * w + j)] = msk[static_cast<std::size_t>(b)][static_cast<std::size_t>(off + j)];
      }
    const std::vector<float> last = last_logits(xs, ms, B, w);  // [B, V]
    const std::int64_t V = static_cast<std::int64_t>(last.size()) / B;
    for (std::int64_t b = 0; b < B; ++b) {
      auto& row_t = toks[static_cast<std::size_t>(b)];
      auto& row_m = msk[static_cast<std::size_t>(b)];
      if (done[static_cast<std::size_t>(b)]) {
        row_t.push_back(pad_value);
        row_m.push_back(0);
        continue;
      }
      std::vector<float> l(last.begin() + b * V, last.begin() + (b + 1) * V);
      if (o.filter == SampleFilter::top_k) filter_top_k(l, o.filter_thres);
      else if (o.filter == SampleFilter::top_p) filter_top_p(l, o.filter_thres);
      const float u = philox_uniform_at(key, static_cast<std::uint64_t>(i * B + b));
      const std::int64_t tok = sample_from_logits(l, o.temperature, u);
      row_t.push_back(tok);
      row_m.push_back(1);
      if (o.eos_token && tok == *o.eos_token) done[static_cast<std::size_t>(b)] = true;
    }
    ++steps;
    if (o.eos_token && std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
  }
  std::vector<std::int64_t> out(static_cast<std::size_t>(B * steps));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t j = 0; j < steps; ++j)
      out[static_cast<std::size_t>(b * steps + j)] = toks[static_cast<std::size_t>(b)][static_cast<std::size_t>(t0 + j)];
  if (steps_out) *steps_out = steps;
  return out;
}

Tensor AutoregressiveWrapper::generate(const Tensor& start, const Tensor& mask, const GenerateOptions& o,
                                       const Context& c) const {
  Backend& be = c.backend();
  SK_CHECK(start.ndim() == 2 && start.dtype() == DType::i64 && start.dim(1) >= 1,
           "generate: start tokens must be i64 [B, t] with t >= 1, got ", start.str());
  SK_CHECK(!mask.defined() || (mask.dtype() == DType::u8 && mask.shape() == start.shape()),
           "generate: mask must be u8 ", shape_str(start.shape()), ", got ", mask.str());
  SK_CHECK(o.seq_len >= 0, "generate: seq_len must be >= 0, got ", o.seq_len);
  SK_CHECK(o.temperature > 0.0, "generate: temperature must be > 0, got ", o.temperature);
  const std::int64_t B = start.dim(0);
  Context ec = c;
  ec.training = false;
  ec.dcontext = nullptr;
  ec.block = 0;
  auto last_logits = [&](const std::vector<std::int64_t>& xs, const std::vector<std::uint8_t>& ms, std::int64_t rows,
                         std::int64_t w) {
    ec.input_mask = Tensor::from_vector(ms, {rows, w}, start.device());
    AutopadStash st;
    Tensor logits = pad_.forward(Tensor::from_vector(xs, {rows, w}, start.device()), st, ec);  // [B, w, V]
    return be.narrow(logits, 1, w - 1, 1).to_vector<float>();                                 // [B, 1, V]
  };
  std::int64_t steps = 0;
  const std::vector<std::int64_t> out =
      generate_tokens(start.to_vector<std::int64_t>(), mask.defined() ? mask.to_vector<std::uint8_t>() : std::vector<std::uint8_t>{},
                      B, o, ar_sample_key(lm_.prefix(), c), lm_.config().max_seq_len, cfg_.pad_value, last_logits, &steps);
  return Tensor::from_vector(out, {B, steps}, start.device());
}

}  // namespace sk
