// The weights of a Hugging Face checkpoint folder: `model.safetensors`, or
// the shards named by `model.safetensors.index.json` ({"weight_map":
// {tensor name: shard file}}). Every file is memory-mapped and its header
// checked when the checkpoint opens (model_runner/checkpoint/safetensors.h); a tensor's
// bytes are read only when the model copies or wraps them. No libtorch here.
//
// Errors name the file and the tensor: NOT_FOUND for a folder with neither
// file, a missing shard or a missing tensor; DATA_LOSS for a corrupt or
// truncated file, or an index that names a tensor its shard lacks.
//
// Thread-safety: immutable after Open().
#ifndef ENTROSERVE_MODEL_RUNNER_CHECKPOINT_CHECKPOINT_H_
#define ENTROSERVE_MODEL_RUNNER_CHECKPOINT_CHECKPOINT_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model_runner/checkpoint/safetensors.h"

namespace entroserve {

inline constexpr char kSafetensorsFileName[] = "model.safetensors";
inline constexpr char kSafetensorsIndexFileName[] = "model.safetensors.index.json";
inline constexpr char kConfigFileName[] = "config.json";

// One tensor of a checkpoint: its header entry and the file holding it.
struct CheckpointTensor {
  const SafetensorsFile* file = nullptr;
  const SafetensorsTensorInfo* info = nullptr;

  const uint8_t* data() const { return file->Data(*info); }
};

class Checkpoint {
 public:
  // Opens the checkpoint in folder `dir` (config.json is read separately).
  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(const std::string& dir);

  // The tensor `name`, or NOT_FOUND naming the file that should hold it
  // ("<dir>/model.safetensors: tensor \"lm_head.weight\" is missing").
  absl::StatusOr<CheckpointTensor> Get(absl::string_view name) const;
  bool Contains(absl::string_view name) const;
  // Every tensor name, sorted.
  std::vector<std::string> TensorNames() const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  bool sharded() const { return sharded_; }
  const std::string& dir() const { return dir_; }

 private:
  Checkpoint() = default;
  std::string dir_;
  bool sharded_ = false;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, CheckpointTensor, std::less<>> tensors_;
};

}  // namespace entroserve

#endif  // ENTROSERVE_MODEL_RUNNER_CHECKPOINT_CHECKPOINT_H_
