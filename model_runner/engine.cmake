# The serving engine (engine.h): continuous batching over a model and a
# SamplerBackend (sampler_backend.h), and the ServedModel that runnerd serves
# (served_model.h). No libtorch includes here (transformer.h hides it) and no
# gRPC: the backends and the service live in services/.
find_package(nlohmann_json 3 REQUIRED)

add_library(entroserve_engine STATIC
  ${CMAKE_CURRENT_LIST_DIR}/engine.cc
  ${CMAKE_CURRENT_LIST_DIR}/served_model.cc)
target_compile_options(entroserve_engine PRIVATE -Wall -Wextra -Wno-unused-parameter)
target_link_libraries(entroserve_engine
  PUBLIC entroserve_model entroserve_tokenizer entroserve_sampler_core entroserve_sampler
         absl::status absl::statusor absl::strings absl::str_format absl::synchronization
         absl::time absl::span Threads::Threads
  PRIVATE nlohmann_json::nlohmann_json)
