# Tests of entroserve_sampler_stages (sampler/stages/). Included by
# tests/CMakeLists.txt, so CMAKE_CURRENT_SOURCE_DIR is tests/.
# stages_test: the stages, the chain and config validation (no signals).
entroserve_test(stages_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sampler/stages_test.cc
  LIBS entroserve_sampler_stages)
# stages_samplers_test: the samplers of stages/samplers.h end to end.
entroserve_test(stages_samplers_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sampler/stages_samplers_test.cc
  LIBS entroserve_sampler_stages)
