// attn_decode.cuh — decode attention of one query row over a layer's KV cache for the
// persistent kernel (persistent.cu), flash-decoding style. npos = pos + 1 cached positions
// are cut into n_split chunks per KV head (att_chunk); work item (KV head, split) scores
// its chunk for all query heads of the KV group (so K and V are read once per group), with
// an online softmax over tiles of ATT_TILE positions, and writes each head's partial
// (max, sum, weighted V) to `part` [n_head, n_split, head_dim + 2]; a merge item per query
// head combines the splits that hold positions.
// Same math as the CPU reference (src/exec/interp/ops.rs, attention): scores (q·k)·scale,
// max-subtracted exp, weighted V normalised by the sum — only the summation order differs.
// The merge is attention.cu's combine_head formula (running max, rescaled sum and V).
// Head dims up to 128 (the engine checks), up to 8 query heads per KV head.
#pragma once
#include "kvcache.cuh"

// Positions per split: ceil(npos / n_split) rounded up to whole tiles. The splits holding
// positions are the first ceil(npos / chunk); the others have no work this step.
__device__ __forceinline__ int att_chunk(int npos, int n_split) {
    int c = (npos + n_split - 1) / n_split;
    return (c + ATT_TILE - 1) / ATT_TILE * ATT_TILE;
}

// Shared-memory floats attn_item needs: the group's q [G][hd], the tile's scores (then
// weights) [G][ATT_TILE], and per head the running max, sum and the tile's correction.
__device__ __forceinline__ int att_smem_floats(int G, int hd) { return G * hd + G * ATT_TILE + 3 * G; }

// Query heads a thread accumulates V for (G ≤ 8 heads over ≥ 2 thread slots per dim).
#define ATT_MAX_OWN 4
#define ATT_MAX_HD 128

struct AttnShape {
    const float* q;   // [n_head * hd], RoPE-d
    const kv_t* k;    // this layer's caches [n_ctx, n_head_kv * hd]
    const kv_t* v;
    float* part;      // [n_head, n_split, hd + 2]
    int n_head, n_head_kv, hd, n_split;
    float scale;
};

// Work item `item` = (KV head item / n_split, split item % n_split). Every thread of the
// CTA calls it; `sm` holds att_smem_floats floats.
__device__ void attn_item(const AttnShape& s, int item, int npos, float* sm) {
    const int G = s.n_head / s.n_head_kv, hd = s.hd, kvw = s.n_head_kv * hd;
    const int kvh = item / s.n_split, sp = item % s.n_split;
    const int chunk = att_chunk(npos, s.n_split);
    const int j0 = sp * chunk, j1 = min(npos, j0 + chunk);
    if (j0 >= j1) return;  // the same for every thread: no positions in this split
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, nwarps = blockDim.x >> 5;
    float* sq = sm;
    float* ss = sq + G * hd;
    float* sm_m = ss + G * ATT_TILE;
    float* sm_l = sm_m + G;
    float* sm_c = sm_l + G;
    const float* q = s.q + (size_t)kvh * G * hd;  // the group's heads are consecutive
    for (int i = tid; i < G * hd; i += blockDim.x) sq[i] = __ldcg(q + i);
    if (tid < G) {
        sm_m[tid] = -INFINITY;
        sm_l[tid] = 0.0f;
    }
    // V ownership: thread → dim d of heads slot, slot + slots, ... (slots = threads per dim).
    const int slots = blockDim.x / hd, d = tid % hd, slot = tid / hd;
    const bool owner = slot < slots;
    float acc[ATT_MAX_OWN];
#pragma unroll
    for (int k = 0; k < ATT_MAX_OWN; k++) acc[k] = 0.0f;
    const kv_t* kb = s.k + (size_t)kvh * hd;
    const kv_t* vb = s.v + (size_t)kvh * hd;
    __syncthreads();
    for (int p0 = j0; p0 < j1; p0 += ATT_TILE) {
        const int n = min(ATT_TILE, j1 - p0);
        // Scores: warp w takes positions w, w + nwarps, ... of the tile; lanes split the dims.
        for (int p = warp; p < n; p += nwarps) {
            float kv[ATT_MAX_HD / 32];
#pragma unroll
            for (int c = 0; c < ATT_MAX_HD / 32; c++) {
                int dd = lane + 32 * c;
                kv[c] = dd < hd ? kv_ld(kb, (size_t)(p0 + p) * kvw + dd) : 0.0f;
            }
            for (int gi = 0; gi < G; gi++) {
                float dot = 0.0f;
#pragma unroll
                for (int c = 0; c < ATT_MAX_HD / 32; c++) {
                    int dd = lane + 32 * c;
                    if (dd < hd) dot = fmaf(sq[gi * hd + dd], kv[c], dot);
                }
                dot = warp_sum(dot);
                if (lane == 0) ss[gi * ATT_TILE + p] = __fmul_rn(dot, s.scale);
            }
        }
        __syncthreads();
        // Online softmax of head `warp` over the tile: new max, weights, rescaled sum.
        if (warp < G) {
            float v = lane < n ? ss[warp * ATT_TILE + lane] : -INFINITY;
            float mo = sm_m[warp], mn = fmaxf(mo, warp_max(v));
            float e = lane < n ? expf(v - mn) : 0.0f;
            ss[warp * ATT_TILE + lane] = e;
            float sum = warp_sum(e);
            if (lane == 0) {
                float c = expf(mo - mn);  // 0 on the first tile (mo = −inf)
                sm_l[warp] = sm_l[warp] * c + sum;
                sm_m[warp] = mn;
                sm_c[warp] = c;
            }
        }
        __syncthreads();
        // Weighted V: all of the tile's V loads of a thread in flight at once.
        if (owner) {
            float vv[ATT_TILE];
#pragma unroll
            for (int p = 0; p < ATT_TILE; p++) vv[p] = p < n ? kv_ld(vb, (size_t)(p0 + p) * kvw + d) : 0.0f;
#pragma unroll
            for (int k = 0; k < ATT_MAX_OWN; k++) {
                int gi = slot + k * slots;
                if (gi < G) {
                    float a = acc[k] * sm_c[gi];
#pragma unroll
                    for (int p = 0; p < ATT_TILE; p++) a = fmaf(ss[gi * ATT_TILE + p], vv[p], a);
                    acc[k] = a;
                }
            }
        }
        __syncthreads();
    }
    const int stride = hd + 2;
    if (owner)
#pragma unroll
        for (int k = 0; k < ATT_MAX_OWN; k++) {
            int gi = slot + k * slots;
            if (gi < G) s.part[((size_t)(kvh * G + gi) * s.n_split + sp) * stride + 2 + d] = acc[k];
        }
    if (tid < G) {
        float* p = s.part + ((size_t)(kvh * G + tid) * s.n_split + sp) * stride;
        p[0] = sm_m[tid];
        p[1] = sm_l[tid];
    }
    __syncthreads();
}

// Merge item h: out[h] = Σ_s v_s·e^(m_s − M) / Σ_s l_s·e^(m_s − M) over the splits holding
// positions, one pass with a running max M (thread d owns dim d).
__device__ void attn_merge_item(const float* part, float* out, int h, int npos, int n_split, int hd) {
    const int chunk = att_chunk(npos, n_split);
    const int active = (npos + chunk - 1) / chunk;
    const float* ph = part + (size_t)h * n_split * (hd + 2);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float M = -INFINITY, L = 0.0f, v = 0.0f;
        for (int s = 0; s < active; s++) {
            const float* ps = ph + s * (hd + 2);
            float ms = __ldcg(ps), ls = __ldcg(ps + 1), vs = __ldcg(ps + 2 + d);
            if (ms == -INFINITY) continue;
            float mn = fmaxf(M, ms);
            float a = expf(M - mn), b = expf(ms - mn);
            L = L * a + ls * b;
            v = v * a + vs * b;
            M = mn;
        }
        out[h * hd + d] = v / L;
    }
}
