// mmq.cu — prefill matmul under q8 semantics as a tiled integer GEMM on the tensor cores: a
// CTA of 8 warps (256 threads) computes an MM_BM × MM_BN = 64 (weight rows) × 128 (tokens)
// tile, stepping through K in chunks of MM_CH = 128 (launch constants from
// src/codegen/catalogue.rs, #defined in the generated args.cuh; the scheduler picks this
// kernel only when K is a multiple of MM_CH). The weight blocks' raw bytes arrive in shared
// memory by cp.async a unit ahead (MmqRaw) and each chunk's are unpacked once from there as
// int8 (with their scales); the quantized activations (from quantize.cu) are staged beside
// them by cp.async, and each warp takes 16 rows × 64 tokens with MM_NT = 8 s8 MMAs per step
// of K, its fragments loaded by ldmatrix: m16n8k32 over a 32-weight group, or m16n8k16 over
// a 16-weight half for Q6_K, whose scales are per 16 weights. Per block
// the (exact) integer sums are combined with the scales as the CPU reference does
// (src/quant/dot.rs, `legacy` and `kquant`): legacy types `acc += (d_w·d_a)·sumi` per
// 32-block, k-quants `acc += (d·d_a)·isum; acc −= (dmin·d_a)·msum` per super-block, in block
// order — so the result is bit-identical to the interpreter's.
#include "quant.cuh"

#define MM_PAD 16
// Bytes per staged row: the 16-byte pad puts the 8 rows of an ldmatrix in distinct banks.
#define MM_ROW (MM_CH + MM_PAD)
// Each of the 8 warps takes 16 weight rows × 64 tokens: MM_NT 8-token MMA columns.
#define MM_NT 8

// One stage of staged operands: a K chunk of weights and activations with their scales.
// Two stages alternate (the next chunk is unpacked while the current one is multiplied);
// super-block data (mins, d/dmin, bsums, d_a) spans two chunks and alternates per
// super-block.
struct MmqStage {
    i8 w[MM_BM][MM_ROW];
    i8 a[MM_BN][MM_ROW];
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
// The raw weight bytes of one unit per row, copied by cp.async one unit ahead of their
// unpacking: a k-quant super-block (two chunks) or a legacy chunk's 4 blocks, by 16-byte
// copies. Q4_K/Q5_K blocks (144/176 bytes) are 16-byte aligned; the others are only 2-byte
// aligned (even block sizes in a 256-byte-aligned allocation), and come as the aligned
// 16-byte words around them: a Q6_K super-block starts at most 14 bytes into its first word,
// so it spans at most 14 words (224 bytes). The copies may read up to 15 bytes before a unit
// and after it, inside the tensor's allocation and its 64 bytes of padding (upload.rs).
// Rows of MM_RAW bytes keep 16-byte alignment for the copies and the k-quants' 16-byte loads.
#define MM_RAW 224
struct MmqRaw {
    u8 b[MM_BM][MM_RAW];
};
struct MmqSmem {
    MmqStage st[2];
    MmqSuper sb[2];
    MmqRaw raw[2];
};
// The host launches with exactly this much dynamic shared memory (catalogue.rs).
static_assert(sizeof(MmqSmem) == MMQ_SMEM_BYTES, "update MMQ_SMEM_BYTES in src/codegen/catalogue.rs");

// Unpacks 32 weights into dst, with scales: group j (0..7) of the k-quant super-block at p,
// or the legacy block at p (j = 0). p points into the staged raw bytes (MmqRaw).
template <class W> struct Unpack;

template <> struct Unpack<TQ4_0> {
    static __device__ void run(const u8* p, int j, i8* dst, MmqStage& s, MmqSuper& sp, int r, int gq) {
        int w[8];
        TQ4_0::vals(p, w);
        for (int m = 0; m < 8; m++) *(int*)(dst + 4 * m) = w[m];
        s.wd[r][gq] = f16_to_f32(ld16(p));
    }
};
template <> struct Unpack<TQ5_0> {
    static __device__ void run(const u8* p, int j, i8* dst, MmqStage& s, MmqSuper& sp, int r, int gq) {
        int w[8];
        TQ5_0::vals(p, w);
        for (int m = 0; m < 8; m++) *(int*)(dst + 4 * m) = w[m];
        s.wd[r][gq] = f16_to_f32(ld16(p));
    }
};
template <> struct Unpack<TQ8_0> {
    static __device__ void run(const u8* p, int j, i8* dst, MmqStage& s, MmqSuper& sp, int r, int gq) {
        u32 w[8];
        ld_words_a2<8>(p + 2, w);
        for (int m = 0; m < 8; m++) *(u32*)(dst + 4 * m) = w[m];
        s.wd[r][gq] = f16_to_f32(ld16(p));
    }
};
template <bool FIVE> struct Unpack<TQ45_K<FIVE>> {
    static __device__ void run(const u8* p, int j, i8* dst, MmqStage& s, MmqSuper& sp, int r, int gq) {
        typedef TQ45_K<FIVE> T;
        int k = j / 2;
        u32 lo[8], hi[8];
        T::vals(p, k, lo, hi);
        for (int m = 0; m < 8; m++) *(u32*)(dst + 4 * m) = (j & 1) ? hi[m] : lo[m];
        // Group j's scale and min alone (scale_pair decodes two groups, with branches).
        int sc, mn;
        T::scale_one(p, j, sc, mn);
        s.wsc[r][2 * gq] = sc;
        s.wsc[r][2 * gq + 1] = sc;
        sp.wmin[r][j] = (u8)mn;
        if (j == 0) {
            sp.sd[r] = f16_to_f32(ld16(p));
            sp.sdmin[r] = f16_to_f32(ld16(p + 2));
        }
    }
};
template <> struct Unpack<TQ6_K> {
    static __device__ void run(const u8* p, int j, i8* dst, MmqStage& s, MmqSuper& sp, int r, int gq) {
        u32 q[8];
        TQ6_K::vals(p, j, q);
        for (int m = 0; m < 8; m++) *(u32*)(dst + 4 * m) = __vsub4(q[m], 0x20202020u);  // q − 32
        int2 sc = TQ6_K::scales(p, j);
        s.wsc[r][2 * gq] = sc.x;
        s.wsc[r][2 * gq + 1] = sc.y;
        if (j == 0) sp.sd[r] = f16_to_f32(ld16(p + 208));
    }
};

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

// Up to three matrices of one type over the same input in one launch (prefill Q, K, V):
// blockIdx.x walks w's row tiles, then w2's, then w3's. The CTA's matrix and first row.
// A gate/up pair (PAIR: kernels mmq_pair_*, w the gate and w2 up) is one matrix of
// interleaved rows instead: a CTA takes MM_BM / 2 output rows from r0, and tile row l is
// row r0 + 8(l / 16) + l % 8 of the gate (l % 16 < 8) or of up (l % 16 >= 8), so the
// accumulator rows g and g + 8 of an MMA fragment hold the gate's and up's products for
// the same output and token, and the SwiGLU is applied in registers.
struct MmqMatrix {
    const u8* w;
    float* out;
    int rows, r0;
};
template <bool PAIR>
__device__ __forceinline__ MmqMatrix mmq_matrix(const MmqArgs& g, int bx) {
    if (PAIR) return {(const u8*)g.w, (float*)g.out, g.rows, bx * (MM_BM / 2)};
    const int n0 = (g.rows + MM_BM - 1) / MM_BM;
    if (bx < n0) return {(const u8*)g.w, (float*)g.out, g.rows, bx * MM_BM};
    bx -= n0;
    const int n1 = (g.rows2 + MM_BM - 1) / MM_BM;
    if (bx < n1) return {(const u8*)g.w2, (float*)g.out2, g.rows2, bx * MM_BM};
    return {(const u8*)g.w3, (float*)g.out3, g.rows3, (bx - n1) * MM_BM};
}

// bx: the CTA's tile index as mmq_matrix reads it (blockIdx.x but in a mixed launch). MIXED:
// the CTA is one of the third matrix's (V) in a mixed-type launch (mmq_mixed_impl): its rows
// are g.row_bytes3 bytes apart.
template <class W, bool PAIR, bool MIXED = false>
__device__ void mmq_body(const MmqArgs& g, int bx) {
    extern __shared__ __align__(16) u8 mmq_smem[];  // sizeof(MmqSmem), set by the host
    MmqSmem& s = *(MmqSmem*)mmq_smem;
    constexpr bool KQ = W::QK == 256;
    // Q6_K (the only k-quant with 32-weight units) has a scale per 16 weights; every other
    // type one per 32 (k-quant group or legacy block).
    constexpr int KW = (KQ && W::UNIT == 32) ? 16 : 32;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const MmqMatrix mat = mmq_matrix<PAIR>(g, bx);
    const int r0 = mat.r0, t0 = blockIdx.y * MM_BN;
    // Warp tile: 16 weight rows (wr) × 64 tokens (wt, MM_NT 8-token MMA columns).
    const int wr = (warp & 3) * 16, wt = (warp >> 2) * (8 * MM_NT);
    const int gq = lane >> 2, qq = lane & 3;
    // ldmatrix row addresses of this lane in stage 0 (stage 1 is sizeof(MmqStage) further):
    // lanes 8i..8i+7 address matrix i. A: rows wr + 8(i & 1) + lane % 8 at byte 16(i / 2) of a
    // 32-byte K step, so the registers are a0..a3 of m16n8k32 (rows g, g+8 at k 0..15, then
    // at k 16..31). B, per pair of 8-token columns: tokens wt + 8(i / 2) + lane % 8 at byte
    // 16(i & 1), so the registers are b0, b1 of the first column, then of the second
    // (st.a follows st.w).
    const u32 sbase = smem_addr(&s.st[0]);
    const u32 a_off = (u32)((wr + 8 * ((lane >> 3) & 1) + (lane & 7)) * MM_ROW + 16 * (lane >> 4));
    const u32 b_off = (u32)(MM_BM * MM_ROW + (wt + 8 * (lane >> 4) + (lane & 7)) * MM_ROW + 16 * ((lane >> 3) & 1));
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
    // Staging runs one chunk ahead of the multiplication, and the raw weight bytes one unit
    // ahead of their unpacking, so no load is waited for in the iteration that issues it:
    // iteration c issues the cp.async copies of chunk c+1's activations (and scales) and of
    // the raw unit that starts at chunk c+2, loads chunk c+1's bsums into registers,
    // multiplies chunk c, then unpacks chunk c+1's weights from the raw unit (landed in
    // iteration c−1) and stores the bsums; the copies are waited for at its end.
    constexpr int CPU = KQ ? 2 : 1;                       // chunks per raw unit
    constexpr int UB = KQ ? W::BYTES : 4 * W::BYTES;      // raw bytes per unit and row
    static_assert(UB + (W::BYTES % 16 == 0 ? 0 : 14) <= MM_RAW, "a raw unit must fit an MmqRaw row");
    const int sr = tid / 4, gi = tid % 4;                 // staging: row sr, part gi
    // A pair's tile row sr is gate or up row r0 + 8(sr / 16) + sr % 8 (see mmq_matrix).
    const int wrr = PAIR ? r0 + 8 * (sr >> 4) + (sr & 7) : r0 + sr;
    const u8* wrow = (PAIR && (sr & 8) ? (const u8*)g.w2 : mat.w) + (size_t)min(wrr, mat.rows - 1) * (MIXED ? g.row_bytes3 : g.row_bytes);
    // Where unit u's bytes start in row sr of its raw buffer: 0, or their offset from the
    // aligned 16-byte word the copies start at.
    auto raw_at = [&](int u) -> const u8* {
        int off = W::BYTES % 16 == 0 ? 0 : (int)((size_t)(wrow + (size_t)u * UB) & 15);
        return &s.raw[u & 1].b[sr][off];
    };
    // The copies' destinations: for the pair, legacy-type and Q6_K kernels, 32-bit
    // shared-space addresses (the buffer's base plus constant byte offsets inside MmqSmem), so
    // no generic 64-bit pointer is formed and converted per copy (ptxas: 5-8% fewer
    // instructions in their K loop); mmq_q4_k and mmq_q5_k keep generic pointers, with which
    // they spill less (mmq_q4_k's loop: 5 local loads against 12). Measured in
    // evidence/h200/prefill-vs-llama-cpp: every kernel flat (call 4) lost 1% on the 1.5B's
    // pp512; this split without Q6_K (call 5, on an H100) gained 1.3% on the 7B and 0.9-1.5%
    // on the 1.5B; Q6_K joined it with the 16-byte copies of its raw units
    // (evidence/h200/mmq-q6k-copies). The two branches below are kept as written: folding them
    // into one helper changed the code ptxas made for 10 of the 12 kernels.
    constexpr bool FLAT = PAIR || !KQ || W::UNIT == 32;
    const u32 s0 = smem_addr(mmq_smem);
    auto off_of = [&](const void* p) -> u32 { return (u32)((const u8*)p - mmq_smem); };
    auto issue_raw = [&](int c) {
        if (c % CPU != 0 || c >= nch) return;
        const int u = c / CPU;
        const u8* src = wrow + (size_t)u * UB;
        if constexpr (FLAT) {
            const u32 dst = s0 + off_of(&s.raw[0].b[0][0]) + (u32)(u & 1) * (u32)sizeof(MmqRaw) + (u32)(sr * MM_RAW);
            if (W::BYTES % 16 == 0) {
#pragma unroll
                for (int w = gi; w < UB / 16; w += 4) cp_async16_at(dst + 16 * w, src + 16 * w, 16);
            } else {
                const u8* a = (const u8*)((size_t)src & ~(size_t)15);
                const int nw = (int)(src - a + UB + 15) / 16;
                for (int w = gi; w < nw; w += 4) cp_async16_at(dst + 16 * w, a + 16 * w, 16);
            }
        } else {
            u8* dst = s.raw[u & 1].b[sr];
            if (W::BYTES % 16 == 0) {
#pragma unroll
                for (int w = gi; w < UB / 16; w += 4) cp_async16(dst + 16 * w, src + 16 * w, 16);
            } else {
                const u8* a = (const u8*)((size_t)src & ~(size_t)15);
                const int nw = (int)(src - a + UB + 15) / 16;
                for (int w = gi; w < nw; w += 4) cp_async16(dst + 16 * w, a + 16 * w, 16);
            }
        }
    };
    // Chunk c's activations (rows t0 + sr and t0 + sr + 64 of the tile) and their scales.
    auto issue_act = [&](int c) {
        const u32 sto = (u32)(c & 1) * (u32)sizeof(MmqStage), spo = (u32)((c >> 1) & 1) * (u32)sizeof(MmqSuper);
        MmqStage& st = s.st[c & 1];
        MmqSuper& sp = s.sb[(c >> 1) & 1];
#pragma unroll
        for (int half = 0; half < 2; half++) {
            int rt = sr + 64 * half;
            int t = min(t0 + rt, g.T - 1);
            // 32-bit offsets (T·K < 2^31, checked by the host): fewer 64-bit addresses live
            // through the loop.
            const i8* src = (const i8*)(KQ ? g.qk : g.q0) + (u32)(t * g.K + c * MM_CH + gi * 32);
            const float* d0 = (const float*)g.d0 + (u32)(t * (g.K / 32) + c * 4 + gi);
            const float* dk = (const float*)g.dk + (u32)(t * (g.K / 256) + c / 2);
            const bool sb_first = KQ && (c & 1) == 0 && gi == 0;  // the super-block's d_a
            if constexpr (FLAT) {
                const u32 a = s0 + off_of(&s.st[0].a[0][0]) + sto + (u32)(rt * MM_ROW + gi * 32);
                cp_async16_at(a, src, 16);
                cp_async16_at(a + 16, src + 16, 16);
                if (!KQ) cp_async4_at(s0 + off_of(&s.st[0].ad[0][0]) + sto + (u32)(rt * 16 + gi * 4), d0);
                if (sb_first) cp_async4_at(s0 + off_of(&s.sb[0].adk[0]) + spo + (u32)(rt * 4), dk);
            } else {
                cp_async16(&st.a[rt][gi * 32], src, 16);
                cp_async16(&st.a[rt][gi * 32 + 16], src + 16, 16);
                if (!KQ) cp_async4(&st.ad[rt][gi], d0);
                if (sb_first) cp_async4(&sp.adk[rt], dk);
            }
        }
    };
    // The Q8_K bsums chunk c's super-block needs (loaded at its first chunk), 4 per token row.
    int4 bsr[2];
    auto load_bsums = [&](int c) {
        if (!KQ || (c & 1) != 0) return;
#pragma unroll
        for (int half = 0; half < 2; half++) {
            int t = min(t0 + sr + 64 * half, g.T - 1);
            bsr[half] = *(const int4*)((const int*)g.bs + (u32)(t * (g.K / 16) + (c / 2) * 16 + gi * 4));
        }
    };
    auto store_bsums = [&](int c) {
        if (!KQ || (c & 1) != 0) return;
        MmqSuper& sp = s.sb[(c >> 1) & 1];
#pragma unroll
        for (int half = 0; half < 2; half++) {
            int rt = sr + 64 * half;
            int s0 = bsr[half].x + bsr[half].y, s1 = bsr[half].z + bsr[half].w;
            sp.absl[rt][2 * gi] = (i8)(s0 & 127);
            sp.absh[rt][2 * gi] = (i8)(s0 >> 7);
            sp.absl[rt][2 * gi + 1] = (i8)(s1 & 127);
            sp.absh[rt][2 * gi + 1] = (i8)(s1 >> 7);
        }
    };
    // Chunk c's weights, group gi of row sr, from its raw unit.
    auto unpack = [&](int c) {
        MmqStage& st = s.st[c & 1];
        const u8* p = raw_at(c / CPU);
        if (KQ)
            Unpack<W>::run(p, (c & 1) * 4 + gi, &st.w[sr][gi * 32], st, s.sb[(c >> 1) & 1], sr, gi);
        else
            Unpack<W>::run(p + gi * W::BYTES, 0, &st.w[sr][gi * 32], st, s.sb[(c >> 1) & 1], sr, gi);
    };
    issue_raw(0);
    issue_raw(1);
    issue_act(0);
    load_bsums(0);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    unpack(0);
    store_bsums(0);
    __syncthreads();
    for (int c = 0; c < nch; c++) {
        const bool next = c + 1 < nch;
        if (next) {
            issue_act(c + 1);
            load_bsums(c + 1);
        }
        issue_raw(c + 2);
        cp_async_commit();  // this iteration's copies form one group, waited for at its end
        const MmqStage& st = s.st[c & 1];
        const MmqSuper& sp = s.sb[(c >> 1) & 1];
        const u32 sbuf = sbase + (c & 1) * (u32)sizeof(MmqStage);
        // Adds one 8-token MMA column's integer sums (cc, tile n, K step h of KW weights) to
        // the outputs with the step's scales: `isum += sc·v` (k-quants) or
        // `acc += (d_w·d_a)·v` (legacy), output j = 2n + e of row i.
        auto scale_add = [&](int h, int n, const int cc[4]) {
#pragma unroll
            for (int i = 0; i < 2; i++) {
                const int r = wr + gq + 8 * i;
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int v = cc[2 * i + e];
                    if (KQ) {
                        isum[i][2 * n + e] += st.wsc[r][h * (KW / 16)] * v;
                    } else {
                        float d = __fmul_rn(st.wd[r][h], st.ad[wt + 8 * n + 2 * qq + e][h]);
                        acc[i][2 * n + e] = __fadd_rn(acc[i][2 * n + e], __fmul_rn(d, (float)v));
                    }
                }
            }
        };
        // 32 bytes of K per step: one ldmatrix.x4 gives the warp's 16-row A fragments (a
        // m16n8k32 operand, or two m16n8k16 ones for the two 16-weight halves of Q6_K), one
        // per pair of 8-token columns their B fragments.
#pragma unroll
        for (int s32 = 0; s32 < MM_CH / 32; s32++) {
            u32 af[4];
            ldsm4(sbuf + a_off + 32 * s32, af);
#pragma unroll
            for (int p = 0; p < MM_NT / 2; p++) {
                u32 bf[4];
                ldsm4(sbuf + b_off + p * 16 * MM_ROW + 32 * s32, bf);
                if (KW == 32) {
#pragma unroll
                    for (int u = 0; u < 2; u++) {
                        int cc[4] = {0, 0, 0, 0};
                        mma16832(af[0], af[1], af[2], af[3], bf[2 * u], bf[2 * u + 1], cc);
                        scale_add(s32, 2 * p + u, cc);
                    }
                } else {
#pragma unroll
                    for (int hh = 0; hh < 2; hh++)
#pragma unroll
                        for (int u = 0; u < 2; u++) {
                            int cc[4] = {0, 0, 0, 0};
                            mma16816(af[2 * hh], af[2 * hh + 1], bf[2 * u + hh], cc);
                            scale_add(2 * s32 + hh, 2 * p + u, cc);
                        }
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
        if (next) {
            unpack(c + 1);
            store_bsums(c + 1);
        }
        cp_async_wait<0>();
        __syncthreads();
    }
    // The output matrix again (recomputed: not held in registers through the loop).
    const MmqMatrix om = mmq_matrix<PAIR>(g, bx);
    const int rows = om.rows;
    float* out = om.out;
    if (PAIR) {
        // The SwiGLU of a gate/up pair: acc[0] holds the gate's products and acc[1] up's for
        // output row r; the interpreter's silu of the gate's value times up's (one f32 mul).
        const int r = r0 + wr / 2 + gq;
#pragma unroll
        for (int j = 0; j < NJ; j++) {
            int t = t0 + wt + 8 * (j / 2) + 2 * qq + (j & 1);
            if (r < rows && t < g.T) out[(size_t)t * rows + r] = __fmul_rn(silu(acc[0][j]), acc[1][j]);
        }
        return;
    }
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < NJ; j++) {
            int r = r0 + wr + gq + 8 * i, t = t0 + wt + 8 * (j / 2) + 2 * qq + (j & 1);
            if (r < rows && t < g.T) {
                const size_t o = (size_t)t * rows + r;
                // The residual epilogue of a fused matmul + add group: the interpreter's add
                // of the two f32 values (one rounding; out may be resid itself).
                float v = acc[i][j];
                if (g.resid) v = __fadd_rn(v, ((const float*)g.resid)[o]);
                out[o] = v;
            }
        }
}

template <class W, bool PAIR>
__device__ void mmq_impl(const MmqArgs& g) {
    mmq_body<W, PAIR>(g, blockIdx.x);
}

// Q and K (w, w2: type W) with a V of another type V3 of the same activation format (w3), one
// launch (kernels mmq_*_v_*), each CTA running the kernel of its matrix's type. V's tiles come
// first in the grid: with one wave and a little more of tiles (the 7B's 288 for 264 resident
// CTAs), the tiles left for the tail are then Q's, not the slower type's. The CTAs share
// nothing, so each output is the same bits as a launch of its type alone.
template <class W, class V3>
__device__ void mmq_mixed_impl(const MmqArgs& g) {
    static_assert(W::QK == V3::QK, "mixed matrices share their activations' format");
    const int n01 = (g.rows + MM_BM - 1) / MM_BM + (g.rows2 + MM_BM - 1) / MM_BM;
    const int n3 = (g.rows3 + MM_BM - 1) / MM_BM;
    const int b = blockIdx.x;
    if (b < n3)
        mmq_body<V3, false, true>(g, n01 + b);  // mmq_matrix: w3's tile b
    else
        mmq_body<W, false>(g, b - n3);
}
