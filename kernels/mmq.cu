// mmq.cu — prefill matmul under q8 semantics as a tiled integer GEMM on the tensor cores: a
// CTA of 8 warps (256 threads) computes an MM_BM × MM_BN = 64 (weight rows) × 128 (tokens)
// tile, stepping through K in chunks of MM_CH = 128 (launch constants from
// src/codegen/catalogue.rs, #defined in the generated args.cuh; the scheduler picks this
// kernel only when K is a multiple of MM_CH). Each chunk's weight blocks are unpacked once
// into shared memory as int8 (with their scales), the quantized activations (from
// quantize.cu) are staged beside them, and each warp takes 16 rows × 64 tokens with MM_NT = 8
// m16n8k16 s8 MMAs per 16 weights of K (one 16-weight half of a 32-weight group). Per block
// the (exact) integer sums are combined with the scales as the CPU reference does
// (src/quant/dot.rs, `legacy` and `kquant`): legacy types `acc += (d_w·d_a)·sumi` per
// 32-block, k-quants `acc += (d·d_a)·isum; acc −= (dmin·d_a)·msum` per super-block, in block
// order — so the result is bit-identical to the interpreter's.
#include "quant.cuh"

#define MM_PAD 16
// Each of the 8 warps takes 16 weight rows × 64 tokens: MM_NT 8-token MMA columns.
#define MM_NT 8

// One stage of staged operands: a K chunk of weights and activations with their scales.
// Two stages alternate (the next chunk is unpacked while the current one is multiplied);
// super-block data (mins, d/dmin, bsums, d_a) spans two chunks and alternates per
// super-block.
struct MmqStage {
    i8 w[MM_BM][MM_CH + MM_PAD];
    i8 a[MM_BN][MM_CH + MM_PAD];
    int wsc[MM_BM][8];     // k-quants: integer scale per 16 weights of the chunk
    float wd[MM_BM][4];    // legacy: d_w per 32-block of the chunk
    float ad[MM_BN][4];    // legacy: d_a per 32-block of the chunk
};
struct MmqSuper {
    int wmin[MM_BM][8];    // Q4_K/Q5_K: 6-bit mins of the super-block's 8 groups
    float sd[MM_BM], sdmin[MM_BM];
    int abs_[MM_BN][8];    // Q8_K bsums of the super-block, summed per 32-group
    float adk[MM_BN];
};
struct MmqSmem {
    MmqStage st[2];
    MmqSuper sb[2];
};
// The host launches with exactly this much dynamic shared memory (catalogue.rs).
static_assert(sizeof(MmqSmem) == MMQ_SMEM_BYTES, "update MMQ_SMEM_BYTES in src/codegen/catalogue.rs");

// Unpacks 32 weights (group `grp` of the row, global index) into dst, with scales.
template <class W> struct Unpack;

template <> struct Unpack<TQ4_0> {
    static __device__ void run(const u8* row, int grp, i8* dst, MmqStage& s, MmqSuper& sp, int r, int gq) {
        const u8* p = row + grp * 18;
        int w[8];
        TQ4_0::vals(p, w);
        for (int m = 0; m < 8; m++) *(int*)(dst + 4 * m) = w[m];
        s.wd[r][gq] = f16_to_f32(ld16(p));
    }
};
template <> struct Unpack<TQ5_0> {
    static __device__ void run(const u8* row, int grp, i8* dst, MmqStage& s, MmqSuper& sp, int r, int gq) {
        const u8* p = row + grp * 22;
        int w[8];
        TQ5_0::vals(p, w);
        for (int m = 0; m < 8; m++) *(int*)(dst + 4 * m) = w[m];
        s.wd[r][gq] = f16_to_f32(ld16(p));
    }
};
template <> struct Unpack<TQ8_0> {
    static __device__ void run(const u8* row, int grp, i8* dst, MmqStage& s, MmqSuper& sp, int r, int gq) {
        const u8* p = row + grp * 34;
        u32 w[8];
        ld_words_a2<8>(p + 2, w);
        for (int m = 0; m < 8; m++) *(u32*)(dst + 4 * m) = w[m];
        s.wd[r][gq] = f16_to_f32(ld16(p));
    }
};
template <bool FIVE> struct Unpack<TQ45_K<FIVE>> {
    static __device__ void run(const u8* row, int grp, i8* dst, MmqStage& s, MmqSuper& sp, int r, int gq) {
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
        sp.wmin[r][j] = (j & 1) ? m1 : m0;
        if (j == 0) {
            sp.sd[r] = f16_to_f32(ld16(p));
            sp.sdmin[r] = f16_to_f32(ld16(p + 2));
        }
    }
};
template <> struct Unpack<TQ6_K> {
    static __device__ void run(const u8* row, int grp, i8* dst, MmqStage& s, MmqSuper& sp, int r, int gq) {
        int sb = grp / 8, j = grp % 8;
        const u8* p = row + sb * 210;
        u32 q[8];
        TQ6_K::vals(p, j, q);
        for (int m = 0; m < 8; m++) *(u32*)(dst + 4 * m) = __vsub4(q[m], 0x20202020u);  // q − 32
        int2 sc = TQ6_K::scales(p, j);
        s.wsc[r][2 * gq] = sc.x;
        s.wsc[r][2 * gq + 1] = sc.y;
        if (j == 0) sp.sd[r] = f16_to_f32(ld16(p + 208));
    }
};

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

template <class W>
__device__ void mmq_impl(const MmqArgs& g) {
    extern __shared__ __align__(16) u8 mmq_smem[];  // sizeof(MmqSmem), set by the host
    MmqSmem& s = *(MmqSmem*)mmq_smem;
    constexpr bool KQ = W::QK == 256;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int r0 = blockIdx.x * MM_BM, t0 = blockIdx.y * MM_BN;
    // Warp tile: 16 weight rows (wr) × 64 tokens (wt, MM_NT 8-token MMA columns).
    const int wr = (warp & 3) * 16, wt = (warp >> 2) * (8 * MM_NT);
    const int gq = lane >> 2, qq = lane & 3;
    // This thread's outputs: rows wr+gq (+8), tokens wt + 8n + 2qq (+1), n < MM_NT;
    // output j of a row is token wt + 8 (j / 2) + 2qq + (j & 1).
    constexpr int NJ = 2 * MM_NT;
    float acc[2][NJ];
    int isum[2][NJ];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < NJ; j++) { acc[i][j] = 0.0f; isum[i][j] = 0; }
    const int nch = g.K / MM_CH;
    // Stage chunk c into stage c % 2 (and its super-block data into sb[(c / 2) % 2]).
    auto stage = [&](int c) {
        MmqStage& st = s.st[c & 1];
        MmqSuper& sp = s.sb[(c >> 1) & 1];
        int r = tid / 4, gi = tid % 4;
        int row = min(r0 + r, g.rows - 1);
        Unpack<W>::run((const u8*)g.w + (size_t)row * g.row_bytes, c * 4 + gi, &st.w[r][gi * 32], st, sp, r, gi);
#pragma unroll
        for (int half = 0; half < 2; half++) {
            int rt = r + 64 * half;
            int t = min(t0 + rt, g.T - 1);
            const i8* src = (const i8*)(KQ ? g.qk : g.q0) + (size_t)t * g.K + c * MM_CH + gi * 32;
            *(int4*)&st.a[rt][gi * 32] = *(const int4*)src;
            *(int4*)&st.a[rt][gi * 32 + 16] = *(const int4*)(src + 16);
            if (!KQ) st.ad[rt][gi] = ((const float*)g.d0)[(size_t)t * (g.K / 32) + c * 4 + gi];
            if (KQ && (c & 1) == 0) {
                const int* bsp = (const int*)g.bs + (size_t)t * (g.K / 16) + (c / 2) * 16 + gi * 4;
                sp.abs_[rt][2 * gi] = bsp[0] + bsp[1];
                sp.abs_[rt][2 * gi + 1] = bsp[2] + bsp[3];
                if (gi == 0) sp.adk[rt] = ((const float*)g.dk)[(size_t)t * (g.K / 256) + c / 2];
            }
        }
    };
    stage(0);
    __syncthreads();
    for (int c = 0; c < nch; c++) {
        // The next chunk is staged into the other buffers before this one is multiplied.
        if (c + 1 < nch) stage(c + 1);
        const MmqStage& st = s.st[c & 1];
        const MmqSuper& sp = s.sb[(c >> 1) & 1];
        int prev[2][NJ];
#pragma unroll
        for (int h = 0; h < 8; h++) {
            int a0 = *(const int*)&st.w[wr + gq][h * 16 + 4 * qq];
            int a1 = *(const int*)&st.w[wr + gq + 8][h * 16 + 4 * qq];
            int cc[MM_NT][4];
#pragma unroll
            for (int n = 0; n < MM_NT; n++) {
                int b0 = *(const int*)&st.a[wt + 8 * n + gq][h * 16 + 4 * qq];
                cc[n][0] = cc[n][1] = cc[n][2] = cc[n][3] = 0;
                mma16816(a0, a1, b0, cc[n]);
            }
            int sc[2];
            float wd[2], ad[NJ];
#pragma unroll
            for (int i = 0; i < 2; i++) {
                sc[i] = KQ ? st.wsc[wr + gq + 8 * i][h] : 0;
                wd[i] = KQ ? 0.0f : st.wd[wr + gq + 8 * i][h / 2];
            }
#pragma unroll
            for (int j = 0; j < NJ; j++) ad[j] = KQ ? 0.0f : st.ad[wt + 8 * (j / 2) + 2 * qq + (j & 1)][h / 2];
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < NJ; j++) {
                    int v = cc[j / 2][2 * i + (j & 1)];
                    if (KQ) {
                        isum[i][j] += sc[i] * v;
                    } else if (h & 1) {
                        float d = __fmul_rn(wd[i], ad[j]);
                        acc[i][j] = __fadd_rn(acc[i][j], __fmul_rn(d, (float)(prev[i][j] + v)));
                    } else {
                        prev[i][j] = v;
                    }
                }
        }
        if (KQ && (c & 1) == 1) {
            int wm[2][8];
            float sd[2], sdm[2];
#pragma unroll
            for (int i = 0; i < 2; i++) {
                int rr = wr + gq + 8 * i;
#pragma unroll
                for (int q = 0; q < 8; q++) wm[i][q] = W::UNIT == 64 ? sp.wmin[rr][q] : 0;
                sd[i] = sp.sd[rr];
                sdm[i] = W::UNIT == 64 ? sp.sdmin[rr] : 0.0f;
            }
#pragma unroll
            for (int j = 0; j < NJ; j++) {
                int tk = wt + 8 * (j / 2) + 2 * qq + (j & 1);
                float dk = sp.adk[tk];
                int bsum[8];
                if (W::UNIT == 64) {
                    int4 b0 = *(const int4*)&sp.abs_[tk][0], b1 = *(const int4*)&sp.abs_[tk][4];
                    bsum[0] = b0.x; bsum[1] = b0.y; bsum[2] = b0.z; bsum[3] = b0.w;
                    bsum[4] = b1.x; bsum[5] = b1.y; bsum[6] = b1.z; bsum[7] = b1.w;
                }
#pragma unroll
                for (int i = 0; i < 2; i++) {
                    acc[i][j] = __fadd_rn(acc[i][j], __fmul_rn(__fmul_rn(sd[i], dk), (float)isum[i][j]));
                    isum[i][j] = 0;
                    if (W::UNIT == 64) {  // Q4_K / Q5_K mins
                        int msum = 0;
#pragma unroll
                        for (int q = 0; q < 8; q++) msum += wm[i][q] * bsum[q];
                        acc[i][j] = __fsub_rn(acc[i][j], __fmul_rn(__fmul_rn(sdm[i], dk), (float)msum));
                    }
                }
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < NJ; j++) {
            int r = r0 + wr + gq + 8 * i, t = t0 + wt + 8 * (j / 2) + 2 * qq + (j & 1);
            if (r < g.rows && t < g.T) ((float*)g.out)[(size_t)t * g.rows + r] = acc[i][j];
        }
}
