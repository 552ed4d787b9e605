# The tokenizer and chat templates (model_runner/tokenizer.h, chat_template.h):
# Abseil, PCRE2 (the pre-tokenizer regexes), ICU (NFC and friends) and
# nlohmann-json (Debian: libpcre2-dev, libicu-dev, nlohmann-json3-dev). No
# libtorch, so this library and its tests compile in seconds.
find_package(PkgConfig REQUIRED)
pkg_check_modules(ENTROSERVE_TOK_PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(ENTROSERVE_TOK_ICU REQUIRED IMPORTED_TARGET icu-uc)
find_package(nlohmann_json 3 REQUIRED)

add_library(entroserve_tokenizer STATIC
  ${CMAKE_CURRENT_LIST_DIR}/tokenizer.cc
  ${CMAKE_CURRENT_LIST_DIR}/chat_template.cc)
target_compile_options(entroserve_tokenizer PRIVATE -Wall -Wextra -Wno-unused-parameter)
target_link_libraries(entroserve_tokenizer
  PUBLIC absl::status absl::statusor absl::strings absl::str_format absl::span
         absl::flat_hash_map
  PRIVATE absl::synchronization PkgConfig::ENTROSERVE_TOK_PCRE2 PkgConfig::ENTROSERVE_TOK_ICU
          nlohmann_json::nlohmann_json)
