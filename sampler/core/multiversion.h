// Function multiversioning for the sampler's hot loops (internal to the .cc
// files of sampler/, not part of any API).
//
// ENTROSERVE_MULTIVERSION before a function compiles it for x86-64-v4
// (AVX-512), x86-64-v3 (AVX2 + FMA + F16C; "avx2" alone would enable neither
// FMA nor F16C) and the x86-64 baseline; the dynamic loader picks one per CPU
// (an ifunc resolved at load time). Such a function should hold plain loops
// over arrays that GCC auto-vectorises; helpers it calls should be inline.
// Elsewhere (other architectures, Clang) it only keeps the function out of
// line. ENTROSERVE_INLINE marks such helpers: forced inline, so that each
// clone compiles them for its own instruction set (sampler/core/fast_math.h).
//
// Define ENTROSERVE_NO_TARGET_CLONES to build a single version for the -march
// given (sanitizers, valgrind), or ENTROSERVE_KERNEL_TARGET to a target
// string ("arch=x86-64-v3") to build only that clone, to compare clones
// against each other (tests/sampler/clones.cmake does, for every kernel).
//
// The clones compute bit-identical results because the kernels fix the order
// of their sums (the lanes of sampler/core/fast_math.h) and the whole sampler
// library is compiled with -ffp-contract=off (sampler/CMakeLists.txt): with
// contraction the FMA clones would fuse multiply-adds that the baseline
// rounds twice.
#ifndef ENTROSERVE_SAMPLER_CORE_MULTIVERSION_H_
#define ENTROSERVE_SAMPLER_CORE_MULTIVERSION_H_

#if defined(ENTROSERVE_KERNEL_TARGET)
#define ENTROSERVE_MULTIVERSION __attribute__((target(ENTROSERVE_KERNEL_TARGET), noinline))
#elif defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(ENTROSERVE_NO_TARGET_CLONES)
#define ENTROSERVE_MULTIVERSION                                                 \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) \
  __attribute__((noinline))
#else
#define ENTROSERVE_MULTIVERSION __attribute__((noinline))
#endif

#define ENTROSERVE_INLINE inline __attribute__((always_inline))

#endif  // ENTROSERVE_SAMPLER_CORE_MULTIVERSION_H_
