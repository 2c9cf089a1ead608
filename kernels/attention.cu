// attention.cu — causal grouped-query attention over a layer's KV cache: prefill (T query
// rows at positions pos0.., attention_impl) and decode (one query, attention_split_impl).
// CPU reference: src/exec/interp/ops.rs (attention): s_j = (q·k_j)·scale, e_j = exp(s_j − max),
// out = Σ e_j·v_j / Σ e_j, f32 throughout. Both kernels keep an online softmax (running max m
// and sum l; when the max grows, l and the weighted-V accumulators are rescaled by
// exp(m_old − m_new)), f32 on CUDA cores: only the summation order differs from the
// reference. The cache element (f32 or f16) is the template parameter KV (numerics.cuh);
// f16 values widen exactly, so the arithmetic after the load is the same for both.
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

// ---- Prefill: flash-attention tiles on CUDA cores ------------------------------------------
// Why it is fast. Take the 7B (28 query heads, 4 KV heads, head_dim 128, 28 layers) and a
// prompt of T = 8,192 tokens. The arithmetic is fixed: 4·hd FLOP per (query, key) pair
// (q·k and p·v), T²/2 causal pairs per head: 2·T²·hd·28·28 = 13.5 TFLOP.
// - Before, a CTA per (head, query row) read every K and V row up to its position: per layer
//   28 heads × T²/2 rows × 1 KB (K + V, f32) = 962 GB, 27 TB for the prompt, from L2 at
//   ~9 TB/s: ~3 s, bound by L2 traffic, not by the 67 TFLOPS of f32 FMA units.
// - Here a CTA takes 64 (query row, head) pairs of one KV group (~9 query rows × its 7
//   heads) and streams the group's K/V rows once through shared memory in tiles of ATT_BK
//   keys: per layer 8,192·7/64 × 4 = 3,584 CTAs × ~4,100 keys × 1 KB = 15 GB (7.5 GB with
//   an f16 cache), 64x less, 0.42 TB for the prompt. Each 64 × 64 tile then costs
//   2 · 64·64·128 FMAs from shared memory against 64 KB of K/V (32 KB f16): with 4×4 rows ×
//   keys (and 4 rows × 8 dims) held in registers and 16-byte shared reads, the FMA units,
//   not memory, set the pace: ~0.4–0.6 s for the prompt at 35–50% of the f32 peak.
// Rows: the T·G (query row t, head h of the group) pairs of KV head blockIdx.y, flattened as
// r = t·G + (h − kvh·G); a CTA of n threads takes n/4 consecutive rows (blockIdx.x, latest
// rows — the most keys — first, so the short ones fill the tail) and walks keys 0 ..
// pos0 + t_last in tiles of ATT_BK:
//   stage the K and V tile in shared memory (widened to f32) → S = Q·Kᵀ (thread (ty, tx)
//   holds rows 4ty..4ty+3 × keys tx, tx+16, tx+32, tx+48) → causal mask, scale, row max over
//   the row's 16 threads, rescale, P = exp(S − m) into shared memory (over the K tile) →
//   O = O·corr + P·V (thread (ty, tx) holds rows 4ty.. × float4 columns tx and tx+16).
// Shared memory (dynamic, laid out by the host: src/exec/cuda/geometry.rs, attention_tile):
//   Q [rows][hd + ATT_PAD] at 0, K [ATT_BK][hd + ATT_PAD] then P [rows][ATT_BK + ATT_PAD]
//   at float offset kp_at, V [ATT_BK][hd] at v_at.
template <class KV>
__device__ void attention_impl(const AttnArgs& g) {
    constexpr int RM = ATT_ROWS_PER_THREAD, KT = ATT_KEY_THREADS;
    extern __shared__ float4 att_smem[];
    float* sm = (float*)att_smem;
    const int hd = g.head_dim, nd4 = hd / 4, G = g.n_head / g.n_head_kv, kvw = g.n_head_kv * hd;
    const int kvh = blockIdx.y, tid = threadIdx.x, nt = blockDim.x;
    const int tx = tid % KT, ty = tid / KT;
    const int rows = nt / KT * RM, total = g.T * G;
    const int r0 = (gridDim.x - 1 - blockIdx.x) * rows;
    const int pos0 = *(const int*)g.pos;
    const int n_keys = pos0 + (min(r0 + rows, total) - 1) / G + 1;
    const int qs4 = (hd + ATT_PAD) / 4, ps4 = (ATT_BK + ATT_PAD) / 4;
    float4* Q4 = att_smem;
    float4* K4 = (float4*)(sm + g.kp_at);
    float4* P4 = K4;
    float4* V4 = (float4*)(sm + g.v_at);
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

    // The CTA's query rows (rows past the end: zeros).
    for (int i = tid; i < rows * nd4; i += nt) {
        int row = i / nd4, c = i % nd4, r = r0 + row;
        float4 v = zero;
        if (r < total) v = ((const float4*)g.q)[((size_t)(r / G) * g.n_head + kvh * G + r % G) * nd4 + c];
        Q4[row * qs4 + c] = v;
    }
    // Per row of this thread: the last key it may see (causal), running max and sum, O.
    int lim[RM];
    float m[RM], l[RM];
    float4 acc[RM][2];
#pragma unroll
    for (int i = 0; i < RM; i++) {
        int r = r0 + ty * RM + i;
        lim[i] = r < total ? pos0 + r / G : 0;  // a row past the end sees key 0 only: no NaN
        m[i] = -INFINITY;
        l[i] = 0.0f;
        acc[i][0] = acc[i][1] = zero;
    }
    for (int k0 = 0; k0 < n_keys; k0 += ATT_BK) {
        // Stage the K and V tile; keys past n_keys are zeros (masked keys then add 0·0).
        for (int i0 = tid; i0 < ATT_BK * nd4; i0 += 4 * nt) {
            float4 kr[4], vr[4];
#pragma unroll
            for (int u = 0; u < 4; u++) {
                int i = i0 + u * nt, j = i / nd4;
                kr[u] = vr[u] = zero;
                if (i < ATT_BK * nd4 && k0 + j < n_keys) {
                    size_t e = (size_t)(k0 + j) * kvw + kvh * hd + 4 * (i % nd4);
                    kr[u] = KV::load4((const void*)g.k_cache, e);
                    vr[u] = KV::load4((const void*)g.v_cache, e);
                }
            }
#pragma unroll
            for (int u = 0; u < 4; u++) {
                int i = i0 + u * nt;
                if (i < ATT_BK * nd4) {
                    K4[(i / nd4) * qs4 + i % nd4] = kr[u];
                    V4[i] = vr[u];
                }
            }
        }
        __syncthreads();
        // S = Q·Kᵀ for rows 4ty.. × keys tx + 16j, summed over the head dims in order.
        float s[RM][4];
#pragma unroll
        for (int i = 0; i < RM; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) s[i][j] = 0.0f;
#pragma unroll 1
        for (int c = 0; c < nd4; c++) {
            float4 qv[RM], kv[4];
#pragma unroll
            for (int i = 0; i < RM; i++) qv[i] = Q4[(ty * RM + i) * qs4 + c];
#pragma unroll
            for (int j = 0; j < 4; j++) kv[j] = K4[(tx + KT * j) * qs4 + c];
#pragma unroll
            for (int i = 0; i < RM; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) s[i][j] = f4_dot(qv[i], kv[j], s[i][j]);
        }
        // Online softmax per row: mask and scale, the tile's max over the row's 16 threads
        // (lanes of one half-warp), rescale factor, probabilities and their sum.
        float corr[RM];
#pragma unroll
        for (int i = 0; i < RM; i++) {
            float mx = -INFINITY;
#pragma unroll
            for (int j = 0; j < 4; j++) {
                s[i][j] = k0 + tx + KT * j <= lim[i] ? __fmul_rn(s[i][j], g.scale) : -INFINITY;
                mx = fmaxf(mx, s[i][j]);
            }
#pragma unroll
            for (int o = KT / 2; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
            // Key 0 is in every row's first tile, so mn is finite from the first tile on.
            float mn = fmaxf(m[i], mx), sum = 0.0f;
            corr[i] = expf(m[i] - mn);
#pragma unroll
            for (int j = 0; j < 4; j++) {
                s[i][j] = expf(s[i][j] - mn);
                sum += s[i][j];
            }
#pragma unroll
            for (int o = KT / 2; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
            l[i] = __fmaf_rn(l[i], corr[i], sum);
            m[i] = mn;
        }
        __syncthreads();  // every thread is done with the K tile: P goes over it
        float* P = (float*)P4;
#pragma unroll
        for (int i = 0; i < RM; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) P[(ty * RM + i) * (ATT_BK + ATT_PAD) + tx + KT * j] = s[i][j];
        __syncthreads();
        // O = O·corr + P·V over the tile's keys, in key order.
#pragma unroll
        for (int i = 0; i < RM; i++) {
            acc[i][0] = f4_scale(acc[i][0], corr[i]);
            acc[i][1] = f4_scale(acc[i][1], corr[i]);
        }
        const bool two = tx + KT < nd4;  // head dims > 64: a second float4 column
#pragma unroll 2
        for (int j4 = 0; j4 < ATT_BK / 4; j4++) {
            float4 p[RM];
#pragma unroll
            for (int i = 0; i < RM; i++) p[i] = P4[(ty * RM + i) * ps4 + j4];
#pragma unroll
            for (int jj = 0; jj < 4; jj++) {
                const float4* vr = V4 + (4 * j4 + jj) * nd4;
                if (tx < nd4) {
                    float4 v = vr[tx];
#pragma unroll
                    for (int i = 0; i < RM; i++) acc[i][0] = f4_fma(f4_at(p[i], jj), v, acc[i][0]);
                }
                if (two) {
                    float4 v = vr[tx + KT];
#pragma unroll
                    for (int i = 0; i < RM; i++) acc[i][1] = f4_fma(f4_at(p[i], jj), v, acc[i][1]);
                }
            }
        }
        __syncthreads();  // before the next tile overwrites K/P and V
    }
    // out = O / l, one division per element as the reference.
#pragma unroll
    for (int i = 0; i < RM; i++) {
        int r = r0 + ty * RM + i;
        if (r >= total) continue;
        float4* o = (float4*)g.out + ((size_t)(r / G) * g.n_head + kvh * G + r % G) * nd4;
#pragma unroll
        for (int k = 0; k < 2; k++) {
            int c = tx + KT * k;
            if (c < nd4) {
                float4 a = acc[i][k];
                o[c] = make_float4(a.x / l[i], a.y / l[i], a.z / l[i], a.w / l[i]);
            }
        }
    }
}

// ---- Decode (T = 1): split over positions, one CTA per (KV head, split) ----------------------
// Why it is fast. The 7B at depth 4,096: a layer's cache holds 4,096 × 4 KV heads × 128 dims,
// K and V: 8.4 MB in f16 (16.8 MB f32). Before, a CTA per (query head, 32 positions) read its
// KV head's rows once per query head: 7 × 16.8 = 117 MB from L2 per layer and token, and the
// merge read up to n_ctx/32 partials per head. Here a CTA serves all G query heads of its KV
// group, so each K/V row is read once (8.4 MB from HBM per layer: ~2 µs at 4.4 TB/s), and
// the grid is n_split = ceil(SMs / KV heads) CTAs per KV head (fixed: the captured decode
// graph replays at every position): each active split takes an equal share of the positions
// (a multiple of nc), so at depth 4,096–8,192 every SM streams, and the merge reads at most
// n_split partials per head. Splits past the current position exit at once.
// A CTA stages nc positions of K and V at a time into shared memory with cp.async, two
// stages in flight (rows stay in the cache's element type; rows are padded by 16 bytes so a
// warp's 16-byte reads of 32 rows are conflict-free); per stage:
//   scores: warp h takes query head h, its lanes positions lane and lane + 32 (a dot over
//     the head dims with the query from shared memory), then the stage's max and sum for the
//     head's online softmax (warp reductions); probabilities go to shared memory;
//   P·V: thread (d4, slice) keeps float4 column d4 of all G heads' accumulators and takes
//     positions slice, slice + nslice, ...: each V element is loaded and widened once.
// The slices are summed (in slice order) into the split's partial: max, sum and weighted V
// per head (`part`). The last CTA of the group to finish (atomic ticket per KV head, reset
// by that CTA) merges the group's partials: per head the maximum M, weights exp(m_s − M),
// L = Σ l_s·w_s, out = Σ w_s·acc_s / L, every load independent of the others.
struct SplitHead {
    float q[ATT_MAX_GROUP][ATT_MAX_HD];       // the group's queries
    float p[ATT_SPLIT_MAX_NC][ATT_MAX_GROUP];  // the stage's probabilities, position-major
    float corr[ATT_MAX_GROUP];                 // the stage's rescale per head; merge: L
    int last;                                  // this CTA merges the group
    int pad[3];
};
static_assert(sizeof(SplitHead) == ATT_SPLIT_HEAD_BYTES, "SplitHead: size differs from the catalogue");
static_assert(ATT_SPLIT_MAX_NC == 64, "scores take two positions per lane");

// Copies K and V rows [j, j + nc) of KV head kvh into `dst` (nc K rows, then nc V rows,
// row_bytes apart), zero-filling rows from j1 on, as one cp.async group.
template <class KV>
__device__ __forceinline__ void split_stage(const AttnSplitArgs& g, u8* dst, int kvh, int j, int j1) {
    const int chunks = g.head_dim * KV::BYTES / 16;  // 16-byte pieces of a row
    const size_t grow = (size_t)g.n_head_kv * g.head_dim * KV::BYTES, goff = (size_t)kvh * g.head_dim * KV::BYTES;
    const int per_kind = g.nc * chunks;
    for (int i = threadIdx.x; i < 2 * per_kind; i += blockDim.x) {
        int which = i / per_kind, r = i % per_kind / chunks, c = i % chunks;
        const u8* base = (const u8*)(which ? g.v_cache : g.k_cache);
        bool ok = j + r < j1;
        const u8* src = ok ? base + (size_t)(j + r) * grow + goff + 16 * c : base;
        cp_async16(dst + (size_t)(which * g.nc + r) * g.row_bytes + 16 * c, src, ok ? 16 : 0);
    }
    cp_async_commit();
}

template <class KV>
__device__ void attention_split_impl(const AttnSplitArgs& g) {
    constexpr int MG = ATT_MAX_GROUP;
    extern __shared__ float4 att_smem[];
    SplitHead& S = *(SplitHead*)att_smem;
    u8* stage = (u8*)att_smem + sizeof(SplitHead);
    const int kvh = blockIdx.x, sp = blockIdx.y, tid = threadIdx.x, nt = blockDim.x;
    const int warp = tid >> 5, lane = tid & 31;
    const int hd = g.head_dim, nd4 = hd / 4, G = g.n_head / g.n_head_kv, nc = g.nc;
    // Each active split takes an equal share of the positions, a multiple of nc.
    const int npos = *(const int*)g.pos + 1;
    const int per = max(nc, ((npos + g.n_split - 1) / g.n_split + nc - 1) / nc * nc);
    const int active = (npos + per - 1) / per;
    if (sp >= active) return;
    const int j0 = sp * per, j1 = min(j0 + per, npos), nst = (j1 - j0 + nc - 1) / nc;
    float* part = (float*)g.part;
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

    split_stage<KV>(g, stage, kvh, j0, j1);
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
            float s[2], mx = -INFINITY;
#pragma unroll
            for (int u = 0; u < 2; u++) {
                int jj = lane + 32 * u;
                s[u] = -INFINITY;
                if (jj < nc && jc + jj < j1) {
                    // 16-byte pieces of the row (conflict-free across the warp's rows).
                    const u8* kr = cur + (size_t)jj * g.row_bytes;
                    float a = 0.0f;
#pragma unroll 2
                    for (int e = 0; e < hd; e += KV::PIECE) {
                        float4 k[KV::PIECE / 4];
                        KV::load_piece(kr + e * KV::BYTES, k);
#pragma unroll
                        for (int x = 0; x < KV::PIECE / 4; x++) a = f4_dot(*(const float4*)&S.q[warp][e + 4 * x], k[x], a);
                    }
                    s[u] = __fmul_rn(a, g.scale);
                }
                mx = fmaxf(mx, s[u]);
            }
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
        *(float4*)(part + ((size_t)(kvh * G + h) * g.n_split + sp) * (hd + 4) + 4 + 4 * c4) = o;
    }
    if (warp < G && lane == 0) {
        float* ph = part + ((size_t)(kvh * G + warp) * g.n_split + sp) * (hd + 4);
        ph[0] = m;
        ph[1] = l;
    }
    // The group's last split to get here merges the partials (read through L2).
    __threadfence();
    __syncthreads();
    if (tid == 0) S.last = atomicAdd((unsigned*)g.ticket + kvh, 1u) == (unsigned)(active - 1);
    __syncthreads();
    if (!S.last) return;
    __threadfence();
    float* w = (float*)stage;  // [G][active] merge weights
    if (warp < G) {
        const float* ph = part + (size_t)(kvh * G + warp) * g.n_split * (hd + 4);
        float M = -INFINITY, L = 0.0f;
        for (int s = lane; s < active; s += 32) M = fmaxf(M, __ldcg(ph + (size_t)s * (hd + 4)));
        M = warp_max(M);
        for (int s = lane; s < active; s += 32) {
            const float* ps = ph + (size_t)s * (hd + 4);
            float ms = __ldcg(ps), ws = ms == -INFINITY ? 0.0f : expf(ms - M);
            w[warp * active + s] = ws;
            L = fmaf(__ldcg(ps + 1), ws, L);
        }
        L = warp_sum(L);
        if (lane == 0) S.corr[warp] = L;
    }
    __syncthreads();
    for (int i = tid; i < G * nd4; i += nt) {
        int h = i / nd4, c4 = i % nd4;
        const float* ph = part + (size_t)(kvh * G + h) * g.n_split * (hd + 4) + 4 + 4 * c4;
        float4 o = zero;
#pragma unroll 8
        for (int s = 0; s < active; s++) o = f4_fma(w[h * active + s], __ldcg((const float4*)(ph + (size_t)s * (hd + 4))), o);
        float L = S.corr[h];
        ((float4*)g.out)[(size_t)(kvh * G + h) * nd4 + c4] = make_float4(o.x / L, o.y / L, o.z / L, o.w / L);
    }
    if (tid == 0) ((unsigned*)g.ticket)[kvh] = 0;
}
