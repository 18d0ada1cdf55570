# cmake/DreHelpers.cmake -- how a service, a tool and a test are declared.
#
# Every list of sources is explicit: a new file is added by name where its
# target is declared, never picked up by a glob or a name pattern.

include(CMakeParseArguments)

# The install layout: <prefix>/bin, <prefix>/lib, <prefix>/share/dre.
# An installed program finds libdre_common through its RPATH, relative to
# itself, so a prefix can be moved (or copied into an image) as a whole.
include(GNUInstallDirs)
set(DRE_INSTALL_DATADIR ${CMAKE_INSTALL_DATADIR}/dre)
file(RELATIVE_PATH _dre_bin_to_lib
  ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
set(CMAKE_INSTALL_RPATH "$ORIGIN/${_dre_bin_to_lib}")
unset(_dre_bin_to_lib)

# dre_add_service(NAME svc CORE_SOURCES a.c ... [MAIN main.c] [LIBS ...])
#
# A service is a static library dre_<svc>_core of everything but its main
# (unit tests and benchmarks link it and run the service in-process) and
# the executable dre-<svc> built from MAIN alone. The core's include
# directory is the service's folder, so a test includes "coupon.h". LIBS
# are linked publicly into the core (dre_common always is).
function(dre_add_service)
  cmake_parse_arguments(ARG "" "NAME;MAIN" "CORE_SOURCES;LIBS" ${ARGN})
  if(NOT ARG_NAME OR NOT ARG_CORE_SOURCES)
    message(FATAL_ERROR "dre_add_service: NAME and CORE_SOURCES are required")
  endif()
  if(NOT ARG_MAIN)
    set(ARG_MAIN main.c)
  endif()
  set(core dre_${ARG_NAME}_core)
  add_library(${core} STATIC ${ARG_CORE_SOURCES})
  target_include_directories(${core} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(${core} PUBLIC dre_common ${ARG_LIBS})
  dre_add_program(NAME dre-${ARG_NAME} SOURCES ${ARG_MAIN} LIBS ${core})
endfunction()

# dre_add_program(NAME dre-x SOURCES a.c ... [LIBS ...])
#
# A program (a service's executable or a tool) built into <build>/bin and
# installed into <prefix>/bin.
function(dre_add_program)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;LIBS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_LIBS})
  set_target_properties(${ARG_NAME} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
  install(TARGETS ${ARG_NAME} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endfunction()

# dre_add_unit_test(NAME mod SOURCES test_mod.c ... [LIBS ...])
#
# A cmocka test: the executable test_<mod> in <build>/tests, registered as
# ctest dre.unit.<mod> (LABELS unit, and tsan when mod is in TSAN_UNITS).
# Every test links dre_common, cmocka and the scaffolding of
# tests/unit/testkit.h; LIBS adds the service cores it
# runs in-process.
function(dre_add_unit_test)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;LIBS" ${ARGN})
  set(exe test_${ARG_NAME})
  add_executable(${exe} ${ARG_SOURCES})
  target_link_libraries(${exe} PRIVATE ${ARG_LIBS} dre_testkit dre_common
    PkgConfig::CMOCKA)
  set_target_properties(${exe} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME dre.unit.${ARG_NAME} COMMAND ${exe})
  set(labels unit)
  if(ARG_NAME IN_LIST TSAN_UNITS)
    list(APPEND labels tsan)
  endif()
  set_tests_properties(dre.unit.${ARG_NAME} PROPERTIES
    LABELS "${labels}" TIMEOUT 120
    ENVIRONMENT "DRE_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endfunction()

# dre_add_integration_test(NAME mod [SCRIPT test_mod.py] [ENVIRONMENT ...]
#                          [LABELS ...] [COST seconds])
#
# A python3 test driving the real processes: ctest dre.integration.<mod>
# (LABELS integration, and LABELS) runs integration/test_<mod>.py with the
# build's bin/ and the source tree in its environment (DRE_SANITIZE=1 in a
# sanitized build: long tests scale down); ENVIRONMENT adds NAME=value
# entries. LABELS fault: a kill -9 / restart test of thousands of confirms,
# which tools/dre test runs in the plain build only (at full size; the
# sanitized stage skips them to stay within CI's time). LABELS race: one
# of the concurrency-heavy tests that tools/dre test also runs against the
# services built with ThreadSanitizer (build/tsan). COST: the test's
# usual run time; ctest -j starts the costliest first, so a fresh clone (no
# recorded timings) does not end on one long test running alone.
function(dre_add_integration_test)
  cmake_parse_arguments(ARG "" "NAME;SCRIPT;COST" "ENVIRONMENT;LABELS" ${ARGN})
  if(NOT ARG_SCRIPT)
    set(ARG_SCRIPT integration/test_${ARG_NAME}.py)
  endif()
  # DRE_IT_RECORD_DIR: harness.py records every answer there for the
  # OpenAPI conformance test (tests/CMakeLists.txt), which runs after them.
  set(env "DRE_BIN_DIR=${CMAKE_BINARY_DIR}/bin" "DRE_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
    "DRE_IT_RECORD_DIR=${CMAKE_BINARY_DIR}/it-answers")
  if(DRE_SANITIZE)
    list(APPEND env "DRE_SANITIZE=1")
  endif()
  list(APPEND env ${ARG_ENVIRONMENT})
  add_test(NAME dre.integration.${ARG_NAME}
    COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/${ARG_SCRIPT})
  set_tests_properties(dre.integration.${ARG_NAME} PROPERTIES
    LABELS "integration;${ARG_LABELS}" TIMEOUT 600 ENVIRONMENT "${env}"
    FIXTURES_REQUIRED dre_it_answers)
  if(ARG_COST)
    set_tests_properties(dre.integration.${ARG_NAME} PROPERTIES COST ${ARG_COST})
  endif()
endfunction()

# dre_add_fuzz_target(NAME t [LIBS ...])
#
# fuzz_<t>.c is a libFuzzer target over one untrusted-input module. With
# DRE_FUZZ it becomes the fuzzer <build>/fuzz/fuzz_<t>; with DRE_TESTS a
# replay of its seed corpus, registered as ctest dre.fuzz.<t> (LABELS unit).
# Both link dre_common and LIBS.
function(dre_add_fuzz_target)
  cmake_parse_arguments(ARG "" "NAME" "LIBS" ${ARGN})
  set(t ${ARG_NAME})
  if(DRE_FUZZ)
    add_executable(fuzz_${t} fuzz_${t}.c)
    target_link_libraries(fuzz_${t} PRIVATE ${ARG_LIBS} dre_common)
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
    set_target_properties(fuzz_${t} PROPERTIES
      RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  endif()
  if(DRE_TESTS)
    add_executable(replay_${t} fuzz_${t}.c replay.c)
    target_link_libraries(replay_${t} PRIVATE ${ARG_LIBS} dre_common)
    set_target_properties(replay_${t} PROPERTIES
      RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
    add_test(NAME dre.fuzz.${t}
      COMMAND replay_${t} ${CMAKE_CURRENT_SOURCE_DIR}/corpus/${t})
    set_tests_properties(dre.fuzz.${t} PROPERTIES LABELS unit TIMEOUT 120)
  endif()
endfunction()
