// test_shape.cpp — permute (rank 1..6, every dtype), concat / narrow / narrow_assign / split, roll,
// pad: forward vs the reference, and the backward each op's users rely on (inverse permute, split
// for concat, narrow_assign for narrow, roll by -shift, narrow for pad) vs the reference and finite
// differences.
#include "tests/ops/ops_util.h"

namespace sk::test {
namespace {

std::vector<int> random_perm(Ops& t, int r) {
  std::vector<int> p(static_cast<std::size_t>(r));
  for (int i = 0; i < r; ++i) p[static_cast<std::size_t>(i)] = i;
  std::shuffle(p.begin(), p.end(), t.rng());
  return p;
}

template <class V>
V iota_as(std::int64_t n) {
  V v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = static_cast<typename V::value_type>(i * 13 + 1);
  return v;
}

const Shape kPermShapes[] = {{5000}, {7, 37}, {3, 5, 129}, {2, 3, 5, 7}, {3, 1, 4, 2, 5}, {2, 3, 2, 5, 3, 7}, {1, 1, 1}};

TEST_P(Ops, PermuteAllDtypes) {
  for (const auto& s : kPermShapes)
    for (int trial = 0; trial < 3; ++trial) {
      auto p = random_perm(*this, static_cast<int>(s.size()));
      Shape os;
      {
        auto x = randn(shape_numel(s));
        Tensor y = be().permute(T(x, s), p);
        auto ref = skref::permute(x, s, p, &os);
        EXPECT_EQ(y.shape(), os);
        EXPECT_EQ(F(y), ref) << "f32 " << shape_str(s);
      }
      {
        auto x = iota_as<std::vector<std::uint8_t>>(shape_numel(s));
        EXPECT_EQ(be().permute(Tensor::from_vector(x, s, dev()), p).to_vector<std::uint8_t>(), skref::permute(x, s, p))
            << "u8 " << shape_str(s);
      }
      {
        auto x = iota_as<std::vector<std::int64_t>>(shape_numel(s));
        EXPECT_EQ(be().permute(Tensor::from_vector(x, s, dev()), p).to_vector<std::int64_t>(), skref::permute(x, s, p))
            << "i64 " << shape_str(s);
      }
      {
        auto x = iota_as<std::vector<std::uint16_t>>(shape_numel(s));
        EXPECT_EQ(be().permute(Tensor::from_vector(x, s, dev()), p).to_vector<std::uint16_t>(), skref::permute(x, s, p))
            << "bf16 " << shape_str(s);
      }
      {
        auto x = iota_as<std::vector<std::int32_t>>(shape_numel(s));
        EXPECT_EQ(be().permute(Tensor::from_vector(x, s, dev()), p).to_vector<std::int32_t>(), skref::permute(x, s, p))
            << "i32 " << shape_str(s);
      }
    }
}

TEST_P(Ops, PermuteBackward) {
  // Backward of permute(x, p) is permute(dy, inverse(p)); checked against the reference and by
  // finite differences.
  const Shape s{2, 3, 4, 5};
  const std::vector<int> p = {2, 0, 3, 1};
  std::vector<int> inv(4);
  for (int i = 0; i < 4; ++i) inv[static_cast<std::size_t>(p[static_cast<std::size_t>(i)])] = i;
  auto x = randn(120), dy = randn(120);
  Shape os;
  skref::permute(x, s, p, &os);
  Tensor dx = be().permute(T(dy, os), inv);
  EXPECT_EQ(dx.shape(), s);
  // reference: dx[idx] = dy[permuted idx]
  Vec ref(120);
  for (std::int64_t f = 0; f < 120; ++f) {
    Shape in = skref::unravel(f, s), out(4);
    for (int i = 0; i < 4; ++i) out[static_cast<std::size_t>(i)] = in[static_cast<std::size_t>(p[static_cast<std::size_t>(i)])];
    ref[static_cast<std::size_t>(f)] = dy[static_cast<std::size_t>(skref::ravel(out, os))];
  }
  EXPECT_TRUE(close(D(dx), ref, 0, 0));
  auto f = [&](const std::vector<float>& v) { return F(be().permute(T(v, s), p)); };
  EXPECT_TRUE(fd_ok(skref::check_fd(f, x, D(dy), D(dx))));
}

TEST_P(Ops, ConcatSplit) {
  struct Case {
    std::vector<Shape> parts;
    int axis;
  };
  for (const auto& c : {Case{{{3, 5, 7}, {3, 1, 7}, {3, 11, 7}}, 1}, Case{{{2, 3}, {5, 3}}, 0},
                        Case{{{4, 129}, {4, 1}, {4, 4871}}, -1}, Case{{{1, 1}}, 0}, Case{{{2, 0, 3}, {2, 4, 3}}, 1}}) {
    std::vector<std::vector<float>> xs;
    std::vector<Tensor> ts;
    std::vector<std::int64_t> sizes;
    int ax = c.axis < 0 ? c.axis + static_cast<int>(c.parts[0].size()) : c.axis;
    for (const auto& s : c.parts) {
      xs.push_back(randn(shape_numel(s)));
      ts.push_back(T(xs.back(), s));
      sizes.push_back(s[static_cast<std::size_t>(ax)]);
    }
    Tensor y = be().concat(ts, c.axis);
    Shape os;
    auto ref = skref::concat(xs, c.parts, ax, &os);
    EXPECT_EQ(y.shape(), os);
    EXPECT_EQ(F(y), ref);
    // split is concat's backward (and inverse).
    auto back = be().split(y, c.axis, sizes);
    ASSERT_EQ(back.size(), xs.size());
    for (std::size_t i = 0; i < xs.size(); ++i) {
      EXPECT_EQ(back[i].shape(), c.parts[i]);
      EXPECT_EQ(F(back[i]), xs[i]);
    }
  }
  // Other dtypes go by element size.
  std::vector<std::int64_t> a = {1, 2, 3, 4}, b = {5, 6};
  Tensor y = be().concat({Tensor::from_vector(a, {2, 2}, dev()), Tensor::from_vector(b, {2, 1}, dev())}, 1);
  EXPECT_EQ(y.to_vector<std::int64_t>(), (std::vector<std::int64_t>{1, 2, 5, 3, 4, 6}));
}

TEST_P(Ops, ConcatSplitFiniteDifferences) {
  const Shape sa{3, 2, 4}, sb{3, 5, 4};
  auto a = randn(24), b = randn(60), dy = randn(84);
  auto grads = be().split(T(dy, {3, 7, 4}), 1, {2, 5});
  auto fa = [&](const std::vector<float>& v) { return F(be().concat({T(v, sa), T(b, sb)}, 1)); };
  auto fb = [&](const std::vector<float>& v) { return F(be().concat({T(a, sa), T(v, sb)}, 1)); };
  EXPECT_TRUE(fd_ok(skref::check_fd(fa, a, D(dy), D(grads[0]))));
  EXPECT_TRUE(fd_ok(skref::check_fd(fb, b, D(dy), D(grads[1]))));
}

TEST_P(Ops, NarrowAndNarrowAssign) {
  struct Case {
    Shape s;
    int axis;
    std::int64_t start, len;
  };
  for (const auto& c : {Case{{7, 37}, 1, 5, 17}, Case{{3, 5, 129}, 0, 1, 2}, Case{{3, 5, 129}, 2, 0, 129},
                        Case{{1, 5000}, -1, 4999, 1}, Case{{4, 6, 3}, 1, 6, 0}, Case{{9}, 0, 2, 5}}) {
    int ax = c.axis < 0 ? c.axis + static_cast<int>(c.s.size()) : c.axis;
    auto x = randn(shape_numel(c.s));
    Tensor y = be().narrow(T(x, c.s), c.axis, c.start, c.len);
    EXPECT_EQ(F(y), skref::narrow(x, c.s, ax, c.start, c.len)) << shape_str(c.s);
    Shape ss = c.s;
    ss[static_cast<std::size_t>(ax)] = c.len;
    auto src = randn(shape_numel(ss));
    for (bool acc : {false, true}) {
      auto d0 = randn(shape_numel(c.s));
      Tensor dst = T(d0, c.s);
      be().narrow_assign(dst, T(src, ss), c.axis, c.start, acc);
      auto ref = d0;
      skref::narrow_assign(ref, c.s, src, ss, ax, c.start, acc);
      EXPECT_EQ(F(dst), ref) << shape_str(c.s) << " accumulate " << acc;
    }
  }
  // narrow of an i64 / u8 tensor.
  std::vector<std::uint8_t> u = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(be().narrow(Tensor::from_vector(u, {2, 3}, dev()), 1, 1, 2).to_vector<std::uint8_t>(),
            (std::vector<std::uint8_t>{2, 3, 5, 6}));
}

TEST_P(Ops, NarrowBackwardFiniteDifferences) {
  // narrow's backward: zeros with dy written into the slice (narrow_assign into zeros).
  const Shape s{3, 7, 2};
  auto x = randn(42), dy = randn(3 * 4 * 2);
  Tensor dx = Tensor::zeros(s, DType::f32, dev());
  be().narrow_assign(dx, T(dy, {3, 4, 2}), 1, 2, true);
  auto f = [&](const std::vector<float>& v) { return F(be().narrow(T(v, s), 1, 2, 4)); };
  EXPECT_TRUE(fd_ok(skref::check_fd(f, x, D(dy), D(dx))));

  // narrow_assign's backward: d(src) = narrow(d(dst)); d(dst) = d(dst) with the slice zeroed
  // (overwrite) or unchanged (accumulate).
  auto d0 = randn(42), src = randn(24), g = randn(42);
  Tensor gsrc = be().narrow(T(g, s), 1, 2, 4);
  for (bool acc : {false, true}) {
    auto fs = [&](const std::vector<float>& v) {
      Tensor dst = T(d0, s);
      be().narrow_assign(dst, T(v, {3, 4, 2}), 1, 2, acc);
      return F(dst);
    };
    EXPECT_TRUE(fd_ok(skref::check_fd(fs, src, D(g), D(gsrc)))) << "d src, accumulate " << acc;
    Tensor gdst = T(g, s);
    if (!acc) be().narrow_assign(gdst, Tensor::zeros({3, 4, 2}, DType::f32, dev()), 1, 2, false);
    auto fd = [&](const std::vector<float>& v) {
      Tensor dst = T(v, s);
      be().narrow_assign(dst, T(src, {3, 4, 2}), 1, 2, acc);
      return F(dst);
    };
    EXPECT_TRUE(fd_ok(skref::check_fd(fd, d0, D(g), D(gdst)))) << "d dst, accumulate " << acc;
  }
}

TEST_P(Ops, Roll) {
  struct Case {
    Shape s;
    int axis;
    std::int64_t shift;
  };
  for (const auto& c : {Case{{7, 37}, 1, 5}, Case{{7, 37}, 0, -3}, Case{{3, 5, 129}, 1, 12}, Case{{1, 5000}, -1, 4999},
                        Case{{4, 6}, 1, 0}, Case{{4, 6}, 1, 6}, Case{{4, 6}, 1, -13}, Case{{1}, 0, 3}}) {
    int ax = c.axis < 0 ? c.axis + static_cast<int>(c.s.size()) : c.axis;
    auto x = randn(shape_numel(c.s));
    Tensor y = be().roll(T(x, c.s), c.axis, c.shift);
    EXPECT_EQ(F(y), skref::roll(x, c.s, ax, c.shift)) << shape_str(c.s) << " shift " << c.shift;
    auto xi = iota_as<std::vector<std::int64_t>>(shape_numel(c.s));
    EXPECT_EQ(be().roll(Tensor::from_vector(xi, c.s, dev()), c.axis, c.shift).to_vector<std::int64_t>(),
              skref::roll(xi, c.s, ax, c.shift));
  }
  // Backward: roll by -shift.
  const Shape s{3, 8};
  auto x = randn(24), dy = randn(24);
  Tensor dx = be().roll(T(dy, s), 1, -3);
  EXPECT_EQ(F(dx), skref::roll(dy, s, 1, -3));
  auto f = [&](const std::vector<float>& v) { return F(be().roll(T(v, s), 1, 3)); };
  EXPECT_TRUE(fd_ok(skref::check_fd(f, x, D(dy), D(dx))));
}

TEST_P(Ops, Pad) {
  struct Case {
    Shape s;
    int axis;
    std::int64_t before, after;
  };
  for (const auto& c : {Case{{7, 37}, 1, 3, 0}, Case{{7, 37}, 0, 0, 5}, Case{{3, 5, 129}, 1, 2, 7},
                        Case{{1, 5000}, -1, 1, 1}, Case{{2, 3}, 1, 0, 0}}) {
    int ax = c.axis < 0 ? c.axis + static_cast<int>(c.s.size()) : c.axis;
    auto x = randn(shape_numel(c.s));
    Tensor y = be().pad(T(x, c.s), c.axis, c.before, c.after, -2.5f);
    EXPECT_EQ(F(y), skref::pad(x, c.s, ax, c.before, c.after, -2.5f)) << shape_str(c.s);
  }
  std::vector<std::uint8_t> m = {1, 1, 0};
  EXPECT_EQ(be().pad(Tensor::from_vector(m, {1, 3}, dev()), 1, 1, 2, 0.f).to_vector<std::uint8_t>(),
            (std::vector<std::uint8_t>{0, 1, 1, 0, 0, 0}));
  std::vector<std::int64_t> t = {4, 5};
  EXPECT_EQ(be().pad(Tensor::from_vector(t, {2}, dev()), 0, 1, 1, -100.f).to_vector<std::int64_t>(),
            (std::vector<std::int64_t>{-100, 4, 5, -100}));
  // Backward: narrow of dy.
  const Shape s{3, 4};
  auto x = randn(12), dy = randn(3 * 9);
  Tensor dx = be().narrow(T(dy, {3, 9}), 1, 2, 4);
  auto f = [&](const std::vector<float>& v) { return F(be().pad(T(v, s), 1, 2, 3, 0.5f)); };
  EXPECT_TRUE(fd_ok(skref::check_fd(f, x, D(dy), D(dx))));
}

}  // namespace
}  // namespace sk::test
