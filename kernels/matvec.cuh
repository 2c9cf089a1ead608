// matvec.cuh — the decode matrix-vector product and the fused Q/K/V work item, as device
// templates shared by the per-group kernels (matvec.cu: one launch per fused group, grids
// of CTAs looping over row tiles) and the persistent decode kernel (persistent.cu: each CTA
// takes a contiguous range of the same tiles). The input was prepared (RMSNorm-ed when the
// group has the norm prologue; quantized to Q8_0/Q8_K exactly as the CPU does under q8
// semantics; under f32 without a norm prologue the multi-kernel path reads the node input
// itself) into global memory (prep kernel) or shared memory (persistent kernel); `Act`
// points at it. Lanes stride over a row's units; a row with few units shares a warp with
// other rows; each lane group keeps several rows' weight streams in flight; lane 0 of a
// group (of the first warp of a K split) applies the epilogue.
// CPU reference: src/exec/interp/ops.rs (matmul, bias_add, add, silu, mul, rope; the
// KV-cache write of kv_append, src/exec/interp/mod.rs).
#pragma once
#include "quant.cuh"

__device__ __forceinline__ Act act_view(u64 xf, u64 q0, u64 d0, u64 qk, u64 dk, u64 bs) {
    Act a;
    a.xf = (const float*)xf;
    a.q0 = (const i8*)q0;
    a.d0 = (const float*)d0;
    a.qk = (const i8*)qk;
    a.dk = (const float*)dk;
    a.bs = (const int*)bs;
    return a;
}

// Two rows at once (both weight streams in flight), each summed over the warp. Under q8
// semantics a k-quant's two rows are loaded before either is summed: kq_add's quad exchanges
// (Q4_K/Q5_K) would otherwise hold row B's loads back until row A's had arrived (ptxas
// kept the source's order: loads after the shuffles), two round trips a unit where one
// suffices. Q6_K's sum has no exchange; it takes the same order because the 7B's group with
// a Q6_K V gained most with it (10.2 -> 9.4 us against 8.8 -> 8.6 for Q4_K V; not measured
// apart). evidence/h100/qkv-order/.
template <class W, int ACT>
__device__ __forceinline__ void pair_dot(const u8* ra, const u8* rb, int K, const Act& a, float& ya, float& yb) {
    int lane = threadIdx.x & 31;
    float acc0 = 0.0f, acc1 = 0.0f;
    for (int u = lane; u < K / W::UNIT; u += 32) {
        if constexpr (ACT == ACT_Q8) {
            if constexpr (KQuad<W>::v == 4 || IsQ6K<W>::v) {
                const typename W::WU w0 = W::wload(ra, u), w1 = W::wload(rb, u);
                const typename W::AU x = W::aload(a, u);  // once for both rows (W::q8 per row loaded it twice)
                kq_add<W>(acc0, w0, x);
                kq_add<W>(acc1, w1, x);
            } else {
                // The legacy types' sums have no exchange between the rows to overlap, and
                // loading both first measured slower (0.5B preset's Q5_0 Q/K/V: tg128 -0.7%, H100).
                const typename W::AU x = W::aload(a, u);
                kq_add<W>(acc0, W::wload(ra, u), x);
                kq_add<W>(acc1, W::wload(rb, u), x);
            }
        } else {
            acc0 += W::f32(ra, u, a.xf);
            acc1 += W::f32(rb, u, a.xf);
        }
    }
    ya = group_sum<KQuadAct<W, ACT>::v>(acc0, 32);
    yb = group_sum<KQuadAct<W, ACT>::v>(acc1, 32);
}

// Rows per lane group by weight type (bounded by the registers a unit's values take).
template <class W> struct RowsPerWarp { static constexpr int v = W::UNIT >= 128 ? 2 : 4; };

// Lanes that share one row: the smallest power of two >= the row's units (a row of few
// units leaves no lanes idle: 32/L rows are worked on side by side). The host mirrors this
// in src/codegen/catalogue.rs (matvec_lanes, matvec_tile_rows).
__device__ __forceinline__ int lanes_per_row(int units) {
    int l = 32;
    while (l > 1 && l / 2 >= units) l /= 2;
    return l;
}

// Shared-memory floats of the K-split partial sums (`part` of matvec_tile).
#define MATVEC_PART_FLOATS (MATVEC_THREADS / 32 * 2 * 4 * 32)

// Rows of one tile: what one CTA iteration covers.
template <class W>
__device__ __forceinline__ int matvec_tile_rows(int K, int KS) {
    return (MATVEC_THREADS / 32 / KS) * RowsPerWarp<W>::v * (32 / lanes_per_row(K / W::UNIT));
}

// Weight rows base .. base + n (clipped to the matrix) of w, and of w2 under SwiGLU, into
// L2 (l2_prefetch_range, common.cuh), by the calling warp: a decode matvec's next rows, or
// its first before the wait (the weights do not depend on the kernel before).
template <int EPI>
__device__ __forceinline__ void l2_prefetch_rows(const MatvecArgs& g, int base, int n) {
    if (base < g.rows) {
        size_t at = (size_t)base * g.row_bytes, len = (size_t)min(n, g.rows - base) * g.row_bytes;
        l2_prefetch_range((const u8*)g.w + at, len);
        if (EPI == EPI_SWIGLU) l2_prefetch_range((const u8*)g.w2 + at, len);
    }
}

// matvec_tile's Q4_K/Q5_K SwiGLU under q8 semantics, the rows spread over each quad: per
// unit, every lane dots its unit with the group's R = 4 gate and 4 up rows (exact integer
// sums), and two halving exchanges (quad_keep1 over gate/up, quad_keep2 over rows 2j and
// 2j + 1) leave lane t of the quad the whole super-block's sums of one (row 2j + bit 1 of
// t, gate or up by bit 0) for j = 0, 1, to which it adds that super-block's term (sb_add).
// So a lane keeps 2 running sums where kq_add keeps all 8 on every lane, each being the
// value kq_add's quad holds for that row: the same terms in the same order, the same
// butterfly (offsets L/2 .. 4 pair lane t of one quad with lane t of another) and the same
// K-split join, so the same bits as every other kernel's row (kq_add's comment).
template <class W>
__device__ __forceinline__ void matvec_tile_kq_swiglu(const MatvecArgs& g, const Act& a, int base, float* part) {
    constexpr int R = RowsPerWarp<W>::v;
    static_assert(R == 4, "two rows of gate and up a quad exchange, twice");
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int KS = g.ksplit, set = warp / KS, ks = warp % KS;
    int units = g.K / W::UNIT;
    int L = lanes_per_row(units), groups = 32 / L;
    int li = lane % L, grp = lane / L;
    const bool b0 = lane & 1, b1 = (lane >> 1) & 1;
    const u8* wg = (const u8*)g.w;
    const u8* wu = (const u8*)g.w2;
    float* out = (float*)g.out;
    int r0 = base + set * R * groups + grp * R;
    int valid = max(0, min(R, g.rows - r0));
    // Row r's super-block: the lane's block of row r0 plus r row strides, the up matrix's at
    // a fixed distance (few live address registers, however many rows are in flight).
    const int u0 = ks * L + li, stride = KS * L;
    const u8* blk = wg + (size_t)r0 * g.row_bytes + (size_t)((unsigned)u0 / 4u) * W::BYTES;
    const long long to_up = wu - wg;
    const int k4 = (unsigned)u0 % 4u, step = (unsigned)stride / 4u * W::BYTES;
    float acc[2] = {0.0f, 0.0f};
    for (int u = u0; u < units; u += stride, blk += step) {
        const typename W::AU x = W::aload(a, u);
#pragma unroll
        for (int j = 0; j < 2; j++) {
            int2 k[2];
            float d[2], dmin[2];
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int r = 2 * j + h;
                // A row past the matrix reads as zeros (wload's ok): zero sums, d = dmin = 0,
                // as for a row not summed at all. No branch, so the compiler may issue a
                // row's loads while the row before it is summed.
                const bool ok = r < valid;
                const u8* pr = blk + r * g.row_bytes;
                const typename W::WU G = W::wload_blk(pr, k4, ok), U = W::wload_blk(pr + to_up, k4, ok);
                const int2 sg = W::wsums(G, x), su = W::wsums(U, x);
                k[h] = quad_keep1(sg, su);
                d[h] = b0 ? U.d : G.d;
                dmin[h] = b0 ? U.dmin : G.dmin;
            }
            const int2 t = quad_keep2(k[0], k[1]);
            acc[j] = W::sb_add(acc[j], b1 ? d[1] : d[0], b1 ? dmin[1] : dmin[0], x.dk, t);
        }
    }
#pragma unroll
    for (int j = 0; j < 2; j++) acc[j] = group_sum<4>(acc[j], L);
    // Lane t (< 4) of a group's first quad holds row 2j + b1's gate (b0 = 0) or up sum.
    const int slot = b0 * R * 32 + grp * R;  // part's layout: [warp][gate | up][grp * R + r]
    if (KS > 1) {
        float* mine = part + warp * 2 * R * 32;
        if (li < 4)
#pragma unroll
            for (int j = 0; j < 2; j++) mine[slot + 2 * j + b1] = acc[j];
        __syncthreads();
        if (ks == 0 && li < 4)
#pragma unroll
            for (int j = 0; j < 2; j++)
                for (int k = 1; k < KS; k++) acc[j] += part[(warp + k) * 2 * R * 32 + slot + 2 * j + b1];
        __syncthreads();
    }
#pragma unroll
    for (int j = 0; j < 2; j++) {
        const float up = __shfl_xor_sync(0xffffffffu, acc[j], 1);
        const int r = 2 * j + b1;
        if (ks == 0 && li < 4 && !b0 && r < valid) out[r0 + r] = __fmul_rn(silu(acc[j]), up);
    }
}

// One tile: rows base .. base + matvec_tile_rows. A CTA of 8 warps works on 8/KS row sets;
// the KS warps of a row set split the row's units between them (interleaved) and join their
// sums in `part` (MATVEC_PART_FLOATS floats of shared memory). KS > 1 gives small matrices
// (few rows, long rows) enough warps to keep the memory busy. Every thread of the CTA calls
// it (KS > 1 synchronizes the CTA).
template <class W, int ACT, int EPI>
__device__ __forceinline__ void matvec_tile(const MatvecArgs& g, const Act& a, int base, float* part) {
    if constexpr (ACT == ACT_Q8 && EPI == EPI_SWIGLU && KQuad<W>::v == 4) {
        matvec_tile_kq_swiglu<W>(g, a, base, part);
        return;
    }
    constexpr int R = RowsPerWarp<W>::v;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int KS = g.ksplit, set = warp / KS, ks = warp % KS;
    int units = g.K / W::UNIT;
    int L = lanes_per_row(units), groups = 32 / L;
    int li = lane % L, grp = lane / L;
    const u8* w = (const u8*)g.w;
    float* out = (float*)g.out;
    int r0 = base + set * R * groups + grp * R;
    int valid = max(0, min(R, g.rows - r0));
    float acc[R], up[R];
#pragma unroll
    for (int r = 0; r < R; r++) acc[r] = up[r] = 0.0f;
    // Q6_K: the 8 lanes of a super-block load it as 16-byte runs (q6k_add, quant.cuh); they
    // share `valid` and the loop's trip count (rows have a multiple of 8 units, lane groups
    // of L >= 8 start at multiples of 8), so their exchanges run together.
    [[maybe_unused]] const Q6kLane q6 = q6k_lane();
    [[maybe_unused]] const unsigned gm = 0xFFu << (lane & 24);
    // Under q8 a row's unit is found by its block's index in the matrix, (row · blocks a row
    // + the unit's block) · BYTES, in 32 bits until the last product, and the unit's place in
    // its block: the same bytes as the row pointer plus the unit's offset, but fewer live
    // 64-bit values per row. In a harness that took the 7B's Q4_K down from 24.6 to 19.5 µs
    // and its Q6_K down from 32.7 to 30.7 µs (evidence/h100/q6-plane/, `blkidx`).
    constexpr int UPB = UnitsPerBlock<W>::v;
    [[maybe_unused]] const u32 bpr = blocks_a_row<W>(g.row_bytes);
    for (int u = ks * L + li; u < units; u += KS * L) {
        if constexpr (ACT == ACT_Q8 && IsQ6K<W>::v) {
            const int sb = (unsigned)u / 8u;
            const Q6kAct x = q6k_act(a, q6, sb);
#pragma unroll
            for (int r = 0; r < R; r++)
                if (r < valid) {
                    const size_t at = (size_t)((u32)(r0 + r) * bpr + (u32)sb) * W::BYTES;
                    q6k_add(acc[r], w + at, 0, q6, x, gm);
                    if (EPI == EPI_SWIGLU) q6k_add(up[r], (const u8*)g.w2 + at, 0, q6, x, gm);
                }
        } else if constexpr (ACT == ACT_Q8) {
            // The unit's activations once for all the group's rows: W::q8 per row loaded
            // them R times (2R under SwiGLU), and those L1 loads, not DRAM, bounded the big
            // matvecs (Nsight on the 7B down: L1 74% busy, DRAM 30%). Same dots, same order.
            typename W::AU x = W::aload(a, u);
            const u32 ub = (unsigned)u / (unsigned)UPB;
            const int uk = (unsigned)u % (unsigned)UPB;
#pragma unroll
            for (int r = 0; r < R; r++)
                if (r < valid) {
                    const size_t at = (size_t)((u32)(r0 + r) * bpr + ub) * W::BYTES;
                    kq_add<W>(acc[r], W::wload(w + at, uk), x);
                    if (EPI == EPI_SWIGLU) kq_add<W>(up[r], W::wload((const u8*)g.w2 + at, uk), x);
                }
        } else {
#pragma unroll
            for (int r = 0; r < R; r++)
                if (r < valid) {
                    acc[r] += W::f32(w + (size_t)(r0 + r) * g.row_bytes, u, a.xf);
                    if (EPI == EPI_SWIGLU) up[r] += W::f32((const u8*)g.w2 + (size_t)(r0 + r) * g.row_bytes, u, a.xf);
                }
        }
    }
    // Sum within each group of L lanes (xor offsets below L stay inside the group; a
    // k-quant's quads already agree, kq_add).
#pragma unroll
    for (int r = 0; r < R; r++) {
        acc[r] = group_sum<KQuadAct<W, ACT>::v>(acc[r], L);
        if (EPI == EPI_SWIGLU) up[r] = group_sum<KQuadAct<W, ACT>::v>(up[r], L);
    }
    if (KS > 1) {
        // part[warp][0 | 1][grp * R + r]
        float* mine = part + warp * 2 * R * 32;
        if (li == 0)
#pragma unroll
            for (int r = 0; r < R; r++) {
                mine[grp * R + r] = acc[r];
                mine[R * 32 + grp * R + r] = up[r];
            }
        __syncthreads();
        if (ks == 0 && li == 0)
#pragma unroll
            for (int r = 0; r < R; r++)
                for (int k = 1; k < KS; k++) {
                    acc[r] += part[(warp + k) * 2 * R * 32 + grp * R + r];
                    up[r] += part[(warp + k) * 2 * R * 32 + R * 32 + grp * R + r];
                }
        __syncthreads();
    }
    if (ks == 0 && li == 0)
#pragma unroll
        for (int r = 0; r < R; r++) {
            if (r >= valid) continue;
            if (EPI == EPI_SWIGLU) {
                out[r0 + r] = __fmul_rn(silu(acc[r]), up[r]);
            } else {
                out[r0 + r] = EPI == EPI_ADD ? __fadd_rn(acc[r], ((const float*)g.extra)[r0 + r]) : acc[r];
            }
        }
}

// ---- Fused attention input: RMSNorm → Q/K/V (+bias) → RoPE → KV-cache append --------
// Work item `it` = one pair of output rows (the two members of a RoPE pair) of Q (which 0),
// K (1) or V (2); a warp computes both rows' dot products (pair_dot), lane 0 finishes.

struct QkvItem {
    int which;   // 0 = Q, 1 = K, 2 = V
    int i;       // pair index within the head (RoPE frequency)
    int r0, r1;  // the two output rows
};

__device__ __forceinline__ QkvItem qkv_item(const QkvArgs& g, int it) {
    int half = g.head_dim / 2;
    int pq = g.n_head * half, pk = g.n_head_kv * half;
    QkvItem q;
    q.which = it < pq ? 0 : (it < pq + pk ? 1 : 2);
    int j = q.which == 0 ? it : (q.which == 1 ? it - pq : it - pq - pk);
    int h = j / half;
    q.i = j % half;
    q.r0 = g.neox ? h * g.head_dim + q.i : h * g.head_dim + 2 * q.i;
    q.r1 = g.neox ? q.r0 + half : q.r0 + 1;
    return q;
}

// Work items of the fused Q/K/V group.
__device__ __forceinline__ int qkv_items(const QkvArgs& g) {
    return (g.n_head + 2 * g.n_head_kv) * (g.head_dim / 2);
}

// The weight matrix of a work item and the bytes of one of its rows.
__device__ __forceinline__ const u8* qkv_weights(const QkvArgs& g, int which, int& rb) {
    rb = which == 0 ? g.rb_q : (which == 1 ? g.rb_k : g.rb_v);
    return (const u8*)(which == 0 ? g.wq : (which == 1 ? g.wk : g.wv));
}

// Bias, RoPE (Q and K at position `pos`) and the store: Q to row `b` of q_out, K and V to
// cache row `crow` (the position, or in a batched step the slot's first row + position) in
// the cache's element type KV (numerics.cuh).
template <class KV>
__device__ __forceinline__ void qkv_store(const QkvArgs& g, const QkvItem& q, float y0, float y1, int pos, int crow, int b) {
    const float* bias = (const float*)(q.which == 0 ? g.bq : (q.which == 1 ? g.bk : g.bv));
    if (bias) {
        y0 = __fadd_rn(y0, bias[q.r0]);
        y1 = __fadd_rn(y1, bias[q.r1]);
    }
    if (q.which < 2) rope_pair(y0, y1, pos, ((const float*)g.inv_freq)[q.i]);
    if (q.which == 0) {
        float* qo = (float*)g.q_out + (size_t)b * (g.n_head * g.head_dim);
        qo[q.r0] = y0;
        qo[q.r1] = y1;
    } else {
        void* cache = (void*)(q.which == 1 ? g.k_cache : g.v_cache);
        size_t row = (size_t)crow * (g.n_head_kv * g.head_dim);
        KV::store(cache, row + q.r0, y0);
        KV::store(cache, row + q.r1, y1);
    }
}
