# Tests of entroserve_sampler_policies (sampler/{entropix,alpha,top_tokens}).
# Included by tests/CMakeLists.txt, so CMAKE_CURRENT_SOURCE_DIR is tests/.
entroserve_test(top_tokens_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sampler/top_tokens_test.cc
  LIBS entroserve_sampler_policies)
entroserve_test(entropix_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sampler/entropix_test.cc
  LIBS entroserve_sampler_policies)
entroserve_test(alpha_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sampler/alpha_test.cc
  LIBS entroserve_sampler_policies)
