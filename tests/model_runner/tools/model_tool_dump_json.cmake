# model_tool --dump_json, the format tools/hf_conformance/compare.py reads (and runs
# only where transformers is). A random tiny model is decoded greedily, then
# teacher-forced with the tokens it generated: every step must have the same
# argmax, its position, logits of vocabulary size, and with
# --attention_layers=all one entry per layer over position + 1 keys.
#
# Included by CMakeLists.txt of this folder, it registers the test; run by
# that test with cmake -P, it is the test (string(JSON) needs CMake 3.19).
if(NOT CMAKE_SCRIPT_MODE_FILE)
  if(TARGET model_tool AND NOT CMAKE_VERSION VERSION_LESS 3.19)
    add_test(NAME model_tool_dump_json
      COMMAND ${CMAKE_COMMAND} -DMODEL_TOOL=$<TARGET_FILE:model_tool>
              -DWORK=${CMAKE_CURRENT_BINARY_DIR}/model_tool_dump_json
              -P ${CMAKE_CURRENT_LIST_FILE})
    # A bad --group_decode is refused naming the flag and the value.
    add_test(NAME model_tool_bad_group_decode
      COMMAND model_tool --random=tiny --group_decode=maybe)
    set_tests_properties(model_tool_bad_group_decode PROPERTIES
      PASS_REGULAR_EXPRESSION "--group_decode: \"maybe\" is not auto, on or off")
  endif()
  return()
endif()

cmake_minimum_required(VERSION 3.19)
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

function(run_model_tool)
  execute_process(COMMAND ${MODEL_TOOL} --random=tiny --threads=1 --tokens=5,6,7,8 ${ARGN}
    RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "model_tool ${ARGN} failed (${status}):\n${output}")
  endif()
endfunction()

function(expect_equal what actual expected)
  if(NOT "${actual}" STREQUAL "${expected}")
    message(FATAL_ERROR "${what}: got ${actual}, expected ${expected}")
  endif()
endfunction()

# The tiny preset: vocabulary 256, 2 layers, 4 heads, head_dim 16.
run_model_tool(--new_tokens=6 --attention=false --dump_logits=false
               --dump_json=${WORK}/greedy.json)
file(READ ${WORK}/greedy.json greedy)
string(JSON mode GET "${greedy}" mode)
expect_equal("greedy mode" "${mode}" "greedy")
string(JSON steps LENGTH "${greedy}" sequences 0 steps)
expect_equal("greedy steps" "${steps}" 6)
set(generated "")
foreach(i RANGE 5)
  string(JSON token GET "${greedy}" sequences 0 argmax ${i})
  list(APPEND generated ${token})
endforeach()
list(SUBLIST generated 0 5 fed)
list(JOIN fed "," fed)
string(JSON logits ERROR_VARIABLE absent GET "${greedy}" sequences 0 steps 0 logits)
if(NOT absent)
  message(FATAL_ERROR "--dump_logits=false still wrote logits")
endif()

run_model_tool(--force_tokens=${fed} --attention_layers=all --dump_json=${WORK}/forced.json)
file(READ ${WORK}/forced.json forced)
string(JSON mode GET "${forced}" mode)
expect_equal("forced mode" "${mode}" "teacher_forcing")
string(JSON count LENGTH "${forced}" rope_inv_freq)
expect_equal("rope_inv_freq entries" "${count}" 8)
string(JSON steps LENGTH "${forced}" sequences 0 steps)
expect_equal("forced steps" "${steps}" 6)
foreach(i RANGE 5)
  string(JSON step GET "${forced}" sequences 0 steps ${i})
  math(EXPR position "3 + ${i}")
  string(JSON value GET "${step}" position)
  expect_equal("step ${i} position" "${value}" ${position})
  string(JSON value GET "${step}" argmax)
  list(GET generated ${i} token)
  expect_equal("step ${i} argmax (teacher-forced vs greedy)" "${value}" ${token})
  string(JSON value LENGTH "${step}" logits)
  expect_equal("step ${i} logits" "${value}" 256)
  string(JSON layers LENGTH "${step}" attention)
  expect_equal("step ${i} attention layers" "${layers}" 2)
  foreach(layer RANGE 1)
    string(JSON entry GET "${step}" attention ${layer})
    string(JSON value GET "${entry}" layer)
    expect_equal("step ${i} layer" "${value}" ${layer})
    string(JSON keys GET "${entry}" keys)
    math(EXPR expected_keys "${position} + 1")
    expect_equal("step ${i} layer ${layer} keys" "${keys}" ${expected_keys})
    string(JSON value LENGTH "${entry}" scores)
    math(EXPR expected_scores "4 * ${keys}")
    expect_equal("step ${i} layer ${layer} scores" "${value}" ${expected_scores})
  endforeach()
endforeach()
message(STATUS "model_tool --dump_json: 6 greedy and 6 teacher-forced steps agree")
