// quant.cuh — per weight type: the "unit" a lane processes, its q8 integer dot (the `q8`
// semantics, src/quant/dot.rs) and its exact dequantization (the `f32` semantics,
// src/quant/dequant.rs), plus activation staging (RMSNorm + Q8_0/Q8_K quantization into
// shared memory, bit-identical to src/quant/act.rs).
#pragma once
#include "common.cuh"

// ---- Activation staging -------------------------------------------------------------
// The op input element i: plain, or RMSNorm-ed ((x·scale)·w, two roundings, as the CPU).
__device__ __forceinline__ float act_in(const float* x, const float* nw, float scale, int i) {
    float v = x[i];
    return nw ? __fmul_rn(__fmul_rn(v, scale), nw[i]) : v;
}

// f32 semantics: the (normalized) input as f32 in shared memory.
__device__ void stage_f32(const float* x, const float* nw, float scale, int K, float* xs) {
    for (int i = threadIdx.x; i < K; i += blockDim.x) xs[i] = act_in(x, nw, scale, i);
}

// Q8_0 (AVX path of ggml): amax over 32, d = amax/127 stored fp16, q = rint(x·(127/amax)).
__device__ void stage_q8_0(const float* x, const float* nw, float scale, int K, i8* q, float* d) {
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw_ = blockDim.x >> 5;
    for (int b = warp; b < K / 32; b += nw_) {
        float v = act_in(x, nw, scale, b * 32 + lane);
        float amax = warp_max(fabsf(v));
        float dd = __fdiv_rn(amax, 127.0f);
        float id = amax != 0.0f ? __fdiv_rn(127.0f, amax) : 0.0f;
        q[b * 32 + lane] = (i8)__float2int_rn(__fmul_rn(v, id));
        if (lane == 0) d[b] = f16_to_f32(f32_to_f16(dd));
    }
}

// Q8_K (ggml reference): max = the value of largest |x| (first on ties), iscale = −127/max,
// q = min(127, rint(iscale·x)), d = 1/iscale, bsums per 16.
__device__ void stage_q8_k(const float* x, const float* nw, float scale, int K, i8* q, float* d, int* bs) {
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw_ = blockDim.x >> 5;
    for (int b = warp; b < K / 256; b += nw_) {
        float v[8];
        float amax = 0.0f, mx = 0.0f;
        int idx = 1 << 30;
        for (int j = 0; j < 8; j++) {
            int i = lane * 8 + j;
            v[j] = act_in(x, nw, scale, b * 256 + i);
            if (fabsf(v[j]) > amax) { amax = fabsf(v[j]); mx = v[j]; idx = i; }
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

// Quantized activations staged in shared memory.
struct Act {
    const i8* q0; const float* d0;                 // Q8_0 (legacy weights)
    const i8* qk; const float* dk; const int* bs;  // Q8_K (k-quant weights)
    const float* xf;                               // f32 semantics
};

__device__ __forceinline__ int q8w(const i8* q, int i) { return *(const int*)(q + i); }

// ---- Weight types -------------------------------------------------------------------
// Each type: UNIT weights per lane work item, BLOCK bytes per GGML block, q8(row, u, act)
// the unit's contribution under q8 semantics, f32(row, u, xs) under f32 semantics.

struct TQ4_0 {
    static constexpr int UNIT = 32, QK = 32, BYTES = 18;
    static __device__ __forceinline__ void vals(const u8* p, int w[8]) {
        for (int m = 0; m < 4; m++) {
            u32 x = ld32_a2(p + 2 + 4 * m);
            w[m] = __vsub4(x & 0x0F0F0F0Fu, 0x08080808u);
            w[m + 4] = __vsub4((x >> 4) & 0x0F0F0F0Fu, 0x08080808u);
        }
    }
    static __device__ __forceinline__ float q8(const u8* row, int u, const Act& a) {
        const u8* p = row + u * BYTES;
        int w[8];
        vals(p, w);
        int s = 0;
        for (int m = 0; m < 8; m++) s = __dp4a(w[m], q8w(a.q0, u * 32 + 4 * m), s);
        return __fmul_rn(__fmul_rn(f16_to_f32(ld16(p)), a.d0[u]), (float)s);
    }
    static __device__ __forceinline__ float f32(const u8* row, int u, const float* xs) {
        const u8* p = row + u * BYTES;
        float d = f16_to_f32(ld16(p)), acc = 0.0f;
        for (int j = 0; j < 16; j++) {
            u8 b = p[2 + j];
            acc = fmaf(__fmul_rn(d, (float)((int)(b & 15) - 8)), xs[u * 32 + j], acc);
            acc = fmaf(__fmul_rn(d, (float)((int)(b >> 4) - 8)), xs[u * 32 + j + 16], acc);
        }
        return acc;
    }
    static __device__ __forceinline__ float deq(const u8* row, int i) {
        const u8* p = row + (i / 32) * BYTES;
        int j = i % 32;
        u8 b = p[2 + (j & 15)];
        int q = j < 16 ? (b & 15) : (b >> 4);
        return __fmul_rn(f16_to_f32(ld16(p)), (float)(q - 8));
    }
};

struct TQ5_0 {
    static constexpr int UNIT = 32, QK = 32, BYTES = 22;
    // Spread 4 bits of t into bit 4 of each byte.
    static __device__ __forceinline__ u32 spread4(u32 t) {
        return ((t & 1u) << 4) | ((t & 2u) << 11) | ((t & 4u) << 18) | ((t & 8u) << 25);
    }
    static __device__ __forceinline__ void vals(const u8* p, int w[8]) {
        u32 qh = ld32_a2(p + 2);
        for (int m = 0; m < 4; m++) {
            u32 x = ld32_a2(p + 6 + 4 * m);
            u32 lo = (x & 0x0F0F0F0Fu) | spread4(qh >> (4 * m));
            u32 hi = ((x >> 4) & 0x0F0F0F0Fu) | spread4(qh >> (16 + 4 * m));
            w[m] = __vsub4(lo, 0x10101010u);
            w[m + 4] = __vsub4(hi, 0x10101010u);
        }
    }
    static __device__ __forceinline__ float q8(const u8* row, int u, const Act& a) {
        const u8* p = row + u * BYTES;
        int w[8];
        vals(p, w);
        int s = 0;
        for (int m = 0; m < 8; m++) s = __dp4a(w[m], q8w(a.q0, u * 32 + 4 * m), s);
        return __fmul_rn(__fmul_rn(f16_to_f32(ld16(p)), a.d0[u]), (float)s);
    }
    static __device__ __forceinline__ float f32(const u8* row, int u, const float* xs) {
        const u8* p = row + u * BYTES;
        int w[8];
        vals(p, w);
        float d = f16_to_f32(ld16(p)), acc = 0.0f;
        for (int m = 0; m < 8; m++)
            for (int k = 0; k < 4; k++) {
                int q = (i8)((w[m] >> (8 * k)) & 0xFF);
                acc = fmaf(__fmul_rn(d, (float)q), xs[u * 32 + 4 * m + k], acc);
            }
        return acc;
    }
    static __device__ __forceinline__ float deq(const u8* row, int i) {
        const u8* p = row + (i / 32) * BYTES;
        int j = i % 32;
        u32 qh = ld32_a2(p + 2);
        u8 b = p[6 + (j & 15)];
        int q = (j < 16 ? (b & 15) : (b >> 4)) | (((qh >> j) & 1) << 4);
        return __fmul_rn(f16_to_f32(ld16(p)), (float)(q - 16));
    }
};

struct TQ8_0 {
    static constexpr int UNIT = 32, QK = 32, BYTES = 34;
    static __device__ __forceinline__ float q8(const u8* row, int u, const Act& a) {
        const u8* p = row + u * BYTES;
        int s = 0;
        for (int m = 0; m < 8; m++) s = __dp4a((int)ld32_a2(p + 2 + 4 * m), q8w(a.q0, u * 32 + 4 * m), s);
        return __fmul_rn(__fmul_rn(f16_to_f32(ld16(p)), a.d0[u]), (float)s);
    }
    static __device__ __forceinline__ float f32(const u8* row, int u, const float* xs) {
        const u8* p = row + u * BYTES;
        float d = f16_to_f32(ld16(p)), acc = 0.0f;
        for (int j = 0; j < 32; j++) acc = fmaf(__fmul_rn((float)(i8)p[2 + j], d), xs[u * 32 + j], acc);
        return acc;
    }
    static __device__ __forceinline__ float deq(const u8* row, int i) {
        const u8* p = row + (i / 32) * BYTES;
        return __fmul_rn((float)(i8)p[2 + i % 32], f16_to_f32(ld16(p)));
    }
};

// k-quant 6-bit scale/min pair j (0..7) from the 12 packed bytes.
__device__ __forceinline__ void k_scale_min(const u8* s, int j, int& sc, int& m) {
    if (j < 4) {
        sc = s[j] & 63;
        m = s[j + 4] & 63;
    } else {
        sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// Q4_K / Q5_K: a unit is 64 weights = groups 2k (low nibbles) and 2k+1 (high nibbles).
template <bool FIVE>
struct TQ45_K {
    static constexpr int UNIT = 64, QK = 256, BYTES = FIVE ? 176 : 144;
    static constexpr int QS = FIVE ? 48 : 16;
    static __device__ __forceinline__ void vals(const u8* p, int k, u32 lo[8], u32 hi[8]) {
        const uint4* qs = (const uint4*)(p + QS + 32 * k);
        uint4 a = qs[0], b = qs[1];
        u32 x[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
        for (int m = 0; m < 8; m++) {
            lo[m] = x[m] & 0x0F0F0F0Fu;
            hi[m] = (x[m] >> 4) & 0x0F0F0F0Fu;
        }
        if (FIVE) {
            const u32* qh = (const u32*)(p + 16);
            for (int m = 0; m < 8; m++) {
                lo[m] |= ((qh[m] >> (2 * k)) & 0x01010101u) << 4;
                hi[m] |= ((qh[m] >> (2 * k + 1)) & 0x01010101u) << 4;
            }
        }
    }
    static __device__ __forceinline__ float q8(const u8* row, int u, const Act& a) {
        int sb = u / 4, k = u % 4;
        const u8* p = row + sb * BYTES;
        u32 lo[8], hi[8];
        vals(p, k, lo, hi);
        int s0 = 0, s1 = 0;
        const int base = sb * 256 + 64 * k;
        for (int m = 0; m < 8; m++) {
            s0 = __dp4a((int)lo[m], q8w(a.qk, base + 4 * m), s0);
            s1 = __dp4a((int)hi[m], q8w(a.qk, base + 32 + 4 * m), s1);
        }
        int sc0, m0, sc1, m1;
        k_scale_min(p + 4, 2 * k, sc0, m0);
        k_scale_min(p + 4, 2 * k + 1, sc1, m1);
        const int* bs = a.bs + sb * 16 + 4 * k;
        int isum = sc0 * s0 + sc1 * s1;
        int msum = m0 * (bs[0] + bs[1]) + m1 * (bs[2] + bs[3]);
        float dk = a.dk[sb];
        u32 dd = ld32(p);
        float d = f16_to_f32((u16)(dd & 0xFFFF)), dmin = f16_to_f32((u16)(dd >> 16));
        return __fsub_rn(__fmul_rn(__fmul_rn(d, dk), (float)isum), __fmul_rn(__fmul_rn(dmin, dk), (float)msum));
    }
    static __device__ __forceinline__ float f32(const u8* row, int u, const float* xs) {
        int sb = u / 4, k = u % 4;
        const u8* p = row + sb * BYTES;
        u32 lo[8], hi[8];
        vals(p, k, lo, hi);
        int sc0, m0, sc1, m1;
        k_scale_min(p + 4, 2 * k, sc0, m0);
        k_scale_min(p + 4, 2 * k + 1, sc1, m1);
        float d = f16_to_f32(ld16(p)), dmin = f16_to_f32(ld16(p + 2));
        float d0 = __fmul_rn(d, (float)sc0), mm0 = __fmul_rn(dmin, (float)m0);
        float d1 = __fmul_rn(d, (float)sc1), mm1 = __fmul_rn(dmin, (float)m1);
        const float* x = xs + sb * 256 + 64 * k;
        float acc = 0.0f;
        for (int m = 0; m < 8; m++)
            for (int b = 0; b < 4; b++) {
                float w0 = __fsub_rn(__fmul_rn(d0, (float)((lo[m] >> (8 * b)) & 0xFF)), mm0);
                float w1 = __fsub_rn(__fmul_rn(d1, (float)((hi[m] >> (8 * b)) & 0xFF)), mm1);
                acc = fmaf(w0, x[4 * m + b], acc);
                acc = fmaf(w1, x[32 + 4 * m + b], acc);
            }
        return acc;
    }
    static __device__ __forceinline__ float deq(const u8* row, int i) {
        const u8* p = row + (i / 256) * BYTES;
        int e = i % 256, g = e / 32, l = e % 32;
        int sc, m;
        k_scale_min(p + 4, g, sc, m);
        u8 b = p[QS + 32 * (g / 2) + l];
        int q = (g & 1) ? (b >> 4) : (b & 15);
        if (FIVE) q |= ((p[16 + l] >> g) & 1) << 4;
        float d = f16_to_f32(ld16(p)), dmin = f16_to_f32(ld16(p + 2));
        return __fsub_rn(__fmul_rn(__fmul_rn(d, (float)sc), (float)q), __fmul_rn(dmin, (float)m));
    }
};
typedef TQ45_K<false> TQ4_K;
typedef TQ45_K<true> TQ5_K;

// Q6_K: a unit is one 128-weight half: element 32k+l takes its low nibble from
// ql[l + 32(k%2)] (high nibble when k >= 2) and two high bits from qh[l] >> 2k.
struct TQ6_K {
    static constexpr int UNIT = 128, QK = 256, BYTES = 210;
    static __device__ __forceinline__ void vals(const u8* p, int h, u32 q[32]) {
        u32 ql[16], qh[8];
        for (int m = 0; m < 16; m++) ql[m] = ld32_a2(p + 64 * h + 4 * m);
        for (int m = 0; m < 8; m++) qh[m] = ld32_a2(p + 128 + 32 * h + 4 * m);
        for (int k = 0; k < 4; k++)
            for (int m = 0; m < 8; m++) {
                u32 w = ql[8 * (k & 1) + m];
                u32 lo = (k < 2 ? w : w >> 4) & 0x0F0F0F0Fu;
                q[8 * k + m] = lo | (((qh[m] >> (2 * k)) & 0x03030303u) << 4);
            }
    }
    static __device__ __forceinline__ float q8(const u8* row, int u, const Act& a) {
        int sb = u / 2, h = u % 2;
        const u8* p = row + sb * BYTES;
        u32 q[32];
        vals(p, h, q);
        const i8* sc = (const i8*)(p + 192 + 8 * h);
        const int base = sb * 256 + 128 * h;
        int isum = 0;
        for (int g = 0; g < 8; g++) {  // 16-element groups
            int s = 0;
            for (int m = 0; m < 4; m++) s = __dp4a((int)q[4 * g + m], q8w(a.qk, base + 16 * g + 4 * m), s);
            isum += (int)sc[g] * (s - 32 * a.bs[sb * 16 + 8 * h + g]);
        }
        return __fmul_rn(__fmul_rn(f16_to_f32(ld16(p + 208)), a.dk[sb]), (float)isum);
    }
    static __device__ __forceinline__ float f32(const u8* row, int u, const float* xs) {
        int sb = u / 2, h = u % 2;
        const u8* p = row + sb * BYTES;
        u32 q[32];
        vals(p, h, q);
        const i8* sc = (const i8*)(p + 192 + 8 * h);
        float d = f16_to_f32(ld16(p + 208));
        const float* x = xs + sb * 256 + 128 * h;
        float acc = 0.0f;
        for (int g = 0; g < 8; g++) {
            float dg = __fmul_rn(d, (float)sc[g]);
            for (int m = 0; m < 4; m++)
                for (int b = 0; b < 4; b++) {
                    int v = (int)((q[4 * g + m] >> (8 * b)) & 0xFF) - 32;
                    acc = fmaf(__fmul_rn(dg, (float)v), x[16 * g + 4 * m + b], acc);
                }
        }
        return acc;
    }
    static __device__ __forceinline__ float deq(const u8* row, int i) {
        const u8* p = row + (i / 256) * BYTES;
        int e = i % 256, h = e / 128, r = e % 128, k = r / 32, l = r % 32;
        u8 b = p[64 * h + l + 32 * (k & 1)];
        int lo = k >= 2 ? (b >> 4) : (b & 15);
        int hi = (p[128 + 32 * h + l] >> (2 * k)) & 3;
        int q = (lo | (hi << 4)) - 32;
        return __fmul_rn(__fmul_rn(f16_to_f32(ld16(p + 208)), (float)((const i8*)p)[192 + e / 16]), (float)q);
    }
};

// Float weights: f32 semantics only (the graph gives float matmuls f32 activations).
struct TF32 {
    static constexpr int UNIT = 32, QK = 1, BYTES = 4;
    static __device__ __forceinline__ float q8(const u8*, int, const Act&) { return 0.0f; }
    static __device__ __forceinline__ float f32(const u8* row, int u, const float* xs) {
        const float* w = (const float*)row + u * 32;
        float acc = 0.0f;
        for (int j = 0; j < 32; j++) acc = fmaf(w[j], xs[u * 32 + j], acc);
        return acc;
    }
    static __device__ __forceinline__ float deq(const u8* row, int i) { return ((const float*)row)[i]; }
};
struct TF16 {
    static constexpr int UNIT = 32, QK = 1, BYTES = 2;
    static __device__ __forceinline__ float q8(const u8*, int, const Act&) { return 0.0f; }
    static __device__ __forceinline__ float f32(const u8* row, int u, const float* xs) {
        const u16* w = (const u16*)row + u * 32;
        float acc = 0.0f;
        for (int j = 0; j < 32; j++) acc = fmaf(f16_to_f32(w[j]), xs[u * 32 + j], acc);
        return acc;
    }
    static __device__ __forceinline__ float deq(const u8* row, int i) { return f16_to_f32(((const u16*)row)[i]); }
};

// Which activation staging a weight type needs.
template <class W> struct NeedsK { static constexpr bool v = W::QK == 256; };
template <class W> struct NeedsL { static constexpr bool v = W::QK == 32; };
