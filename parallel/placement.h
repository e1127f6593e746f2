// placement.h — where the ranks of a job run: which GPU each rank takes, whether two ranks of a
// node would share one, and whether the launcher really started the ranks together.
//
//   local rank L (rank among the processes of its node, MPI_Comm_split_type shared memory) takes
//   the visible device L % count. The node's ranks then exchange the UUIDs of the devices they
//   took: two ranks with the same UUID share a GPU (also when CUDA_VISIBLE_DEVICES names it
//   differently, or lists one device per rank as under Slurm's --gpus-per-task=1). Sharing is
//   refused (sk::ConfigError on every rank, naming the ranks, the host and the GPU) unless
//   [parallel] allow_shared_gpu = true; then the job uses MPI for gradients and every rank logs it.
//   NCCL is used only when no rank of the job shares.
//
// The decisions are pure functions (tested with devices faked behind DeviceInfoProvider); only
// place_on_gpus talks to MPI.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace sk::par {

class World;

// What one process can see of its node's GPUs. The real one (CUDA) lives in launch/; tests fake it.
class DeviceInfoProvider {
 public:
  virtual ~DeviceInfoProvider() = default;
  virtual int count() const = 0;                    // visible devices
  virtual std::string uuid(int ordinal) const = 0;  // identity of the physical device behind `ordinal`
};

// local_rank % visible. Throws sk::ConfigError when no device is visible.
int choose_device(int local_rank, int visible);

// The local ranks (ascending, without `local_rank` itself) whose device UUID equals that of
// `local_rank`; uuids[i] is the UUID local rank i took.
std::vector<int> ranks_sharing_with(int local_rank, const std::vector<std::string>& uuids);

struct GpuPlacement {
  int ordinal = 0;               // the CUDA device this rank uses
  std::string uuid;              // its UUID
  std::vector<int> shared_with;  // local ranks of this node on the same GPU
  bool any_shared = false;       // some rank of the job shares its GPU (-> MPI, not NCCL)
};

// The message of the refusal (allow_shared == false) or of the log line (allow_shared == true)
// for a rank whose GPU is shared; `host` names the node.
std::string shared_gpu_message(int local_rank, const GpuPlacement& p, const std::string& host, bool allow_shared);

// Collective over `world` (nullptr: a single process). Chooses this rank's device, exchanges
// UUIDs over the node, and returns the placement; refuses sharing as described above (every rank
// throws the same kind of error, so no rank is left waiting). With allow_shared, every rank of a job
// where some rank shares prints one line on stderr saying so (the sharing ones name GPU and partners).
GpuPlacement place_on_gpus(const World* world, const DeviceInfoProvider& devices, bool allow_shared);

// Under `srun` without a PMI plugin every task starts as an MPI singleton (world size 1) and would
// train alone on the whole batch. Returns a one-line message naming --mpi=pmix when the Slurm
// step has more than one task (SLURM_STEP_NUM_TASKS, else SLURM_NTASKS, of a task: SLURM_PROCID
// set) but this process's world has size 1 and was not started by mpirun; "" otherwise.
// `env` looks up an environment variable (nullptr when unset).
std::string slurm_singleton_problem(int world_size, const std::function<const char*(const char*)>& env);

}  // namespace sk::par
