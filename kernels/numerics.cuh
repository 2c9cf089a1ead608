// numerics.cuh — the device version of each formula the CPU reference defines, written
// once and used by the unfused kernels and the fused groups alike. Every function names its
// CPU reference (src/exec/interp/ops.rs, src/quant/act.rs); the arithmetic (roundings,
// accumulation type, order) is the reference's, so parity is a matter of reassociation.
#pragma once
#include "common.cuh"

// ---- rms_norm (CPU: ops::rms_norm) --------------------------------------------------
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
    s = warp_sum(s);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads();
    if (lane == 0) red[warp] = s;
    __syncthreads();
    if (warp == 0) {
        double t = lane < (int)(blockDim.x >> 5) ? red[lane] : 0.0;
        t = warp_sum(t);
        if (lane == 0) red[0] = t;
    }
    __syncthreads();
    float mean = (float)(red[0] / (double)n);
    float scale = 1.0f / sqrtf(__fadd_rn(mean, eps));
    __syncthreads();
    return scale;
}

// The apply step: y = (x · scale) · w, two f32 roundings, in this order.
__device__ __forceinline__ float rms_apply(float x, float scale, float w) {
    return __fmul_rn(__fmul_rn(x, scale), w);
}

// ---- silu (CPU: ops::silu) ------------------------------------------------------------
// y = x / (1 + exp(−x)) in f32 (ggml_silu_f32).
__device__ __forceinline__ float silu(float x) {
    return __fdiv_rn(x, __fadd_rn(1.0f, expf(-x)));
}

// ---- rope (CPU: ops::rope) --------------------------------------------------------------
// One pair at position `pos` with inverse frequency f (numerics::rope_inv_freq):
// θ = (float)pos · f (one f32 rounding), cos/sin in double rounded to float,
// (a·c − b·s, a·s + b·c) with separate roundings.
// rope_angle and rope_rotate are its two halves, for callers that rotate several pairs by
// one angle (kernels/elementwise.cu, qkv_post).
__device__ __forceinline__ void rope_angle(int pos, float f, float& c, float& s) {
    float th = __fmul_rn((float)pos, f);
    c = (float)cos((double)th);
    s = (float)sin((double)th);
}
__device__ __forceinline__ void rope_rotate(float& a, float& b, float c, float s) {
    float ra = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    float rb = __fadd_rn(__fmul_rn(a, s), __fmul_rn(b, c));
    a = ra;
    b = rb;
}
__device__ __forceinline__ void rope_pair(float& a, float& b, int pos, float f) {
    float c, s;
    rope_angle(pos, f, c, s);
    rope_rotate(a, b, c, s);
}

// ---- Activation staging: what a matvec reads --------------------------------------
// The op input element i: plain, or RMSNorm-ed (rms_apply).
__device__ __forceinline__ float act_in(const float* x, const float* nw, float scale, int i) {
    return nw ? rms_apply(x[i], scale, nw[i]) : x[i];
}

// Q8_0 (AVX path of ggml; CPU reference: quantize_q8_0 in src/quant/act.rs): amax over 32, d = amax/127 stored fp16, q = rint(x·(127/amax)).
// Blocks first, first + stride, ... of the row are quantized by the calling warp.
__device__ void stage_q8_0(const float* x, const float* nw, float scale, int K, i8* q, float* d, int first, int stride) {
    int lane = threadIdx.x & 31;
    for (int b = first; b < K / 32; b += stride) {
        float v = act_in(x, nw, scale, b * 32 + lane);
        float amax = warp_max(fabsf(v));
        float dd = __fdiv_rn(amax, 127.0f);
        float id = amax != 0.0f ? __fdiv_rn(127.0f, amax) : 0.0f;
        q[b * 32 + lane] = (i8)__float2int_rn(__fmul_rn(v, id));
        if (lane == 0) d[b] = f16_to_f32(f32_to_f16(dd));
    }
}

// Q8_K (ggml reference; CPU reference: quantize_q8_k in src/quant/act.rs): max = the value of largest |x| (first on ties), iscale = −127/max,
// q = min(127, rint(iscale·x)), d = 1/iscale, bsums per 16.
__device__ void stage_q8_k(const float* x, const float* nw, float scale, int K, i8* q, float* d, int* bs, int first, int stride) {
    int lane = threadIdx.x & 31;
    for (int b = first; b < K / 256; b += stride) {
        float v[8];
        float amax = 0.0f, mx = 0.0f;
        int idx = 1 << 30;
        {
            // Eight consecutive inputs by two vector loads (and the norm weights likewise).
            const int i0 = b * 256 + lane * 8;
            float4 x0 = *(const float4*)(x + i0), x1 = *(const float4*)(x + i0 + 4);
            float t[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
            if (nw) {
                float4 w0 = *(const float4*)(nw + i0), w1 = *(const float4*)(nw + i0 + 4);
                float u[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
#pragma unroll
                for (int j = 0; j < 8; j++) t[j] = rms_apply(t[j], scale, u[j]);
            }
#pragma unroll
            for (int j = 0; j < 8; j++) {
                v[j] = t[j];
                if (fabsf(v[j]) > amax) { amax = fabsf(v[j]); mx = v[j]; idx = lane * 8 + j; }
            }
        }
        for (int o = 16; o > 0; o >>= 1) {
            float oa = __shfl_xor_sync(0xffffffffu, amax, o);
            float om = __shfl_xor_sync(0xffffffffu, mx, o);
            int oi = __shfl_xor_sync(0xffffffffu, idx, o);
            if (oa > amax || (oa == amax && oi < idx)) { amax = oa; mx = om; idx = oi; }
        }
        int s = 0;
        if (amax == 0.0f) {
            for (int j = 0; j < 8; j++) q[b * 256 + lane * 8 + j] = 0;
            if (lane == 0) d[b] = 0.0f;
        } else {
            float iscale = __fdiv_rn(-127.0f, mx);
            for (int j = 0; j < 8; j++) {
                int t = min(127, __float2int_rn(__fmul_rn(iscale, v[j])));
                q[b * 256 + lane * 8 + j] = (i8)t;
                s += t;
            }
            if (lane == 0) d[b] = __fdiv_rn(1.0f, iscale);
        }
        s += __shfl_xor_sync(0xffffffffu, s, 1);
        if ((lane & 1) == 0) bs[b * 16 + lane / 2] = s;
    }
}

// ---- KV cache element (CPU: the kv_append op; src/exec/interp/mod.rs) ------------------
// The cache stores K and V rows as f32 or f16: a kernel that writes or reads the cache takes
// the element trait as a template parameter. f16 stores round to nearest even (as the `half`
// crate does for the interpreter's cache), loads widen exactly, so both executors read back
// the very same values. Loads of 4 elements need 4-element alignment (16 bytes for f32, 8
// for f16): head dims are multiples of 16.
struct KvF32 {
    static constexpr int BYTES = 4;
    static constexpr int PIECE = 4;  // elements in 16 bytes
    static __device__ __forceinline__ float round(float v) { return v; }
    static __device__ __forceinline__ void store(void* base, size_t i, float v) { ((float*)base)[i] = v; }
    static __device__ __forceinline__ float4 load4(const void* base, size_t i) {
        return *(const float4*)((const float*)base + i);
    }
    // The PIECE elements of 16 aligned bytes at p.
    static __device__ __forceinline__ void load_piece(const void* p, float4 out[1]) { out[0] = *(const float4*)p; }
};
__device__ __forceinline__ float4 f16x4_to_f32(uint2 u) {
    return make_float4(f16_to_f32((u16)(u.x & 0xffffu)), f16_to_f32((u16)(u.x >> 16)), f16_to_f32((u16)(u.y & 0xffffu)),
                       f16_to_f32((u16)(u.y >> 16)));
}
struct KvF16 {
    static constexpr int BYTES = 2;
    static constexpr int PIECE = 8;
    static __device__ __forceinline__ float round(float v) { return f16_to_f32(f32_to_f16(v)); }
    static __device__ __forceinline__ void store(void* base, size_t i, float v) { ((u16*)base)[i] = f32_to_f16(v); }
    static __device__ __forceinline__ float4 load4(const void* base, size_t i) {
        return f16x4_to_f32(*(const uint2*)((const u16*)base + i));
    }
    static __device__ __forceinline__ void load_piece(const void* p, float4 out[2]) {
        uint4 u = *(const uint4*)p;
        out[0] = f16x4_to_f32(make_uint2(u.x, u.y));
        out[1] = f16x4_to_f32(make_uint2(u.z, u.w));
    }
};

// ---- Shared-memory addresses and ldmatrix (tensor-core fragments) ----------------------
// The 32-bit shared address of a generic pointer into shared memory.
__device__ __forceinline__ u32 smem_addr(const void* p) {
    u32 s;
    asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(s) : "l"(p));
    return s;
}

// Four 8×8 b16 matrices from shared memory (PTX ldmatrix): lanes 8i..8i+7 give the row
// addresses of matrix i, register i of lane l gets row l / 4, elements 2(l % 4), +1 of it
// (with .trans: of its transpose).
__device__ __forceinline__ void ldsm4(u32 a, u32 r[4]) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}
__device__ __forceinline__ void ldsm4_t(u32 a, u32 r[4]) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

// ---- Asynchronous global -> shared copies (sm_80+: cp.async) ----------------------------
// 16 bytes from `src` to shared `dst` (both 16-byte aligned); src_bytes = 0 fills zeros and
// reads nothing. Groups are committed and waited for with the two helpers below.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(smem_addr(dst)), "l"(src), "r"(src_bytes) : "memory");
#else
    *(uint4*)dst = src_bytes ? *(const uint4*)src : make_uint4(0u, 0u, 0u, 0u);
#endif
}
// The same with the destination as a shared-space address (smem_addr), for loops that
// step it by a constant instead of recomputing a generic pointer.
__device__ __forceinline__ void cp_async16_at(u32 dst, const void* src, int src_bytes) {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
#else
    const uint4 v = src_bytes ? *(const uint4*)src : make_uint4(0u, 0u, 0u, 0u);
    asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};" ::"r"(dst), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w) : "memory");
#endif
}
// 4 bytes from `src` to shared `dst`, both 4-byte aligned (through L1: .ca).
__device__ __forceinline__ void cp_async4(void* dst, const void* src) {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(smem_addr(dst)), "l"(src) : "memory");
#else
    *(u32*)dst = *(const u32*)src;
#endif
}
// The same with the destination as a shared-space address (as cp_async16_at).
__device__ __forceinline__ void cp_async4_at(u32 dst, const void* src) {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(dst), "l"(src) : "memory");
#else
    asm volatile("st.shared.u32 [%0], %1;" ::"r"(dst), "r"(*(const u32*)src) : "memory");
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}
// Waits until at most N committed groups of this thread are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
#endif
}
