# cpp-httplib (Debian: libcpp-httplib-dev; the HTTP server of /metrics and of
# runnerd's OpenAI-compatible API) and prometheus-cpp's core library
# (Debian: prometheus-cpp-dev; metric families and the text exposition
# format). Found by header and library along CMAKE_PREFIX_PATH, as
# model_runner/tokenizer does for PCRE2, so that Debian's packages unpacked
# into a prefix (docs/GPU.md) are enough: no pkg-config, and none of the
# civetweb and curl packages that prometheus-cpp's CMake config asks for
# (their HTTP server and push client are not used).
find_path(ENTROSERVE_HTTPLIB_INCLUDE_DIR httplib.h REQUIRED)
find_library(ENTROSERVE_HTTPLIB_LIBRARY NAMES cpp-httplib REQUIRED)
add_library(entroserve_httplib UNKNOWN IMPORTED)
set_target_properties(entroserve_httplib PROPERTIES
  IMPORTED_LOCATION ${ENTROSERVE_HTTPLIB_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${ENTROSERVE_HTTPLIB_INCLUDE_DIR}
  # Debian builds the library with these (its cpp-httplib.pc says so): the
  # classes' layout depends on them, so every user must define them too.
  INTERFACE_COMPILE_DEFINITIONS
    "CPPHTTPLIB_OPENSSL_SUPPORT;CPPHTTPLIB_ZLIB_SUPPORT;CPPHTTPLIB_BROTLI_SUPPORT")

find_path(ENTROSERVE_PROMETHEUS_INCLUDE_DIR prometheus/registry.h REQUIRED)
find_library(ENTROSERVE_PROMETHEUS_LIBRARY NAMES prometheus-cpp-core REQUIRED)
add_library(entroserve_prometheus UNKNOWN IMPORTED)
set_target_properties(entroserve_prometheus PROPERTIES
  IMPORTED_LOCATION ${ENTROSERVE_PROMETHEUS_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${ENTROSERVE_PROMETHEUS_INCLUDE_DIR})
