# Every clone of the sampler's multiversioned kernels (sampler/multiversion.h)
# must compute bit-identical results, or a token could depend on the CPU of
# the replica that sampled it. The kernels (signals.cc, candidates.cc,
# top_tokens.cc) are built once per clone with ENTROSERVE_KERNEL_TARGET, with
# the library's floating-point flags (entroserve_sampler_fp_flags), and the
# digests that kernel_clones_check.cc prints for 300 random rows compared.
# Included by tests/CMakeLists.txt, so CMAKE_CURRENT_SOURCE_DIR is tests/.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  set(clone_programs)
  # level: suffix of the binary; arch: the -march of that clone.
  foreach(level_arch "v4=x86-64-v4" "v3=x86-64-v3" "baseline=x86-64")
    string(REPLACE "=" ";" level_arch ${level_arch})
    list(GET level_arch 0 level)
    list(GET level_arch 1 arch)
    string(TOUPPER ${level} level_upper)
    add_executable(kernel_clone_${level}
      ${CMAKE_CURRENT_SOURCE_DIR}/sampler/kernel_clones_check.cc
      ${PROJECT_SOURCE_DIR}/sampler/signals.cc
      ${PROJECT_SOURCE_DIR}/sampler/candidates.cc
      ${PROJECT_SOURCE_DIR}/sampler/top_tokens.cc)
    target_compile_definitions(kernel_clone_${level} PRIVATE
      "ENTROSERVE_KERNEL_TARGET=\"arch=${arch}\""
      ENTROSERVE_CLONE_CHECK_${level_upper})
    target_link_libraries(kernel_clone_${level} PRIVATE entroserve_sampler_fp_flags absl::span)
    list(APPEND clone_programs $<TARGET_FILE:kernel_clone_${level}>)
  endforeach()
  string(REPLACE ";" "," clone_programs "${clone_programs}")
  add_test(NAME kernel_clones_identical
    COMMAND ${CMAKE_COMMAND} -DPROGRAMS=${clone_programs}
            -P ${PROJECT_SOURCE_DIR}/cmake/compare_outputs.cmake)
endif()
