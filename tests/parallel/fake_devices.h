// fake_devices.h — GPUs for the placement tests: what CUDA would show a process, as a list of
// device UUIDs by ordinal (parallel/placement.h DeviceInfoProvider).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "parallel/placement.h"

namespace sk::par {

class FakeDevices final : public DeviceInfoProvider {
 public:
  explicit FakeDevices(std::vector<std::string> uuids) : uuids_(std::move(uuids)) {}
  int count() const override { return static_cast<int>(uuids_.size()); }
  std::string uuid(int i) const override { return uuids_.at(static_cast<std::size_t>(i)); }

 private:
  std::vector<std::string> uuids_;
};

}  // namespace sk::par
