// attention.cu — causal grouped-query attention of T query rows (positions pos0..pos0+T)
// over a layer's KV cache. One CTA per (head, query row); its warps split the positions,
// each keeping an online softmax (running max, sum, weighted V), merged at the end.
// Same math as src/exec/interp/ops.rs (attention): scores (q·k)·scale, max-subtracted exp,
// normalised by the sum — only the summation order differs.
#include "common.cuh"

#define MAX_HD 256

__device__ void attention_impl(const AttnArgs& g) {
    __shared__ float sm_m[32], sm_l[32];
    __shared__ float sm_acc[8][MAX_HD];  // launched with at most 8 warps
    int h = blockIdx.x, t = blockIdx.y;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
    int hd = g.head_dim, kvw = g.n_head_kv * hd;
    int kvh = h / (g.n_head / g.n_head_kv);
    int npos = *(const int*)g.pos + t + 1;
    const float* q = (const float*)g.q + (size_t)t * g.n_head * hd + h * hd;
    const int per = (hd + 31) / 32;  // dims per lane
    float qv[MAX_HD / 32], acc[MAX_HD / 32];
#pragma unroll
    for (int k = 0; k < MAX_HD / 32; k++) {
        int d = lane + 32 * k;
        qv[k] = k < per && d < hd ? q[d] : 0.0f;
        acc[k] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int j = warp; j < npos; j += nwarps) {
        const float* kr = (const float*)g.k_cache + (size_t)j * kvw + kvh * hd;
        float s = 0.0f;
#pragma unroll
        for (int k = 0; k < MAX_HD / 32; k++) {
            int d = lane + 32 * k;
            if (k < per && d < hd) s = fmaf(qv[k], kr[d], s);
        }
        s = __fmul_rn(warp_sum(s), g.scale);
        float mn = fmaxf(m, s);
        float corr = expf(m - mn), e = expf(s - mn);
        l = l * corr + e;
        const float* vr = (const float*)g.v_cache + (size_t)j * kvw + kvh * hd;
#pragma unroll
        for (int k = 0; k < MAX_HD / 32; k++) {
            int d = lane + 32 * k;
            if (k < per && d < hd) acc[k] = fmaf(e, vr[d], acc[k] * corr);
        }
        m = mn;
    }
    if (lane == 0) { sm_m[warp] = m; sm_l[warp] = l; }
#pragma unroll
    for (int k = 0; k < MAX_HD / 32; k++) {
        int d = lane + 32 * k;
        if (k < per && d < hd) sm_acc[warp][d] = acc[k];
    }
    __syncthreads();
    if (warp == 0) {
        float M = -INFINITY;
        for (int w = 0; w < nwarps; w++) M = fmaxf(M, sm_m[w]);
        float L = 0.0f;
        for (int w = 0; w < nwarps; w++) if (sm_m[w] > -INFINITY) L += sm_l[w] * expf(sm_m[w] - M);
        float* o = (float*)g.out + (size_t)t * g.n_head * hd + h * hd;
        for (int k = 0; k < per; k++) {
            int d = lane + 32 * k;
            if (d >= hd) continue;
            float v = 0.0f;
            for (int w = 0; w < nwarps; w++) if (sm_m[w] > -INFINITY) v += sm_acc[w][d] * expf(sm_m[w] - M);
            o[d] = v / L;
        }
    }
}

// ---- Decode (T = 1): split over positions, then combine (flash-decoding) -------------
// attention_split: CTA (head, split) covers positions [split·SPLIT_CHUNK, (split+1)·SPLIT_CHUNK) ∩
// [0, npos) and writes its partial (max, sum, weighted V) to `part`; the last CTA of a head
// to finish (atomic ticket per head, reset by that CTA) merges the head's splits. The grid
// is fixed (splits cover the whole context) so a captured graph works at every position;
// splits past the current position exit at once.

// Merges the `active` splits of head h (the rest are empty): one pass with a running max
// (rescaling the sum and the weighted V as the max grows), thread d owning dim d. The
// partials come from other CTAs: read through L2.
__device__ void combine_head(const AttnSplitArgs& g, int h, int active) {
    int hd = g.head_dim;
    const float* part = (const float*)g.part + (size_t)h * g.n_split * (hd + 2);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float M = -INFINITY, L = 0.0f, v = 0.0f;
#pragma unroll 8
        for (int s = 0; s < active; s++) {
            const float* ps = part + s * (hd + 2);
            float ms = __ldcg(ps), ls = __ldcg(ps + 1), vs = __ldcg(ps + 2 + d);
            if (ms == -INFINITY) continue;
            float mn = fmaxf(M, ms);
            float a = expf(M - mn), b = expf(ms - mn);
            L = L * a + ls * b;
            v = v * a + vs * b;
            M = mn;
        }
        ((float*)g.out)[h * hd + d] = v / L;
    }
}

// One CTA (128 threads, 4 warps) per (query head, split of SPLIT_CHUNK positions): many
// small CTAs with short dependency chains, since at short contexts only a split or two per
// head holds positions. Scores: warp w takes positions w, w+4, ... of the chunk, its lanes
// split the head's dims (float4 each), one warp sum per position, all K loads in flight at
// once. Softmax of the chunk (max, exp, sum) by warp 0. V: thread t accumulates dim t (and
// t + 128) over the chunk, all V loads in flight.
__device__ void attention_split_impl(const AttnSplitArgs& g) {
    __shared__ float se[SPLIT_CHUNK];
    int h = blockIdx.x, sp = blockIdx.y, tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    int hd = g.head_dim, kvw = g.n_head_kv * hd, kvh = h / (g.n_head / g.n_head_kv);
    int npos = *(const int*)g.pos + 1;
    int j0 = sp * SPLIT_CHUNK, n = min(npos - j0, SPLIT_CHUNK);
    float* part = (float*)g.part + ((size_t)h * g.n_split + sp) * (hd + 2);
    if (n <= 0) {
        if (tid == 0) {
            part[0] = -INFINITY;
            part[1] = 0.0f;
        }
        return;
    }
    int nv4 = hd / 4;  // float4s per row (head dims are multiples of 4, at most 256)
    const float4* q4 = (const float4*)((const float*)g.q + (size_t)h * hd);
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    float4 qv[2];
#pragma unroll
    for (int c = 0; c < 2; c++) qv[c] = lane + 32 * c < nv4 ? q4[lane + 32 * c] : zero;
    constexpr int PER_WARP = SPLIT_CHUNK / 4;
    float4 kv[PER_WARP][2];
#pragma unroll
    for (int r = 0; r < PER_WARP; r++) {
        int p = warp + 4 * r;
        const float4* kr = (const float4*)((const float*)g.k_cache + (size_t)(j0 + p) * kvw + kvh * hd);
#pragma unroll
        for (int c = 0; c < 2; c++) kv[r][c] = p < n && lane + 32 * c < nv4 ? kr[lane + 32 * c] : zero;
    }
#pragma unroll
    for (int r = 0; r < PER_WARP; r++) {
        float acc = 0.0f;
#pragma unroll
        for (int c = 0; c < 2; c++)
            acc = fmaf(qv[c].w, kv[r][c].w, fmaf(qv[c].z, kv[r][c].z, fmaf(qv[c].y, kv[r][c].y, fmaf(qv[c].x, kv[r][c].x, acc))));
        acc = warp_sum(acc);
        int p = warp + 4 * r;
        if (lane == 0 && p < n) se[p] = __fmul_rn(acc, g.scale);
    }
    __syncthreads();
    if (warp == 0) {
        float v = lane < n ? se[lane] : -INFINITY;
        float m = warp_max(v);
        float e = lane < n ? expf(v - m) : 0.0f;
        se[lane] = e;
        float l = warp_sum(e);
        if (lane == 0) {
            part[0] = m;
            part[1] = l;
        }
    }
    __syncthreads();
    for (int d = tid; d < hd; d += blockDim.x) {
        const float* vb = (const float*)g.v_cache + (size_t)j0 * kvw + kvh * hd + d;
        float vv[SPLIT_CHUNK];
#pragma unroll
        for (int p = 0; p < SPLIT_CHUNK; p++) vv[p] = p < n ? vb[(size_t)p * kvw] : 0.0f;
        float acc = 0.0f;
#pragma unroll
        for (int p = 0; p < SPLIT_CHUNK; p++) acc = fmaf(se[p], vv[p], acc);
        part[2 + d] = acc;
    }
    // The last of the head's active splits to get here merges them.
    __shared__ bool last;
    int active = min(g.n_split, (npos + SPLIT_CHUNK - 1) / SPLIT_CHUNK);
    __threadfence();
    __syncthreads();
    if (tid == 0) last = atomicAdd((unsigned*)g.ticket + h, 1u) == (unsigned)(active - 1);
    __syncthreads();
    if (!last) return;
    __threadfence();
    combine_head(g, h, active);
    if (tid == 0) ((unsigned*)g.ticket)[h] = 0;
}

