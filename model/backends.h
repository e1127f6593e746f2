// backends.h — registers the compute backends once per process, and chooses the CUDA device.
#pragma once
#include <string>
#include <vector>

namespace sk {
// Registers CpuBackend, and CudaBackend when this binary has CUDA and a GPU is visible. Logs one
// line when a CUDA build finds no GPU (and falls back to CPU). Safe to call more than once.
void init_backends(bool quiet = false);
// Defined in model/cpu and model/cuda (or model/cuda/no_cuda.cpp).
void register_cpu_backend();
bool register_cuda_backend(bool quiet);  // false: no CUDA in this build or no GPU
bool cuda_compiled();                     // whether this binary was built with the CUDA backend
// UUIDs ("GPU-xxxxxxxx-xxxx-...") of the visible CUDA devices, by ordinal; empty without CUDA or a
// GPU. Does not initialise the backend (no context is created on any device).
std::vector<std::string> cuda_device_uuids();
// Makes the CUDA backend use device `ordinal` (before its first use; launch/ calls it with the
// rank's placement, parallel/placement.h). Throws sk::Error when there is no CUDA backend, the
// device does not exist, or the backend already runs on another device.
void select_cuda_device(int ordinal);
}  // namespace sk
