# The Python client package (clients/python): `entroserve_python` assembles an
# importable copy in ${CMAKE_BINARY_DIR}/python/entroserve, the package's modules
# plus the messages and gRPC stubs generated from proto/ (generate_stubs.py,
# the same generator pip's build runs), so that
#   PYTHONPATH=build/python /usr/bin/python3 -c 'import entroserve'
# works without installing anything. Its pytest suites (tests/clients/python)
# run real samplerd/runnerd processes on loopback.
set(ENTROSERVE_PYTHON /usr/bin/python3 CACHE FILEPATH
    "Python with grpcio, protobuf, numpy and pytest (Debian's python3-*) for the Python client")
find_program(GRPC_PYTHON_PLUGIN grpc_python_plugin)
if(NOT GRPC_PYTHON_PLUGIN)
  message(WARNING "grpc_python_plugin not found (Debian: protobuf-compiler-grpc): "
                  "the Python client's stubs and tests are skipped")
  return()
endif()

set(ENTROSERVE_PYTHON_DIR ${CMAKE_BINARY_DIR}/python)
file(GLOB_RECURSE ENTROSERVE_PYTHON_SOURCES CONFIGURE_DEPENDS
     ${CMAKE_CURRENT_SOURCE_DIR}/python/src/entroserve/*.py)
file(GLOB_RECURSE ENTROSERVE_PYTHON_PROTOS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/proto/*.proto)
set(ENTROSERVE_PYTHON_STAMP ${ENTROSERVE_PYTHON_DIR}/entroserve/_proto/.stamp)
add_custom_command(
  OUTPUT ${ENTROSERVE_PYTHON_STAMP}
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${ENTROSERVE_PYTHON_DIR}/entroserve
  COMMAND ${ENTROSERVE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/python/generate_stubs.py
    --out ${ENTROSERVE_PYTHON_DIR}
    --proto_dir ${CMAKE_SOURCE_DIR}/proto
    --protoc $<TARGET_FILE:protobuf::protoc>
    --grpc_python_plugin ${GRPC_PYTHON_PLUGIN}
    --package_src ${CMAKE_CURRENT_SOURCE_DIR}/python/src/entroserve
  COMMAND ${CMAKE_COMMAND} -E touch ${ENTROSERVE_PYTHON_STAMP}
  DEPENDS ${ENTROSERVE_PYTHON_SOURCES} ${ENTROSERVE_PYTHON_PROTOS}
          ${CMAKE_CURRENT_SOURCE_DIR}/python/generate_stubs.py
  COMMENT "Python client: entroserve package and stubs in ${ENTROSERVE_PYTHON_DIR}")
add_custom_target(entroserve_python ALL DEPENDS ${ENTROSERVE_PYTHON_STAMP})

if(ENTROSERVE_BUILD_TESTS)
  # python_<suite>: one pytest file of tests/clients/python each; the servers'
  # paths come in the environment.
  set(suites python_sampler_client)
  if(TARGET runnerd)
    list(APPEND suites python_runner_client)
  endif()
  list(APPEND suites python_hf_adapter python_security)
  set(PYTHON_TEST_DIR ${CMAKE_SOURCE_DIR}/tests/clients/python)
  foreach(suite ${suites})
    string(REGEX REPLACE "^python_" "" file ${suite})
    add_test(NAME ${suite}_test
      COMMAND ${ENTROSERVE_PYTHON} -m pytest -q -p no:cacheprovider
        ${PYTHON_TEST_DIR}/test_${file}.py)
    set(env
      "PYTHONPATH=${ENTROSERVE_PYTHON_DIR}"
      "PYTHONDONTWRITEBYTECODE=1"
      "ENTROSERVE_SAMPLERD=$<TARGET_FILE:samplerd>"
      "ENTROSERVE_SAMPLERCTL=$<TARGET_FILE:samplerctl>"
      "ENTROSERVE_MODEL=${CMAKE_SOURCE_DIR}/models/tiny"
      "ENTROSERVE_TEST_TMP=${CMAKE_CURRENT_BINARY_DIR}/python_tests")
    if(TARGET runnerd)
      list(APPEND env "ENTROSERVE_RUNNERD=$<TARGET_FILE:runnerd>")
    endif()
    set_tests_properties(${suite}_test PROPERTIES ENVIRONMENT "${env}" TIMEOUT 300)
  endforeach()
endif()
