// quant.cuh — per weight type: the "unit" a lane processes, its q8 integer dot (the `q8`
// semantics, src/quant/dot.rs) and its exact dequantization (the `f32` semantics,
// src/quant/dequant.rs). Activation staging (RMSNorm + Q8_0/Q8_K quantization) is in
// numerics.cuh.
#pragma once
#include "numerics.cuh"

// A view of a matrix kernel's activations in global memory: the Q8_0/Q8_K rows written by
// quantize.cu (`prep` for a decode row, `quantize` for prefill rows) and the f32 input (the
// node input itself, or prep's RMSNorm-ed copy). A kernel reads the fields its semantics need.
struct Act {
    const i8* q0; const float* d0;                 // Q8_0 (legacy weights)
    const i8* qk; const float* dk; const int* bs;  // Q8_K (k-quant weights)
    const float* xf;                               // f32 semantics
};

__device__ __forceinline__ int q8w(const i8* q, int i) { return *(const int*)(q + i); }
// 16 activation values (i must be a multiple of 16; the staged arrays are 16-byte aligned).
__device__ __forceinline__ int4 q8x16(const i8* q, int i) { return *(const int4*)(q + i); }
// The batched matvec (kernels/matvec_batch.cu) stages its nb activation rows in shared
// memory unit-major: plane i (i < CH = UNIT / 16) holds the 16-byte chunk i of every
// (unit u, row b) at slot u·S + b, and plane CH the unit's scale chunk (`stage_scale`: the
// scales and block sums aload reads from global memory). S, the slots a unit, is nb made
// odd, so 8 lanes of a shared-memory phase (8 consecutive units) hit 8 different 16-byte
// bank groups; a lane reads row b's chunks at one address plus 16·b, an immediate offset.
// `aload_t(p, plane)` is aload from slot p of plane 0, plane bytes apart: the same values,
// so the same bits.
__device__ __forceinline__ int4 ld_plane(const i8* p, int plane, int i) { return *(const int4*)(p + i * plane); }
// dp4a of 4 packed weight words with 16 activation bytes.
__device__ __forceinline__ int dot16(const int w[4], int4 a, int s) {
    s = __dp4a(w[0], a.x, s);
    s = __dp4a(w[1], a.y, s);
    s = __dp4a(w[2], a.z, s);
    return __dp4a(w[3], a.w, s);
}
__device__ __forceinline__ int dot16u(const u32 w[4], int4 a, int s) {
    s = __dp4a((int)w[0], a.x, s);
    s = __dp4a((int)w[1], a.y, s);
    s = __dp4a((int)w[2], a.z, s);
    return __dp4a((int)w[3], a.w, s);
}
// 16 bytes at p, or zeros without a read when !ok (a predicated load, no branch).
__device__ __forceinline__ uint4 ld16_if(const void* p, bool ok) { return ok ? *(const uint4*)p : make_uint4(0u, 0u, 0u, 0u); }
// The same with the weight bytes unsigned (0..255) and the activations signed.
__device__ __forceinline__ int dp4a_us(u32 w, int a, int s) {
    int d;
    asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(w), "r"(a), "r"(s));
    return d;
}
__device__ __forceinline__ int dot16us(const u32 w[4], int4 a, int s) {
    s = dp4a_us(w[0], a.x, s);
    s = dp4a_us(w[1], a.y, s);
    s = dp4a_us(w[2], a.z, s);
    return dp4a_us(w[3], a.w, s);
}
// `n` consecutive 32-bit words starting at a 2-byte-aligned address, from aligned loads
// (one more than needed when p is not 4-byte aligned) joined with funnel shifts.
template <int N>
__device__ __forceinline__ void ld_words_a2(const u8* p, u32 out[N]) {
    const u32* pa = (const u32*)((size_t)p & ~(size_t)3);
    if (((size_t)p & 3) == 0) {
#pragma unroll
        for (int i = 0; i < N; i++) out[i] = pa[i];
    } else {
        u32 prev = pa[0];
#pragma unroll
        for (int i = 0; i < N; i++) {
            u32 next = pa[i + 1];
            out[i] = __funnelshift_r(prev, next, 16);
            prev = next;
        }
    }
}

// ld_words_a2 without its branch, for runs whose word after the last (read when p is
// 4-byte aligned too) is still inside the block: N + 1 aligned loads joined by funnel
// shifts of 0 or 16 bits. The same words; no per-lane select between two load sequences.
template <int N>
__device__ __forceinline__ void ld_words_a2_in(const u8* p, u32 out[N]) {
    const u32* pa = (const u32*)((size_t)p & ~(size_t)3);
    const u32 shift = ((u32)(size_t)p & 2u) << 3;
    u32 prev = pa[0];
#pragma unroll
    for (int i = 0; i < N; i++) {
        const u32 next = pa[i + 1];
        out[i] = __funnelshift_r(prev, next, shift);
        prev = next;
    }
}

// ---- Integer MMAs (the prefill GEMM, kernels/mmq.cu; the batched decode rows on tensor
// cores, kernels/matvec_batch.cu) ----------------------------------------------------

// One m16n8k16 integer MMA: D(16×8, s32) = A(16×16, s8, rows) · B(16×8, s8, cols) + C.
// Fragments (PTX ISA): with g = lane / 4, q = lane % 4 — A: a0 = row g, k 4q..4q+3;
// a1 = row g+8, same k. B: k 4q..4q+3 of column g. C/D: c0, c1 = row g, columns 2q, 2q+1;
// c2, c3 = row g+8, columns 2q, 2q+1. Integer products and sums are exact, so each MMA
// over one 16-weight half gives exactly the dp4a sums of the scalar reference.
__device__ __forceinline__ void mma16816(int a0, int a1, int b0, int c[4]) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a0), "r"(a1), "r"(b0));
}

// m16n8k32: the same with 32 weights of K. A: a0 = row g, k 4q..4q+3; a1 = row g+8, same
// k; a2, a3 = rows g, g+8, k 16+4q..16+4q+3. B: b0 = k 4q..4q+3 of column g, b1 = k 16+4q..
// One MMA sums a 32-weight group exactly as the two 16-weight halves did.
__device__ __forceinline__ void mma16832(int a0, int a1, int a2, int a3, int b0, int b1, int c[4]) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// ---- Weight types -------------------------------------------------------------------
// Each type: UNIT weights per lane work item, BLOCK bytes per GGML block, q8(row, u, act)
// the unit's contribution under q8 semantics, f32(row, u, xs) under f32 semantics.

// Under q8 semantics a type's unit dot is split in three: `wload` (the unit's weights,
// decoded into registers: a WU), `aload` (the activations it meets: an AU) and `wdot`
// (their dot); `q8` is wdot(wload, aload). The decode matvec (matvec.cuh) loads a unit's
// activations once and dots them with each of its weight rows; a batched step
// (matvec_batch.cu) loads a weight unit once and dots it with each row's activations — the
// same arithmetic either way, so the same bits.

// The Q8_0 activations of a legacy unit (32 values and their scale).
struct LegacyAU {
    int4 x0, x1;
    float d;
};
__device__ __forceinline__ LegacyAU legacy_aload(const Act& a, int u) {
    LegacyAU x;
    x.x0 = q8x16(a.q0, u * 32);
    x.x1 = q8x16(a.q0, u * 32 + 16);
    x.d = a.d0[u];
    return x;
}
// The staged form (ld_plane): the scale chunk holds d.
__device__ __forceinline__ int4 legacy_stage_scale(const Act& a, int u) { return make_int4(__float_as_int(a.d0[u]), 0, 0, 0); }
__device__ __forceinline__ LegacyAU legacy_aload_t(const i8* p, int plane) {
    LegacyAU x;
    x.x0 = ld_plane(p, plane, 0);
    x.x1 = ld_plane(p, plane, 1);
    x.d = __int_as_float(ld_plane(p, plane, 2).x);
    return x;
}
// A 32-weight legacy unit as signed bytes and its scale.
struct LegacyWU {
    int w[8];
    float d;
};
// q8 dot of one 32-weight block of a legacy type (W::vals unpacks the block to signed
// bytes): integer dot with the Q8_0 activations, then (d_w · d_a) · sumi in f32, as
// ggml_vec_dot_q4_0_q8_0 / q5_0_q8_0 / q8_0_q8_0 (src/quant/dot.rs).
__device__ __forceinline__ float legacy_wdot(const LegacyWU& w, const LegacyAU& x) {
    int s = dot16(w.w, x.x0, 0);
    s = dot16(w.w + 4, x.x1, s);
    return __fmul_rn(__fmul_rn(w.d, x.d), (float)s);
}
template <class W>
__device__ __forceinline__ LegacyWU legacy_wload(const u8* row, int u) {
    const u8* p = row + u * W::BYTES;
    LegacyWU w;
    W::vals(p, w.w);
    w.d = f16_to_f32(ld16(p));
    return w;
}
template <class W>
__device__ __forceinline__ float legacy_q8(const u8* row, int u, const Act& a) {
    return legacy_wdot(legacy_wload<W>(row, u), legacy_aload(a, u));
}
// The split dot of the three legacy types (inside each type's struct).
#define LEGACY_SPLIT(T)                                                                        \
    typedef LegacyWU WU;                                                                       \
    typedef LegacyAU AU;                                                                       \
    static __device__ __forceinline__ WU wload(const u8* row, int u) { return legacy_wload<T>(row, u); } \
    static __device__ __forceinline__ AU aload(const Act& a, int u) { return legacy_aload(a, u); }       \
    static __device__ __forceinline__ int4 stage_scale(const Act& a, int u) { return legacy_stage_scale(a, u); } \
    static __device__ __forceinline__ AU aload_t(const i8* p, int plane) { return legacy_aload_t(p, plane); }      \
    static __device__ __forceinline__ float wdot(const WU& w, const AU& x) { return legacy_wdot(w, x); }

struct TQ4_0 {
    static constexpr int UNIT = 32, QK = 32, BYTES = 18;
    static __device__ __forceinline__ void vals(const u8* p, int w[8]) {
        for (int m = 0; m < 4; m++) {
            u32 x = ld32_a2(p + 2 + 4 * m);
            w[m] = __vsub4(x & 0x0F0F0F0Fu, 0x08080808u);
            w[m + 4] = __vsub4((x >> 4) & 0x0F0F0F0Fu, 0x08080808u);
        }
    }
    static __device__ __forceinline__ float q8(const u8* row, int u, const Act& a) { return legacy_q8<TQ4_0>(row, u, a); }
    LEGACY_SPLIT(TQ4_0)
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
        u32 words[5];  // qh and the 16 qs bytes: 20 bytes from offset 2
        ld_words_a2<5>(p + 2, words);
        u32 qh = words[0];
        for (int m = 0; m < 4; m++) {
            u32 x = words[1 + m];
            u32 lo = (x & 0x0F0F0F0Fu) | spread4(qh >> (4 * m));
            u32 hi = ((x >> 4) & 0x0F0F0F0Fu) | spread4(qh >> (16 + 4 * m));
            w[m] = __vsub4(lo, 0x10101010u);
            w[m + 4] = __vsub4(hi, 0x10101010u);
        }
    }
    static __device__ __forceinline__ float q8(const u8* row, int u, const Act& a) { return legacy_q8<TQ5_0>(row, u, a); }
    LEGACY_SPLIT(TQ5_0)
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
    static __device__ __forceinline__ void vals(const u8* p, int w[8]) { ld_words_a2<8>(p + 2, (u32*)w); }
    static __device__ __forceinline__ float q8(const u8* row, int u, const Act& a) { return legacy_q8<TQ8_0>(row, u, a); }
    LEGACY_SPLIT(TQ8_0)
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
    // The (scale, min) pairs of groups 2k and 2k+1, from the 12 scale bytes read as words.
    static __device__ __forceinline__ void scale_pair(const u8* p, int k, int& sc0, int& m0, int& sc1, int& m1) {
        const u32* w = (const u32*)(p + 4);
        scale_pair_w(w[0], w[1], w[2], k, sc0, m0, sc1, m1);
    }
    // Groups 2k and 2k+1's scales (bytes 0, 1 of `sc`) and mins (of `m`) from the 12 scale
    // bytes as three words (byte i of the 12 is byte i % 4 of word i / 4), without a branch
    // on k (a decode lane's k is fixed, so the selectors stay out of its loop): for groups
    // j < 4 (k < 2) the low 6 bits of bytes j and j + 4; for j >= 4 the low / high nibble of
    // byte j + 4 with the top two bits of byte j − 4 / j above it. A byte permute puts the
    // pair's two low-part bytes (w0's / w1's, or w2's) under the two bytes whose top bits
    // they take (w0's / w1's), so one mask and one shifted mask finish each.
    static __device__ __forceinline__ void scale_pair_packed(u32 w0, u32 w1, u32 w2, int k, u32& sc, u32& m) {
        const bool hi = k >= 2;
        const u32 t = 2u * ((u32)k & 1u);                              // the pair's first byte in a word
        const u32 sel = ((hi ? 4u : 0u) + t) * 0x11u + 0x10u + t * 0x1100u + 0x1000u;
        const u32 mlo = hi ? 0x0F0Fu : 0x3F3Fu, mhi = hi ? 0x3030u : 0u, ms = hi ? 4u : 0u;
        const u32 ps = __byte_perm(w0, w2, sel), pm = __byte_perm(w1, w2, sel);
        sc = (ps & mlo) | ((ps >> 18) & mhi);
        m = ((pm >> ms) & mlo) | ((pm >> 18) & mhi);
    }
    static __device__ __forceinline__ void scale_pair_w(u32 w0, u32 w1, u32 w2, int k, int& sc0, int& m0, int& sc1, int& m1) {
        u32 sc, m;
        scale_pair_packed(w0, w1, w2, k, sc, m);
        sc0 = (int)(sc & 0xFFu), sc1 = (int)(sc >> 8), m0 = (int)(m & 0xFFu), m1 = (int)(m >> 8);
    }
    // Group j's (scale, min) alone, branch-free (the prefill GEMM's unpack, kernels/mmq.cu):
    // bytes j and j+4 for j < 4; else the low and high nibbles of byte j+4 with the top two
    // bits of bytes j−4 and j. Byte i of the 12 is byte i % 4 of word i / 4.
    static __device__ __forceinline__ void scale_one(const u8* p, int j, int& sc, int& m) {
        const u32* w = (const u32*)(p + 4);
        const int sh = 8 * (j & 3);
        const u32 x0 = w[0] >> sh, x1 = w[1] >> sh, x2 = w[2] >> sh;
        sc = j < 4 ? (int)(x0 & 63) : (int)((x2 & 15) | ((x0 >> 2) & 48));
        m = j < 4 ? (int)(x1 & 63) : (int)(((x2 >> 4) & 15) | ((x1 >> 2) & 48));
    }
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
    // lo: group 2k's values; hi: group 2k+1's, for Q4_K as 16·value (the high nibbles left in
    // place: one mask a word, and wsums divides the exact sum by 16); sc, m: the two groups'
    // scales and mins as bytes 0 and 1 (scale_pair_packed).
    struct WU {
        u32 lo[8], hi[8];
        u32 sc, m;
        float d, dmin;
    };
    // bp: the block sums of the unit's two groups (each the sum of two 16-value sums, |·| <=
    // 32·128, so they fit int16), as the low and high 16 bits of one word (for dp2a).
    struct AU {
        int4 q[4];
        u32 bp;
        float dk;
    };
    static __device__ __forceinline__ u32 bp_pack(int b0, int b1) { return ((u32)b0 & 0xFFFFu) | ((u32)b1 << 16); }
    // ok = false: the unit of a row past the matrix (not read), as all-zero bytes: d = dmin
    // = 0 and zero sums, what the kernels add for such a row. The loads are predicated, so a
    // caller's rows need no branch and their loads can be issued together.
    static __device__ __forceinline__ WU wload(const u8* row, int u, bool ok = true) {
        return wload_blk(row + (unsigned)u / 4u * BYTES, (unsigned)u % 4u, ok);
    }
    // The unit's bytes as loaded: its 32 bytes of nibbles (qa, qb), the block's first 16
    // (d, dmin and the 12 scale bytes: blocks of 144 and 176 bytes keep rows 16-byte aligned)
    // and, for Q5_K, the block's 32 bytes of high bits. Apart from wdecode so that a kernel
    // can issue the loads of a row ahead of the arithmetic of the row before it.
    struct WR {
        uint4 qa, qb, h, qh0, qh1;
    };
    static __device__ __forceinline__ WR wraw(const u8* p, int k, bool ok = true) {
        WR r;
        r.qa = ld16_if(p + QS + 32 * k, ok);
        r.qb = ld16_if(p + QS + 32 * k + 16, ok);
        r.h = ld16_if(p, ok);
        if (FIVE) r.qh0 = ld16_if(p + 16, ok), r.qh1 = ld16_if(p + 32, ok);
        return r;
    }
    static __device__ __forceinline__ WU wdecode(const WR& r, int k) {
        WU w;
        const u32 x[8] = {r.qa.x, r.qa.y, r.qa.z, r.qa.w, r.qb.x, r.qb.y, r.qb.z, r.qb.w};
#pragma unroll
        for (int i = 0; i < 8; i++) {
            w.lo[i] = x[i] & 0x0F0F0F0Fu;
            w.hi[i] = FIVE ? (x[i] >> 4) & 0x0F0F0F0Fu : x[i] & 0xF0F0F0F0u;
        }
        if (FIVE) {
            const u32 qh[8] = {r.qh0.x, r.qh0.y, r.qh0.z, r.qh0.w, r.qh1.x, r.qh1.y, r.qh1.z, r.qh1.w};
#pragma unroll
            for (int i = 0; i < 8; i++) {
                w.lo[i] |= ((qh[i] >> (2 * k)) & 0x01010101u) << 4;
                w.hi[i] |= ((qh[i] >> (2 * k + 1)) & 0x01010101u) << 4;
            }
        }
        scale_pair_packed(r.h.y, r.h.z, r.h.w, k, w.sc, w.m);
        w.d = f16_to_f32((u16)(r.h.x & 0xFFFF));
        w.dmin = f16_to_f32((u16)(r.h.x >> 16));
        return w;
    }
    // wload from the unit's super-block p and its index k in it.
    static __device__ __forceinline__ WU wload_blk(const u8* p, int k, bool ok = true) { return wdecode(wraw(p, k, ok), k); }
    static __device__ __forceinline__ AU aload(const Act& a, int u) {
        const int sb = (unsigned)u / 4u, k = (unsigned)u % 4u;
        const int base = sb * 256 + 64 * k;
        AU x;
#pragma unroll
        for (int i = 0; i < 4; i++) x.q[i] = q8x16(a.qk, base + 16 * i);
        int4 bs = *(const int4*)(a.bs + sb * 16 + 4 * k);
        x.bp = bp_pack(bs.x + bs.y, bs.z + bs.w);
        x.dk = a.dk[sb];
        return x;
    }
    // The staged form (ld_plane): the scale chunk holds bp and dk.
    static __device__ __forceinline__ int4 stage_scale(const Act& a, int u) {
        const int sb = (unsigned)u / 4u, k = (unsigned)u % 4u;
        int4 bs = *(const int4*)(a.bs + sb * 16 + 4 * k);
        return make_int4(bs.x + bs.y, bs.z + bs.w, __float_as_int(a.dk[sb]), 0);
    }
    static __device__ __forceinline__ AU aload_t(const i8* p, int plane) {
        AU x;
#pragma unroll
        for (int i = 0; i < 4; i++) x.q[i] = ld_plane(p, plane, i);
        int4 s = ld_plane(p, plane, 4);
        x.bp = bp_pack(s.x, s.y);
        x.dk = __int_as_float(s.z);
        return x;
    }
    // The unit's integer sums: isum = Σ sc·(q·a) and msum = Σ m·(block sums), over its two
    // groups (exact).
    static __device__ __forceinline__ int2 wsums(const WU& w, const AU& x) {
        int s0 = dot16u(w.lo, x.q[0], 0);
        s0 = dot16u(w.lo + 4, x.q[1], s0);
        int s1;
        if constexpr (FIVE) {
            s1 = dot16u(w.hi, x.q[2], 0);
            s1 = dot16u(w.hi + 4, x.q[3], s1);
        } else {
            s1 = dot16us(w.hi, x.q[2], 0);
            s1 = dot16us(w.hi + 4, x.q[3], s1) >> 4;  // exact: every term is a multiple of 16
        }
        return make_int2((int)(w.sc & 0xFFu) * s0 + (int)(w.sc >> 8) * s1, __dp2a_lo((int)x.bp, (int)w.m, 0));
    }
    // A super-block's contribution added to a running sum, as the interpreter (and
    // llama.cpp's CPU dot) adds it: acc + (d·dk)·isum − (dmin·dk)·msum, the integer sums
    // those of the whole super-block (kq_add, below, gathers them from its 4 units' lanes).
    static __device__ __forceinline__ float sb_add(float acc, float d, float dmin, float dk, int2 s) {
        return __fsub_rn(__fadd_rn(acc, __fmul_rn(__fmul_rn(d, dk), (float)s.x)), __fmul_rn(__fmul_rn(dmin, dk), (float)s.y));
    }
    // The unit alone, as one super-block of one unit (tests, `deq`-style callers; the
    // decode kernels sum whole super-blocks with kq_add).
    static __device__ __forceinline__ float wdot(const WU& w, const AU& x) { return sb_add(0.0f, w.d, w.dmin, x.dk, wsums(w, x)); }
    static __device__ __forceinline__ float q8(const u8* row, int u, const Act& a) { return wdot(wload(row, u), aload(a, u)); }
    static __device__ __forceinline__ float f32(const u8* row, int u, const float* xs) {
        const int sb = (unsigned)u / 4u, k = (unsigned)u % 4u;
        const u8* p = row + sb * BYTES;
        u32 lo[8], hi[8];
        vals(p, k, lo, hi);
        int sc0, m0, sc1, m1;
        scale_pair(p, k, sc0, m0, sc1, m1);
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

// Q6_K: a unit is 32 weights, j = 0..7 of a super-block (half h = j/4, run k = j%4):
// element 128h + 32k + l takes its low nibble from ql[64h + 32(k%2) + l] (high nibble when
// k >= 2) and two high bits from qh[32h + l] >> 2k; its two 16-weight groups have int8
// scales sc[2j], sc[2j+1]. The 8 lanes of a super-block read overlapping 32-byte runs, so
// a warp's loads stay within a few hundred bytes (L1-friendly).
struct TQ6_K {
    static constexpr int UNIT = 32, QK = 256, BYTES = 210;
    static __device__ __forceinline__ void vals(const u8* p, int j, u32 q[8]) {
        const int h = (unsigned)j / 4u, k = (unsigned)j % 4u;
        u32 ql[8], qh[8];
        // The word after each run is inside the block (qh starts at 128, the scales at 192).
        ld_words_a2_in<8>(p + 64 * h + 32 * (k & 1), ql);
        ld_words_a2_in<8>(p + 128 + 32 * h, qh);
#pragma unroll
        for (int m = 0; m < 8; m++) {
            u32 lo = (k < 2 ? ql[m] : ql[m] >> 4) & 0x0F0F0F0Fu;
            q[m] = lo | (((qh[m] >> (2 * k)) & 0x03030303u) << 4);
        }
    }
    static __device__ __forceinline__ int2 scales(const u8* p, int j) {
        u16 w = ld16(p + 192 + 2 * j);
        return make_int2((int)(i8)(w & 0xFF), (int)(i8)(w >> 8));
    }
    struct WU {
        u32 q[8];
        int2 sc;
        float d;
    };
    struct AU {
        int4 q0, q1;
        int2 bs;
        float dk;
    };
    static __device__ __forceinline__ WU wload(const u8* row, int u) {
        const int sb = (unsigned)u / 8u, j = (unsigned)u % 8u;
        const u8* p = row + sb * BYTES;
        WU w;
        vals(p, j, w.q);
        w.sc = scales(p, j);
        w.d = f16_to_f32(ld16(p + 208));
        return w;
    }
    static __device__ __forceinline__ AU aload(const Act& a, int u) {
        const int sb = (unsigned)u / 8u, j = (unsigned)u % 8u;
        const int base = sb * 256 + 32 * j;
        AU x;
        x.q0 = q8x16(a.qk, base);
        x.q1 = q8x16(a.qk, base + 16);
        x.bs = *(const int2*)(a.bs + sb * 16 + 2 * j);
        x.dk = a.dk[sb];
        return x;
    }
    // The staged form (ld_plane): the scale chunk holds bs and dk.
    static __device__ __forceinline__ int4 stage_scale(const Act& a, int u) {
        const int sb = (unsigned)u / 8u, j = (unsigned)u % 8u;
        int2 bs = *(const int2*)(a.bs + sb * 16 + 2 * j);
        return make_int4(bs.x, bs.y, __float_as_int(a.dk[sb]), 0);
    }
    static __device__ __forceinline__ AU aload_t(const i8* p, int plane) {
        AU x;
        x.q0 = ld_plane(p, plane, 0);
        x.q1 = ld_plane(p, plane, 1);
        int4 s = ld_plane(p, plane, 2);
        x.bs = make_int2(s.x, s.y);
        x.dk = __int_as_float(s.z);
        return x;
    }
    static __device__ __forceinline__ float wdot(const WU& w, const AU& x) {
        int s0 = dot16u(w.q, x.q0, 0);
        int s1 = dot16u(w.q + 4, x.q1, 0);
        int isum = w.sc.x * (s0 - 32 * x.bs.x) + w.sc.y * (s1 - 32 * x.bs.y);
        return __fmul_rn(__fmul_rn(w.d, x.dk), (float)isum);
    }
    static __device__ __forceinline__ float q8(const u8* row, int u, const Act& a) { return wdot(wload(row, u), aload(a, u)); }
    static __device__ __forceinline__ float f32(const u8* row, int u, const float* xs) {
        const int sb = (unsigned)u / 8u, j = (unsigned)u % 8u;
        const u8* p = row + sb * BYTES;
        u32 q[8];
        vals(p, j, q);
        int2 sc = scales(p, j);
        float d = f16_to_f32(ld16(p + 208));
        float d0 = __fmul_rn(d, (float)sc.x), d1 = __fmul_rn(d, (float)sc.y);
        const float* x = xs + sb * 256 + 32 * j;
        float acc = 0.0f;
#pragma unroll
        for (int m = 0; m < 8; m++)
#pragma unroll
            for (int b = 0; b < 4; b++) {
                int v = (int)((q[m] >> (8 * b)) & 0xFF) - 32;
                acc = fmaf(__fmul_rn(m < 4 ? d0 : d1, (float)v), x[4 * m + b], acc);
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

// A Q6_K super-block's 8 units under q8 semantics, loaded by the 8 lanes that sum them (lane
// t of an aligned 8-lane group holds unit j = t, as TQ6_K's lanes do) as runs of 16
// consecutive bytes, and summed to the same integers. TQ6_K::wload has each lane read its
// unit's 32 `ql` and 32 `qh` bytes, shared with 1–3 other lanes (64 bytes for 24, in 18 word
// loads); here lane t reads ql[16t, 16t + 16) and qh[32h + 16s, + 16) (h = t / 4, s = t % 2):
// the low nibbles of its ql run are 16 weights of unit jA = 4h + (t / 2) % 2, the high
// nibbles 16 of unit jB = jA + 2, both the half s of their unit (its 16-weight group 2j + s).
// The lane forms those two groups' terms sc·(dot − 32·bsum) (the interpreter's integer
// terms), the xor-1 partner (the other half) adds its own, and each unit's sum then goes to
// the lane t = j that adds the unit's float term, as TQ6_K::wdot would. Every integer is
// exact, so the sums are the ones TQ6_K::wdot forms: the same bits.
struct Q6kLane {
    int t;       // the lane's place in its group
    int g;       // 2jA + s: the index of its first group (the second's is g + 4)
    int qh;      // byte offset of its qh run in a block
    int shift;   // qh bits of unit jA: 2·((t / 2) % 2)
    int src;     // lane holding this lane's unit sum after the exchange
};
__device__ __forceinline__ Q6kLane q6k_lane() {
    const int lane = threadIdx.x & 31, t = lane & 7;
    const int h = t >> 2, kk = (t >> 1) & 1, s = t & 1;
    Q6kLane q;
    q.t = t;
    q.g = 2 * (4 * h + kk) + s;
    q.qh = 128 + 32 * h + 16 * s;
    q.shift = 2 * kk;
    // Unit j's sum sits on lane 4·(j / 4) + 2·(j % 2) + (j / 2) % 2 (after the exchange).
    q.src = (lane & ~7) | (t & 4) | ((t & 1) << 1) | ((t >> 1) & 1);
    return q;
}
// The activations the lane's runs meet in super-block sb: both groups' 16 q8 values and
// block sums, and the block's scale (read once for all the rows of a unit).
struct Q6kAct {
    int4 a, b;
    int bsa, bsb;
    float dk;
};
__device__ __forceinline__ Q6kAct q6k_act(const Act& x, const Q6kLane& q, int sb) {
    Q6kAct r;
    // Group g's 16 values start at 16g; jB's group is g + 4.
    r.a = q8x16(x.qk, sb * 256 + 16 * q.g);
    r.b = q8x16(x.qk, sb * 256 + 16 * q.g + 64);
    r.bsa = x.bs[sb * 16 + q.g];
    r.bsb = x.bs[sb * 16 + q.g + 4];
    r.dk = x.dk[sb];
    return r;
}
// acc += the float term of the calling lane's unit of super-block `sb` of `row`, as
// kq_add<TQ6_K> adds it. The 8 lanes of the group call it together (gm: their mask).
__device__ __forceinline__ void q6k_add(float& acc, const u8* row, int sb, const Q6kLane& q, const Q6kAct& x, unsigned gm) {
    const u8* p = row + sb * TQ6_K::BYTES;
    u32 ql[4], qh[4];
    // The word after each run is inside the block (qh starts at 128, the scales at 192).
    ld_words_a2_in<4>(p + 16 * q.t, ql);
    ld_words_a2_in<4>(p + q.qh, qh);
    u32 wa[4], wb[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const u32 hb = qh[i] >> q.shift;
        wa[i] = (ql[i] & 0x0F0F0F0Fu) | ((hb & 0x03030303u) << 4);
        wb[i] = ((ql[i] >> 4) & 0x0F0F0F0Fu) | (hb & 0x30303030u);
    }
    const int ta = (int)(i8)p[192 + q.g] * (dot16u(wa, x.a, 0) - 32 * x.bsa);
    const int tb = (int)(i8)p[196 + q.g] * (dot16u(wb, x.b, 0) - 32 * x.bsb);
    const int sa = ta + __shfl_xor_sync(gm, ta, 1);
    const int sbm = tb + __shfl_xor_sync(gm, tb, 1);
    const int isum = __shfl_sync(gm, (q.t & 1) ? sbm : sa, q.src);
    acc += __fmul_rn(__fmul_rn(f16_to_f32(ld16(p + 208)), x.dk), (float)isum);
}

// Float weights: f32 semantics only (the graph gives float matmuls f32 activations); their
// q8 split exists only so every type has the members (never called).
#define FLOAT_NO_SPLIT                                                                          \
    struct WU {};                                                                               \
    struct AU {};                                                                               \
    static __device__ __forceinline__ WU wload(const u8*, int) { return WU{}; }                 \
    static __device__ __forceinline__ AU aload(const Act&, int) { return AU{}; }                \
    static __device__ __forceinline__ int4 stage_scale(const Act&, int) { return int4{}; }      \
    static __device__ __forceinline__ AU aload_t(const i8*, int) { return AU{}; }               \
    static __device__ __forceinline__ float wdot(const WU&, const AU&) { return 0.0f; }
struct TF32 {
    static constexpr int UNIT = 32, QK = 1, BYTES = 4;
    static __device__ __forceinline__ float q8(const u8*, int, const Act&) { return 0.0f; }
    FLOAT_NO_SPLIT
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
    FLOAT_NO_SPLIT
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

// ---- The order of a q8 row sum --------------------------------------------------------
// The decode kernels find a weight unit by its block's index in the matrix (row · blocks a
// row + the unit's block), in 32 bits until the last product, and its place in the block:
// matvec_tile (matvec.cuh), batch_rows / batch_wload and the batched MMA tile
// (matvec_batch.cu). The upload refuses a matrix of more than 2^32 − 1 blocks.
template <class W> struct UnitsPerBlock { static constexpr int v = W::QK >= W::UNIT ? W::QK / W::UNIT : 1; };
template <class W>
__device__ __forceinline__ u32 blocks_a_row(int row_bytes) { return (u32)row_bytes / (u32)W::BYTES; }

// A decode row's q8 sum (matvec.cuh, matvec_batch.cu, matmul.cu, the persistent kernel) is
// spread over lanes, a lane taking units u0, u0 + step, ... For most types each unit adds
// its own value (W::wdot) to its lane's running sum, and the lanes' sums meet in a
// butterfly. Q4_K and Q5_K instead take the interpreter's super-block terms: a super-block
// is 4 units, always on 4 consecutive lanes (a quad: the lanes stride over units in steps
// that are multiples of 4, and rows have a multiple of 4 units), which add their integer
// sums (exact, so the order does not matter) and each add the super-block's term
// (sb_add: the interpreter's float arithmetic, llama.cpp's) to its running sum. The 4 lanes
// of a quad then hold the same sum, so the butterfly stops at offset 4 (kq_quad lanes).
// Every kernel uses these two helpers, so a row's bits are the same whichever kernel, batch
// or K split computes it (the split is the host's, the same for all of them).
template <class W> struct KQuad { static constexpr int v = 1; };
template <bool F> struct KQuad<TQ45_K<F>> { static constexpr int v = 4; };
// Lanes that hold the same sum after kq_add under activation semantics ACT (f32 sums are
// per unit: 1).
template <class W, int ACT> struct KQuadAct { static constexpr int v = ACT == ACT_Q8 ? KQuad<W>::v : 1; };

// acc += unit u's q8 dot, in the type's order (above). For Q4_K/Q5_K every lane of the
// calling lane's quad must call it together (they do: see above).
template <class W>
__device__ __forceinline__ void kq_add(float& acc, const typename W::WU& w, const typename W::AU& x) {
    if constexpr (KQuad<W>::v == 4) {
        const unsigned qm = 0xFu << (threadIdx.x & 28);
        int2 s = W::wsums(w, x);
        s.x += __shfl_xor_sync(qm, s.x, 1);
        s.y += __shfl_xor_sync(qm, s.y, 1);
        s.x += __shfl_xor_sync(qm, s.x, 2);
        s.y += __shfl_xor_sync(qm, s.y, 2);
        acc = W::sb_add(acc, w.d, w.dmin, x.dk, s);
    } else {
        acc += W::wdot(w, x);
    }
}

// kq_add for several sums at once, spread over the quad: each lane has unit sums of N rows
// (N = 2, 4, 8, 16); the quad adds each row's 4 (exact) and lane l keeps rows i ≡ l (mod 4)
// (N = 2: row l % 2), so each lane then adds one super-block term a row (sb_add) where
// kq_add has every lane add all N. Two halving exchanges: quad_keep1 at xor 1 (rows 2j,
// 2j + 1: the lane keeps row 2j + its bit 0), then quad_keep2 at xor 2 (rows kept by
// quad_keep1 for 4j + b0 and 4j + 2 + b0: the lane keeps 4j + its bits 1, 0). The callers
// take each step as soon as its rows are summed, so few sums are live at once.
__device__ __forceinline__ int2 quad_keep1(int2 s0, int2 s1) {
    const int lane = threadIdx.x & 31;
    const unsigned qm = 0xFu << (lane & 28);
    const bool b0 = lane & 1;
    int2 send = b0 ? s0 : s1, keep = b0 ? s1 : s0;
    keep.x += __shfl_xor_sync(qm, send.x, 1);
    keep.y += __shfl_xor_sync(qm, send.y, 1);
    return keep;
}
__device__ __forceinline__ int2 quad_keep2(int2 t0, int2 t1) {
    const int lane = threadIdx.x & 31;
    const unsigned qm = 0xFu << (lane & 28);
    const bool b1 = (lane >> 1) & 1;
    int2 send = b1 ? t0 : t1, keep = b1 ? t1 : t0;
    keep.x += __shfl_xor_sync(qm, send.x, 2);
    keep.y += __shfl_xor_sync(qm, send.y, 2);
    return keep;
}
// Sum of v over the L lanes of a lane group (L a power of two, groups aligned), for lanes
// whose values come in runs of Q identical ones (KQuadAct): the butterfly's offsets L/2 ..
// Q, each lane adding its partner's value to its own.
template <int Q>
__device__ __forceinline__ float group_sum(float v, int L) {
    for (int o = L / 2; o >= Q; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
template <class W> struct IsQ6K { static constexpr bool v = false; };
template <> struct IsQ6K<TQ6_K> { static constexpr bool v = true; };
template <class W> struct NeedsL { static constexpr bool v = W::QK == 32; };
