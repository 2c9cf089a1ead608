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
// 16 shuffles for the 16 sums a lane holds.
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

template <int R, int EPI>
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
    halve_sums<1>(v, lane);
    return v[0] + __shfl_xor_sync(0xffffffffu, v[0], 1);
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
template <int R, int EPI>
__device__ __forceinline__ void batch_tile_finish(const MatvecArgs& g, const float (&acc)[R][MB], const float (&up)[R][MB], int warp,
                                                  int lane, int KS, int ks, int r0, int valid, float* part) {
    float tot = batch_sum16<R, EPI>(acc, up, lane);
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

// The weight rows r0 .. r0 + R of both matrices (w2: SwiGLU's up). Rows past the matrix
// read its last row (under q8 every row is computed, without a branch a unit; only the
// valid rows are written).
template <int R>
__device__ __forceinline__ void batch_rows(const MatvecArgs& g, int r0, const u8* (&rows1)[R], const u8* (&rows2)[R]) {
#pragma unroll
    for (int r = 0; r < R; r++) {
        size_t row = (size_t)min(r0 + r, g.rows - 1);
        rows1[r] = (const u8*)g.w + row * g.row_bytes;
        rows2[r] = (const u8*)g.w2 + row * g.row_bytes;
    }
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

// The q8 sums of a warp's rows over this lane's units u0, u0 + step, ...: a unit of each
// weight row decoded once (W::wload) and dotted with each input row's activations.
// STAGED: the activations come from the staged rows `sq` (W::aload_t: one address a unit,
// row b 16·b bytes on), else from global memory (W::aload). Either way the same values,
// so every row's bits are unchanged.
template <class W, int EPI, int R, bool STAGED>
__device__ __forceinline__ void batch_units_q8(const MatvecArgs& g, const Act& a, const u8* const (&rows1)[R], const u8* const (&rows2)[R],
                                               int u0, int units, int step, const i8* sq, float (&acc)[R][MB],
                                               float (&up)[R][MB]) {
    const int nb = g.nb, K = g.K, S = nb | 1, plane = units * S * 16;
    for (int u = u0; u < units; u += step) {
        typename W::WU wg[R], wu[R];
#pragma unroll
        for (int r = 0; r < R; r++) {
            wg[r] = W::wload(rows1[r], u);
            if (EPI == EPI_SWIGLU) wu[r] = W::wload(rows2[r], u);
        }
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
                acc[r][b] += W::wdot(wg[r], x);
                if (EPI == EPI_SWIGLU) up[r][b] += W::wdot(wu[r], x);
            }
        }
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
    const u8* rows1[R];
    const u8* rows2[R];
    batch_rows<R>(g, base, rows1, rows2);
    float tot = 0.0f;
    for (int ks = 0; ks < KS; ks++) {
        float acc[R][MB], up[R][MB];
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int b = 0; b < MB; b++) acc[r][b] = up[r][b] = 0.0f;
        // A uniform choice: the staged and the global loop are separate code.
        if (sq)
            batch_units_q8<W, EPI, R, true>(g, a, rows1, rows2, ks * 32 + lane, units, KS * 32, sq, acc, up);
        else
            batch_units_q8<W, EPI, R, false>(g, a, rows1, rows2, ks * 32 + lane, units, KS * 32, sq, acc, up);
        float t = batch_sum16<R, EPI>(acc, up, lane);
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
    const u8* rows1[R];
    const u8* rows2[R];
    batch_rows<R>(g, r0, rows1, rows2);
    if constexpr (ACT == ACT_Q8) {
        // A uniform choice, made once: the staged and the global loop are separate code.
        if (sq)
            batch_units_q8<W, EPI, R, true>(g, a, rows1, rows2, ks * L + li, units, KS * L, sq, acc, up);
        else
            batch_units_q8<W, EPI, R, false>(g, a, rows1, rows2, ks * L + li, units, KS * L, sq, acc, up);
    } else {
        for (int u = ks * L + li; u < units; u += KS * L) {
#pragma unroll
            for (int r = 0; r < R; r++) {
                if (r >= valid) continue;
#pragma unroll
                for (int b = 0; b < MB; b++) {
                    if (b >= nb) continue;
                    const float* xs = act_row(a, b, g.K).xf;
                    acc[r][b] += W::f32(rows1[r], u, xs);
                    if (EPI == EPI_SWIGLU) up[r][b] += W::f32(rows2[r], u, xs);
                }
            }
        }
    }
    if (L == 32) {
        batch_tile_finish<R, EPI>(g, acc, up, warp, lane, KS, ks, r0, valid, part);
        return;
    }
    // Rows of fewer than 32 lanes (small K): each group's sums by a butterfly, lane 0 of
    // the group finishes.
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int b = 0; b < MB; b++) {
            if (b >= nb) continue;
            for (int o = L / 2; o > 0; o >>= 1) {
                acc[r][b] += __shfl_xor_sync(0xffffffffu, acc[r][b], o);
                if (EPI == EPI_SWIGLU) up[r][b] += __shfl_xor_sync(0xffffffffu, up[r][b], o);
            }
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
    // plane i, slot u·S + b, and its scale chunk (W::stage_scale) to plane CH. One load in
    // flight a thread, not stage_rows' four: that was measured in the whole-row kernels only
    // (the tiles run at 3 CTAs per SM, where registers are tight).
    i8* sq = nullptr;
    if (ACT == ACT_Q8 && g.stage) {
        sq = (i8*)(mvb_smem + MATVEC_THREADS / 32 * 2 * groups * R * MB * sizeof(float));
        const int n = g.nb * (g.K / W::UNIT) * (W::UNIT / 16 + 1);
        for (int t = threadIdx.x; t < n; t += blockDim.x) {
            int at;
            int4 v = stage_chunk<W>(g.K, g.nb, a, t, at);
            *(int4*)(sq + at) = v;
        }
        __syncthreads();
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
                ya[b] += W::wdot(wa, x);
                yb[b] += W::wdot(wb, x);
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
        float y0[MB], y1[MB];
        // Uniform choices: the staged and the global loops are separate code.
        if (q.which == 2) {
            if (SameW<WQK, WV>::v && sq)
                pair_dot_batch<WV, ACT, true>(r0, r1, g.K, a, g.nb, sq, y0, y1);
            else
                pair_dot_batch<WV, ACT, false>(r0, r1, g.K, a, g.nb, sq, y0, y1);
        } else if (sq) {
            pair_dot_batch<WQK, ACT, true>(r0, r1, g.K, a, g.nb, sq, y0, y1);
        } else {
            pair_dot_batch<WQK, ACT, false>(r0, r1, g.K, a, g.nb, sq, y0, y1);
        }
        // The 16 sums over the warp by halving exchanges (as batch_sum16; warp_sum's
        // partners and order, so pair_dot's bits): lane l ends with sum (l >> 1) & 15 =
        // row b's y0 or y1, and lane 4b finishes input row b (bias, RoPE, store) with y1
        // from lane 4b + 2, 8 rows in parallel where lane 0 did them one after another.
        float v[16];
#pragma unroll
        for (int b = 0; b < MB; b++) {
            v[2 * b] = y0[b];
            v[2 * b + 1] = y1[b];
        }
        halve_sums<8>(v, lane);
        halve_sums<4>(v, lane);
        halve_sums<2>(v, lane);
        halve_sums<1>(v, lane);
        float tot = v[0] + __shfl_xor_sync(0xffffffffu, v[0], 1);
        float second = __shfl_xor_sync(0xffffffffu, tot, 2);
        int b = lane >> 2;
        if ((lane & 3) == 0 && b < g.nb) {
            int pos = seq[2 * b];
            qkv_store<KV>(g, q, tot, second, pos, seq[2 * b + 1] + pos, b);
        }
    }
}
