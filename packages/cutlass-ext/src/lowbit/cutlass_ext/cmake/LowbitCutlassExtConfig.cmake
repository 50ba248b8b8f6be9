# lowbit shared CMake module: builds one stable-ABI torch extension per kernel
# package. A package's CMakeLists.txt is:
#
#   cmake_minimum_required(VERSION 3.25)
#   project(lowbit_nvfp4_quant LANGUAGES CXX)
#   find_package(LowbitCutlassExt REQUIRED)
#   lowbit_add_extension(_C PACKAGE lowbit-nvfp4-quant MODULE lowbit/nvfp4_quant)
#
# Sources are found by folder under csrc/ and each folder is compiled only for
# the targets it is written for:
#   csrc/*.cpp, csrc/cpu/*.cpp   host compiler, always
#   csrc/cuda/*.cu               every CUDA architecture built
#   csrc/sm90/*.cu               sm_90a only
#   csrc/sm100/*.cu              the sm_100 family archs built (100a, 103a, ...)
#   csrc/sm120/*.cu              the sm_120 family archs built (120a, 121a, ...)
# Architectures: -DLOWBIT_CUDA_ARCHS or the LOWBIT_CUDA_ARCHS environment
# variable: a list ("90a;100a;120a"), "native" (the visible GPUs) or "none"
# (CPU-only). Unset: the visible GPUs, CPU-only when there are none.
# Every TU gets LOWBIT_PACKAGE, LOWBIT_WITH_CUDA, LOWBIT_BUILT_SM90/100/120 and
# LOWBIT_CUDA_ARCHS (see include/lowbit/arch.h).
include_guard(GLOBAL)

get_filename_component(_lowbit_list_dir "${CMAKE_CURRENT_LIST_DIR}" REALPATH)
get_filename_component(LOWBIT_CUTLASS_EXT_INCLUDE_DIR "${_lowbit_list_dir}/../include" ABSOLUTE)
# torch 2.10 stable ABI: the .so loads on torch 2.10 and every later release.
set(LOWBIT_TORCH_TARGET_VERSION "0x020A000000000000")

# ------------------------------------------------------------ python deps
if(NOT LOWBIT_PYTHON)
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
  set(LOWBIT_PYTHON "${Python3_EXECUTABLE}")
endif()

# Locate torch and the nvidia-cutlass headers without importing torch (~2 s).
execute_process(
  COMMAND "${LOWBIT_PYTHON}" -c
    "import importlib.util as u, os\nfor n in ('torch', 'cutlass_library'):\n    s = u.find_spec(n)\n    print(os.path.dirname(s.origin) if s and s.origin else (list(s.submodule_search_locations)[0] if s else ''))"
  OUTPUT_VARIABLE _lowbit_py_out RESULT_VARIABLE _lowbit_py_rc
  OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _lowbit_py_rc EQUAL 0)
  message(FATAL_ERROR "lowbit: ${LOWBIT_PYTHON} could not locate torch / nvidia-cutlass")
endif()
string(REPLACE "\n" ";" _lowbit_py_out "${_lowbit_py_out}")
list(GET _lowbit_py_out 0 _lowbit_torch_dir)
list(GET _lowbit_py_out 1 _lowbit_cutlass_dir)
if(NOT _lowbit_torch_dir)
  message(FATAL_ERROR "lowbit: torch is not installed for ${LOWBIT_PYTHON}; "
    "install torch (>= 2.10) first, or build with build isolation")
endif()

# Stable paths for the compile commands: isolated builds see torch and CUTLASS
# at a new temporary path each time, which would make ninja recompile every
# object. Symlinks inside the build tree, refreshed at every configure, keep
# the command lines identical so only changed sources rebuild.
set(_lowbit_deps "${CMAKE_BINARY_DIR}/lowbit-deps")
file(MAKE_DIRECTORY "${_lowbit_deps}")
file(CREATE_LINK "${_lowbit_torch_dir}" "${_lowbit_deps}/torch" SYMBOLIC)
set(LOWBIT_TORCH_INCLUDE_DIR "${_lowbit_deps}/torch/include")
# This package's headers too: in an isolated build they sit in a temporary env.
file(CREATE_LINK "${LOWBIT_CUTLASS_EXT_INCLUDE_DIR}" "${_lowbit_deps}/lowbit-include" SYMBOLIC)
set(LOWBIT_CUTLASS_EXT_INCLUDE_DIR "${_lowbit_deps}/lowbit-include")
set(LOWBIT_TORCH_LIB_DIR "${_lowbit_deps}/torch/lib")
if(_lowbit_cutlass_dir)
  file(CREATE_LINK "${_lowbit_cutlass_dir}" "${_lowbit_deps}/cutlass" SYMBOLIC)
  set(LOWBIT_CUTLASS_INCLUDE_DIRS
      "${_lowbit_deps}/cutlass/source/include"
      "${_lowbit_deps}/cutlass/source/tools/util/include")
else()
  set(LOWBIT_CUTLASS_INCLUDE_DIRS "")
endif()

# ------------------------------------------------------------ architectures
function(_lowbit_resolve_archs out)
  set(req "${LOWBIT_CUDA_ARCHS}")
  if(NOT DEFINED LOWBIT_CUDA_ARCHS OR "${req}" STREQUAL "")
    set(req "$ENV{LOWBIT_CUDA_ARCHS}")
  endif()
  set(auto FALSE)
  if("${req}" STREQUAL "" OR "${req}" STREQUAL "native")
    set(auto TRUE)
    set(detected "")
    find_program(_lowbit_smi nvidia-smi)
    if(_lowbit_smi)
      execute_process(COMMAND "${_lowbit_smi}" --query-gpu=compute_cap --format=csv,noheader
        OUTPUT_VARIABLE caps RESULT_VARIABLE rc ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
      if(rc EQUAL 0)
        string(REPLACE "\n" ";" caps "${caps}")
        foreach(c IN LISTS caps)
          string(STRIP "${c}" c)
          string(REPLACE "." "" c "${c}")
          if(c MATCHES "^(9|10|11|12)[0-9]$")
            list(APPEND detected "${c}a")
          elseif(NOT c STREQUAL "")
            message(WARNING "lowbit: GPU with compute capability ${c} has no lowbit kernels; skipped")
          endif()
        endforeach()
      endif()
    endif()
    list(REMOVE_DUPLICATES detected)
    if("${req}" STREQUAL "native" AND NOT detected)
      message(FATAL_ERROR "lowbit: LOWBIT_CUDA_ARCHS=native but no supported GPU is visible")
    endif()
    set(req "${detected}")
  elseif("${req}" STREQUAL "none")
    set(req "")
  endif()
  string(REPLACE "," ";" req "${req}")
  string(REPLACE " " ";" req "${req}")
  set(archs "")
  foreach(a IN LISTS req)
    if(a STREQUAL "")
      continue()
    endif()
    if(NOT a MATCHES "^(9|10|11|12)[0-9][af]?$")
      message(FATAL_ERROR "lowbit: LOWBIT_CUDA_ARCHS entry '${a}' is not one of "
        "90a, 100a, 103a, 110a, 120a, 121a (or 'native' / 'none')")
    endif()
    if(a MATCHES "^[0-9]+$")
      set(a "${a}a")  # Hopper/Blackwell kernels need the arch-specific features
    endif()
    list(APPEND archs "${a}")
  endforeach()
  list(REMOVE_DUPLICATES archs)
  set(${out} "${archs}" PARENT_SCOPE)
endfunction()

# ------------------------------------------------------------ CUDA language
# Resolved once, at directory scope (enable_language cannot run in a function).
_lowbit_resolve_archs(LOWBIT_RESOLVED_CUDA_ARCHS)
if(LOWBIT_RESOLVED_CUDA_ARCHS)
  if(NOT CMAKE_CUDA_COMPILER)
    find_program(_lowbit_nvcc nvcc HINTS "$ENV{CUDA_HOME}/bin" /usr/local/cuda/bin)
    if(NOT _lowbit_nvcc)
      message(FATAL_ERROR "lowbit: CUDA architectures [${LOWBIT_RESOLVED_CUDA_ARCHS}] requested "
        "but nvcc was not found; set CUDA_HOME or LOWBIT_CUDA_ARCHS=none for a CPU-only build")
    endif()
    set(CMAKE_CUDA_COMPILER "${_lowbit_nvcc}" CACHE FILEPATH "" FORCE)
  endif()
  # nvcc's -isystem= form defeats ccache's path rewriting.
  set(CMAKE_INCLUDE_SYSTEM_FLAG_CUDA "-isystem ")
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
else()
  # CPU-only build: CUDA headers are still used when present, because CUTLASS
  # headers (cutlass_utils.h) include them even in host code.
  find_package(CUDAToolkit QUIET)
endif()

# One OBJECT library per source folder (cuda/ for every arch, sm90/, sm100/,
# sm120/ for their family only), compiled for the requested archs that folder
# targets. Sets in the caller: objects (the libraries), used_archs (archs that
# received device code: what the .so can run on), built_sm90/100/120 (0/1).
function(_lowbit_add_arch_objects name source_dir archs)
  set(regex_cuda ".*")
  set(regex_sm90 "^9[0-9]")
  set(regex_sm100 "^1[01][0-9]")
  set(regex_sm120 "^12[0-9]")
  set(built_sm90 0)
  set(built_sm100 0)
  set(built_sm120 0)
  set(objects "")
  set(used_archs "")
  foreach(g IN ITEMS cuda sm90 sm100 sm120)
    file(GLOB srcs CONFIGURE_DEPENDS "${source_dir}/${g}/*.cu")
    set(g_archs "")
    foreach(a IN LISTS archs)
      if(a MATCHES "${regex_${g}}")
        list(APPEND g_archs "${a}-real")
      endif()
    endforeach()
    if(NOT srcs OR NOT g_archs)
      continue()
    endif()
    if(NOT g STREQUAL "cuda")
      set(built_${g} 1)
    endif()
    string(REPLACE "-real" "" g_plain "${g_archs}")
    list(APPEND used_archs ${g_plain})
    add_library(${name}_${g} OBJECT ${srcs})
    set_target_properties(${name}_${g} PROPERTIES
      CUDA_ARCHITECTURES "${g_archs}" POSITION_INDEPENDENT_CODE ON
      CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON
      CUDA_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden)
    target_compile_options(${name}_${g} PRIVATE
      $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr --expt-extended-lambda -lineinfo>)
    list(APPEND objects ${name}_${g})
  endforeach()
  foreach(v IN ITEMS objects used_archs built_sm90 built_sm100 built_sm120)
    set(${v} "${${v}}" PARENT_SCOPE)
  endforeach()
endfunction()

# The module's link: libtorch_cpu by name only (the loader matches it to the
# copy `import torch` already loaded; never libtorch_cuda: CPU torch must load
# us), static cudart (no dependency on the CUDA runtime wheels torch ships).
function(_lowbit_link_module name with_cuda)
  set_target_properties(${name} PROPERTIES
    PREFIX "" CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON
    CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON
    SKIP_BUILD_RPATH ON INSTALL_RPATH "")
  target_link_directories(${name} PRIVATE "${LOWBIT_TORCH_LIB_DIR}")
  target_link_libraries(${name} PRIVATE torch_cpu)
  target_link_options(${name} PRIVATE "LINKER:--no-undefined" "LINKER:--as-needed"
    "LINKER:--exclude-libs,ALL")
  if(with_cuda)
    target_link_libraries(${name} PRIVATE CUDA::cudart_static)
    set_target_properties(${name} PROPERTIES CUDA_RESOLVE_DEVICE_SYMBOLS ON)
  endif()
endfunction()

# Installs the module and <name>_build_info.json beside it: what this build
# contains, read at run time by `lowbit info` and the tests.
function(_lowbit_install_with_build_info name package module used_archs)
  string(REPLACE ";" "\", \"" archs_json "${used_archs}")
  if(used_archs)
    set(archs_json "\"${archs_json}\"")
  endif()
  file(READ "${LOWBIT_TORCH_INCLUDE_DIR}/../version.py" _tv LIMIT 200)
  string(REGEX MATCH "__version__ = '([^']+)'" _ "${_tv}")
  set(torch_ver "${CMAKE_MATCH_1}")
  file(GENERATE OUTPUT "${CMAKE_CURRENT_BINARY_DIR}/${name}_build_info.json" CONTENT
"{\"package\": \"${package}\", \"library\": \"${name}\", \"cuda_archs\": [${archs_json}], \"torch_built_against\": \"${torch_ver}\", \"torch_target_version\": \"2.10\", \"cuda_compiler\": \"${CMAKE_CUDA_COMPILER_VERSION}\"}\n")
  install(TARGETS ${name} LIBRARY DESTINATION "${module}")
  install(FILES "${CMAKE_CURRENT_BINARY_DIR}/${name}_build_info.json" DESTINATION "${module}")
endfunction()

# ------------------------------------------------------------ the extension
# lowbit_add_extension(<name> PACKAGE <dist name> MODULE <import path>
#                      [SOURCE_DIR csrc] [INCLUDE_DIRS ...])
function(lowbit_add_extension name)
  cmake_parse_arguments(ARG "" "PACKAGE;MODULE;SOURCE_DIR" "INCLUDE_DIRS" ${ARGN})
  if(NOT ARG_PACKAGE OR NOT ARG_MODULE)
    message(FATAL_ERROR "lowbit_add_extension(${name}): PACKAGE and MODULE are required")
  endif()
  if(NOT ARG_SOURCE_DIR)
    set(ARG_SOURCE_DIR "${CMAKE_CURRENT_SOURCE_DIR}/csrc")
  endif()
  set(archs "${LOWBIT_RESOLVED_CUDA_ARCHS}")

  file(GLOB host_srcs CONFIGURE_DEPENDS "${ARG_SOURCE_DIR}/*.cpp" "${ARG_SOURCE_DIR}/cpu/*.cpp")
  add_library(${name} MODULE ${host_srcs})

  set(with_cuda 0)
  if(archs)
    set(with_cuda 1)
  endif()

  set(defs
    TORCH_TARGET_VERSION=${LOWBIT_TORCH_TARGET_VERSION}
    LOWBIT_PACKAGE="${ARG_PACKAGE}"
    LOWBIT_WITH_CUDA=${with_cuda})
  set(incs ${LOWBIT_CUTLASS_EXT_INCLUDE_DIR} ${ARG_SOURCE_DIR} ${ARG_INCLUDE_DIRS})
  set(sys_incs ${LOWBIT_TORCH_INCLUDE_DIR} ${LOWBIT_CUTLASS_INCLUDE_DIRS})
  if(CUDAToolkit_FOUND)
    list(APPEND sys_incs ${CUDAToolkit_INCLUDE_DIRS})
    foreach(d IN LISTS CUDAToolkit_INCLUDE_DIRS)
      if(EXISTS "${d}/cccl")
        list(APPEND sys_incs "${d}/cccl")  # CUTLASS includes <cuda/std/...> in host TUs too
      endif()
    endforeach()
  endif()

  _lowbit_add_arch_objects(${name} "${ARG_SOURCE_DIR}" "${archs}")

  list(APPEND defs LOWBIT_BUILT_SM90=${built_sm90} LOWBIT_BUILT_SM100=${built_sm100}
                   LOWBIT_BUILT_SM120=${built_sm120})
  list(REMOVE_DUPLICATES used_archs)
  list(SORT used_archs)
  string(REPLACE ";" "," archs_str "${used_archs}")  # ';' would split the definition
  list(APPEND defs "LOWBIT_CUDA_ARCHS=\"${archs_str}\"")
  foreach(t IN ITEMS ${name} ${objects})
    target_compile_definitions(${t} PRIVATE ${defs})
    target_include_directories(${t} PRIVATE ${incs})
    target_include_directories(${t} SYSTEM PRIVATE ${sys_incs})
  endforeach()
  foreach(o IN LISTS objects)
    target_sources(${name} PRIVATE $<TARGET_OBJECTS:${o}>)
  endforeach()

  _lowbit_link_module(${name} ${with_cuda})
  _lowbit_install_with_build_info(${name} "${ARG_PACKAGE}" "${ARG_MODULE}" "${used_archs}")
  message(STATUS "lowbit: ${ARG_PACKAGE}: CUDA architectures [${used_archs}] of [${archs}] "
    "(sm90=${built_sm90} sm100=${built_sm100} sm120=${built_sm120})")
endfunction()
