// Which kernels a build contains, and which one a tensor's device runs.
//
// The shared CMake module defines on every translation unit of an extension:
//   LOWBIT_PACKAGE         "lowbit-nvfp4-quant"      (distribution name)
//   LOWBIT_WITH_CUDA       1 when any CUDA architecture is built, else 0
//   LOWBIT_BUILT_SM90      1 when csrc/sm90/ was compiled (sm_90a)
//   LOWBIT_BUILT_SM100     1 when csrc/sm100/ was compiled (sm_100a family)
//   LOWBIT_BUILT_SM120     1 when csrc/sm120/ was compiled (sm_120a family)
//   LOWBIT_CUDA_ARCHS      "90a,100a,120a": archs that received device code
//                          ("" if none)
// Dispatch is decided from the tensor's own device, never from device 0.
#pragma once

#include <lowbit/torch_utils.h>

#ifndef LOWBIT_PACKAGE
#define LOWBIT_PACKAGE "lowbit"
#endif
#ifndef LOWBIT_WITH_CUDA
#define LOWBIT_WITH_CUDA 0
#endif
#ifndef LOWBIT_BUILT_SM90
#define LOWBIT_BUILT_SM90 0
#endif
#ifndef LOWBIT_BUILT_SM100
#define LOWBIT_BUILT_SM100 0
#endif
#ifndef LOWBIT_BUILT_SM120
#define LOWBIT_BUILT_SM120 0
#endif
#ifndef LOWBIT_CUDA_ARCHS
#define LOWBIT_CUDA_ARCHS ""
#endif

#if LOWBIT_WITH_CUDA
#include <lowbit/cuda_utils.h>  // device_sm()
#endif

namespace lowbit {

enum class Target { CPU, SM90, SM100, SM120 };

inline const char* target_name(Target t) {
  switch (t) {
    case Target::CPU: return "CPU";
    case Target::SM90: return "SM90";
    case Target::SM100: return "SM100";
    case Target::SM120: return "SM120";
  }
  return "?";
}


// Is "<sm>a" (e.g. "100a") among the architectures this build compiled?
inline bool arch_built(int sm) {
  std::string list = std::string(",") + LOWBIT_CUDA_ARCHS + ",";
  std::string want = "," + std::to_string(sm);
  return list.find(want + "a,") != std::string::npos ||
         list.find(want + "f,") != std::string::npos ||
         list.find(want + ",") != std::string::npos;
}

inline std::string rebuild_hint(int sm) {
  return str("; rebuild with LOWBIT_CUDA_ARCHS=\"", sm,
             "a\" (or leave it unset on the GPU machine to build for the "
             "visible GPUs), e.g. LOWBIT_CUDA_ARCHS=", sm,
             "a pip install --no-build-isolation <", LOWBIT_PACKAGE,
             " source dir>");
}

// The kernel family to run for tensor `t` (argument `arg` of op `op`).
// Raises a clear error when the build has no kernel for that device.
inline Target target_for(const char* op, const char* arg, const Tensor& t) {
  if (t.is_cpu()) return Target::CPU;
  LOWBIT_CHECK_ARG(t.is_cuda(), op, arg, "a CPU or CUDA tensor",
                   "a tensor on " + device_str(t));
#if LOWBIT_WITH_CUDA
  const int sm = device_sm(t.get_device_index());
  Target family = Target::CPU;
  if (sm / 10 == 9) family = Target::SM90;
  if (sm / 10 == 10 || sm / 10 == 11) family = Target::SM100;
  if (sm / 10 == 12) family = Target::SM120;
  if (family == Target::CPU) {
    fail(str(op, ": argument '", arg, "' is on ", device_str(t),
             ", compute capability ", sm / 10, ".", sm % 10,
             "; lowbit kernels exist for CPU, SM90 (Hopper), SM100 and SM120 "
             "(Blackwell) only"));
  }
  // Device code for exactly this architecture must be in the .so: sm_90a
  // cubins do not run on sm_100, nor sm_100a ones on sm_103.
  if (!arch_built(sm)) {
    fail(str(op, ": argument '", arg, "' is on ", device_str(t),
             " (sm_", sm, "), but this build of ", LOWBIT_PACKAGE,
             " has device code for CUDA architectures [", LOWBIT_CUDA_ARCHS,
             "] only", rebuild_hint(sm)));
  }
  return family;
#else
  fail(str(op, ": argument '", arg, "' is on ", device_str(t), ", but ",
           LOWBIT_PACKAGE,
           " was built CPU-only (no CUDA architectures); rebuild on a machine "
           "with nvcc, e.g. LOWBIT_CUDA_ARCHS=\"90a;100a;120a\" pip install "
           "--no-build-isolation <",
           LOWBIT_PACKAGE, " source dir>"));
#endif
}

}  // namespace lowbit
