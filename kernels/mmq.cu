// mmq.cu — prefill matmul under q8 semantics as a tiled integer GEMM on the tensor cores: a
// CTA of 8 warps (256 threads) computes an MM_BM × MM_BN = 64 (weight rows) × 128 (tokens)
// tile, stepping through K in chunks of MM_CH = 128 (launch constants from
// src/codegen/catalogue.rs, #defined in the generated args.cuh; the scheduler picks this
// kernel only when K is a multiple of MM_CH). Each chunk's weight blocks are unpacked once
// into shared memory as int8 (with their scales), the quantized activations (from
// quantize.cu) are staged beside them, and each warp takes 16 rows × 64 tokens with MM_NT = 8
// s8 MMAs per step of K: m16n8k32 over a 32-weight group, or m16n8k16 over a 16-weight half
// for Q6_K, whose scales are per 16 weights. Per block
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
    u8 wmin[MM_BM][8];     // Q4_K/Q5_K: 6-bit mins of the super-block's 8 groups
    float sd[MM_BM], sdmin[MM_BM];
    // Q8_K bsums of the super-block summed per 32-group (|sum| <= 32·128), split exactly as
    // lo + 128·hi with lo = sum & 127 and hi = sum >> 7, both int8: the MMA operands of the
    // min term (see msum_mma).
    i8 absl[MM_BN][8], absh[MM_BN][8];
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
        sp.wmin[r][j] = (u8)((j & 1) ? m1 : m0);
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

// m16n8k32: the same with 32 weights of K. A: a0 = row g, k 4q..4q+3; a1 = row g+8, same
// k; a2, a3 = rows g, g+8, k 16+4q..16+4q+3. B: b0 = k 4q..4q+3 of column g, b1 = k 16+4q..
// One MMA sums a 32-weight group exactly as the two 16-weight halves did.
__device__ __forceinline__ void mma16832(int a0, int a1, int a2, int a3, int b0, int b1, int c[4]) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// The Q4_K/Q5_K min term of a warp tile's super-block, msum[i][j] = Σ_q min[row][q]·bsum[token][q]
// over its 8 groups (row wr+gq+8i, token wt + 8(j/2) + 2qq + (j&1)), on the tensor cores:
// two m16n8k16 MMAs per 8 tokens with k 0..7 the groups (k 8..15 zero), one against the low
// 7 bits of the bsums and one against the rest; msum = lo + 128·hi. All integer, so the sums
// are exactly those of the scalar reference loop.
__device__ __forceinline__ void msum_mma(const MmqSuper& sp, int wr, int wt, int gq, int qq, int msum[2][2 * MM_NT]) {
    int a0 = qq < 2 ? *(const int*)&sp.wmin[wr + gq][4 * qq] : 0;
    int a1 = qq < 2 ? *(const int*)&sp.wmin[wr + gq + 8][4 * qq] : 0;
#pragma unroll
    for (int n = 0; n < MM_NT; n++) {
        int tk = wt + 8 * n + gq;
        int bl = qq < 2 ? *(const int*)&sp.absl[tk][4 * qq] : 0;
        int bh = qq < 2 ? *(const int*)&sp.absh[tk][4 * qq] : 0;
        int lo[4] = {0, 0, 0, 0}, hi[4] = {0, 0, 0, 0};
        mma16816(a0, a1, bl, lo);
        mma16816(a0, a1, bh, hi);
#pragma unroll
        for (int e = 0; e < 4; e++) msum[e / 2][2 * n + (e & 1)] = lo[e] + 128 * hi[e];
    }
}

// Pulls the 128-byte line of p into L1 (a hint: no result, no fault).
__device__ __forceinline__ void prefetch_l1(const void* p) { asm volatile("prefetch.global.L1 [%0];" ::"l"(p)); }

template <class W>
__device__ void mmq_impl(const MmqArgs& g) {
    extern __shared__ __align__(16) u8 mmq_smem[];  // sizeof(MmqSmem), set by the host
    MmqSmem& s = *(MmqSmem*)mmq_smem;
    constexpr bool KQ = W::QK == 256;
    // Q6_K (the only k-quant with 32-weight units) has a scale per 16 weights; every other
    // type one per 32 (k-quant group or legacy block).
    constexpr int KW = (KQ && W::UNIT == 32) ? 16 : 32;
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
            cp_async16(&st.a[rt][gi * 32], src, 16);
            cp_async16(&st.a[rt][gi * 32 + 16], src + 16, 16);
            if (!KQ) st.ad[rt][gi] = ((const float*)g.d0)[(size_t)t * (g.K / 32) + c * 4 + gi];
            if (KQ && (c & 1) == 0) {
                const int* bsp = (const int*)g.bs + (size_t)t * (g.K / 16) + (c / 2) * 16 + gi * 4;
                int s0 = bsp[0] + bsp[1], s1 = bsp[2] + bsp[3];
                sp.absl[rt][2 * gi] = (i8)(s0 & 127);
                sp.absh[rt][2 * gi] = (i8)(s0 >> 7);
                sp.absl[rt][2 * gi + 1] = (i8)(s1 & 127);
                sp.absh[rt][2 * gi + 1] = (i8)(s1 >> 7);
                if (gi == 0) sp.adk[rt] = ((const float*)g.dk)[(size_t)t * (g.K / 256) + c / 2];
            }
        }
        cp_async_commit();  // the chunk's copies form one group: cp_async_wait<0> waits for it
    };
    // The weight block this thread unpacks for chunk c, pulled into L1 ahead of time: its
    // first, middle and last byte cover every 128-byte line of a block of at most 256 bytes.
    auto prefetch = [&](int c) {
        int row = min(r0 + tid / 4, g.rows - 1);
        const u8* p = (const u8*)g.w + (size_t)row * g.row_bytes + (size_t)((c * 4 + tid % 4) * 32 / W::QK) * W::BYTES;
        prefetch_l1(p);
        prefetch_l1(p + W::BYTES / 2);
        prefetch_l1(p + W::BYTES - 1);
    };
    stage(0);
    if (nch > 1) prefetch(1);
    cp_async_wait<0>();
    __syncthreads();
    for (int c = 0; c < nch; c++) {
        // The next chunk is staged into the other buffers before this one is multiplied: its
        // activations by asynchronous copies (cp.async, waited for at the end of this
        // iteration), its weights from L1, where the previous iteration prefetched them.
        if (c + 2 < nch) prefetch(c + 2);
        if (c + 1 < nch) stage(c + 1);
        const MmqStage& st = s.st[c & 1];
        const MmqSuper& sp = s.sb[(c >> 1) & 1];
        // One MMA step covers KW weights of K: 32 (one k-quant scale, one legacy block) with
        // m16n8k32, or 16 for Q6_K (a scale per 16 weights) with m16n8k16.
#pragma unroll
        for (int h = 0; h < MM_CH / KW; h++) {
            const int* pa0 = (const int*)&st.w[wr + gq][h * KW + 4 * qq];
            const int* pa1 = (const int*)&st.w[wr + gq + 8][h * KW + 4 * qq];
            int cc[MM_NT][4];
#pragma unroll
            for (int n = 0; n < MM_NT; n++) {
                const int* pb = (const int*)&st.a[wt + 8 * n + gq][h * KW + 4 * qq];
                cc[n][0] = cc[n][1] = cc[n][2] = cc[n][3] = 0;
                if (KW == 32)
                    mma16832(pa0[0], pa1[0], pa0[4], pa1[4], pb[0], pb[4], cc[n]);
                else
                    mma16816(pa0[0], pa1[0], pb[0], cc[n]);
            }
            int sc[2];
            float wd[2], ad[NJ];
#pragma unroll
            for (int i = 0; i < 2; i++) {
                sc[i] = KQ ? st.wsc[wr + gq + 8 * i][h * (KW / 16)] : 0;
                wd[i] = KQ ? 0.0f : st.wd[wr + gq + 8 * i][h];
            }
#pragma unroll
            for (int j = 0; j < NJ; j++) ad[j] = KQ ? 0.0f : st.ad[wt + 8 * (j / 2) + 2 * qq + (j & 1)][h];
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < NJ; j++) {
                    int v = cc[j / 2][2 * i + (j & 1)];
                    if (KQ) {
                        isum[i][j] += sc[i] * v;
                    } else {
                        float d = __fmul_rn(wd[i], ad[j]);
                        acc[i][j] = __fadd_rn(acc[i][j], __fmul_rn(d, (float)v));
                    }
                }
        }
        if (KQ && (c & 1) == 1) {
            // Q4_K/Q5_K: the min term's integer sums msum = Σ_q min_q·bsum_q over the 8 groups.
            int msum[2][NJ];
            if (W::UNIT == 64) msum_mma(sp, wr, wt, gq, qq, msum);
            float sd[2], sdm[2];
#pragma unroll
            for (int i = 0; i < 2; i++) {
                int rr = wr + gq + 8 * i;
                sd[i] = sp.sd[rr];
                sdm[i] = W::UNIT == 64 ? sp.sdmin[rr] : 0.0f;
            }
#pragma unroll
            for (int j = 0; j < NJ; j++) {
                int tk = wt + 8 * (j / 2) + 2 * qq + (j & 1);
                float dk = sp.adk[tk];
#pragma unroll
                for (int i = 0; i < 2; i++) {
                    acc[i][j] = __fadd_rn(acc[i][j], __fmul_rn(__fmul_rn(sd[i], dk), (float)isum[i][j]));
                    isum[i][j] = 0;
                    if (W::UNIT == 64)  // Q4_K / Q5_K mins
                        acc[i][j] = __fsub_rn(acc[i][j], __fmul_rn(__fmul_rn(sdm[i], dk), (float)msum[i][j]));
                }
            }
        }
        cp_async_wait<0>();
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
