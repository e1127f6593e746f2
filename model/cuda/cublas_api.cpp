#include "model/cuda/cublas_api.h"

#include <dlfcn.h>

#include <atomic>
#include <mutex>
#include <string>

#include "model/core/error.h"

namespace sk::cublas {
namespace {

std::atomic<bool> g_loaded{false};

template <class F>
void resolve(void* lib, const char* name, F& fn) {
  dlerror();
  void* p = dlsym(lib, name);
  SK_CHECK(p != nullptr, "cuBLAS: symbol ", name, " not found in libcublas (", dlerror(), ")");
  fn = reinterpret_cast<F>(p);
}

Api load() {
  // The soname of the toolkit we compiled against first, then the unversioned development link.
  const std::string versioned = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
  void* lib = dlopen(versioned.c_str(), RTLD_NOW | RTLD_LOCAL);
  std::string first_error = lib ? "" : dlerror();
  if (!lib) lib = dlopen("libcublas.so", RTLD_NOW | RTLD_LOCAL);
  SK_CHECK(lib != nullptr, "cuBLAS could not be loaded: tried ", versioned, " (", first_error,
           ") and libcublas.so; add the CUDA toolkit's lib64 folder to LD_LIBRARY_PATH");
  Api a;
  resolve(lib, "cublasCreate_v2", a.create);
  resolve(lib, "cublasDestroy_v2", a.destroy);
  resolve(lib, "cublasSetStream_v2", a.set_stream);
  resolve(lib, "cublasSetWorkspace_v2", a.set_workspace);
  resolve(lib, "cublasSetMathMode", a.set_math_mode);
  resolve(lib, "cublasSgemmStridedBatched", a.sgemm_strided_batched);
  resolve(lib, "cublasGemmStridedBatchedEx", a.gemm_strided_batched_ex);
  resolve(lib, "cublasGetStatusName", a.status_name);
  resolve(lib, "cublasGetStatusString", a.status_string);
  return a;  // the library stays loaded for the life of the process
}

}  // namespace

const Api& api() {
  static std::once_flag once;
  static Api a;
  std::call_once(once, [] {
    a = load();
    g_loaded = true;
  });
  return a;
}

bool loaded() { return g_loaded.load(); }

}  // namespace sk::cublas
