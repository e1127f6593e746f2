// test_index.cpp — embedding gather / scatter-add (repeated ids), gather_rows / scatter_add_rows
// (any dtype; repeated indices add up), topk and argmax with ties.
#include "tests/ops/ops_util.h"

namespace sk::test {
namespace {

TEST_P(Ops, EmbeddingForwardBackward) {
  struct Case {
    std::int64_t V, E;
    Shape ids;
    std::int64_t id_hi;  // ids drawn from [0, id_hi): small id_hi forces repeats
  };
  for (const auto& c : {Case{37, 129, {3, 17}, 5}, Case{11, 5000, {7}, 11}, Case{1, 1, {4}, 1}, Case{300, 33, {129, 3}, 300}}) {
    auto table = randn(c.V * c.E);
    auto ids = randint(shape_numel(c.ids), 0, c.id_hi);
    Tensor y = be().embedding(T(table, {c.V, c.E}), I(ids, c.ids));
    Shape ys = c.ids;
    ys.push_back(c.E);
    EXPECT_EQ(y.shape(), ys);
    EXPECT_TRUE(close(D(y), skref::embedding(D(table), c.E, ids), 0, 0)) << "embedding is a copy";

    auto dy = randn(y.numel());
    auto d0 = randn(c.V * c.E);
    Tensor dtable = T(d0, {c.V, c.E});
    be().embedding_backward(dtable, T(dy, ys), I(ids, c.ids));
    Vec ref = skref::embedding_backward(c.V, c.E, D(dy), ids);
    for (std::size_t i = 0; i < ref.size(); ++i) ref[i] += d0[i];
    // A row receives up to ~n/id_hi additions; any summation order.
    EXPECT_TRUE(close(D(dtable), ref, 1e-5, 1e-5)) << "V " << c.V << " E " << c.E;
  }
}

TEST_P(Ops, EmbeddingBackwardFiniteDifferences) {
  const std::int64_t V = 6, E = 5;
  auto table = randn(V * E);
  std::vector<std::int64_t> ids = {2, 0, 2, 5, 2, 1, 0};  // 2 three times, 0 twice, 3 and 4 never
  auto dy = randn(7 * E);
  Tensor dtable = Tensor::zeros({V, E}, DType::f32, dev());
  be().embedding_backward(dtable, T(dy, {7, E}), I(ids, {7}));
  auto f = [&](const std::vector<float>& v) { return F(be().embedding(T(v, {V, E}), I(ids, {7}))); };
  EXPECT_TRUE(fd_ok(skref::check_fd(f, table, D(dy), D(dtable))));
}

template <class T>
std::vector<T> iota_values(std::int64_t n) {
  std::vector<T> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = static_cast<T>(i * 7 + 3);
  return v;
}

TEST_P(Ops, GatherRowsAnyDtype) {
  const std::int64_t N = 3, R = 37, C = 259, K = 50;  // N*K*C > 32768: the parallel path
  auto idx = randint(N * K, 0, R);  // 50 picks of 37 rows: repeats guaranteed
  Tensor it = I(idx, {N, K});
  {
    auto x = randn(N * R * C);
    Tensor y = be().gather_rows(T(x, {N, R, C}), it);
    EXPECT_EQ(y.shape(), (Shape{N, K, C}));
    EXPECT_EQ(F(y), skref::gather_rows(x, N, R, C, idx, K));
  }
  {
    auto x = iota_values<std::int64_t>(N * R * C);
    Tensor y = be().gather_rows(Tensor::from_vector(x, {N, R, C}, dev()), it);
    EXPECT_EQ(y.to_vector<std::int64_t>(), skref::gather_rows(x, N, R, C, idx, K));
  }
  {
    auto x = iota_values<std::uint8_t>(N * R * C);
    Tensor y = be().gather_rows(Tensor::from_vector(x, {N, R, C}, dev()), it);
    EXPECT_EQ(y.to_vector<std::uint8_t>(), skref::gather_rows(x, N, R, C, idx, K));
  }
  {
    auto x = iota_values<std::uint16_t>(N * R * C);  // raw bf16 bits
    Tensor y = be().gather_rows(Tensor::from_vector(x, {N, R, C}, dev()), it);
    EXPECT_EQ(y.to_vector<std::uint16_t>(), skref::gather_rows(x, N, R, C, idx, K));
  }
  {
    auto x = iota_values<std::int32_t>(N * R * C);
    Tensor y = be().gather_rows(Tensor::from_vector(x, {N, R, C}, dev()), it);
    EXPECT_EQ(y.to_vector<std::int32_t>(), skref::gather_rows(x, N, R, C, idx, K));
  }
}

TEST_P(Ops, ScatterAddRows) {
  for (auto [N, R, C, K] : {std::array<std::int64_t, 4>{3, 37, 129, 50}, {1, 1, 5000, 3}, {5, 8, 1, 8}, {4, 60, 300, 70}}) {
    auto idx = randint(N * K, 0, R);
    auto dy = randn(N * K * C), d0 = randn(N * R * C);
    Tensor dx = T(d0, {N, R, C});
    be().scatter_add_rows(dx, T(dy, {N, K, C}), I(idx, {N, K}));
    Vec ref = skref::scatter_add_rows(D(d0), N, R, C, D(dy), idx, K);
    EXPECT_TRUE(close(D(dx), ref, 1e-5, 1e-5)) << N << "," << R << "," << C << "," << K;
  }
}

TEST_P(Ops, GatherRowsBackwardFiniteDifferences) {
  const std::int64_t N = 2, R = 5, C = 3, K = 7;
  std::vector<std::int64_t> idx = {0, 4, 4, 1, 0, 4, 2, /**/ 3, 3, 3, 0, 1, 2, 1};
  auto x = randn(N * R * C), dy = randn(N * K * C);
  Tensor dx = Tensor::zeros({N, R, C}, DType::f32, dev());
  be().scatter_add_rows(dx, T(dy, {N, K, C}), I(idx, {N, K}));
  auto f = [&](const std::vector<float>& v) { return F(be().gather_rows(T(v, {N, R, C}), I(idx, {N, K}))); };
  EXPECT_TRUE(fd_ok(skref::check_fd(f, x, D(dy), D(dx))));
}

TEST_P(Ops, TopK) {
  struct Case {
    Shape s;
    std::int64_t k;
    bool ties;
  };
  for (const auto& c : {Case{{7, 37}, 5, false}, Case{{1, 5000}, 64, false}, Case{{3, 5, 129}, 129, true},
                        Case{{4, 9}, 1, true}, Case{{6, 300}, 17, true}, Case{{1, 1}, 1, false}, Case{{70, 517}, 9, true}}) {
    const std::int64_t cols = c.s.back(), rows = shape_numel(c.s) / cols;
    std::vector<float> x;
    if (c.ties) {  // values from a tiny set: many equal values, the order must be by index
      for (auto v : randint(shape_numel(c.s), -3, 4)) x.push_back(static_cast<float>(v));
    } else {
      x = randn(shape_numel(c.s));
    }
    TopKOut o = be().topk(T(x, c.s), c.k);
    Shape os = c.s;
    os.back() = c.k;
    EXPECT_EQ(o.values.shape(), os);
    EXPECT_EQ(o.indices.shape(), os);
    Vec rv;
    std::vector<std::int64_t> ri;
    skref::topk(D(x), rows, cols, c.k, rv, ri);
    EXPECT_EQ(D(o.values), rv) << shape_str(c.s) << " k " << c.k;
    EXPECT_EQ(o.indices.to_vector<std::int64_t>(), ri) << shape_str(c.s) << " k " << c.k;
  }
}

TEST_P(Ops, ArgMax) {
  for (const Shape& s : {Shape{7, 37}, Shape{1, 5000}, Shape{3, 5, 129}, Shape{40, 1}, Shape{5}, Shape{70, 517}}) {
    const std::int64_t cols = s.back(), rows = shape_numel(s) / cols;
    std::vector<float> x;
    for (auto v : randint(shape_numel(s), -2, 3)) x.push_back(static_cast<float>(v));  // ties everywhere
    Tensor a = be().argmax(T(x, s));
    EXPECT_EQ(a.shape(), Shape(s.begin(), s.end() - 1));
    EXPECT_EQ(a.to_vector<std::int64_t>(), skref::argmax(D(x), rows, cols)) << shape_str(s);
  }
  std::vector<float> x = {1, 3, 3, 2, -1, -1, -1, -1};
  EXPECT_EQ(be().argmax(T(x, {2, 4})).to_vector<std::int64_t>(), (std::vector<std::int64_t>{1, 0}));
}

}  // namespace
}  // namespace sk::test
