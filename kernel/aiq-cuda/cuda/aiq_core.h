// The sweep's per-combo decision core: plain structs and __host__ __device__ functions only.
// Compiled twice from this one text: by the host C++ compiler (build.rs, through cc) and by NVRTC
// (sweep.cu). No __global__, no threadIdx, no exp/log/pow here (see docs/backtester.md).
#pragma once
#ifdef __CUDACC__
#define AIQ_HD __host__ __device__
#else
#define AIQ_HD
#include <stdint.h>
#endif

// Placeholder until the port lands: the ABI version both sides check.
#define AIQ_CORE_ABI 0
AIQ_HD inline uint32_t aiq_core_abi(void) { return AIQ_CORE_ABI; }
