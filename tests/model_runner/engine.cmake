# The serving engine in process on the bundled tiny model, with scripted
# sampler backends (model_runner/engine.h).
entroserve_test(engine_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/engine_test.cc
  LIBS entroserve_engine)
