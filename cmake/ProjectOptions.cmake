# Per-target compile settings. Warnings and sanitizers are attached to our own
# targets only (never to global flags), so third-party headers included as
# SYSTEM stay quiet and the project's own code stays warning-free.

function(webpushd_target_defaults target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
    -Wcast-align -Woverloaded-virtual -Wimplicit-fallthrough
    -Wformat=2)
  # GCC 12 at -O3 reports -Wrestrict for std::string concatenation inlined
  # from libstdc++ (GCC bug 105329): a false positive in the standard
  # library's own code, which would otherwise make Release builds noisy.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(WEBPUSHD_FUZZ)
    # Coverage for libFuzzer in every library; the fuzzer's main only in the
    # targets (tests/fuzz). UBSan findings stop the run like ASan's.
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  elseif(WEBPUSHD_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

# add_webpushd_module(NAME SOURCES ... LINKS ...)
# Declares library webpushd_<NAME> with the public include directory.
function(add_webpushd_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_LINKS;PRIVATE_LINKS" ${ARGN})
  add_library(webpushd_${name} STATIC ${ARG_SOURCES})
  add_library(webpushd::${name} ALIAS webpushd_${name})
  target_include_directories(webpushd_${name} PUBLIC ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(webpushd_${name} PUBLIC ${ARG_PUBLIC_LINKS} PRIVATE ${ARG_PRIVATE_LINKS})
  webpushd_target_defaults(webpushd_${name})
endfunction()

# add_webpushd_test(NAME SOURCES ... LINKS ...)
# One doctest executable per module, registered with CTest under the label "unit".
function(add_webpushd_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LINKS;LABELS" ${ARGN})
  add_executable(${name} ${PROJECT_SOURCE_DIR}/tests/unit/doctest_main.cpp ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE doctest::doctest ${ARG_LINKS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  webpushd_target_defaults(${name})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT 300)
endfunction()

# add_node_tests(LABEL TIMEOUT)
# Registers every *.test.mjs in the calling folder as a CTest test named
# <LABEL>_<file>, run by Node's built-in test runner with WEBPUSHD_BIN_DIR
# pointing at this build's binaries. Without Node nothing is registered (and
# a warning says how to get it): tools/bootstrap installs it for the tests.
function(add_node_tests label timeout)
  find_program(NODE_EXECUTABLE node)
  if(NOT NODE_EXECUTABLE)
    message(WARNING "node not found: ${label} tests are not registered (run tools/bootstrap deps --test)")
    return()
  endif()
  file(GLOB test_files CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.test.mjs)
  foreach(test_file IN LISTS test_files)
    get_filename_component(name ${test_file} NAME_WE)
    add_test(NAME ${label}_${name} COMMAND ${NODE_EXECUTABLE} --test --test-reporter=spec ${test_file})
    set_tests_properties(${label}_${name} PROPERTIES
      LABELS ${label}
      TIMEOUT ${timeout}
      ENVIRONMENT "WEBPUSHD_BIN_DIR=${CMAKE_BINARY_DIR}/bin")
  endforeach()
endfunction()
