# Model runner tests (checkpoints, config, transformer). The fixtures in
# test_util/ write tiny random checkpoints; no downloaded model is needed.
#   checkpoint_test    safetensors, config.json, checkpoint folders (no libtorch)
#   transformer_test   the model against a float64 reference written in the
#                      test, the KV cache, batching, loading errors
add_library(entroserve_model_test_util STATIC
  ${CMAKE_CURRENT_LIST_DIR}/test_util/tiny_checkpoint.cc)
target_link_libraries(entroserve_model_test_util PUBLIC entroserve_model absl::strings
  absl::str_format)

entroserve_test(checkpoint_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/checkpoint_test.cc
  LIBS entroserve_model_test_util)
entroserve_test(transformer_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/transformer_test.cc
  LIBS entroserve_model_test_util ${TORCH_LIBRARIES})
