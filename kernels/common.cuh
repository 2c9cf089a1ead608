// common.cuh — shared by every kernel family: integer types, fp16 conversion, warp
// reductions, and the GGML block layouts (byte offsets; blocks are read from the raw GGUF
// bytes uploaded unchanged). The CPU references live in src/quant/ (same layouts).
#pragma once

typedef unsigned char u8;
typedef signed char i8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

// fp16 <-> f32 by PTX cvt (exact widening; round-to-nearest-even narrowing, as the CPU's
// `half` crate). Avoids depending on cuda_fp16.h being reachable from NVRTC.
__device__ __forceinline__ float f16_to_f32(u16 h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ u16 f32_to_f16(float f) {
    u16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
__device__ __forceinline__ float bf16_to_f32(u16 h) { return __uint_as_float(((u32)h) << 16); }

// Loads of block fields. Legacy blocks (18/22/34 bytes) and Q6_K (210) are only 2-byte
// aligned, so wider loads are assembled from 16-bit ones.
__device__ __forceinline__ u16 ld16(const u8* p) { return *(const u16*)p; }
__device__ __forceinline__ u32 ld32_a2(const u8* p) { return (u32)ld16(p) | ((u32)ld16(p + 2) << 16); }
__device__ __forceinline__ u32 ld32(const u8* p) { return *(const u32*)p; }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ int warp_sum_i(int v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// GGML type ids (as in GGUF), for kernels that dispatch on a run-time type.
#define GGML_F32 0
#define GGML_F16 1
#define GGML_Q4_0 2
#define GGML_Q5_0 6
#define GGML_Q8_0 8
#define GGML_Q4_K 12
#define GGML_Q5_K 13
#define GGML_Q6_K 14
#define GGML_BF16 30

// RMSNorm scale as the CPU reference computes it (src/exec/interp/ops.rs, rms_norm):
// ss = Σ x² with each square rounded to f32 and summed in f64; mean = (float)(ss / n);
// scale = 1 / sqrtf(mean + eps). Whole block cooperates; `red` is >= 32 doubles of shared.
__device__ __forceinline__ float block_rms_scale(const float* x, int n, float eps, double* red) {
    // n is a multiple of 4 and x 16-byte aligned: vector loads, several in flight.
    double s = 0.0;
    const float4* x4 = (const float4*)x;
#pragma unroll 4
    for (int i = threadIdx.x; i < n / 4; i += blockDim.x) {
        float4 v = x4[i];
        s += (double)__fmul_rn(v.x, v.x);
        s += (double)__fmul_rn(v.y, v.y);
        s += (double)__fmul_rn(v.z, v.z);
        s += (double)__fmul_rn(v.w, v.w);
    }
    s = warp_sum_d(s);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads();
    if (lane == 0) red[warp] = s;
    __syncthreads();
    if (warp == 0) {
        double t = lane < (int)(blockDim.x >> 5) ? red[lane] : 0.0;
        t = warp_sum_d(t);
        if (lane == 0) red[0] = t;
    }
    __syncthreads();
    float mean = (float)(red[0] / (double)n);
    float scale = 1.0f / sqrtf(__fadd_rn(mean, eps));
    __syncthreads();
    return scale;
}
