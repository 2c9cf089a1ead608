// mmq.cu — prefill matmul under q8 semantics as a tiled integer GEMM: a CTA computes a
// 64 (weight rows) × 64 (tokens) tile, stepping through K in chunks of 128. Each chunk's
// weight blocks are unpacked once into shared memory as int8 (with their scales), the
// quantized activations (from quantize.cu) are staged beside them, and every thread forms
// a 4 × 4 block of outputs with dp4a. Per block the integer sums are combined with the
// scales exactly as the CPU reference does (src/quant/dot.rs): legacy types
// `acc += (d_w·d_a)·sumi` per 32-block, k-quants `acc += (d·d_a)·isum; acc −= (dmin·d_a)·msum`
// per super-block, in block order — so the result is bit-identical to the interpreter's.
#include "quant.cuh"

#define MM_BM 64
#define MM_BN 64
#define MM_CH 128
#define MM_PAD 16

struct MmqArgs {
    u64 w, out;
    u64 q0, d0;        // Q8_0 activations [T, K], scales [T, K/32]
    u64 qk, dk, bs;    // Q8_K activations [T, K], scales [T, K/256], bsums [T, K/16]
    int rows, K, row_bytes, T;
};

struct MmqSmem {
    i8 w[MM_BM][MM_CH + MM_PAD];
    i8 a[MM_BN][MM_CH + MM_PAD];
    int wsc[MM_BM][8];     // k-quants: integer scale per 16 weights of the chunk
    float wd[MM_BM][4];    // legacy: d_w per 32-block of the chunk
    float ad[MM_BN][4];    // legacy: d_a per 32-block of the chunk
    int wmin[MM_BM][8];    // Q4_K/Q5_K: 6-bit mins of the super-block's 8 groups
    float sd[MM_BM], sdmin[MM_BM];
    int abs_[MM_BN][16];   // Q8_K bsums of the super-block
    float adk[MM_BN];
};

// Unpacks 32 weights (group `grp` of the row, global index) into dst, with scales.
template <class W> struct Unpack;

template <> struct Unpack<TQ4_0> {
    static __device__ void run(const u8* row, int grp, i8* dst, MmqSmem& s, int r, int gq) {
        const u8* p = row + grp * 18;
        int w[8];
        TQ4_0::vals(p, w);
        for (int m = 0; m < 8; m++) *(int*)(dst + 4 * m) = w[m];
        s.wd[r][gq] = f16_to_f32(ld16(p));
    }
};
template <> struct Unpack<TQ5_0> {
    static __device__ void run(const u8* row, int grp, i8* dst, MmqSmem& s, int r, int gq) {
        const u8* p = row + grp * 22;
        int w[8];
        TQ5_0::vals(p, w);
        for (int m = 0; m < 8; m++) *(int*)(dst + 4 * m) = w[m];
        s.wd[r][gq] = f16_to_f32(ld16(p));
    }
};
template <> struct Unpack<TQ8_0> {
    static __device__ void run(const u8* row, int grp, i8* dst, MmqSmem& s, int r, int gq) {
        const u8* p = row + grp * 34;
        u32 w[8];
        ld_words_a2<8>(p + 2, w);
        for (int m = 0; m < 8; m++) *(u32*)(dst + 4 * m) = w[m];
        s.wd[r][gq] = f16_to_f32(ld16(p));
    }
};
template <bool FIVE> struct Unpack<TQ45_K<FIVE>> {
    static __device__ void run(const u8* row, int grp, i8* dst, MmqSmem& s, int r, int gq) {
        typedef TQ45_K<FIVE> T;
        int sb = grp / 8, j = grp % 8, k = j / 2;
        const u8* p = row + sb * T::BYTES;
        u32 lo[8], hi[8];
        T::vals(p, k, lo, hi);
        for (int m = 0; m < 8; m++) *(u32*)(dst + 4 * m) = (j & 1) ? hi[m] : lo[m];
        int sc0, m0, sc1, m1;
        T::scale_pair(p, k, sc0, m0, sc1, m1);
        int sc = (j & 1) ? sc1 : sc0;
        s.wsc[r][2 * gq] = sc;
        s.wsc[r][2 * gq + 1] = sc;
        s.wmin[r][j] = (j & 1) ? m1 : m0;
        if (j == 0) {
            s.sd[r] = f16_to_f32(ld16(p));
            s.sdmin[r] = f16_to_f32(ld16(p + 2));
        }
    }
};
template <> struct Unpack<TQ6_K> {
    static __device__ void run(const u8* row, int grp, i8* dst, MmqSmem& s, int r, int gq) {
        int sb = grp / 8, j = grp % 8;
        const u8* p = row + sb * 210;
        u32 q[8];
        TQ6_K::vals(p, j, q);
        for (int m = 0; m < 8; m++) *(u32*)(dst + 4 * m) = __vsub4(q[m], 0x20202020u);  // q − 32
        int2 sc = TQ6_K::scales(p, j);
        s.wsc[r][2 * gq] = sc.x;
        s.wsc[r][2 * gq + 1] = sc.y;
        if (j == 0) s.sd[r] = f16_to_f32(ld16(p + 208));
    }
};

template <class W>
__device__ void mmq_impl(const MmqArgs& g) {
    __shared__ MmqSmem s;
    constexpr bool KQ = W::QK == 256;
    const int tid = threadIdx.x;
    const int r0 = blockIdx.x * MM_BM, t0 = blockIdx.y * MM_BN;
    // This thread's rows ty + 16i and tokens tx + 16j (interleaved: neighbouring threads read
    // neighbouring 144-byte smem rows, which fall in distinct bank groups).
    const int ty = tid / 16, tx = tid % 16;
    float acc[4][4];
    int isum[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) { acc[i][j] = 0.0f; isum[i][j] = 0; }
    const int nch = g.K / MM_CH;
    for (int c = 0; c < nch; c++) {
        // Stage: thread → (row tid/4, group tid%4) of the weights; (token tid/4, quarter) of
        // the activations.
        {
            int r = tid / 4, gq = tid % 4;
            int row = min(r0 + r, g.rows - 1);
            Unpack<W>::run((const u8*)g.w + (size_t)row * g.row_bytes, c * 4 + gq, &s.w[r][gq * 32], s, r, gq);
            int t = min(t0 + r, g.T - 1);
            const i8* src = (const i8*)(KQ ? g.qk : g.q0) + (size_t)t * g.K + c * MM_CH + gq * 32;
            *(int4*)&s.a[r][gq * 32] = *(const int4*)src;
            *(int4*)&s.a[r][gq * 32 + 16] = *(const int4*)(src + 16);
            if (!KQ) s.ad[r][gq] = ((const float*)g.d0)[(size_t)t * (g.K / 32) + c * 4 + gq];
            if (KQ && (c & 1) == 0) {
                const int* bsp = (const int*)g.bs + (size_t)t * (g.K / 16) + (c / 2) * 16;
                for (int k = 0; k < 4; k++) s.abs_[r][gq * 4 + k] = bsp[gq * 4 + k];
                if (gq == 0) s.adk[r] = ((const float*)g.dk)[(size_t)t * (g.K / 256) + c / 2];
            }
        }
        __syncthreads();
        // 8 halves of 16: integer dots, then the type's scale combination.
        int prev[4][4];
#pragma unroll
        for (int h = 0; h < 8; h++) {
            int s16[4][4];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) s16[i][j] = 0;
            {
                int4 wv[4], av[4];
#pragma unroll
                for (int i = 0; i < 4; i++) wv[i] = *(const int4*)&s.w[ty + 16 * i][h * 16];
#pragma unroll
                for (int j = 0; j < 4; j++) av[j] = *(const int4*)&s.a[tx + 16 * j][h * 16];
#pragma unroll
                for (int i = 0; i < 4; i++)
#pragma unroll
                    for (int j = 0; j < 4; j++) {
                        int v = __dp4a(wv[i].x, av[j].x, s16[i][j]);
                        v = __dp4a(wv[i].y, av[j].y, v);
                        v = __dp4a(wv[i].z, av[j].z, v);
                        s16[i][j] = __dp4a(wv[i].w, av[j].w, v);
                    }
            }
            // Scales of this half (k-quants) or 32-block (legacy), loaded once per half.
            int sc[4];
            float wd[4], ad[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                sc[i] = KQ ? s.wsc[ty + 16 * i][h] : 0;
                wd[i] = KQ ? 0.0f : s.wd[ty + 16 * i][h / 2];
                ad[i] = KQ ? 0.0f : s.ad[tx + 16 * i][h / 2];
            }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    if (KQ) {
                        isum[i][j] += sc[i] * s16[i][j];
                    } else if (h & 1) {
                        float d = __fmul_rn(wd[i], ad[j]);
                        acc[i][j] = __fadd_rn(acc[i][j], __fmul_rn(d, (float)(prev[i][j] + s16[i][j])));
                    } else {
                        prev[i][j] = s16[i][j];
                    }
                }
        }
        // End of a k-quant super-block: scale the integer sums (and mins) into acc.
        if (KQ && (c & 1) == 1) {
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    int rr = ty + 16 * i, tk = tx + 16 * j;
                    float dk = s.adk[tk];
                    acc[i][j] = __fadd_rn(acc[i][j], __fmul_rn(__fmul_rn(s.sd[rr], dk), (float)isum[i][j]));
                    isum[i][j] = 0;
                    if (W::UNIT == 64) {  // Q4_K / Q5_K mins
                        int msum = 0;
                        for (int q = 0; q < 8; q++) msum += s.wmin[rr][q] * (s.abs_[tk][2 * q] + s.abs_[tk][2 * q + 1]);
                        acc[i][j] = __fsub_rn(acc[i][j], __fmul_rn(__fmul_rn(s.sdmin[rr], dk), (float)msum));
                    }
                }
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int r = r0 + ty + 16 * i, t = t0 + tx + 16 * j;
            if (r < g.rows && t < g.T) ((float*)g.out)[(size_t)t * g.rows + r] = acc[i][j];
        }
}
