// Function multiversioning for the sampler's hot loops (internal to the .cc
// files of sampler/, not part of any API).
//
// ENTROSERVE_MULTIVERSION before a function compiles it for x86-64-v4
// (AVX-512), x86-64-v3 (AVX2 + FMA + F16C; "avx2" alone would enable neither
// FMA nor F16C) and the x86-64 baseline; the dynamic loader picks one per CPU
// (an ifunc resolved at load time). Such a function should hold plain loops
// over arrays that GCC auto-vectorises; helpers it calls should be inline.
// Elsewhere (other architectures, Clang) it only keeps the function out of
// line.
//
// Define ENTROSERVE_NO_TARGET_CLONES to build a single version for the -march
// given (sanitizers, valgrind), or ENTROSERVE_KERNEL_TARGET to a target
// string ("arch=x86-64-v3") to build only that clone, to compare clones
// against each other (tests/sampler/core.cmake does, for signals.cc).
#ifndef ENTROSERVE_SAMPLER_MULTIVERSION_H_
#define ENTROSERVE_SAMPLER_MULTIVERSION_H_

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

#endif  // ENTROSERVE_SAMPLER_MULTIVERSION_H_
