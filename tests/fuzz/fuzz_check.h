// Shared by the fuzz targets: FUZZ_ASSERT aborts (a finding for libFuzzer) with the
// failed condition, so every target checks invariants on every input, not only
// "did not crash".
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_ASSERT(cond)                                                                   \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);     \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)
