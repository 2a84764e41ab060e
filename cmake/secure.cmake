# libheapkit-secure.so: the hardened library (issue 6's secure mode).
# The same sources as libheapkit.so plus src/secure.c, built with
# HK_SECURE=1: free-list links encoded with per-chunk random keys and
# checked when decoded, a live/pending bit per block so that every double
# and invalid free is caught, guard pages around each chunk's data and
# after each huge block, slab blocks handed out in a random order
# (src/internal/secure.h tells the whole design). The plain libraries
# compile none of it. Preloaded by `heapkit run --secure`, or by hand:
#   LD_PRELOAD=libheapkit-secure.so ./program
# libheapkit-secure-api.a is the hk_ API alone in the same mode, for the
# tests (tests/secure), which run under the sanitizers too.
include(GNUInstallDirs)

set(HEAPKIT_SECURE_SOURCES ${HEAPKIT_CORE_SOURCES} src/secure.c)

add_library(heapkit_secure_core OBJECT ${HEAPKIT_SECURE_SOURCES})
target_include_directories(heapkit_secure_core PUBLIC
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
  PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_compile_definitions(heapkit_secure_core PUBLIC HK_SECURE=1)
target_compile_options(heapkit_secure_core PRIVATE -fvisibility=hidden -fno-builtin-malloc)
if(HEAPKIT_DEBUG)
  target_compile_definitions(heapkit_secure_core PUBLIC HK_DEBUG=1)
endif()

# The override sources inline the malloc/free fast paths (fastpath.h), so
# they are compiled in secure mode too.
add_library(heapkit_secure SHARED $<TARGET_OBJECTS:heapkit_secure_core> ${HEAPKIT_OVERRIDE_SOURCES})
set_target_properties(heapkit_secure PROPERTIES OUTPUT_NAME heapkit-secure
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
target_include_directories(heapkit_secure PUBLIC
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:include>)
target_include_directories(heapkit_secure PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_compile_definitions(heapkit_secure PRIVATE HK_SECURE=1)
target_compile_options(heapkit_secure PRIVATE -fvisibility=hidden -fno-builtin-malloc)
target_link_libraries(heapkit_secure PUBLIC Threads::Threads)

add_library(heapkit_secure_api_static STATIC $<TARGET_OBJECTS:heapkit_secure_core>)
set_target_properties(heapkit_secure_api_static PROPERTIES OUTPUT_NAME heapkit-secure-api)
target_include_directories(heapkit_secure_api_static PUBLIC
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:include>)
target_link_libraries(heapkit_secure_api_static PUBLIC Threads::Threads)
# A program that links it and includes the internal headers (the tests)
# must see the secure layout of the chunk metadata.
target_compile_definitions(heapkit_secure_api_static INTERFACE HK_SECURE=1)

install(TARGETS heapkit_secure heapkit_secure_api_static
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
