# entroserve_trace: the .jsonl and HTML traces of samplerctl generate
# (trace.h). The page's CSS and JS live in trace_page.{css,js} and are pasted
# into a generated header as raw string literals at configure time (editing
# either re-runs the configure step).
set(TRACE_PAGE_DIR ${CMAKE_CURRENT_LIST_DIR})
set(TRACE_PAGE_GEN ${CMAKE_CURRENT_BINARY_DIR}/trace_gen)
file(READ ${TRACE_PAGE_DIR}/trace_page.css TRACE_PAGE_CSS)
file(READ ${TRACE_PAGE_DIR}/trace_page.js TRACE_PAGE_JS)
foreach(asset TRACE_PAGE_CSS TRACE_PAGE_JS)
  string(FIND "${${asset}}" ")TRACE_PAGE_ASSET" bad)
  if(NOT bad EQUAL -1)
    message(FATAL_ERROR "${asset} contains the raw-string delimiter )TRACE_PAGE_ASSET")
  endif()
  string(FIND "${${asset}}" "</script" bad)
  if(NOT bad EQUAL -1)
    message(FATAL_ERROR "${asset} contains </script, which would end the page's script early")
  endif()
endforeach()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${TRACE_PAGE_DIR}/trace_page.css ${TRACE_PAGE_DIR}/trace_page.js)
configure_file(${TRACE_PAGE_DIR}/trace_page_assets.h.in
               ${TRACE_PAGE_GEN}/clients/samplerctl/trace_page_assets.h @ONLY)

add_library(entroserve_trace STATIC ${TRACE_PAGE_DIR}/trace.cc)
target_include_directories(entroserve_trace PRIVATE ${TRACE_PAGE_GEN})
target_link_libraries(entroserve_trace PUBLIC
  entroserve_proto entroserve_base absl::status absl::strings absl::str_format)
