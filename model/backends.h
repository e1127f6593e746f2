// backends.h — registers the compute backends once per process.
#pragma once

namespace sk {
// Registers CpuBackend, and CudaBackend when this binary has CUDA and a GPU is visible. Logs one
// line when a CUDA build finds no GPU (and falls back to CPU). Safe to call more than once.
void init_backends(bool quiet = false);
// Defined in model/cpu and model/cuda (or model/cuda/no_cuda.cpp).
void register_cpu_backend();
bool register_cuda_backend(bool quiet);  // false: no CUDA in this build or no GPU
bool cuda_compiled();                     // whether this binary was built with the CUDA backend
}  // namespace sk
