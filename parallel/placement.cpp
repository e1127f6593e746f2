// placement.cpp — see placement.h.
#include "parallel/placement.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "model/core/error.h"
#include "parallel/world.h"

namespace sk::par {

int choose_device(int local_rank, int visible) {
  SK_CHECK_CONFIG(visible >= 1, "no CUDA device is visible to this process (", rank_tag(),
                  "): check CUDA_VISIBLE_DEVICES and the job's GPU request");
  SK_ASSERT(local_rank >= 0, "negative local rank ", local_rank);
  return local_rank % visible;
}

std::vector<int> ranks_sharing_with(int local_rank, const std::vector<std::string>& uuids) {
  SK_ASSERT(local_rank >= 0 && local_rank < static_cast<int>(uuids.size()), "local rank ", local_rank, " of ",
            uuids.size());
  std::vector<int> out;
  for (int i = 0; i < static_cast<int>(uuids.size()); ++i)
    if (i != local_rank && uuids[static_cast<std::size_t>(i)] == uuids[static_cast<std::size_t>(local_rank)])
      out.push_back(i);
  return out;
}

std::string shared_gpu_message(int local_rank, const GpuPlacement& p, const std::string& host, bool allow_shared) {
  std::string others;
  for (int r : p.shared_with) others += (others.empty() ? "" : ", ") + std::to_string(r);
  const std::string what = cat("local rank ", local_rank, " on host ", host, " shares GPU ", p.ordinal, " (", p.uuid,
                               ") with local rank(s) ", others);
  if (allow_shared) return what + ": [parallel] allow_shared_gpu = true, so gradients go over MPI";
  return what +
         ": give each rank its own GPU (launch/scripts/mpirun.sh, srun --gpus-per-task=1, or no more ranks "
         "per node than GPUs) or set [parallel] allow_shared_gpu = true (slower: gradients then go over MPI)";
}

namespace {

std::string host_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) return "?";
  return host;
}

}  // namespace

GpuPlacement place_on_gpus(const World* world, const DeviceInfoProvider& devices, bool allow_shared) {
  GpuPlacement p;
  const int local_rank = world ? world->local_rank() : 0;
  p.ordinal = choose_device(local_rank, devices.count());
  p.uuid = devices.uuid(p.ordinal);
  if (!world || world->size() == 1) return p;

  // Every local rank's UUID, over the node's shared-memory communicator.
  constexpr int kLen = 96;
  char mine[kLen] = {};
  std::strncpy(mine, p.uuid.c_str(), kLen - 1);
  const int local_size = world->local_size();
  std::vector<char> all(static_cast<std::size_t>(kLen) * static_cast<std::size_t>(local_size));
  MPI_CHECK(MPI_Allgather(mine, kLen, MPI_CHAR, all.data(), kLen, MPI_CHAR, world->node_comm().get()));
  std::vector<std::string> uuids;
  for (int i = 0; i < local_size; ++i) uuids.emplace_back(all.data() + static_cast<std::ptrdiff_t>(i) * kLen);
  p.shared_with = ranks_sharing_with(local_rank, uuids);

  int shares = p.shared_with.empty() ? 0 : 1, any = 0;
  MPI_CHECK(MPI_Allreduce(&shares, &any, 1, MPI_INT, MPI_MAX, world->comm().get()));
  p.any_shared = any != 0;
  if (!p.any_shared) return p;
  if (!allow_shared) {
    if (shares) throw ConfigError(shared_gpu_message(local_rank, p, host_name(), false));
    throw ConfigError(
        "other ranks of this job would share a GPU (their errors name them): give each rank its own GPU or set "
        "[parallel] allow_shared_gpu = true");
  }
  // Every rank says why the job runs on MPI: the sharing ones name their GPU and partners.
  const std::string why = shares ? shared_gpu_message(local_rank, p, host_name(), true)
                                 : cat("GPU ", p.ordinal, " (", p.uuid, ") is its own, but other ranks share a GPU ",
                                       "([parallel] allow_shared_gpu = true), so gradients go over MPI");
  std::fprintf(stderr, "sinkhorn: %s: %s\n", rank_tag().c_str(), why.c_str());
  std::fflush(stderr);
  return p;
}

std::string slurm_singleton_problem(int world_size, const std::function<const char*(const char*)>& env) {
  if (world_size != 1) return "";
  if (!env("SLURM_PROCID")) return "";         // not a task of a Slurm step
  if (env("OMPI_COMM_WORLD_SIZE")) return "";  // started by mpirun, which sets the world itself
  const char* n = env("SLURM_STEP_NUM_TASKS");
  if (!n) n = env("SLURM_NTASKS");
  if (!n) return "";
  char* end = nullptr;
  const long tasks = std::strtol(n, &end, 10);
  if (end == n || tasks <= 1) return "";
  return cat("this Slurm step has ", tasks,
             " tasks but MPI started this process alone (world size 1): srun "
             "launched the tasks without a PMI plugin, so each would train on its own. Run srun --mpi=pmix (or "
             "set SLURM_MPI_TYPE=pmix; `srun --mpi=list` shows the plugins), or use mpirun inside the allocation");
}

}  // namespace sk::par
