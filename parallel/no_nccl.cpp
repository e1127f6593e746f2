// no_nccl.cpp — linked when the build has no NCCL (SK_NCCL off, no CUDA, or libnccl not found):
// asking for an NCCL communicator fails with a clear error; the MPI communicator still works.
#include "model/core/error.h"
#include "parallel/communicator.h"

namespace sk::par {

std::unique_ptr<Communicator> make_nccl_communicator(const MpiComm&, int cuda_device) {
  throw Error(cat("NCCL communicator requested (GPU ", cuda_device,
                  ") but this sinkhorn was built without NCCL: configure with -DSK_CUDA=ON and NCCL installed "
                  "(libnccl in the CUDA toolkit's lib64), or use the MPI communicator"));
}

bool nccl_compiled() { return false; }

}  // namespace sk::par
