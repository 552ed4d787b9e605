# The Node.js client package (clients/node: JavaScript, nothing to build) and
# its tests: node's built-in test runner on tests/clients/node/*.test.mjs,
# against real samplerd/runnerd processes on loopback, compared with
# samplerctl. The fixture node_client_setup installs the pinned npm packages
# (package-lock.json) with `npm ci` when node_modules is missing or stale.
find_program(ENTROSERVE_NODE node)
find_program(ENTROSERVE_NPM npm)
if(NOT ENTROSERVE_NODE OR NOT ENTROSERVE_NPM OR NOT ENTROSERVE_BUILD_TESTS)
  if(ENTROSERVE_BUILD_TESTS)
    message(WARNING "node or npm not found: the Node.js client's tests are skipped")
  endif()
  return()
endif()

add_test(NAME node_client_setup
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/node/install_dependencies.sh)
set_tests_properties(node_client_setup PROPERTIES FIXTURES_SETUP node_client TIMEOUT 300)

# node_<suite>_test: one test file each; the binaries' paths come in the
# environment (without runnerd, the runner suite skips its tests).
set(node_env
  "ENTROSERVE_SAMPLERD=$<TARGET_FILE:samplerd>"
  "ENTROSERVE_SAMPLERCTL=$<TARGET_FILE:samplerctl>")
if(TARGET runnerd)
  list(APPEND node_env "ENTROSERVE_RUNNERD=$<TARGET_FILE:runnerd>")
endif()
file(GLOB node_tests CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/clients/node/*.test.mjs)
foreach(file ${node_tests})
  get_filename_component(suite ${file} NAME_WE)
  add_test(NAME node_${suite}_test COMMAND ${ENTROSERVE_NODE} --test ${file})
  set_tests_properties(node_${suite}_test PROPERTIES
    FIXTURES_REQUIRED node_client ENVIRONMENT "${node_env}" TIMEOUT 300)
endforeach()
