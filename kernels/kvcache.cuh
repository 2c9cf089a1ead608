// kvcache.cuh — the KV cache's element type and its loads and stores: the one place that
// names how the cache is stored (f32 today), so a change of storage (f16, as llama.cpp keeps
// it) is a change here. Used by the fused Q/K/V append (matvec.cuh) and the persistent
// kernel's decode attention (attn_decode.cuh). Loads go through L2 (`ld.global.cg`): the
// rows were written earlier in the same launch by other CTAs (persistent kernel).
#pragma once
#include "common.cuh"

typedef float kv_t;

__device__ __forceinline__ float kv_ld(const kv_t* cache, size_t i) { return __ldcg(cache + i); }
__device__ __forceinline__ void kv_st(kv_t* cache, size_t i, float v) { cache[i] = v; }
