// matvec_batch.cu — the decode products of a batched step (several sequences, one new token
// each: `graphrun serve --parallel N` on the GPU, src/exec/cuda/batch.rs): the fused groups
// of matvec.cu over nb ≤ MATVEC_MAX_BATCH rows, every weight unit read once for all rows.
// Inputs are prepared by quantize.cu's prep with a grid layer per row (row b at b·K). Under
// q8 a lane decodes its unit of weights once (W::wload, quant.cuh) and dots it with each
// row's activations (W::aload, loaded once for the warp's rows; W::wdot); under f32
// semantics it calls W::f32 per row (the reference path: simple, not fast).
// The grid is at most one wave of CTAs, in one of two geometries (the host's choice of
// kernel): CTA tiles, the K split over KS warps that join their parts through shared
// memory (matvec_batch_impl, each CTA prefetching its next tile's weights into L2), or
// whole rows a warp (matvec_batch_whole_impl, q8 over 64-value units: the warp takes every
// part of the split itself, so warps never wait for each other; each prefetches its next
// rows). Either way the first weights go to L2 before the wait for the kernel before
// (grid_dep_enter, common.cuh: they do not depend on it): with programmatic launches the
// 1.5B's batched step at 8 rows gained 3.6% (evidence/h200/batched-argmax/).
// Under q8, when the nb rows fit (`stage`, the host's rule), each CTA first copies them to
// shared memory, unit-major with each unit's scales beside its values (ld_plane,
// quant.cuh), and reads them there (W::aload_t: one address a unit, row b at an immediate
// offset). Rows that take a whole warp sum its lanes by halving exchanges (batch_sum16),
// 16 shuffles for the 16 sums a lane holds; Q4_K/Q5_K whole rows keep their sums spread
// over the quads (batch_unit_spread, spread_sum).
//
// A row's sum runs over the same lanes, the same K split, the same shuffles and the same
// order of the split's parts as in matvec.cu (`matvec_grid` picks the split for both), so
// every row's result is the bits the single-row kernel gives for it alone: a sequence's
// logits do not depend on the batch.
// CPU reference: as matvec.cu (fuse_norm_gate_up, fuse_matmul_add, fuse_norm_matmul,
// fuse_qkv in src/sched; the ops in src/exec/interp/ops.rs).
#include "matvec.cuh"

#define MB MATVEC_MAX_BATCH

// Weight rows per lane group: MATVEC_BATCH_ROWS, one under the SwiGLU epilogue (two weight
// streams already; two rows would take 168 registers a thread, one CTA per SM on sm_90).
// The host mirrors it in src/codegen/catalogue.rs (matvec_batch_tile_rows).
template <int EPI> struct BatchRows { static constexpr int v = EPI == EPI_SWIGLU ? 1 : MATVEC_BATCH_ROWS; };

// Row b's prepared activations (prep's layout).
__device__ __forceinline__ Act act_row(const Act& a, int b, int K) {
    Act r;
    size_t o = (size_t)b * K;
    r.xf = a.xf + o;
    r.q0 = a.q0 + o;
    r.d0 = a.d0 + o / 32;
    r.qk = a.qk + o;
    r.dk = a.dk + o / 256;
    r.bs = a.bs + o / 16;
    return r;
}

// Dynamic shared memory (sized by the host, src/exec/cuda/groups.rs): the K-split partial
// sums of the CTA tiles, [warp][sum | up][lane group][row][b] floats (none in whole rows),
// then with `stage` the nb activation rows: CH + 1 planes (CH = UNIT / 16) of units × S
// slots × 16 bytes, S = nb | 1 (ld_plane in quant.cuh; the host's batch_matvec_smem).

// A warp's 16 sums a lane (SwiGLU: sum and up of 8 input rows; else 2 weight rows of 8),
// each over the 32 lanes, by halving exchanges: at the xor-16 step a lane keeps 8 of the
// sums and sends the other 8, at xor 8 it keeps 4, and so on, so lane l ends with sum
// (l >> 1) & 15 in 16 shuffles where a butterfly per sum takes 80. Each sum meets the same
// partners in the same order as in the butterfly (own value + partner's, xor 16, 8, 4, 2,
// 1), so its bits are the single-row kernel's.
// One halving step: the lanes whose bit log2(n)+1 is set keep sums n..2n-1 (into 0..n-1),
// the others keep 0..n-1; each adds its partner's copy (lane xor 2n) of the sums it keeps.
template <int N>
__device__ __forceinline__ void halve_sums(float (&v)[16], int lane) {
    const bool hi = (lane >> (N == 8 ? 4 : N == 4 ? 3 : N == 2 ? 2 : 1)) & 1;
#pragma unroll
    for (int j = 0; j < N; j++) {
        float send = hi ? v[j] : v[N + j], keep = hi ? v[N + j] : v[j];
        v[j] = keep + __shfl_xor_sync(0xffffffffu, send, 2 * N);
    }
}

// The end of the halving exchanges for lanes whose values come in runs of Q identical ones
// (KQuadAct, quant.cuh): after the xor-4 step a lane holds sums 2j, 2j + 1 (v[0], v[1]; j
// its lane bits 4..2); with Q = 4 its quad already agrees, so lane bit 1 picks one, else
// the xor-2 and xor-1 steps finish. Either way lane l ends with sum (l >> 1) & 15.
template <int Q>
__device__ __forceinline__ float halve_finish(float (&v)[16], int lane) {
    if constexpr (Q == 4) {
        return (lane & 2) ? v[1] : v[0];
    } else {
        halve_sums<1>(v, lane);
        return v[0] + __shfl_xor_sync(0xffffffffu, v[0], 1);
    }
}

template <int R, int EPI, int Q>
__device__ __forceinline__ float batch_sum16(const float (&acc)[R][MB], const float (&up)[R][MB], int lane) {
    static_assert((EPI == EPI_SWIGLU ? 2 : 1) * R * MB == 16, "16 sums a lane");
    float v[16];
#pragma unroll
    for (int b = 0; b < MB; b++)
#pragma unroll
        for (int p = 0; p < 2; p++) v[2 * b + p] = EPI == EPI_SWIGLU ? (p ? up[0][b] : acc[0][b]) : acc[p][b];
    halve_sums<8>(v, lane);
    halve_sums<4>(v, lane);
    halve_sums<2>(v, lane);
    return halve_finish<Q>(v, lane);
}

// The outputs of a warp whose rows take all 32 lanes, from batch_sum16's sums (`tot`, the K
// split's parts already added): 8 or 16 lanes write.
template <int R, int EPI>
__device__ __forceinline__ void batch_store16(const MatvecArgs& g, float tot, int lane, int r0, int valid) {
    const int j = (lane >> 1) & 15, b = j >> 1, p = j & 1;
    float* out = (float*)g.out;
    if (EPI == EPI_SWIGLU) {
        float u = __shfl_xor_sync(0xffffffffu, tot, 2);  // the up sum of the same input row
        if ((lane & 3) == 0 && b < g.nb && valid > 0) out[(size_t)b * g.rows + r0] = __fmul_rn(silu(tot), u);
    } else if ((lane & 1) == 0 && b < g.nb && p < valid) {
        size_t o = (size_t)b * g.rows + r0 + p;
        out[o] = EPI == EPI_ADD ? __fadd_rn(tot, ((const float*)g.extra)[o]) : tot;
    }
}

// The end of a CTA tile's rows that take a whole warp (L = 32), the K split over KS warps:
// each warp's sums by batch_sum16, then the split's parts through `part` by 16 lanes at
// once (ks 0 adds ks 1, 2, ... in order, as matvec.cu), and ks 0 writes.
template <int R, int EPI, int Q>
__device__ __forceinline__ void batch_tile_finish(const MatvecArgs& g, const float (&acc)[R][MB], const float (&up)[R][MB], int warp,
                                                  int lane, int KS, int ks, int r0, int valid, float* part) {
    float tot = batch_sum16<R, EPI, Q>(acc, up, lane);
    const int j = (lane >> 1) & 15;
    if (KS > 1) {
        if ((lane & 1) == 0) part[warp * 16 + j] = tot;
        __syncthreads();
        if (ks == 0)
            for (int k = 1; k < KS; k++) tot += part[(warp + k) * 16 + j];
        __syncthreads();
    }
    if (ks == 0) batch_store16<R, EPI>(g, tot, lane, r0, valid);
}

// The weight rows r0 .. r0 + R of both matrices (w2: SwiGLU's up, the same shape), as the
// index of each row's first block in its matrix (row · blocks a row; batch_wload adds the
// unit's block). Rows past the matrix read its last row (under q8 every row is computed,
// without a branch a unit; only the valid rows are written).
template <class W, int R>
__device__ __forceinline__ void batch_rows(const MatvecArgs& g, int r0, u32 (&rix)[R]) {
    const u32 bpr = blocks_a_row<W>(g.row_bytes);
#pragma unroll
    for (int r = 0; r < R; r++) rix[r] = (u32)min(r0 + r, g.rows - 1) * bpr;
}

// Row r of the matrix `w` (whose first block batch_rows found): under f32 semantics the
// types' f32 dots take a row pointer.
template <class W>
__device__ __forceinline__ const u8* batch_row(u64 w, u32 rix) {
    return (const u8*)w + (size_t)rix * W::BYTES;
}

// Chunk t of the staged rows (ld_plane's layout, quant.cuh): t runs over nb rows × units ×
// (CH + 1) chunks, CH = UNIT / 16; chunk i < CH of unit u of row b is 16 of its q8 values,
// chunk CH its scales (W::stage_scale). Returns the chunk and sets `at`, its byte offset in
// the staged planes (plane i, slot u·S + b, S = nb | 1).
template <class W>
__device__ __forceinline__ int4 stage_chunk(int K, int nb, const Act& a, int t, int& at) {
    constexpr int CH = W::UNIT / 16;
    const int units = K / W::UNIT, S = nb | 1, plane = units * S * 16, per_row = units * (CH + 1);
    const int b = t / per_row, c = t - b * per_row, u = c / (CH + 1), i = c - u * (CH + 1);
    const i8* src = NeedsK<W>::v ? a.qk : a.q0;
    at = i * plane + (u * S + b) * 16;
    return i < CH ? *(const int4*)(src + (size_t)b * K + u * W::UNIT + 16 * i) : W::stage_scale(act_row(a, b, K), u);
}

// Stages the nb rows of K q8 activations (stage_chunk's layout) into `sq`, each thread with
// MVB_STAGE_BATCH loads in flight, then syncs the CTA.
#define MVB_STAGE_BATCH 4
template <class W>
__device__ __forceinline__ void stage_rows(int K, int nb, const Act& a, i8* sq) {
    const int n = nb * (K / W::UNIT) * (W::UNIT / 16 + 1);
    for (int t0 = threadIdx.x; t0 < n; t0 += MVB_STAGE_BATCH * blockDim.x) {
        int4 v[MVB_STAGE_BATCH];
        int at[MVB_STAGE_BATCH];
#pragma unroll
        for (int k = 0; k < MVB_STAGE_BATCH; k++) {
            int t = t0 + k * blockDim.x;
            at[k] = -1;
            if (t < n) v[k] = stage_chunk<W>(K, nb, a, t, at[k]);
        }
#pragma unroll
        for (int k = 0; k < MVB_STAGE_BATCH; k++)
            if (at[k] >= 0) *(int4*)(sq + at[k]) = v[k];
    }
    __syncthreads();
}

// Unit u of the warp's R weight rows (and of SwiGLU's up rows), decoded once for all the
// input rows. A row's unit is found as matvec_tile finds it (matvec.cuh): its block's index
// in the matrix, (the row's first block + the unit's block) · BYTES, in 32 bits until the
// last product, and the unit's place in its block; the same bytes as a row pointer plus the
// unit's offset, with one 32-bit value live a row instead of a 64-bit pointer a matrix.
template <class W, int EPI, int R>
__device__ __forceinline__ void batch_wload(const MatvecArgs& g, const u32 (&rix)[R], int u, typename W::WU (&wg)[R],
                                            typename W::WU (&wu)[R]) {
    constexpr int UPB = UnitsPerBlock<W>::v;
    const u32 ub = (unsigned)u / (unsigned)UPB;
    const int uk = (unsigned)u % (unsigned)UPB;
#pragma unroll
    for (int r = 0; r < R; r++) {
        const size_t at = (size_t)(rix[r] + ub) * W::BYTES;
        wg[r] = W::wload((const u8*)g.w + at, uk);
        if (EPI == EPI_SWIGLU) wu[r] = W::wload((const u8*)g.w2 + at, uk);
    }
}

// The q8 sums of a warp's rows over this lane's units u0, u0 + step, ...: a unit of each
// weight row decoded once (W::wload) and dotted with each input row's activations.
// STAGED: the activations come from the staged rows `sq` (W::aload_t: one address a unit,
// row b 16·b bytes on), else from global memory (W::aload). Either way the same values,
// so every row's bits are unchanged.
template <class W, int EPI, int R, bool STAGED>
__device__ __forceinline__ void batch_units_q8(const MatvecArgs& g, const Act& a, const u32 (&rix)[R], int u0, int units, int step, const i8* sq, float (&acc)[R][MB],
                                               float (&up)[R][MB]) {
    const int nb = g.nb, K = g.K, S = nb | 1, plane = units * S * 16;
    for (int u = u0; u < units; u += step) {
        typename W::WU wg[R], wu[R];
        batch_wload<W, EPI, R>(g, rix, u, wg, wu);
        // Row b's activations: from the staged rows (shared memory: a lane's 64 bytes of a
        // Q4_K unit were 4 global loads touching 16 cache lines per warp, and those L1
        // wavefronts, 66% of the data pipe, bounded the 7B's SwiGLU matvec) or from global
        // memory.
        const i8* su = sq + u * S * 16;
        auto load = [&](int b) {
            if constexpr (STAGED)
                return W::aload_t(su + 16 * b, plane);
            else
                return W::aload(act_row(a, b, K), u);
        };
#pragma unroll
        for (int b = 0; b < MB; b++) {
            if (b >= nb) break;
            typename W::AU x = load(b);
#pragma unroll
            for (int r = 0; r < R; r++) {
                kq_add<W>(acc[r][b], wg[r], x);
                if (EPI == EPI_SWIGLU) kq_add<W>(up[r][b], wu[r], x);
            }
        }
    }
}

// ---- k-quant sums spread over the quad (Q4_K/Q5_K under q8, rows on all 32 lanes) ------
// A warp's 16 sums (i = 2b + p as batch_sum16: input row b; p the SwiGLU gate/up or the
// warp's second weight row) as kq_add's super-block terms, spread over each quad
// (quad_keep1, quad_keep2): lane l adds the terms of sums 4j + l % 4 (j = 0..3) into acc4[j], a
// quarter of kq_add's work. The same terms in the same order, so the same bits.

// One unit u of the warp's rows (weights decoded: wg, wu) against the nb input rows.
template <class W, int EPI, int R, bool STAGED>
__device__ __forceinline__ void batch_unit_spread(int nb, int K, const Act& a, const typename W::WU (&wg)[R], const typename W::WU (&wu)[R],
                                                  int u, int units, const i8* sq, float (&acc4)[4]) {
    static_assert((EPI == EPI_SWIGLU ? 2 : 1) * R == 2, "two sums an input row");
    const int S = nb | 1, plane = units * S * 16, me = threadIdx.x & 3;
    const typename W::WU& w0 = wg[0];
    const typename W::WU& w1 = EPI == EPI_SWIGLU ? wu[0] : wg[R - 1];
    const i8* su = sq + u * S * 16;
    // Input rows b = 2j, 2j + 1 at a time (few sums live): sums 2b, 2b + 1 (i = 2b + p)
    // through the quad's first exchange, then the pair's second; this lane keeps sum
    // 4j + me = input row 2j + (me >> 1), p = me & 1.
    const bool p1 = me & 1, bh = me >> 1;
#pragma unroll
    for (int j = 0; j < MB / 2; j++) {
        if (2 * j >= nb) break;  // no input row left (nb is the warp's: a uniform exit)
        int2 t[2];
        float dk[2];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int b = 2 * j + h;
            int2 s0 = make_int2(0, 0), s1 = s0;
            dk[h] = 0.0f;
            if (b < nb) {
                typename W::AU x;
                if constexpr (STAGED)
                    x = W::aload_t(su + 16 * b, plane);
                else
                    x = W::aload(act_row(a, b, K), u);
                s0 = W::wsums(w0, x);
                s1 = W::wsums(w1, x);
                dk[h] = x.dk;
            }
            t[h] = quad_keep1(s0, s1);
        }
        acc4[j] = W::sb_add(acc4[j], p1 ? w1.d : w0.d, p1 ? w1.dmin : w0.dmin, bh ? dk[1] : dk[0], quad_keep2(t[0], t[1]));
    }
}

// The spread index of lane l after spread_sum: sum 8·(l >> 4 & 1) + 4·(l >> 3 & 1) + l % 4.
__device__ __forceinline__ int spread_index(int lane) { return ((lane >> 3) << 2) | (lane & 3); }

// Each of the 16 sums over the 32 lanes, with the butterfly's partners and order (xor 16, 8,
// 4: own value + partner's; a quad already agrees): halving at xor 16 and 8, a plain add
// at 4. Lane l ends with sum spread_index(l) (lanes l and l ^ 4 alike).
__device__ __forceinline__ float spread_sum(const float (&acc4)[4], int lane) {
    const bool h4 = (lane >> 4) & 1, h3 = (lane >> 3) & 1;
    float v0 = (h4 ? acc4[2] : acc4[0]) + __shfl_xor_sync(0xffffffffu, h4 ? acc4[0] : acc4[2], 16);
    float v1 = (h4 ? acc4[3] : acc4[1]) + __shfl_xor_sync(0xffffffffu, h4 ? acc4[1] : acc4[3], 16);
    float v = (h3 ? v1 : v0) + __shfl_xor_sync(0xffffffffu, h3 ? v0 : v1, 8);
    return v + __shfl_xor_sync(0xffffffffu, v, 4);
}

// The outputs of a warp whose rows take all 32 lanes, from spread_sum (`tot`, the K split's
// parts already added): lane l holds sum i = spread_index(l) = 2b + p (input row b; p the
// SwiGLU up or the second weight row), as lane l ^ 4 does; lanes with bit 2 clear write.
template <int EPI>
__device__ __forceinline__ void batch_store_spread(const MatvecArgs& g, float tot, int lane, int r0, int valid) {
    const int i = spread_index(lane), b = i >> 1, p = i & 1;
    float* out = (float*)g.out;
    if (EPI == EPI_SWIGLU) {
        float u = __shfl_xor_sync(0xffffffffu, tot, 1);  // the up sum of the same input row
        if ((lane & 5) == 0 && b < g.nb && valid > 0) out[(size_t)b * g.rows + r0] = __fmul_rn(silu(tot), u);
    } else if ((lane & 4) == 0 && b < g.nb && p < valid) {
        size_t o = (size_t)b * g.rows + r0 + p;
        out[o] = EPI == EPI_ADD ? __fadd_rn(tot, ((const float*)g.extra)[o]) : tot;
    }
}

// One warp's rows: BatchRows rows, each row's sums for nb input rows. The warp takes every
// part of the K split itself, one after another: part ks is the units ks·32 + lane,
// ks·32 + lane + KS·32, ... (the units warp ks of a CTA takes in matvec.cu's tile), summed
// over the lanes alone, then added to the parts before it in order, as matvec.cu adds its
// warps' parts — so the same bits, with no barrier and no shared partial sums: the warps of
// a CTA never wait for each other. q8 only, and only for split rows on all 32 lanes (the
// host's rule, batch_matvec_whole: KS > 1, 32 lanes a row).
// `sq`: the staged activation rows, or null (read from global memory).
template <class W, int ACT, int EPI>
__device__ __forceinline__ void matvec_batch_warp(const MatvecArgs& g, const Act& a, int base, const i8* sq) {
    constexpr int R = BatchRows<EPI>::v;
    const int lane = threadIdx.x & 31, KS = g.ksplit, units = g.K / W::UNIT;
    const int valid = max(0, min(R, g.rows - base));
    u32 rix[R];
    batch_rows<W, R>(g, base, rix);
    float tot = 0.0f;
    if constexpr (KQuad<W>::v == 4) {
        // A k-quant: each part's sums spread over the quads (batch_unit_spread), summed
        // over the lanes by spread_sum (the butterfly's partners and order).
        const int nb = g.nb, K = g.K;
        for (int ks = 0; ks < KS; ks++) {
            float acc4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int u = ks * 32 + lane; u < units; u += KS * 32) {
                typename W::WU wg[R], wu[R];
                batch_wload<W, EPI, R>(g, rix, u, wg, wu);
                // A uniform choice: the staged and the global loop are separate code.
                if (sq)
                    batch_unit_spread<W, EPI, R, true>(nb, K, a, wg, wu, u, units, sq, acc4);
                else
                    batch_unit_spread<W, EPI, R, false>(nb, K, a, wg, wu, u, units, sq, acc4);
            }
            const float t = spread_sum(acc4, lane);
            tot = ks == 0 ? t : tot + t;
        }
        batch_store_spread<EPI>(g, tot, lane, base, valid);
        return;
    }
    for (int ks = 0; ks < KS; ks++) {
        float acc[R][MB], up[R][MB];
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int b = 0; b < MB; b++) acc[r][b] = up[r][b] = 0.0f;
        // A uniform choice: the staged and the global loop are separate code.
        if (sq)
            batch_units_q8<W, EPI, R, true>(g, a, rix, ks * 32 + lane, units, KS * 32, sq, acc, up);
        else
            batch_units_q8<W, EPI, R, false>(g, a, rix, ks * 32 + lane, units, KS * 32, sq, acc, up);
        float t = batch_sum16<R, EPI, KQuad<W>::v>(acc, up, lane);
        tot = ks == 0 ? t : tot + t;
    }
    batch_store16<R, EPI>(g, tot, lane, base, valid);
}

// One tile of BatchRows rows per lane group (the geometry of matvec_tile with that many
// rows per group), each row's sums for nb input rows. `sq`: the staged activation rows, or
// null (read from global memory).
template <class W, int ACT, int EPI>
__device__ __forceinline__ void matvec_batch_tile(const MatvecArgs& g, const Act& a, int base, float* part, const i8* sq) {
    constexpr int R = BatchRows<EPI>::v;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int KS = g.ksplit, set = warp / KS, ks = warp % KS;
    int units = g.K / W::UNIT, nb = g.nb;
    int L = lanes_per_row(units), groups = 32 / L;
    int li = lane % L, grp = lane / L;
    int r0 = base + set * R * groups + grp * R;
    int valid = max(0, min(R, g.rows - r0));
    float acc[R][MB], up[R][MB];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int b = 0; b < MB; b++) acc[r][b] = up[r][b] = 0.0f;
    u32 rix[R];
    batch_rows<W, R>(g, r0, rix);
    if constexpr (ACT == ACT_Q8) {
        // A uniform choice, made once: the staged and the global loop are separate code.
        if (sq)
            batch_units_q8<W, EPI, R, true>(g, a, rix, ks * L + li, units, KS * L, sq, acc, up);
        else
            batch_units_q8<W, EPI, R, false>(g, a, rix, ks * L + li, units, KS * L, sq, acc, up);
    } else {
        for (int u = ks * L + li; u < units; u += KS * L) {
#pragma unroll
            for (int r = 0; r < R; r++) {
                if (r >= valid) continue;
#pragma unroll
                for (int b = 0; b < MB; b++) {
                    if (b >= nb) continue;
                    const float* xs = act_row(a, b, g.K).xf;
                    acc[r][b] += W::f32(batch_row<W>(g.w, rix[r]), u, xs);
                    if (EPI == EPI_SWIGLU) up[r][b] += W::f32(batch_row<W>(g.w2, rix[r]), u, xs);
                }
            }
        }
    }
    if (L == 32) {
        batch_tile_finish<R, EPI, KQuadAct<W, ACT>::v>(g, acc, up, warp, lane, KS, ks, r0, valid, part);
        return;
    }
    // Rows of fewer than 32 lanes (small K): each group's sums by a butterfly (down to a
    // k-quant's quads, which agree: kq_add), lane 0 of the group finishes.
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int b = 0; b < MB; b++) {
            if (b >= nb) continue;
            acc[r][b] = group_sum<KQuadAct<W, ACT>::v>(acc[r][b], L);
            if (EPI == EPI_SWIGLU) up[r][b] = group_sum<KQuadAct<W, ACT>::v>(up[r][b], L);
        }
    if (KS > 1) {
        auto at = [&](int w, int which, int r, int b) { return ((w * 2 + which) * groups + grp) * R * MB + r * MB + b; };
        if (li == 0)
#pragma unroll
            for (int r = 0; r < R; r++)
#pragma unroll
                for (int b = 0; b < MB; b++) {
                    part[at(warp, 0, r, b)] = acc[r][b];
                    part[at(warp, 1, r, b)] = up[r][b];
                }
        __syncthreads();
        if (ks == 0 && li == 0)
#pragma unroll
            for (int r = 0; r < R; r++)
#pragma unroll
                for (int b = 0; b < MB; b++)
                    for (int k = 1; k < KS; k++) {
                        acc[r][b] += part[at(warp + k, 0, r, b)];
                        up[r][b] += part[at(warp + k, 1, r, b)];
                    }
        __syncthreads();
    }
    if (ks == 0 && li == 0)
#pragma unroll
        for (int r = 0; r < R; r++) {
            if (r >= valid) continue;
#pragma unroll
            for (int b = 0; b < MB; b++) {
                if (b >= nb) continue;
                size_t o = (size_t)b * g.rows + r0 + r;
                float* out = (float*)g.out;
                if (EPI == EPI_SWIGLU) {
                    out[o] = __fmul_rn(silu(acc[r][b]), up[r][b]);
                } else {
                    out[o] = EPI == EPI_ADD ? __fadd_rn(acc[r][b], ((const float*)g.extra)[o]) : acc[r][b];
                }
            }
        }
}

template <class W, int ACT, int EPI>
__device__ void matvec_batch_impl(const MatvecArgs& g) {
    extern __shared__ __align__(16) u8 mvb_smem[];
    constexpr int R = BatchRows<EPI>::v;
    const int groups = 32 / lanes_per_row(g.K / W::UNIT), rows_per_warp = R * groups;
    const int rows_per_cta = MATVEC_THREADS / 32 / g.ksplit * rows_per_warp, step = gridDim.x * rows_per_cta;
    // The CTA's first tile of weights to L2 before the wait (they do not depend on the
    // kernel before; common.cuh), its next tile's while it works on each (warp 0).
    if (threadIdx.x < 32) l2_prefetch_rows<EPI>(g, blockIdx.x * rows_per_cta, rows_per_cta);
    grid_dep_enter();
    float* part = (float*)mvb_smem;
    Act a = act_view(g.xf, g.q0, g.d0, g.qk, g.dk, g.bs);
    // With `stage` (q8 rows that fit; the host's rule) the CTA copies the nb activation
    // rows to shared memory once, for all its warps' rows: unit u's chunk i of row b to
    // plane i, slot u·S + b, and its scale chunk (W::stage_scale) to plane CH, each thread
    // with MVB_STAGE_BATCH loads in flight (stage_rows; the staging's registers are not
    // live in the loop below, so the tiles' 3 CTAs an SM stand).
    i8* sq = nullptr;
    if (ACT == ACT_Q8 && g.stage) {
        sq = (i8*)(mvb_smem + MATVEC_THREADS / 32 * 2 * groups * R * MB * sizeof(float));
        stage_rows<W>(g.K, g.nb, a, sq);
    }
    // The grid is at most one wave of CTAs (the host's, src/exec/cuda/groups.rs), looping
    // over CTA tiles: the CTA's warps split each row set's units KS ways.
    for (int base = blockIdx.x * rows_per_cta; base < g.rows; base += step) {
        if (threadIdx.x < 32) l2_prefetch_rows<EPI>(g, base + step, rows_per_cta);
        matvec_batch_tile<W, ACT, EPI>(g, a, base, part, sq);
    }
}

// The `MatvecBatchWhole` kernels (q8, 64-value units; the host's choice for split rows
// that fill the grid, batch_matvec_whole): the CTA stages the nb activation rows as
// matvec_batch_impl does (when they fit: `stage`), each thread with MVB_STAGE_BATCH loads in
// flight (stage_rows); then each warp takes BatchRows whole rows at a time
// (matvec_batch_warp), the grid's warps striding over the matrix, and prefetches its next
// rows' weights into L2 while it works on these (its first before the wait). No barrier
// after the staging, no shared partial sums. Rows too long for the host's staging rule
// are staged all the same when they fit the device's shared memory a CTA, by CTAs of
// MATVEC_WIDE_THREADS (one an SM, as many warps as two of MATVEC_THREADS; the host's
// batch_matvec_wide): the 7B's Q4_K down at 8 rows took 76.3 µs reading them from global
// memory, 57.2 staged (evidence/h200/batched-wide/).

template <class W, int ACT, int EPI>
__device__ void matvec_batch_whole_impl(const MatvecArgs& g) {
    static_assert(ACT == ACT_Q8 && W::UNIT == 64, "whole rows: q8 over 64-value units");
    extern __shared__ __align__(16) u8 mvb_smem[];
    constexpr int rows_per_warp = BatchRows<EPI>::v;
    const int nwarps = blockDim.x >> 5, step = gridDim.x * nwarps * rows_per_warp;
    const int first = (blockIdx.x * nwarps + (threadIdx.x >> 5)) * rows_per_warp;
    // Each warp's first rows of weights to L2 before the wait (as matvec_batch_impl's
    // tiles), its next rows' while it works on each.
    l2_prefetch_rows<EPI>(g, first, rows_per_warp);
    grid_dep_enter();
    Act a = act_view(g.xf, g.q0, g.d0, g.qk, g.dk, g.bs);
    i8* sq = nullptr;
    if (g.stage) {
        sq = (i8*)mvb_smem;
        stage_rows<W>(g.K, g.nb, a, sq);
    }
    for (int base = first; base < g.rows; base += step) {
        l2_prefetch_rows<EPI>(g, base + step, rows_per_warp);
        matvec_batch_warp<W, ACT, EPI>(g, a, base, sq);
    }
}

// pair_dot (matvec.cuh) for nb input rows: the two weight rows' sums per input row, this
// lane's part of them (the caller sums the lanes: qkv_batch_impl). STAGED: the activations
// from the staged rows `sq` (stage_rows' layout for W), else from global memory; the same
// values either way.
template <class W, int ACT, bool STAGED>
__device__ __forceinline__ void pair_dot_batch(const u8* ra, const u8* rb, int K, const Act& a, int nb, const i8* sq, float ya[MB],
                                               float yb[MB]) {
    int lane = threadIdx.x & 31;
    const int units = K / W::UNIT, S = nb | 1, plane = units * S * 16;
#pragma unroll
    for (int b = 0; b < MB; b++) ya[b] = yb[b] = 0.0f;
    for (int u = lane; u < units; u += 32) {
        if constexpr (ACT == ACT_Q8) {
            typename W::WU wa = W::wload(ra, u), wb = W::wload(rb, u);
            const i8* su = sq + u * S * 16;
#pragma unroll
            for (int b = 0; b < MB; b++) {
                if (b >= nb) continue;
                typename W::AU x;
                if constexpr (STAGED)
                    x = W::aload_t(su + 16 * b, plane);
                else
                    x = W::aload(act_row(a, b, K), u);
                kq_add<W>(ya[b], wa, x);
                kq_add<W>(yb[b], wb, x);
            }
        } else {
#pragma unroll
            for (int b = 0; b < MB; b++) {
                if (b >= nb) continue;
                const float* xs = act_row(a, b, K).xf;
                ya[b] += W::f32(ra, u, xs);
                yb[b] += W::f32(rb, u, xs);
            }
        }
    }
}

// An item's two rows against the nb input rows: input row b's sums y0, y1 (RoPE pair) in
// the lanes where `fin` is set, one lane a row. A k-quant under q8 is spread over the quads
// (batch_unit_spread, two weight rows); other types take pair_dot_batch and the 16 sums'
// halving exchanges (batch_sum16's, warp_sum's partners and order, so pair_dot's bits).
// Rows from which a batched k-quant Q/K/V item spreads its sums over the quads: from 2
// now that batch_unit_spread stops at the last input row (7B at 2 rows, Nsight: Q/K/V
// 16.6 -> 14.7 µs; before that stop the spread lost at 2 rows, evidence/h200/batched-mma-sb/).
#define QKV_SPREAD_MIN_ROWS 2
template <class W, int ACT, bool STAGED>
__device__ __forceinline__ void qkv_item_sums(const u8* ra, const u8* rb, int K, const Act& a, int nb, const i8* sq, int lane, float& y0,
                                              float& y1, int& b, bool& fin) {
    if constexpr (ACT == ACT_Q8 && KQuad<W>::v == 4) {
        if (nb >= QKV_SPREAD_MIN_ROWS) {
            float acc4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            const int units = K / W::UNIT;
            for (int u = lane; u < units; u += 32) {
                const typename W::WU wr[2] = {W::wload(ra, u), W::wload(rb, u)};
                batch_unit_spread<W, EPI_NONE, 2, STAGED>(nb, K, a, wr, wr, u, units, sq, acc4);
            }
            y0 = spread_sum(acc4, lane);
            y1 = __shfl_xor_sync(0xffffffffu, y0, 1);
            b = spread_index(lane) >> 1;
            fin = (lane & 5) == 0;
            return;
        }
    }
    {
        float ya[MB], yb[MB];
        pair_dot_batch<W, ACT, STAGED>(ra, rb, K, a, nb, sq, ya, yb);
        // Lane l ends with sum (l >> 1) & 15 = row b's y0 or y1, and lane 4b finishes input
        // row b with y1 from lane 4b + 2.
        float v[16];
#pragma unroll
        for (int i = 0; i < MB; i++) {
            v[2 * i] = ya[i];
            v[2 * i + 1] = yb[i];
        }
        halve_sums<8>(v, lane);
        halve_sums<4>(v, lane);
        halve_sums<2>(v, lane);
        y0 = halve_finish<KQuadAct<W, ACT>::v>(v, lane);
        y1 = __shfl_xor_sync(0xffffffffu, y0, 2);
        b = lane >> 2;
        fin = (lane & 3) == 0;
    }
}

// Whether two weight types are one (their staged activations share a layout).
template <class A, class B> struct SameW { static constexpr bool v = false; };
template <class A> struct SameW<A, A> { static constexpr bool v = true; };

// The fused attention input for nb rows: row b at position seq[b][0], its K and V to cache
// row seq[b][1] + seq[b][0] (its slot), its Q to row b of q_out. With `stage` (q8 rows that
// fit; the host's rule) the CTA first stages the nb activation rows in WQK's layout
// (stage_rows) and the Q and K rows read them there, V's too when it has Q's type (else V
// reads global memory); the grid is then at most one wave, its warps looping over the items.
template <class WQK, class WV, int ACT, class KV>
__device__ void qkv_batch_impl(const QkvArgs& g) {
    extern __shared__ __align__(16) u8 mvb_smem[];
    Act a = act_view(g.xf, g.q0, g.d0, g.qk, g.dk, g.bs);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
    const int* seq = (const int*)g.seq;
    const i8* sq = nullptr;
    if (ACT == ACT_Q8 && g.stage) {
        stage_rows<WQK>(g.K, g.nb, a, (i8*)mvb_smem);
        sq = (const i8*)mvb_smem;
    }
    for (int it = blockIdx.x * nwarps + warp; it < qkv_items(g); it += gridDim.x * nwarps) {
        QkvItem q = qkv_item(g, it);
        int rb;
        const u8* w = qkv_weights(g, q.which, rb);
        const u8 *r0 = w + (size_t)q.r0 * rb, *r1 = w + (size_t)q.r1 * rb;
        float y0, y1;
        int b;
        bool fin;
        // Uniform choices: the staged and the global loops are separate code.
        if (q.which == 2) {
            if (SameW<WQK, WV>::v && sq)
                qkv_item_sums<WV, ACT, true>(r0, r1, g.K, a, g.nb, sq, lane, y0, y1, b, fin);
            else
                qkv_item_sums<WV, ACT, false>(r0, r1, g.K, a, g.nb, sq, lane, y0, y1, b, fin);
        } else if (sq) {
            qkv_item_sums<WQK, ACT, true>(r0, r1, g.K, a, g.nb, sq, lane, y0, y1, b, fin);
        } else {
            qkv_item_sums<WQK, ACT, false>(r0, r1, g.K, a, g.nb, sq, lane, y0, y1, b, fin);
        }
        // Bias, RoPE and the store of input row b, 8 rows in parallel.
        if (fin && b < g.nb) {
            int pos = seq[2 * b];
            qkv_store<KV>(g, q, y0, y1, pos, seq[2 * b + 1] + pos, b);
        }
    }
}

// ---- Batched rows on tensor cores: `MatvecBatchMma` (Q4_K / Q5_K under q8) -------------
// A warp's tile is 16 weight rows (SwiGLU: 8 gate rows and the same 8 up rows) × the 8
// input rows (zero past nb). For each 32-value group of a super-block one mma.sync
// m16n8k32 (s8) gives the group's integer dot for every (weight row, input row): exact,
// the sums the single-row kernel's dp4a take. Each thread holds 4 of the tile's 128
// outputs (weight rows g, g + 8 × input rows 2q, 2q + 1; g = lane / 4, q = lane % 4) and
// forms, for each super-block, the same integer isum (Σ scale × group dot) and msum
// (Σ min × block sums, by dp2a) as kq_add's quad, then adds the same sb_add term.
// The order is the single-row kernel's (kq_add, quant.cuh): the K split's part ks of a row
// of L lanes takes super-blocks NQ·(ks + KS·m) + s, NQ = L / 4 quads; quad s sums its
// super-blocks in m order, the quads meet in the butterfly (offsets L/2 .. 4: slot s with
// s ^ NQ/2, then s ^ NQ/4, ...) and the parts are added in order. Here slot s is register
// acc[s], the butterfly is written out (mma_slots_sum) and the parts are summed by warp ks
// = 0 of the tile through shared memory, as the CTA tiles do. So every row's bits are the
// single-row kernel's.
// The CTA first stages the nb activation rows in shared memory by super-block
// (MMA_SB_BYTES each): the 8 groups × 8 rows × 32 q8 values ([group][row][value]: a
// warp's loads of one group are 256 contiguous bytes), each row's 8 group block sums (the
// Q8_K sums of 16 values, paired, as int16) and its dk, with several loads in flight a
// thread (mma_stage); each warp then loads a super-block's weights MMA_AHEAD ahead of the
// one it sums (mma_wload, mma_superblock). The host takes this kernel for
// q8 Q4_K/Q5_K from `matvec_mma_min_rows` rows (SwiGLU 4, the others 5) to 8 when the
// staged rows fit the device (batch_matvec_mma, src/codegen/catalogue.rs).
#define MMA_SB_Q8 (8 * 8 * 32)
#define MMA_SB_BYTES (MMA_SB_Q8 + 8 * 16 + 8 * 4)

// Stages super-blocks of the nb activation rows (the layout above), then syncs the CTA.
// Each thread has MMA_STAGE_BATCH 16-byte loads in flight (loads first, then the stores):
// with one at a time, the 7B's Q4_K down at 8 rows (74 super-blocks a row, 37 loads a
// thread) waited for 37 round trips to L2 one after another before its first MMA; with 8
// and its weights loaded a super-block ahead (MMA_AHEAD, below), 52.5 -> 34.1 µs (Nsight,
// evidence/h200/batched-mma-ahead/; the two were not measured apart).
#define MMA_STAGE_BATCH 8
__device__ __forceinline__ void mma_stage(const MatvecArgs& g, const Act& a, u8* st) {
    const int nsb = g.K / 256, nb = g.nb, K = g.K, n = nsb * 128;
    for (int t0 = threadIdx.x; t0 < n; t0 += MMA_STAGE_BATCH * blockDim.x) {
        int4 v[MMA_STAGE_BATCH];
#pragma unroll
        for (int k = 0; k < MMA_STAGE_BATCH; k++) {
            // c: 16-byte chunk of row r's 256 values of super-block sb
            const int t = t0 + k * blockDim.x, sb = t >> 7, r = (t >> 4) & 7, c = t & 15;
            v[k] = make_int4(0, 0, 0, 0);
            if (t < n && r < nb) v[k] = *(const int4*)(a.qk + (size_t)r * K + sb * 256 + c * 16);
        }
#pragma unroll
        for (int k = 0; k < MMA_STAGE_BATCH; k++) {
            const int t = t0 + k * blockDim.x, sb = t >> 7, r = (t >> 4) & 7, c = t & 15;
            if (t < n) *(int4*)(st + sb * MMA_SB_BYTES + ((c >> 1) * 8 + r) * 32 + (c & 1) * 16) = v[k];
        }
    }
    for (int t = threadIdx.x; t < nsb * 8; t += blockDim.x) {
        const int sb = t >> 3, n = t & 7;
        u32 w[4] = {0, 0, 0, 0};
        float dk = 0.0f;
        if (n < nb) {
            const int* bs = a.bs + (size_t)n * (K / 16) + sb * 16;
#pragma unroll
            for (int j = 0; j < 8; j += 2) {
                int s0 = bs[2 * j] + bs[2 * j + 1], s1 = bs[2 * j + 2] + bs[2 * j + 3];
                w[j / 2] = (u32)(s0 & 0xFFFF) | ((u32)s1 << 16);
            }
            dk = a.dk[(size_t)n * (K / 256) + sb];
        }
        u8* p = st + sb * MMA_SB_BYTES + MMA_SB_Q8;
        *(uint4*)(p + n * 16) = make_uint4(w[0], w[1], w[2], w[3]);
        *(float*)(p + 128 + n * 4) = dk;
    }
    __syncthreads();
}

// Group j's 4 weight values for the MMA from a word of 4 quant bytes (low nibbles: even
// groups, high: odd) and, for Q5_K, the word of their high-bit bytes (bit j).
template <class W>
__device__ __forceinline__ int mma_vals(u32 q, u32 qh, int j) {
    u32 v = ((j & 1) ? (q >> 4) : q) & 0x0F0F0F0Fu;
    if (W::QS == 48) v |= ((qh >> j) & 0x01010101u) << 4;
    return (int)v;
}

// Byte i (0..3) of a packed word.
__device__ __forceinline__ int byte_of(u32 w, int i) { return (int)((w >> (8 * i)) & 0xFF); }

// This thread's part of one super-block of the tile's weights: rows pa, pb's block heads
// (d, dmin, scales) and the quant bytes of its MMA fragments.
struct MmaWeights {
    uint4 ha, hb;
    uint2 qa[4], qb[4], qha, qhb;
};
template <class W>
__device__ __forceinline__ MmaWeights mma_wload(const u8* pa, const u8* pb, int q4) {
    MmaWeights m;
    m.ha = *(const uint4*)pa;
    m.hb = *(const uint4*)pb;
#pragma unroll
    for (int p = 0; p < 4; p++) {
        m.qa[p] = *(const uint2*)(pa + W::QS + 32 * p + 8 * q4);
        m.qb[p] = *(const uint2*)(pb + W::QS + 32 * p + 8 * q4);
    }
    m.qha = m.qhb = make_uint2(0, 0);
    if (W::QS == 48) {
        m.qha = *(const uint2*)(pa + 16 + 8 * q4);
        m.qhb = *(const uint2*)(pb + 16 + 8 * q4);
    }
    return m;
}

// Scales and mins of groups 0..3 (sc0, m0) and 4..7 (sc1, m1), 4 to a word, from a block
// head h (d and dmin, then the 12 scale bytes: scale_pair_w's unpacking).
__device__ __forceinline__ void mma_scales(uint4 h, u32& sc0, u32& m0, u32& sc1, u32& m1) {
    sc0 = h.y & 0x3F3F3F3Fu;
    m0 = h.z & 0x3F3F3F3Fu;
    sc1 = (h.w & 0x0F0F0F0Fu) | ((h.y >> 2) & 0x30303030u);
    m1 = ((h.w >> 4) & 0x0F0F0F0Fu) | ((h.z >> 2) & 0x30303030u);
}

// One super-block of the tile: this thread's weights `m` (mma_wload), the staged
// activations `st` (this super-block's), into the thread's 4 outputs' slot `acc`.
template <class W>
__device__ __forceinline__ void mma_superblock(const MmaWeights& m, const u8* st, int gq, int q4, float (&acc)[4]) {
    const uint4 ha = m.ha, hb = m.hb;
    const uint2 *qa = m.qa, *qb = m.qb, qha = m.qha, qhb = m.qhb;
    u32 scA0, mA0, scA1, mA1, scB0, mB0, scB1, mB1;
    mma_scales(ha, scA0, mA0, scA1, mA1);
    mma_scales(hb, scB0, mB0, scB1, mB1);
    int isum[4] = {0, 0, 0, 0};
#pragma unroll
    for (int j = 0; j < 8; j++) {
        const int p = j >> 1;
        const uint2 bv = *(const uint2*)(st + (j * 8 + gq) * 32 + 8 * q4);
        int c[4] = {0, 0, 0, 0};
        mma16832(mma_vals<W>(qa[p].x, qha.x, j), mma_vals<W>(qb[p].x, qhb.x, j), mma_vals<W>(qa[p].y, qha.y, j),
                 mma_vals<W>(qb[p].y, qhb.y, j), (int)bv.x, (int)bv.y, c);
        const int sa = byte_of(j < 4 ? scA0 : scA1, j & 3), sb = byte_of(j < 4 ? scB0 : scB1, j & 3);
        isum[0] += sa * c[0];
        isum[1] += sa * c[1];
        isum[2] += sb * c[2];
        isum[3] += sb * c[3];
    }
    // msum per (row, input row): Σ min_j × bsum_j, the bsums as int16 pairs (dp2a).
    const uint4 b0 = *(const uint4*)(st + MMA_SB_Q8 + (2 * q4) * 16), b1 = *(const uint4*)(st + MMA_SB_Q8 + (2 * q4 + 1) * 16);
    const float2 dk = *(const float2*)(st + MMA_SB_Q8 + 128 + 8 * q4);
    auto msum = [](uint4 b, u32 m0, u32 m1) {
        int s = __dp2a_lo((int)b.x, (int)m0, 0);
        s = __dp2a_hi((int)b.y, (int)m0, s);
        s = __dp2a_lo((int)b.z, (int)m1, s);
        return __dp2a_hi((int)b.w, (int)m1, s);
    };
    const float dA = f16_to_f32((u16)(ha.x & 0xFFFF)), dminA = f16_to_f32((u16)(ha.x >> 16));
    const float dB = f16_to_f32((u16)(hb.x & 0xFFFF)), dminB = f16_to_f32((u16)(hb.x >> 16));
    acc[0] = W::sb_add(acc[0], dA, dminA, dk.x, make_int2(isum[0], msum(b0, mA0, mA1)));
    acc[1] = W::sb_add(acc[1], dA, dminA, dk.y, make_int2(isum[1], msum(b1, mA0, mA1)));
    acc[2] = W::sb_add(acc[2], dB, dminB, dk.x, make_int2(isum[2], msum(b0, mB0, mB1)));
    acc[3] = W::sb_add(acc[3], dB, dminB, dk.y, make_int2(isum[3], msum(b1, mB0, mB1)));
}

// The butterfly over the NQ slots of kq_add's quads (group_sum's offsets L/2 .. 4 on quad
// s: partner s ^ NQ/2 first), written out: each level adds slot s's partner to slot s.
__device__ __forceinline__ float mma_slots_sum(const float (&a)[8], int NQ) {
    if (NQ == 8) return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
    if (NQ == 4) return (a[0] + a[2]) + (a[1] + a[3]);
    if (NQ == 2) return a[0] + a[1];
    return a[0];
}

// Super-blocks whose weights a warp has in flight ahead of the one it sums. One (123
// registers for SwiGLU, whose two CTAs an SM stand; 159 for the others): the 7B's gate+up at
// 8 rows 48.7 -> 45.1 µs (Nsight), its 8 streams 2,020 tok/s where only the plain and
// residual tiles loaded ahead gave 1,968 (the old kernels 1,861-1,872 in both calls). Two
// for the plain and residual tiles (214 registers) lost: the 7B's down 38.6 µs where one
// took 34.1-36.2, 8 streams 1,971 (evidence/h200/batched-mma-ahead/).
#define MMA_AHEAD 1

// The super-block d ≤ D places after super-block s of a warp's chunk sb0 (its chunks are
// NQ super-blocks, NQ·KS apart: matvec_batch_mma_impl's loop), clamped to the last one, so
// the loads ahead stay in bounds past the warp's end (their values unused).
template <int D>
__device__ __forceinline__ int mma_ahead_sb(int sb0, int s, int d, int NQ, int KS, int nsb) {
    int c = 0;  // chunks crossed
#pragma unroll
    for (int k = 1; k <= D; k++) c += s + d >= k * NQ;
    return min(sb0 + c * NQ * KS + s + d - c * NQ, nsb - 1);
}

template <class W, int EPI>
__device__ void matvec_batch_mma_impl(const MatvecArgs& g) {
    static_assert(W::UNIT == 64 && W::QK == 256, "Q4_K / Q5_K");
    extern __shared__ __align__(16) u8 mvb_smem[];
    constexpr int TR = EPI == EPI_SWIGLU ? 8 : 16;  // matrix rows a tile covers
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gq = lane >> 2, q4 = lane & 3;
    const int KS = g.ksplit, nsb = g.K / 256, NQ = lanes_per_row(g.K / 64) / 4;
    const int per_cta = (blockDim.x >> 5) / KS, ntiles = (g.rows + TR - 1) / TR;
    // The CTA's first tiles' weights to L2 before the wait (they do not depend on the
    // kernel before), its next tiles' while it works on these (warp 0).
    if (threadIdx.x < 32) l2_prefetch_rows<EPI>(g, blockIdx.x * per_cta * TR, per_cta * TR);
    grid_dep_enter();
    Act a = act_view(g.xf, g.q0, g.d0, g.qk, g.dk, g.bs);
    mma_stage(g, a, mvb_smem);
    float* part = (float*)(mvb_smem + nsb * MMA_SB_BYTES);
    const int ks = warp % KS;
    for (int t0 = blockIdx.x * per_cta; t0 < ntiles; t0 += gridDim.x * per_cta) {
        if (threadIdx.x < 32) l2_prefetch_rows<EPI>(g, (t0 + gridDim.x * per_cta) * TR, per_cta * TR);
        const int tile = t0 + warp / KS, r0 = tile * TR;
        float tot[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        if (tile < ntiles) {
            // Rows ra and rb by their first block's index (batch_rows' addressing): super-block
            // sb of row ra is block ia + sb of the matrix, in 32 bits until the last product.
            const u32 bpr = blocks_a_row<W>(g.row_bytes);
            const u32 ia = (u32)min(r0 + gq, g.rows - 1) * bpr;
            const u32 ib = (u32)min(r0 + gq + (EPI == EPI_SWIGLU ? 0 : 8), g.rows - 1) * bpr;
            const u8* wa = (const u8*)g.w;
            const u8* wb = (const u8*)(EPI == EPI_SWIGLU ? g.w2 : g.w);
            float acc[8][4];
#pragma unroll
            for (int s = 0; s < 8; s++)
#pragma unroll
                for (int o = 0; o < 4; o++) acc[s][o] = 0.0f;
            // MMA_AHEAD super-blocks' weights in flight ahead of the one being summed.
            constexpr int D = MMA_AHEAD;
            MmaWeights m[D + 1];
#pragma unroll
            for (int d = 0; d < D; d++) {
                const int sb = mma_ahead_sb<D>(NQ * ks, 0, d, NQ, KS, nsb);
                m[d] = mma_wload<W>(wa + (size_t)(ia + sb) * W::BYTES, wb + (size_t)(ib + sb) * W::BYTES, q4);
            }
            for (int sb0 = NQ * ks; sb0 < nsb; sb0 += NQ * KS) {
#pragma unroll
                for (int s = 0; s < 8; s++) {
                    const int sb = sb0 + s;
                    if (s >= NQ || sb >= nsb) break;
                    const int nx = mma_ahead_sb<D>(sb0, s, D, NQ, KS, nsb);
                    m[D] = mma_wload<W>(wa + (size_t)(ia + nx) * W::BYTES, wb + (size_t)(ib + nx) * W::BYTES, q4);
                    mma_superblock<W>(m[0], mvb_smem + sb * MMA_SB_BYTES, gq, q4, acc[s]);
#pragma unroll
                    for (int d = 0; d < D; d++) m[d] = m[d + 1];
                }
            }
#pragma unroll
            for (int o = 0; o < 4; o++) {
                float v[8];
#pragma unroll
                for (int s = 0; s < 8; s++) v[s] = acc[s][o];
                tot[o] = mma_slots_sum(v, NQ);
            }
        }
        // The K split's parts: warp ks of the tile leaves its 4 sums a lane, warp 0 of the
        // tile adds parts 1, 2, ... in order (as the CTA tiles and the single-row kernel).
        if (KS > 1) {
#pragma unroll
            for (int o = 0; o < 4; o++) part[(warp * 32 + lane) * 4 + o] = tot[o];
            __syncthreads();
            if (ks == 0)
                for (int k = 1; k < KS; k++)
#pragma unroll
                    for (int o = 0; o < 4; o++) tot[o] += part[((warp + k) * 32 + lane) * 4 + o];
            __syncthreads();
        }
        if (ks == 0 && tile < ntiles) {
            float* out = (float*)g.out;
#pragma unroll
            for (int c = 0; c < 2; c++) {
                const int b = 2 * q4 + c;
                if (b >= g.nb) continue;
                if (EPI == EPI_SWIGLU) {
                    const int r = r0 + gq;
                    if (r < g.rows) out[(size_t)b * g.rows + r] = __fmul_rn(silu(tot[c]), tot[2 + c]);
                } else {
#pragma unroll
                    for (int h = 0; h < 2; h++) {
                        const int r = r0 + gq + 8 * h;
                        if (r >= g.rows) continue;
                        const size_t o = (size_t)b * g.rows + r;
                        out[o] = EPI == EPI_ADD ? __fadd_rn(tot[2 * h + c], ((const float*)g.extra)[o]) : tot[2 * h + c];
                    }
                }
            }
        }
    }
}
