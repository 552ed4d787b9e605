# The model runner's checkpoint loading and transformer (libtorch, Abseil,
# nlohmann-json; Debian: libtorch-dev, nlohmann-json3-dev).
#   entroserve_model   safetensors.cc, model_config.cc, checkpoint.cc (no
#                      libtorch: quick to build), transformer.cc (loading,
#                      the eager forward pass), decode_graphs.cc (decode
#                      steps as device graphs over a static KV cache) and
#                      device_graph.cc (the one file with CUDA headers)
#   model_tool         CLI: load a folder (or a random model of a config) and
#                      greedy-decode, printing ids and timings; or write each
#                      step's logits and attention as JSON (--dump_json, used
#                      by tools/hf_conformance/)
find_package(nlohmann_json 3 REQUIRED)

add_library(entroserve_model STATIC
  ${CMAKE_CURRENT_LIST_DIR}/safetensors.cc
  ${CMAKE_CURRENT_LIST_DIR}/model_config.cc
  ${CMAKE_CURRENT_LIST_DIR}/checkpoint.cc
  ${CMAKE_CURRENT_LIST_DIR}/transformer.cc
  ${CMAKE_CURRENT_LIST_DIR}/decode_graphs.cc
  ${CMAKE_CURRENT_LIST_DIR}/device_graph.cc)
target_compile_options(entroserve_model PRIVATE -Wall -Wextra -Wno-unused-parameter)
target_link_libraries(entroserve_model
  PUBLIC absl::status absl::statusor absl::strings absl::span
  PRIVATE ${TORCH_LIBRARIES} nlohmann_json::nlohmann_json)
# libtorch's include folders for transformer.cc (and tests that build
# reference tensors), without leaking them into every user's flags.
target_include_directories(entroserve_model SYSTEM PRIVATE ${TORCH_INCLUDE_DIRS})
# A CUDA libtorch (pip's PyTorch): CUDA graphs in device_graph.cc. Debian's
# libtorch 1.13 is CPU-only (it ships ATen's CUDA headers, but no CUDA).
if(C10_CUDA_LIBRARY OR TARGET torch_cuda OR TARGET c10_cuda)
  message(STATUS "libtorch has CUDA: decode steps can run as CUDA graphs")
  target_compile_definitions(entroserve_model PRIVATE ENTROSERVE_TORCH_CUDA=1)
  # cuda_runtime_api.h for c10/cuda (PyTorch's config finds the toolkit).
  if(CUDAToolkit_INCLUDE_DIRS)
    target_include_directories(entroserve_model SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
  endif()
endif()

add_executable(model_tool ${CMAKE_CURRENT_LIST_DIR}/model_tool_main.cc)
target_compile_options(model_tool PRIVATE -Wall -Wextra -Wno-unused-parameter)
target_link_libraries(model_tool PRIVATE entroserve_model absl::flags absl::flags_parse absl::flags_usage
  absl::strings)
