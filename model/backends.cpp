#include "model/backends.h"

#include <atomic>

namespace sk {

void init_backends(bool quiet) {
  static std::atomic<bool> done{false};
  if (done.exchange(true)) return;
  register_cpu_backend();
  register_cuda_backend(quiet);
}

}  // namespace sk
