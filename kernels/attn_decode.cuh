// attn_decode.cuh — decode attention (one query row, T = 1) over a layer's KV cache, split
// over positions: the work of one (KV head, split) and the merge of a KV group's splits, as
// device functions shared by attention.cu's attention_split_impl (a CTA per (KV head,
// split); the group's last CTA to finish merges) and the persistent decode kernel
// (persistent.cu: an `attn` instruction with a work item per (KV head, split), then an
// `attn_merge` instruction with an item per KV head). Both compute the same thing, with the
// same arithmetic in the same order, for the same n_split and nc.
// CPU reference: src/exec/interp/ops.rs (attention): s_j = (q·k_j)·scale, e_j = exp(s_j − max),
// out = Σ e_j·v_j / Σ e_j, f32 throughout; an online softmax (running max m and sum l; when the
// max grows, l and the weighted-V accumulators are rescaled by exp(m_old − m_new)), so only
// the summation order differs from the reference. The cache element (f32 or f16) is the
// template parameter KV (numerics.cuh); f16 values widen exactly.
#pragma once
#include "numerics.cuh"

__device__ __forceinline__ float4 f4_scale(float4 a, float s) {
    return make_float4(a.x * s, a.y * s, a.z * s, a.w * s);
}
// a + p·v per component (fused multiply-add, as the reference's axpy).
__device__ __forceinline__ float4 f4_fma(float p, float4 v, float4 a) {
    return make_float4(fmaf(p, v.x, a.x), fmaf(p, v.y, a.y), fmaf(p, v.z, a.z), fmaf(p, v.w, a.w));
}
// Component k (a compile-time constant after unrolling) of a float4.
__device__ __forceinline__ float f4_at(float4 a, int k) {
    return k == 0 ? a.x : k == 1 ? a.y : k == 2 ? a.z : a.w;
}
// a + q·k over the four components, in order.
__device__ __forceinline__ float f4_dot(float4 q, float4 k, float a) {
    return fmaf(q.w, k.w, fmaf(q.z, k.z, fmaf(q.y, k.y, fmaf(q.x, k.x, a))));
}

// Why it is fast. The 7B at depth 4,096: a layer's cache holds 4,096 × 4 KV heads × 128 dims,
// K and V: 8.4 MB in f16 (16.8 MB f32). Before, a CTA per (query head, 32 positions) read its
// KV head's rows once per query head: 7 × 16.8 = 117 MB from L2 per layer and token, and the
// merge read up to n_ctx/32 partials per head. Here a CTA serves all G query heads of its KV
// group, so each K/V row is read once (8.4 MB from HBM per layer: ~2 µs at 4.4 TB/s), and
// the grid is n_split CTAs per KV head (fixed: the captured decode graph replays at every
// position; attention_split takes ceil(SMs / KV heads)): each active split takes an equal
// share of the positions (a multiple of nc), so at depth 4,096–8,192 every SM streams, and
// the merge reads at most n_split partials per head. Splits past the current position have
// no work.
// A split stages nc positions of K and V at a time into shared memory with cp.async, two
// stages in flight (rows stay in the cache's element type; rows are padded by 16 bytes so a
// warp's 16-byte reads of 32 rows are conflict-free); per stage:
//   scores: warp h takes query head h, its lanes positions lane and lane + 32 (a dot over
//     the head dims with the query from shared memory), then the stage's max and sum for the
//     head's online softmax (warp reductions); probabilities go to shared memory;
//   P·V: thread (d4, slice) keeps float4 column d4 of all G heads' accumulators and takes
//     positions slice, slice + nslice, ...: each V element is loaded and widened once.
// The slices are summed (in slice order) into the split's partial: max, sum and weighted V
// per head (`part`). The merge of a KV group's partials: per head the maximum M, weights
// exp(m_s − M), L = Σ l_s·w_s, out = Σ w_s·acc_s / L, every load independent of the others.
// Shared memory (dynamic, laid out by the host: attn_split_smem in src/codegen/catalogue.rs):
// SplitHead, then the stage area (two stages; the slice sums and the merge weights reuse it).
struct SplitHead {
    float q[ATT_MAX_GROUP][ATT_MAX_HD];       // the group's queries
    float p[ATT_SPLIT_MAX_NC][ATT_MAX_GROUP];  // the stage's probabilities, position-major
    float corr[ATT_MAX_GROUP];                 // the stage's rescale per head; merge: L
    int last;                                  // attention_split: this CTA merges the group
    int pad[3];
};
static_assert(sizeof(SplitHead) == ATT_SPLIT_HEAD_BYTES, "SplitHead: size differs from the catalogue");
static_assert(ATT_SPLIT_MAX_NC == 64, "scores take two positions per lane");

// Positions per active split at `npos` positions: an equal share, a multiple of nc. The
// active splits are the first ceil(npos / per).
__device__ __forceinline__ int split_per(int npos, int n_split, int nc) {
    return max(nc, ((npos + n_split - 1) / n_split + nc - 1) / nc * nc);
}

// Bytes of dynamic shared memory split_partial and split_merge need (the host's twin:
// attn_split_smem in src/codegen/catalogue.rs).
__device__ __forceinline__ int split_smem_bytes(const AttnSplitArgs& g, int threads) {
    const int G = g.n_head / g.n_head_kv;
    return (int)sizeof(SplitHead) + max(2 * g.stage_bytes, max(threads * G * 16, G * g.n_split * 4));
}

// Copies K and V rows [j, j + nc) of KV head kvh into `dst` (nc K rows, then nc V rows,
// row_bytes apart), zero-filling rows from j1 on, as one cp.async group. Row `skip` (if in
// range) is left alone, neither copied nor filled: attention_split stages a split's first
// rows before it waits for the kernel before, which is still writing the newest row
// (split_stage_row copies it after the wait; two cp.async writes to one address would race).
template <class KV>
__device__ __forceinline__ void split_stage(const AttnSplitArgs& g, u8* dst, int kvh, int j, int j1, int skip = -1) {
    const int chunks = g.head_dim * KV::BYTES / 16;  // 16-byte pieces of a row
    const size_t grow = (size_t)g.n_head_kv * g.head_dim * KV::BYTES, goff = (size_t)kvh * g.head_dim * KV::BYTES;
    const int per_kind = g.nc * chunks;
    for (int i = threadIdx.x; i < 2 * per_kind; i += blockDim.x) {
        int which = i / per_kind, r = i % per_kind / chunks, c = i % chunks;
        if (j + r == skip) continue;
        const u8* base = (const u8*)(which ? g.v_cache : g.k_cache);
        bool ok = j + r < j1;
        const u8* src = ok ? base + (size_t)(j + r) * grow + goff + 16 * c : base;
        cp_async16(dst + (size_t)(which * g.nc + r) * g.row_bytes + 16 * c, src, ok ? 16 : 0);
    }
    cp_async_commit();
}

// Copies K and V row `row` (in the stage that starts at row j) into `dst`, as one cp.async
// group (empty for the threads that copy nothing).
template <class KV>
__device__ __forceinline__ void split_stage_row(const AttnSplitArgs& g, u8* dst, int kvh, int j, int row) {
    const int chunks = g.head_dim * KV::BYTES / 16;
    const size_t grow = (size_t)g.n_head_kv * g.head_dim * KV::BYTES, goff = (size_t)kvh * g.head_dim * KV::BYTES;
    if (threadIdx.x < 2 * chunks) {
        int which = threadIdx.x / chunks, c = threadIdx.x % chunks;
        const u8* base = (const u8*)(which ? g.v_cache : g.k_cache);
        cp_async16(dst + (size_t)(which * g.nc + row - j) * g.row_bytes + 16 * c, base + (size_t)row * grow + goff + 16 * c, 16);
    }
    cp_async_commit();
}

// Split sp (active: sp < ceil(npos / per)) of KV head kvh: positions [sp·per, min(npos,
// (sp + 1)·per)), into its partial in g.part. Every thread of the CTA calls it; `smem` is the
// dynamic shared memory (split_smem_bytes). With `issued`, the caller has already issued the
// first stage's copies (as one or more cp.async groups, the last committed by every thread).
// With DIRECT (the caller's only active split: npos ≤ per), it writes g.out itself instead
// of a partial: split_merge's arithmetic for one partial (weight w = exp(m − m), L = l·w + 0,
// out = (w·acc + 0) / L), so the same bits without the partial's round trip through L2, the
// fence, the ticket and the merge (those phases took about 4 µs of the merging CTA's 10.4 µs
// in the H200 phase timing of evidence/h200/attn-decode/; decode tg128 from an empty cache
// +0.8–3.9% on the H100, evidence/h100/attn-direct/). A template parameter, so the
// many-split path compiles as without it.
template <class KV, bool DIRECT = false>
__device__ void split_partial(const AttnSplitArgs& g, u8* smem, int kvh, int sp, int npos, int per, bool issued = false) {
    constexpr int MG = ATT_MAX_GROUP;
    SplitHead& S = *(SplitHead*)smem;
    u8* stage = smem + sizeof(SplitHead);
    const int tid = threadIdx.x, nt = blockDim.x;
    const int warp = tid >> 5, lane = tid & 31;
    const int hd = g.head_dim, nd4 = hd / 4, G = g.n_head / g.n_head_kv, nc = g.nc;
    const int j0 = sp * per, j1 = min(j0 + per, npos), nst = (j1 - j0 + nc - 1) / nc;
    float* part = (float*)g.part;
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

    if (!issued) split_stage<KV>(g, stage, kvh, j0, j1);
    for (int i = tid; i < G * hd; i += nt) S.q[i / hd][i % hd] = ((const float*)g.q)[(size_t)kvh * G * hd + i];
    float m = -INFINITY, l = 0.0f;  // warp h < G: head h's running max and sum (all lanes alike)
    const int d4 = tid % nd4, slice = tid / nd4, nslice = nt / nd4;
    float4 acc[MG];
#pragma unroll
    for (int h = 0; h < MG; h++) acc[h] = zero;
    for (int c = 0; c < nst; c++) {
        const u8* cur = stage + (size_t)(c & 1) * g.stage_bytes;
        if (c + 1 < nst) {
            split_stage<KV>(g, stage + (size_t)((c + 1) & 1) * g.stage_bytes, kvh, j0 + (c + 1) * nc, j1);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const int jc = j0 + c * nc;
        if (warp < G) {
            // The lane's two positions (lane, lane + 32) in one pass over the head dims: two
            // independent FMA chains (each position's sum in the same order as one chain at a
            // time, which left the FMA latency exposed: half the kernel's time at short
            // context, evidence/h200/attn-decode/). Rows past j1 are zero-filled in the stage,
            // so they compute harmlessly and are masked below; with nc = 32 the second chain
            // repeats the first.
            const bool two = nc > 32;
            const u8* kr0 = cur + (size_t)lane * g.row_bytes;
            const u8* kr1 = two ? kr0 + (size_t)32 * g.row_bytes : kr0;
            float a0 = 0.0f, a1 = 0.0f;
#pragma unroll 2
            for (int e = 0; e < hd; e += KV::PIECE) {
                float4 k0[KV::PIECE / 4], k1[KV::PIECE / 4];
                KV::load_piece(kr0 + e * KV::BYTES, k0);
                KV::load_piece(kr1 + e * KV::BYTES, k1);
#pragma unroll
                for (int x = 0; x < KV::PIECE / 4; x++) {
                    const float4 qv = *(const float4*)&S.q[warp][e + 4 * x];
                    a0 = f4_dot(qv, k0[x], a0);
                    a1 = f4_dot(qv, k1[x], a1);
                }
            }
            float s[2];
            s[0] = jc + lane < j1 ? __fmul_rn(a0, g.scale) : -INFINITY;
            s[1] = two && jc + lane + 32 < j1 ? __fmul_rn(a1, g.scale) : -INFINITY;
            float mx = fmaxf(s[0], s[1]);
            // Position j0 is in the first stage, so mn is finite from the first stage on.
            float mn = fmaxf(m, warp_max(mx)), sum = 0.0f;
            float corr = expf(m - mn);
#pragma unroll
            for (int u = 0; u < 2; u++) {
                int jj = lane + 32 * u;
                float p = expf(s[u] - mn);
                if (jj < nc) S.p[jj][warp] = p;
                sum += p;
            }
            l = __fmaf_rn(l, corr, warp_sum(sum));
            m = mn;
            if (lane == 0) S.corr[warp] = corr;
        }
        __syncthreads();
        if (slice < nslice) {
#pragma unroll
            for (int h = 0; h < MG; h++)
                if (h < G) acc[h] = f4_scale(acc[h], S.corr[h]);
            for (int jj = slice; jj < nc; jj += nslice) {
                float4 v = KV::load4(cur + (size_t)(nc + jj) * g.row_bytes, 4 * d4);
                float4 pa = *(const float4*)&S.p[jj][0], pb = *(const float4*)&S.p[jj][4];
#pragma unroll
                for (int h = 0; h < MG; h++)
                    if (h < G) acc[h] = f4_fma(h < 4 ? f4_at(pa, h) : f4_at(pb, h - 4), v, acc[h]);
            }
        }
        __syncthreads();  // the stage is refilled next
    }
    // The split's partial: slices summed in order (the stages' space is free now).
    if (DIRECT && warp < G && lane == 0) {
        // The merge's weight and L for a single partial (S.p and S.corr are free now).
        const float w1 = m == -INFINITY ? 0.0f : expf(m - m);
        S.p[0][warp] = w1;
        S.corr[warp] = fmaf(l, w1, 0.0f);
    }
    float* red = (float*)stage;
    if (slice < nslice)
#pragma unroll
        for (int h = 0; h < MG; h++)
            if (h < G) *(float4*)&red[((size_t)slice * G + h) * hd + 4 * d4] = acc[h];
    __syncthreads();
    for (int i = tid; i < G * nd4; i += nt) {
        int h = i / nd4, c4 = i % nd4;
        float4 o = zero;
        for (int s = 0; s < nslice; s++) {
            float4 v = *(const float4*)&red[((size_t)s * G + h) * hd + 4 * c4];
            o = make_float4(o.x + v.x, o.y + v.y, o.z + v.z, o.w + v.w);
        }
        if constexpr (DIRECT) {
            const float w1 = S.p[0][h], L = S.corr[h];
            o = f4_fma(w1, o, zero);
            ((float4*)g.out)[(size_t)(kvh * G + h) * nd4 + c4] = make_float4(o.x / L, o.y / L, o.z / L, o.w / L);
        } else {
            *(float4*)(part + ((size_t)(kvh * G + h) * g.n_split + sp) * (hd + 4) + 4 + 4 * c4) = o;
        }
    }
    if (!DIRECT && warp < G && lane == 0) {
        float* ph = part + ((size_t)(kvh * G + warp) * g.n_split + sp) * (hd + 4);
        ph[0] = m;
        ph[1] = l;
    }
}

// The max and sum pass of one query head's merge, by one warp (every lane calls it): the
// head's partials at `ph` (split s at s·(hd + 4): max, sum, ...); writes the weights
// w[s] = exp(m_s − M) for s < active and returns L = Σ l_s·w_s (every lane). Each lane loads
// its splits' max and sum together (up to MERGE_ML_LANE splits a lane kept in registers).
// split_merge and prep's merge (quantize.cu, the deferred merge) share it, so the same bits.
#define MERGE_ML_LANE 4
__device__ __forceinline__ float merge_head_weights(const float* ph, int hd, int active, float* w) {
    const int lane = threadIdx.x & 31;
    float M = -INFINITY, L = 0.0f;
    float ml[MERGE_ML_LANE], ll[MERGE_ML_LANE];
#pragma unroll
    for (int k = 0; k < MERGE_ML_LANE; k++) {
        const int s = lane + 32 * k;
        ml[k] = -INFINITY;
        ll[k] = 0.0f;
        if (s < active) {
            const float* ps = ph + (size_t)s * (hd + 4);
            ml[k] = __ldcg(ps);
            ll[k] = __ldcg(ps + 1);
        }
        M = fmaxf(M, ml[k]);
    }
    for (int s = lane + 32 * MERGE_ML_LANE; s < active; s += 32) M = fmaxf(M, __ldcg(ph + (size_t)s * (hd + 4)));
    M = warp_max(M);
#pragma unroll
    for (int k = 0; k < MERGE_ML_LANE; k++) {
        const int s = lane + 32 * k;
        if (s < active) {
            float ws = ml[k] == -INFINITY ? 0.0f : expf(ml[k] - M);
            w[s] = ws;
            L = fmaf(ll[k], ws, L);
        }
    }
    for (int s = lane + 32 * MERGE_ML_LANE; s < active; s += 32) {
        const float* ps = ph + (size_t)s * (hd + 4);
        float ms = __ldcg(ps), ws = ms == -INFINITY ? 0.0f : expf(ms - M);
        w[s] = ws;
        L = fmaf(__ldcg(ps + 1), ws, L);
    }
    return warp_sum(L);
}

// Merges the `active` partials of KV head kvh's G query heads into g.out (partials read
// through L2: other CTAs wrote them). Every thread of the CTA calls it.
// Latency (the merging CTA is the kernel's critical path): the max and sum pass loads each
// split's max and sum in one round trip (merge_head_weights), and each thread's first output
// column loads its first MERGE_PRE weighted-V partials before the weights are known, so
// those loads overlap the max and sum pass. The arithmetic and its order are unchanged.
#define MERGE_PRE 8
__device__ void split_merge(const AttnSplitArgs& g, u8* smem, int kvh, int active) {
    SplitHead& S = *(SplitHead*)smem;
    const int tid = threadIdx.x, nt = blockDim.x;
    const int warp = tid >> 5, lane = tid & 31;
    const int hd = g.head_dim, nd4 = hd / 4, G = g.n_head / g.n_head_kv;
    const float* part = (const float*)g.part;
    float* w = (float*)(smem + sizeof(SplitHead));  // [G][active] merge weights
    const int npre = min(active, MERGE_PRE);
    float4 pre[MERGE_PRE];
    if (tid < G * nd4) {
        const float* ph = part + (size_t)(kvh * G + tid / nd4) * g.n_split * (hd + 4) + 4 + 4 * (tid % nd4);
#pragma unroll
        for (int s = 0; s < MERGE_PRE; s++)
            if (s < npre) pre[s] = __ldcg((const float4*)(ph + (size_t)s * (hd + 4)));
    }
    if (warp < G) {
        const float L = merge_head_weights(part + (size_t)(kvh * G + warp) * g.n_split * (hd + 4), hd, active, w + warp * active);
        if (lane == 0) S.corr[warp] = L;
    }
    __syncthreads();
    for (int i = tid; i < G * nd4; i += nt) {
        int h = i / nd4, c4 = i % nd4;
        const float* ph = part + (size_t)(kvh * G + h) * g.n_split * (hd + 4) + 4 + 4 * c4;
        float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        int s0 = 0;
        if (i == tid) {
#pragma unroll
            for (int s = 0; s < MERGE_PRE; s++)
                if (s < npre) o = f4_fma(w[h * active + s], pre[s], o);
            s0 = npre;
        }
#pragma unroll 8
        for (int s = s0; s < active; s++) o = f4_fma(w[h * active + s], __ldcg((const float4*)(ph + (size_t)s * (hd + 4))), o);
        float L = S.corr[h];
        ((float4*)g.out)[(size_t)(kvh * G + h) * nd4 + c4] = make_float4(o.x / L, o.y / L, o.z / L, o.w / L);
    }
}
