# cmake -DFIRST=prog -DSECOND=prog -P cmake/compare_outputs.cmake: runs both
# programs and fails unless they print the same line. A program that prints
# "skip" (its CPU cannot run it) makes the check pass with a note.
execute_process(COMMAND ${FIRST} OUTPUT_VARIABLE first RESULT_VARIABLE first_rc
                OUTPUT_STRIP_TRAILING_WHITESPACE)
execute_process(COMMAND ${SECOND} OUTPUT_VARIABLE second RESULT_VARIABLE second_rc
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT first_rc EQUAL 0 OR NOT second_rc EQUAL 0)
  message(FATAL_ERROR "exit status ${first_rc} / ${second_rc}")
endif()
if(first STREQUAL "skip" OR second STREQUAL "skip")
  message(STATUS "skipped: this CPU cannot run both builds (${first} / ${second})")
elseif(NOT first STREQUAL second)
  message(FATAL_ERROR "outputs differ: ${first} (${FIRST}) vs ${second} (${SECOND})")
else()
  message(STATUS "identical: ${first}")
endif()
