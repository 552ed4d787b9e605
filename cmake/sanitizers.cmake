# Sanitizer flags for the whole tree: ENTROSERVE_SANITIZE (a -fsanitize=
# list), and ENTROSERVE_FUZZ, which needs clang and adds AddressSanitizer,
# UndefinedBehaviorSanitizer and libFuzzer's coverage to every object (the
# fuzz targets themselves link -fsanitize=fuzzer, fuzz/CMakeLists.txt).
if(ENTROSERVE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "ENTROSERVE_FUZZ needs clang (libFuzzer): configure with "
      "-DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14, or run scripts/fuzz.sh")
  endif()
  if(NOT ENTROSERVE_SANITIZE)
    set(ENTROSERVE_SANITIZE "address,undefined")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
if(ENTROSERVE_SANITIZE)
  add_compile_options(-fsanitize=${ENTROSERVE_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${ENTROSERVE_SANITIZE})
  if(ENTROSERVE_SANITIZE MATCHES "undefined")
    # A finding stops the test or fuzzer instead of scrolling by.
    add_compile_options(-fno-sanitize-recover=undefined)
    add_link_options(-fno-sanitize-recover=undefined)
  endif()
  if(ENTROSERVE_SANITIZE MATCHES "thread")
    # The ifunc resolvers of target_clones (sampler/core/multiversion.h) run
    # while the dynamic loader relocates, before ThreadSanitizer's runtime is
    # up; instrumented, they crash every binary at start. One plain version
    # of each kernel instead.
    add_compile_definitions(ENTROSERVE_NO_TARGET_CLONES)
    # Debian's libprotobuf is built without TSan, and protobuf's map_field.h
    # gives MapFieldBase two more members when __SANITIZE_THREAD__ is set:
    # our objects and the library's code would disagree on the layout (a
    # crash on the first map field read by reflection). Headers see a plain
    # build; the instrumentation is the same.
    add_compile_options(-U__SANITIZE_THREAD__)
  endif()
endif()
