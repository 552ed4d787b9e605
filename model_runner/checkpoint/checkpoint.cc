#include "model_runner/checkpoint/checkpoint.h"

#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace entroserve {
namespace {

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

// weight_map of an index file: tensor name -> shard file name.
absl::StatusOr<std::map<std::string, std::string>> ReadWeightMap(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json index = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded() || !index.is_object()) {
    return absl::DataLossError(absl::StrCat(path, ": not a JSON object"));
  }
  auto map = index.find("weight_map");
  if (map == index.end() || !map->is_object()) {
    return absl::DataLossError(absl::StrCat(path, ": no \"weight_map\" object"));
  }
  std::map<std::string, std::string> weight_map;
  for (auto it = map->begin(); it != map->end(); ++it) {
    if (!it.value().is_string()) {
      return absl::DataLossError(
          absl::StrCat(path, ": weight_map entry \"", it.key(), "\" is not a file name"));
    }
    std::string shard = it.value().get<std::string>();
    // Shards live beside the index: no paths, so an index cannot point
    // anywhere else on the machine.
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..") {
      return absl::DataLossError(absl::StrCat(path, ": weight_map entry \"", it.key(),
                                              "\" names \"", shard,
                                              "\", not a file in the checkpoint folder"));
    }
    weight_map.emplace(it.key(), std::move(shard));
  }
  return weight_map;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& dir) {
  auto checkpoint = std::unique_ptr<Checkpoint>(new Checkpoint());
  checkpoint->dir_ = dir;
  const std::string single = JoinPath(dir, kSafetensorsFileName);
  const std::string index = JoinPath(dir, kSafetensorsIndexFileName);
  if (FileExists(single)) {
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(single);
    if (!file.ok()) return file.status();
    const SafetensorsFile* f = file->get();
    for (const SafetensorsTensorInfo& info : f->tensors()) {
      checkpoint->tensors_.emplace(info.name, CheckpointTensor{f, &info});
    }
    checkpoint->files_.push_back(*std::move(file));
    return checkpoint;
  }
  if (!FileExists(index)) {
    return absl::NotFoundError(
        absl::StrCat(dir, ": no ", kSafetensorsFileName, " or ", kSafetensorsIndexFileName));
  }
  checkpoint->sharded_ = true;
  absl::StatusOr<std::map<std::string, std::string>> weight_map = ReadWeightMap(index);
  if (!weight_map.ok()) return weight_map.status();
  std::map<std::string, const SafetensorsFile*> shards;
  for (const auto& [name, shard] : *weight_map) {
    auto it = shards.find(shard);
    if (it == shards.end()) {
      absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
          SafetensorsFile::Open(JoinPath(dir, shard));
      if (!file.ok()) {
        if (absl::IsNotFound(file.status())) {
          return absl::NotFoundError(
              absl::StrCat(index, ": shard \"", shard, "\" (holding \"", name, "\") is missing"));
        }
        return file.status();
      }
      it = shards.emplace(shard, file->get()).first;
      checkpoint->files_.push_back(*std::move(file));
    }
    const SafetensorsTensorInfo* info = it->second->Find(name);
    if (info == nullptr) {
      return absl::DataLossError(absl::StrCat(it->second->path(), ": tensor \"", name,
                                              "\" listed in ", kSafetensorsIndexFileName,
                                              " is missing"));
    }
    checkpoint->tensors_.emplace(name, CheckpointTensor{it->second, info});
  }
  return checkpoint;
}

absl::StatusOr<CheckpointTensor> Checkpoint::Get(absl::string_view name) const {
  auto it = tensors_.find(std::string(name));
  if (it != tensors_.end()) return it->second;
  const std::string where =
      sharded_ ? JoinPath(dir_, kSafetensorsIndexFileName) : files_.front()->path();
  return absl::NotFoundError(absl::StrCat(where, ": tensor \"", name, "\" is missing"));
}

bool Checkpoint::Contains(absl::string_view name) const {
  return tensors_.count(std::string(name)) > 0;
}

std::vector<std::string> Checkpoint::TensorNames() const {
  std::vector<std::string> names;
  names.reserve(tensors_.size());
  for (const auto& entry : tensors_) names.push_back(entry.first);
  return names;
}

}  // namespace entroserve
