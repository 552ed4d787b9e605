# Tests of entroserve_sampler_core (sampler/{tensor,rng,candidates,signals}).
# Included by tests/CMakeLists.txt, so CMAKE_CURRENT_SOURCE_DIR is tests/.
entroserve_test(signals_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sampler/signals_test.cc
  LIBS entroserve_sampler_core)
entroserve_test(tensor_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sampler/tensor_test.cc
  LIBS entroserve_sampler_core)
entroserve_test(rng_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sampler/rng_test.cc
  LIBS entroserve_sampler_core)
entroserve_test(candidates_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sampler/candidates_test.cc
  LIBS entroserve_sampler_core)

# signals_tool: prints the signals of a raw tensor file as JSON; the NumPy
# cross-check below drives it (build/bin/signals_tool --help).
add_executable(signals_tool ${CMAKE_CURRENT_SOURCE_DIR}/sampler/signals_tool.cc)
target_link_libraries(signals_tool PRIVATE entroserve_sampler_core)

# Every signal against an independent float64 NumPy computation, for FLOAT32,
# FLOAT16 and BFLOAT16 rows. Needs Debian's python3-numpy: /usr/bin/python3
# is the interpreter that has it (a python3 earlier on PATH may not).
set(ENTROSERVE_NUMPY_PYTHON /usr/bin/python3 CACHE FILEPATH
  "Python interpreter with NumPy for the signals cross-check")
add_test(NAME signals_numpy_check
  COMMAND ${ENTROSERVE_NUMPY_PYTHON}
          ${CMAKE_CURRENT_SOURCE_DIR}/sampler/signals_numpy_check.py
          --tool $<TARGET_FILE:signals_tool>)
set_tests_properties(signals_numpy_check PROPERTIES TIMEOUT 300)

# The x86-64-v4 (AVX-512) and x86-64-v3 (AVX2 + FMA) clones of the signals
# kernels must give bit-identical signals (sampler/signals.cc, "Vectorisation
# and determinism"): signals.cc is built once per clone and a digest of 300
# random rows compared.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  foreach(level v4 v3)
    string(TOUPPER ${level} level_upper)
    add_executable(signals_clone_${level}
      ${CMAKE_CURRENT_SOURCE_DIR}/sampler/signals_clones_check.cc
      ${PROJECT_SOURCE_DIR}/sampler/signals.cc)
    target_compile_definitions(signals_clone_${level} PRIVATE
      "ENTROSERVE_KERNEL_TARGET=\"arch=x86-64-${level}\""
      ENTROSERVE_CLONE_CHECK_${level_upper})
    target_compile_options(signals_clone_${level} PRIVATE -ffp-contract=fast)
    target_link_libraries(signals_clone_${level} PRIVATE absl::span)
  endforeach()
  add_test(NAME signals_clones_identical
    COMMAND ${CMAKE_COMMAND} -DFIRST=$<TARGET_FILE:signals_clone_v4>
            -DSECOND=$<TARGET_FILE:signals_clone_v3>
            -P ${PROJECT_SOURCE_DIR}/cmake/compare_outputs.cmake)
endif()
