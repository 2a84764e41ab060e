# libheapkit-debug.so: the debug library (src/debug.c, src/stack.c).
# The same sources as libheapkit.so, built with HK_DEBUG_MODE=1 so every
# entry of the malloc family goes through the checks, and with frame
# pointers so heapkit's own frames can be walked. Preloaded by
# `heapkit run --debug` / `--leaks`, or by hand:
#   LD_PRELOAD=libheapkit-debug.so HEAPKIT_DEBUG=all ./program
# libheapkit-debug-api.a is the same for tests that link it.
set(HEAPKIT_DEBUG_SOURCES ${HEAPKIT_CORE_SOURCES} src/debug.c src/stack.c)

add_library(heapkit_debug_core OBJECT ${HEAPKIT_DEBUG_SOURCES})
target_include_directories(heapkit_debug_core PUBLIC
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
  PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_compile_definitions(heapkit_debug_core PUBLIC HK_DEBUG_MODE=1)
target_compile_options(heapkit_debug_core PRIVATE -fvisibility=hidden -fno-builtin-malloc
  -fno-omit-frame-pointer)

add_library(heapkit_debug SHARED $<TARGET_OBJECTS:heapkit_debug_core> ${HEAPKIT_OVERRIDE_SOURCES})
set_target_properties(heapkit_debug PROPERTIES OUTPUT_NAME heapkit-debug
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
target_include_directories(heapkit_debug PUBLIC
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:include>)
target_include_directories(heapkit_debug PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_compile_definitions(heapkit_debug PRIVATE HK_DEBUG_MODE=1)
target_compile_options(heapkit_debug PRIVATE -fvisibility=hidden -fno-builtin-malloc
  -fno-omit-frame-pointer)
# _Unwind_Backtrace (HEAPKIT_STACK=unwind) lives in libgcc_s, which every
# Debian system has (libgcc-s1 is essential).
target_link_libraries(heapkit_debug PUBLIC Threads::Threads PRIVATE gcc_s)

install(TARGETS heapkit_debug LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
