# entroserve_library(NAME SOURCES a.cc b.cc ... [DEPS public deps...]
#                    [PRIVATE_DEPS private deps...])
#
# The one way a folder of the tree declares its library: a static library of
# the listed sources, relative to the calling folder, with the project's
# warnings. Every source is listed by name (no globbing, no existence check),
# so a missing file stops the configure step with CMake's "Cannot find source
# file" error instead of silently leaving a piece out.
set(ENTROSERVE_WARNINGS -Wall -Wextra -Wno-unused-parameter)

function(entroserve_library name)
  cmake_parse_arguments(L "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  if(NOT L_SOURCES)
    message(FATAL_ERROR "entroserve_library(${name}): no SOURCES")
  endif()
  add_library(${name} STATIC ${L_SOURCES})
  target_compile_options(${name} PRIVATE ${ENTROSERVE_WARNINGS})
  target_link_libraries(${name} PUBLIC ${L_DEPS} PRIVATE ${L_PRIVATE_DEPS})
endfunction()

# entroserve_binary(NAME SOURCES ... DEPS ...): an executable in build/bin.
function(entroserve_binary name)
  cmake_parse_arguments(B "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${B_SOURCES})
  target_compile_options(${name} PRIVATE ${ENTROSERVE_WARNINGS})
  target_link_libraries(${name} PRIVATE ${B_DEPS})
endfunction()
