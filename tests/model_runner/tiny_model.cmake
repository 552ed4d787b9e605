# The bundled model (models/tiny) loads and generates: greedy output for a
# fixed prompt is pinned (token ids and text), so a regression in the runner
# shows.
entroserve_test(tiny_model_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tiny_model_test.cc
  LIBS entroserve_engine)
