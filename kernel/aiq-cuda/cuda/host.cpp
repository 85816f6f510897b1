// Host build of the decision core (what CI tests; the GPU runs the same header through sweep.cu).
#include "aiq_core.h"

extern "C" uint32_t aiq_host_core_abi(void) { return aiq_core_abi(); }
