// finite_diff.h — central finite differences of a (f32) forward, the second, independent check of
// every backward in tests/ops.
//
// The function under test maps an input vector x to an output vector y (computed by the backend in
// f32). With a fixed cotangent w (the "dy" fed to backward) the scalar L(x) = sum_i w_i y_i(x) is
// formed in double, and its gradient is estimated one coordinate at a time:
//     dL/dx_k ~= (L(x + h e_k) - L(x - h e_k)) / (2h)
// The perturbed x is rounded to f32 before the call; the step actually taken (x_k+ - x_k-) is used
// as the denominator so that rounding of x itself does not bias the estimate.
//
// Error budget (why the default tolerances below are what they are): the truncation error of the
// central difference is h^2/6 * |L'''| (~2e-5 |L'''| at h = 1e-2); the f32 rounding of the outputs
// contributes about n_out * 2^-24 * max|w_i y_i| / (2h) in the worst case (~1e-4 for 100 outputs of
// size 2 at h = 1e-2). With smooth, O(1) test functions both stay well under 1e-3, so an atol of a
// few 1e-3 with an rtol of 1e-2 passes correct code yet fails any real mistake (a wrong sign, a
// missing factor, a dropped term are all O(1) relative errors).
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace skref {

struct FdOptions {
  double h = 1e-2;      // step
  double atol = 3e-3;   // absolute tolerance on each gradient entry
  double rtol = 1e-2;   // relative tolerance (to the larger of the two values)
};

struct FdResult {
  bool ok = true;
  std::string report;  // first few mismatches
  std::vector<double> numeric;
};

// f: forward, x -> y (f32). w: cotangent (same length as y). analytic: claimed dL/dx.
inline FdResult check_fd(const std::function<std::vector<float>(const std::vector<float>&)>& f,
                         const std::vector<float>& x, const std::vector<double>& w,
                         const std::vector<double>& analytic, const FdOptions& opt = {}) {
  FdResult r;
  auto loss = [&](const std::vector<float>& xv) {
    std::vector<float> y = f(xv);
    double s = 0;
    for (std::size_t i = 0; i < y.size(); ++i) s += w[i] * static_cast<double>(y[i]);
    return s;
  };
  std::ostringstream os;
  int bad = 0;
  r.numeric.resize(x.size());
  if (analytic.size() != x.size()) {
    r.ok = false;
    r.report = "analytic gradient has the wrong size";
    return r;
  }
  std::vector<float> xp = x;
  for (std::size_t k = 0; k < x.size(); ++k) {
    const float hi = static_cast<float>(x[k] + opt.h), lo = static_cast<float>(x[k] - opt.h);
    xp[k] = hi;
    double lp = loss(xp);
    xp[k] = lo;
    double lm = loss(xp);
    xp[k] = x[k];
    double g = (lp - lm) / (static_cast<double>(hi) - static_cast<double>(lo));
    r.numeric[k] = g;
    double a = analytic[k];
    double tol = opt.atol + opt.rtol * std::max(std::fabs(a), std::fabs(g));
    if (!(std::fabs(g - a) <= tol)) {
      r.ok = false;
      if (bad++ < 8) os << "  [" << k << "] finite-diff " << g << " vs analytic " << a << " (tol " << tol << ")\n";
    }
  }
  if (bad) {
    std::ostringstream h;
    h << bad << " of " << x.size() << " gradient entries differ from central finite differences (h = " << opt.h
      << "):\n"
      << os.str();
    r.report = h.str();
  }
  return r;
}

}  // namespace skref
