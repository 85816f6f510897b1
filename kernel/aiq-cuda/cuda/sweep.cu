// GPU entry point of the sweep's decision core: one thread per combo, nothing else. The decision
// path is aiq_core.h, the same text the host build compiles; this file is only ever compiled by
// NVRTC (src/nvrtc.rs embeds both files), with --fmad=false so the GPU rounds like the host.

// NVRTC has no C library headers: the fixed-width types the core uses, before it is included.
#ifdef __CUDACC_RTC__
typedef signed char int8_t;
typedef unsigned char uint8_t;
typedef short int16_t;
typedef unsigned short uint16_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef long long int64_t;
typedef unsigned long long uint64_t;
#endif

#include "aiq_core.h"

// Combos first .. first + n - 1, one per thread; `a` holds device pointers (event log NULL).
extern "C" __global__ void aiq_sweep(AiqSweepArgs a, uint32_t first, uint32_t n) {
    const uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        aiq_run_combo(&a, first + i);
    }
}
