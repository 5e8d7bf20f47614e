# FindTensorRT: NvInfer.h and libnvinfer, from TensorRT_ROOT, the CUDA toolkit, or JetPack's system paths.
#
# Sets TensorRT_FOUND, TensorRT_VERSION (e.g. 8.5.2), TensorRT_INCLUDE_DIRS, TensorRT_LIBRARIES and the
# imported target TensorRT::nvinfer.
#
# JetPack installs the headers under /usr/include/aarch64-linux-gnu and the library under
# /usr/lib/aarch64-linux-gnu; the tar packages for desktops unpack to one folder given as TensorRT_ROOT.

set(_trt_hints ${TensorRT_ROOT} $ENV{TensorRT_ROOT} $ENV{TENSORRT_ROOT} ${CUDAToolkit_ROOT} $ENV{CUDA_HOME}
    /usr/local/cuda /usr/local/tensorrt)

find_path(TensorRT_INCLUDE_DIR NvInfer.h
  HINTS ${_trt_hints}
  PATH_SUFFIXES include include/aarch64-linux-gnu include/x86_64-linux-gnu
  PATHS /usr/include/aarch64-linux-gnu /usr/include/x86_64-linux-gnu)
find_library(TensorRT_LIBRARY NAMES nvinfer
  HINTS ${_trt_hints}
  PATH_SUFFIXES lib lib64 lib/aarch64-linux-gnu lib/x86_64-linux-gnu targets/aarch64-linux/lib
  PATHS /usr/lib/aarch64-linux-gnu /usr/lib/x86_64-linux-gnu)

# The value of `#define <name> <value>` in the lines of NvInferVersion.h, following one level of
# indirection: TensorRT 10 defines NV_TENSORRT_MAJOR as TRT_MAJOR_ENTERPRISE, a number defined above it.
function(_trt_define out lines name)
  set(value "")
  foreach(line IN LISTS lines)
    if(line MATCHES "^[ \t]*#[ \t]*define[ \t]+${name}[ \t]+([A-Za-z0-9_]+)")
      set(value "${CMAKE_MATCH_1}")
      break()
    endif()
  endforeach()
  if(value MATCHES "^[A-Za-z_]")
    _trt_define(value "${lines}" "${value}")
  endif()
  set(${out} "${value}" PARENT_SCOPE)
endfunction()

function(_trt_component out lines part)
  _trt_define(value "${lines}" "NV_TENSORRT_${part}")
  if(NOT value MATCHES "^[0-9]+$")
    _trt_define(value "${lines}" "TRT_${part}_ENTERPRISE")
  endif()
  if(NOT value MATCHES "^[0-9]+$")
    _trt_define(value "${lines}" "TRT_${part}_RTX")
  endif()
  set(${out} "${value}" PARENT_SCOPE)
endfunction()

set(TensorRT_VERSION "")
if(TensorRT_INCLUDE_DIR AND EXISTS "${TensorRT_INCLUDE_DIR}/NvInferVersion.h")
  file(STRINGS "${TensorRT_INCLUDE_DIR}/NvInferVersion.h" _trt_lines REGEX "^[ \t]*#[ \t]*define[ \t]+")
  _trt_component(_trt_major "${_trt_lines}" MAJOR)
  _trt_component(_trt_minor "${_trt_lines}" MINOR)
  _trt_component(_trt_patch "${_trt_lines}" PATCH)
  if(_trt_major MATCHES "^[0-9]+$" AND _trt_minor MATCHES "^[0-9]+$" AND _trt_patch MATCHES "^[0-9]+$")
    set(TensorRT_VERSION "${_trt_major}.${_trt_minor}.${_trt_patch}")
  endif()
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(TensorRT
  REQUIRED_VARS TensorRT_LIBRARY TensorRT_INCLUDE_DIR
  VERSION_VAR TensorRT_VERSION)

if(TensorRT_FOUND)
  set(TensorRT_INCLUDE_DIRS "${TensorRT_INCLUDE_DIR}")
  set(TensorRT_LIBRARIES "${TensorRT_LIBRARY}")
  if(NOT TARGET TensorRT::nvinfer)
    add_library(TensorRT::nvinfer UNKNOWN IMPORTED)
    set_target_properties(TensorRT::nvinfer PROPERTIES
      IMPORTED_LOCATION "${TensorRT_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${TensorRT_INCLUDE_DIR}")
  endif()
endif()
mark_as_advanced(TensorRT_INCLUDE_DIR TensorRT_LIBRARY)
