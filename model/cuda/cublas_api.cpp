#include "model/cuda/cublas_api.h"

#include <cuda_runtime_api.h>
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

// Folder of the loaded CUDA runtime library ("" when cudart is linked statically).
std::string cudart_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&cudaRuntimeGetVersion), &info) == 0 || !info.dli_fname) return "";
  std::string path = info.dli_fname;
  if (path.find("libcudart") == std::string::npos) return "";
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

Api load() {
  // The soname of the toolkit we compiled against, found (1) the way the loader finds libraries,
  // (2) beside the CUDA runtime this process uses, (3) in the toolkit's folder at build time.
  const std::string versioned = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
  std::string tried;
  void* lib = nullptr;
  for (const std::string& dir : {std::string(), cudart_dir(), std::string(SK_CUDA_LIBDIR "/")}) {
    if (lib) break;
    if (!tried.empty() && dir.empty()) continue;
    const std::string path = dir + versioned;
    lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) tried += (tried.empty() ? "" : "; ") + path + " (" + dlerror() + ")";
  }
  SK_CHECK(lib != nullptr, "cuBLAS could not be loaded: tried ", tried,
           "; add the CUDA toolkit's lib64 folder to LD_LIBRARY_PATH");
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
