# cmake -DPROGRAMS=prog1,prog2[,...] -P cmake/compare_outputs.cmake: runs the
# programs (a comma-separated list) and fails unless they all print the same
# line. A program that prints "skip" (its CPU cannot run it) is left out of
# the comparison, with a note; the check passes when fewer than two remain.
string(REPLACE "," ";" programs "${PROGRAMS}")
set(reference "")
set(reference_program "")
set(compared 0)
foreach(program ${programs})
  execute_process(COMMAND ${program} OUTPUT_VARIABLE output RESULT_VARIABLE rc
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "exit status ${rc}: ${program}")
  endif()
  if(output STREQUAL "skip")
    message(STATUS "skipped: this CPU cannot run ${program}")
  elseif(compared EQUAL 0)
    set(reference "${output}")
    set(reference_program "${program}")
    math(EXPR compared "${compared} + 1")
  elseif(NOT output STREQUAL reference)
    message(FATAL_ERROR
            "outputs differ: ${reference} (${reference_program}) vs ${output} (${program})")
  else()
    math(EXPR compared "${compared} + 1")
  endif()
endforeach()
if(compared LESS 2)
  message(STATUS "skipped: fewer than two programs could run (${compared})")
else()
  message(STATUS "identical (${compared} programs): ${reference}")
endif()
