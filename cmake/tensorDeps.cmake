# Imported targets for libtensor's link dependencies, shared by the build
# (CMakeLists.txt) and the installed package config (tensorConfig.cmake), so
# both find them the same way:
#
#   tensor::blis     BLIS, the OpenMP-threaded build first (Debian:
#                    libblis-openmp-dev, which installs it beside the other
#                    threading variants in lib/<arch>/blis-openmp)
#   tensor::jansson  jansson (safetensors checkpoints); only when
#                    TN_CHECKPOINTS is on
#
# Sets TENSOR_BLIS_LIBRARY, TENSOR_BLIS_INCLUDE_DIR, TENSOR_JANSSON_LIBRARY,
# TENSOR_JANSSON_INCLUDE_DIR (cache) and TENSOR_DEPS_MISSING (the list of
# what was not found; empty when all is well). Headers are looked for but
# not required here: the build requires them, a program using the installed
# library does not (tensor's public headers include neither blis.h nor
# jansson.h).
set(TENSOR_DEPS_MISSING "")

# tensor::<name> from a library file and, when found, its include directory;
# or `what` added to TENSOR_DEPS_MISSING.
macro(tensor_imported name library include_dir what)
  if(NOT ${library})
    list(APPEND TENSOR_DEPS_MISSING "${what}")
  elseif(NOT TARGET tensor::${name})
    add_library(tensor::${name} UNKNOWN IMPORTED)
    set_target_properties(tensor::${name} PROPERTIES IMPORTED_LOCATION "${${library}}")
    if(${include_dir})
      set_target_properties(tensor::${name} PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES "${${include_dir}}")
    endif()
  endif()
endmacro()

find_library(TENSOR_BLIS_LIBRARY blis
  PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/blis-openmp NO_DEFAULT_PATH)
find_library(TENSOR_BLIS_LIBRARY blis)
find_path(TENSOR_BLIS_INCLUDE_DIR blis.h
  PATHS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/blis-openmp NO_DEFAULT_PATH)
find_path(TENSOR_BLIS_INCLUDE_DIR blis.h PATH_SUFFIXES blis)
tensor_imported(blis TENSOR_BLIS_LIBRARY TENSOR_BLIS_INCLUDE_DIR "BLIS (libblis-openmp-dev)")

if(TN_CHECKPOINTS)
  find_library(TENSOR_JANSSON_LIBRARY jansson)
  find_path(TENSOR_JANSSON_INCLUDE_DIR jansson.h)
  tensor_imported(jansson TENSOR_JANSSON_LIBRARY TENSOR_JANSSON_INCLUDE_DIR
    "jansson (libjansson-dev)")
endif()
