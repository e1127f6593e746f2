// elementwise.cu — broadcasting binary ops and unary ops (forward and backward), axpy, where,
// masked_fill, AdamW. One kernel per family with the op code as a (warp-uniform) argument, so the
// compile stays small; formulas are the CPU backend's (model/cpu/elementwise.cpp, adamw.cpp).
#include <cstdint>

#include <cuda_runtime.h>

#include "model/cuda/cuda_check.h"
#include "model/cuda/device/common.cuh"
#include "model/cuda/launchers.h"

namespace sk::cu {

// ============================== device helpers ==============================

__device__ __forceinline__ float binary_apply(int op, float a, float b) {
  switch (op) {
    case kAdd: return a + b;
    case kSub: return a - b;
    case kMul: return a * b;
    case kDiv: return a / b;
    case kMax: return a >= b ? a : b;
    case kMin: return a <= b ? a : b;
  }
  return 0.f;
}

// Element offsets in a and b of output element i.
__device__ __forceinline__ void bcast_offsets(const BcastDesc& d, std::int64_t i, std::int64_t& oa, std::int64_t& ob) {
  oa = 0;
  ob = 0;
#pragma unroll
  for (int k = kMaxBcastRank - 1; k >= 0; --k) {  // constant indices: d stays in registers
    if (k < d.rank) {
      const std::int64_t c = i % d.out[k];
      i /= d.out[k];
      oa += c * d.sa[k];
      ob += c * d.sb[k];
    }
  }
}

__device__ __forceinline__ float unary_apply(int op, float v, float alpha) {
  switch (op) {
    case kNeg: return -v;
    case kExp: return expf(v);
    case kLog: return logf(v);
    case kSqrt: return sqrtf(v);
    case kRsqrt: return 1.f / sqrtf(v);
    case kSquare: return v * v;
    case kAbs: return fabsf(v);
    case kRelu: return v > 0.f ? v : 0.f;
    case kLeakyRelu: return v > 0.f ? v : alpha * v;
    case kGelu: return gelu_exact(v);
    case kScale: return alpha * v;
    case kAddScalar: return v + alpha;
    case kPowScalar: return powf(v, alpha);
    case kSigmoid: return 1.f / (1.f + expf(-v));
    case kTanh: return tanhf(v);
  }
  return 0.f;
}

// dx for one element: g = dy, v = x, y = op(x) (only read by ops that need it).
__device__ __forceinline__ float unary_grad(int op, float g, float v, const float* y, std::int64_t i, float alpha) {
  switch (op) {
    case kNeg: return -g;
    case kExp: return g * y[i];
    case kLog: return g / v;
    case kSqrt: return g * 0.5f / y[i];
    case kRsqrt: {
      const float r = y[i];
      return g * -0.5f * r * r * r;
    }
    case kSquare: return 2.f * v * g;
    case kAbs: return v > 0.f ? g : (v < 0.f ? -g : 0.f);
    case kRelu: return v > 0.f ? g : 0.f;
    case kLeakyRelu: return v > 0.f ? g : alpha * g;
    case kGelu: return g * gelu_exact_grad(v);
    case kScale: return alpha * g;
    case kAddScalar: return g;
    case kPowScalar: return g * alpha * powf(v, alpha - 1.f);
    case kSigmoid: {
      const float s = y[i];
      return g * s * (1.f - s);
    }
    case kTanh: {
      const float t = y[i];
      return g * (1.f - t * t);
    }
  }
  return 0.f;
}

// ============================== kernels ==============================

__global__ void binary_same_kernel(float* y, const float* a, const float* b, std::int64_t n, int op) {
  SK_GRID_LOOP(i, n) y[i] = binary_apply(op, a[i], b[i]);
}

__global__ void binary_bcast_kernel(float* y, const float* a, const float* b, std::int64_t n, BcastDesc d, int op) {
  SK_GRID_LOOP(i, n) {
    std::int64_t oa, ob;
    bcast_offsets(d, i, oa, ob);
    y[i] = binary_apply(op, a[oa], b[ob]);
  }
}

__global__ void binary_backward_kernel(float* da, float* db, const float* dy, const float* a, const float* b,
                                       std::int64_t n, BcastDesc d, int op) {
  SK_GRID_LOOP(i, n) {
    std::int64_t oa, ob;
    bcast_offsets(d, i, oa, ob);
    const float g = dy[i];
    float ga = 0.f, gb = 0.f;
    switch (op) {
      case kAdd: ga = g; gb = g; break;
      case kSub: ga = g; gb = -g; break;
      case kMul: ga = g * b[ob]; gb = g * a[oa]; break;
      case kDiv: {
        const float av = a[oa], bv = b[ob];
        ga = g / bv;
        gb = -g * av / (bv * bv);
        break;
      }
      case kMax: (a[oa] >= b[ob] ? ga : gb) = g; break;
      case kMin: (a[oa] <= b[ob] ? ga : gb) = g; break;
    }
    da[i] = ga;
    db[i] = gb;
  }
}

__global__ void unary_forward_kernel(float* y, const float* x, std::int64_t n, int op, float alpha) {
  SK_GRID_LOOP(i, n) y[i] = unary_apply(op, x[i], alpha);
}

__global__ void unary_backward_kernel(float* dx, const float* dy, const float* x, const float* y, std::int64_t n,
                                      int op, float alpha) {
  SK_GRID_LOOP(i, n) dx[i] = unary_grad(op, dy[i], x[i], y, i, alpha);
}

__global__ void axpy_kernel(float* y, const float* x, std::int64_t n, float alpha) {
  SK_GRID_LOOP(i, n) y[i] += alpha * x[i];
}

__global__ void where_kernel(float* y, const std::uint8_t* m, const float* a, const float* b, std::int64_t n) {
  SK_GRID_LOOP(i, n) y[i] = m[i] ? a[i] : b[i];
}

__global__ void masked_fill_kernel(float* y, const float* x, const std::uint8_t* m, std::int64_t n, float value) {
  SK_GRID_LOOP(i, n) y[i] = m[i] ? x[i] : value;
}

__global__ void adamw_update_kernel(float* p, const float* grad, float* m, float* v, std::int64_t n, float lr,
                                    float beta1, float beta2, float eps, float wd, float bc1, float bc2) {
  SK_GRID_LOOP(i, n) {
    const float g = grad[i];
    const float mi = beta1 * m[i] + (1.f - beta1) * g;
    const float vi = beta2 * v[i] + (1.f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const float mhat = mi / bc1, vhat = vi / bc2;
    p[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * p[i]);
  }
}

// ============================== launchers ==============================

void launch_binary_forward(float* y, const float* a, const float* b, std::int64_t n, const BcastDesc& d, int op,
                           cudaStream_t s) {
  if (d.rank == 1 && d.sa[0] == 1 && d.sb[0] == 1) {
    binary_same_kernel<<<grid_for(n), kThreads, 0, s>>>(y, a, b, n, op);
  } else {
    binary_bcast_kernel<<<grid_for(n), kThreads, 0, s>>>(y, a, b, n, d, op);
  }
  SK_CUDA_LAUNCH_CHECK();
}

void launch_binary_backward(float* da, float* db, const float* dy, const float* a, const float* b, std::int64_t n,
                            const BcastDesc& d, int op, cudaStream_t s) {
  binary_backward_kernel<<<grid_for(n), kThreads, 0, s>>>(da, db, dy, a, b, n, d, op);
  SK_CUDA_LAUNCH_CHECK();
}

void launch_unary_forward(float* y, const float* x, std::int64_t n, int op, float alpha, cudaStream_t s) {
  unary_forward_kernel<<<grid_for(n), kThreads, 0, s>>>(y, x, n, op, alpha);
  SK_CUDA_LAUNCH_CHECK();
}

void launch_unary_backward(float* dx, const float* dy, const float* x, const float* y, std::int64_t n, int op,
                           float alpha, cudaStream_t s) {
  unary_backward_kernel<<<grid_for(n), kThreads, 0, s>>>(dx, dy, x, y, n, op, alpha);
  SK_CUDA_LAUNCH_CHECK();
}

void launch_axpy(float* y, const float* x, std::int64_t n, float alpha, cudaStream_t s) {
  axpy_kernel<<<grid_for(n), kThreads, 0, s>>>(y, x, n, alpha);
  SK_CUDA_LAUNCH_CHECK();
}

void launch_where(float* y, const std::uint8_t* mask, const float* a, const float* b, std::int64_t n, cudaStream_t s) {
  where_kernel<<<grid_for(n), kThreads, 0, s>>>(y, mask, a, b, n);
  SK_CUDA_LAUNCH_CHECK();
}

void launch_masked_fill(float* y, const float* x, const std::uint8_t* mask, std::int64_t n, float value,
                        cudaStream_t s) {
  masked_fill_kernel<<<grid_for(n), kThreads, 0, s>>>(y, x, mask, n, value);
  SK_CUDA_LAUNCH_CHECK();
}

void launch_adamw_update(float* param, const float* grad, float* m, float* v, std::int64_t n, float lr, float beta1,
                         float beta2, float eps, float weight_decay, float bc1, float bc2, cudaStream_t s) {
  adamw_update_kernel<<<grid_for(n), kThreads, 0, s>>>(param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, bc1,
                                                       bc2);
  SK_CUDA_LAUNCH_CHECK();
}

}  // namespace sk::cu
