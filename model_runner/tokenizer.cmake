# The tokenizer and chat templates (model_runner/tokenizer.h, chat_template.h):
# Abseil, PCRE2 (the pre-tokenizer regexes), ICU (NFC and friends) and
# nlohmann-json (Debian: libpcre2-dev, libicu-dev, nlohmann-json3-dev). No
# libtorch, so this library and its tests compile in seconds.
#
# PCRE2 and ICU are found by header and library along CMAKE_PREFIX_PATH, not
# through pkg-config: Debian's .pc files say prefix=/usr, so they mislead
# when the packages are unpacked into another prefix (ENTROSERVE_PREFIXES,
# docs/GPU.md), and a machine without -dev packages may lack pkg-config.
find_path(ENTROSERVE_PCRE2_INCLUDE_DIR pcre2.h REQUIRED)
find_library(ENTROSERVE_PCRE2_LIBRARY NAMES pcre2-8 REQUIRED)
add_library(entroserve_pcre2_8 UNKNOWN IMPORTED)
set_target_properties(entroserve_pcre2_8 PROPERTIES
  IMPORTED_LOCATION ${ENTROSERVE_PCRE2_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${ENTROSERVE_PCRE2_INCLUDE_DIR})
find_package(ICU 60 REQUIRED COMPONENTS uc)
find_package(nlohmann_json 3 REQUIRED)

add_library(entroserve_tokenizer STATIC
  ${CMAKE_CURRENT_LIST_DIR}/tokenizer.cc
  ${CMAKE_CURRENT_LIST_DIR}/chat_template.cc)
target_compile_options(entroserve_tokenizer PRIVATE -Wall -Wextra -Wno-unused-parameter)
target_link_libraries(entroserve_tokenizer
  PUBLIC absl::status absl::statusor absl::strings absl::str_format absl::span
         absl::flat_hash_map
  PRIVATE absl::synchronization entroserve_pcre2_8 ICU::uc
          nlohmann_json::nlohmann_json)
