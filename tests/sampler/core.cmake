# Tests of entroserve_sampler_core (sampler/{tensor,rng,candidates,signals,fast_math}).
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
# fast_math_test: sampler/fast_math.h (header only), with the library's
# floating-point flags.
entroserve_test(fast_math_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sampler/fast_math_test.cc
  LIBS entroserve_sampler_fp_flags)

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
