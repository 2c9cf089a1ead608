// attention.cu — causal grouped-query attention of T query rows (positions pos0..pos0+T)
// over a layer's KV cache. One CTA per (head, query row); its warps split the positions,
// each keeping an online softmax (running max, sum, weighted V), merged at the end.
// Same math as src/exec/interp/ops.rs (attention): scores (q·k)·scale, max-subtracted exp,
// normalised by the sum — only the summation order differs.
#include "common.cuh"

#define MAX_HD 256

struct AttnArgs {
    u64 q, k_cache, v_cache, out;
    u64 pos;  // int [1]: position of query row 0 (device memory)
    int n_head, n_head_kv, head_dim, T;
    float scale;
};

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
// attention_split: CTA (head, split) covers positions [split·chunk, (split+1)·chunk) ∩
// [0, npos) with the same per-warp online softmax, and writes its partial (max, sum,
// weighted V) to `part`; attention_combine merges the splits of each head. The grid is
// fixed (splits cover the whole context) so a captured graph works at every position;
// splits past the current position exit at once.
struct AttnSplitArgs {
    u64 q, k_cache, v_cache, out, pos, part;
    int n_head, n_head_kv, head_dim, chunk, n_split;
    float scale;
};

// One CTA (128 threads) per (KV head, split of SPLIT_CHUNK positions) serves all G query
// heads of the group, so each K/V row is read once. Scores: 4 threads per position, each
// over a quarter of the dims (float4 loads), joined by shuffles. Softmax max and sum per
// head over the chunk. V: thread t accumulates dim t % hd over the positions of its share
// (unrolled loads), shares joined in shared memory.
#define SPLIT_CHUNK 32
#define MAX_G 8
__device__ void attention_split_impl(const AttnSplitArgs& g) {
    __shared__ float sq[MAX_G][MAX_HD];
    __shared__ float se[MAX_G][SPLIT_CHUNK];
    __shared__ float sacc[4][MAX_G][MAX_HD / 2 + 1];
    int kvh = blockIdx.x, sp = blockIdx.y, tid = threadIdx.x;
    int hd = g.head_dim, kvw = g.n_head_kv * hd, G = g.n_head / g.n_head_kv;
    int npos = *(const int*)g.pos + 1;
    int j0 = sp * SPLIT_CHUNK, n = min(npos - j0, SPLIT_CHUNK);
    if (n <= 0) {
        if (tid < G) {
            float* part = (float*)g.part + ((size_t)(kvh * G + tid) * g.n_split + sp) * (hd + 2);
            part[0] = -INFINITY;
            part[1] = 0.0f;
        }
        return;
    }
    // Every loop below has a compile-time trip count (guarded), so its independent loads
    // are issued back to back instead of waiting one memory latency each.
#pragma unroll
    for (int r = 0; r < MAX_G * MAX_HD / 128; r++) {
        int i = tid + 128 * r;
        if (i < G * hd) sq[i / hd][i % hd] = ((const float*)g.q)[(kvh * G + i / hd) * hd + i % hd];
    }
    __syncthreads();
    // Scores: position i = tid / 4, dims quarter qd = tid % 4.
    int i = tid >> 2, qd = tid & 3, q4 = hd / 16;  // float4s per quarter
    float s[MAX_G];
#pragma unroll
    for (int h = 0; h < MAX_G; h++) s[h] = 0.0f;
    if (i < n) {
        const float4* kr = (const float4*)((const float*)g.k_cache + (size_t)(j0 + i) * kvw + kvh * hd) + qd * q4;
        float4 kv[MAX_HD / 16];
#pragma unroll
        for (int c = 0; c < MAX_HD / 16; c++)
            if (c < q4) kv[c] = kr[c];
#pragma unroll
        for (int c = 0; c < MAX_HD / 16; c++) {
            if (c >= q4) break;
            float4 k = kv[c];
            int d = 4 * (qd * q4 + c);
#pragma unroll
            for (int h = 0; h < MAX_G; h++)
                if (h < G) s[h] = fmaf(sq[h][d], k.x, fmaf(sq[h][d + 1], k.y, fmaf(sq[h][d + 2], k.z, fmaf(sq[h][d + 3], k.w, s[h]))));
        }
    }
#pragma unroll
    for (int h = 0; h < MAX_G; h++) {
        s[h] += __shfl_xor_sync(0xffffffffu, s[h], 1);
        s[h] += __shfl_xor_sync(0xffffffffu, s[h], 2);
    }
    if (qd == 0 && i < SPLIT_CHUNK)
#pragma unroll
        for (int h = 0; h < MAX_G; h++)
            if (h < G) se[h][i] = i < n ? __fmul_rn(s[h], g.scale) : -INFINITY;
    __syncthreads();
    // Per-head max and sum over the chunk: warp h handles heads h, h+4, ...
    int warp = tid >> 5, lane = tid & 31;
    for (int h = warp; h < G; h += 4) {
        float v = se[h][lane];
        float m = warp_max(v);
        float e = lane < n ? expf(v - m) : 0.0f;
        se[h][lane] = e;
        float l = warp_sum(e);
        if (lane == 0) {
            float* part = (float*)g.part + ((size_t)(kvh * G + h) * g.n_split + sp) * (hd + 2);
            part[0] = m;
            part[1] = l;
        }
    }
    __syncthreads();
    // V: thread tid handles dim d = tid % hd for the positions p ≡ share (mod shares).
    int shares = blockDim.x / hd, share = tid / hd, d = tid % hd;
    if (share < shares) {
        float acc[MAX_G];
#pragma unroll
        for (int h = 0; h < MAX_G; h++) acc[h] = 0.0f;
        const float* vb = (const float*)g.v_cache + (size_t)j0 * kvw + kvh * hd + d;
        float vv[SPLIT_CHUNK];
#pragma unroll
        for (int k = 0; k < SPLIT_CHUNK; k++) {
            int p = share + k * shares;
            vv[k] = p < n ? vb[(size_t)p * kvw] : 0.0f;
        }
#pragma unroll
        for (int k = 0; k < SPLIT_CHUNK; k++) {
            int p = share + k * shares;
            if (p >= n) break;
            float v = vv[k];
#pragma unroll
            for (int h = 0; h < MAX_G; h++)
                if (h < G) acc[h] = fmaf(se[h][p], v, acc[h]);
        }
#pragma unroll
        for (int h = 0; h < MAX_G; h++) {
            if (h >= G) continue;
            if (shares == 1)
                ((float*)g.part)[((size_t)(kvh * G + h) * g.n_split + sp) * (hd + 2) + 2 + d] = acc[h];
            else
                sacc[share][h][d] = acc[h];
        }
    }
    if (shares > 1) {
        __syncthreads();
        for (int x = tid; x < G * hd; x += blockDim.x) {
            int h = x / hd, dd = x % hd;
            float v = 0.0f;
            for (int k = 0; k < shares; k++) v += sacc[k][h][dd];
            ((float*)g.part)[((size_t)(kvh * G + h) * g.n_split + sp) * (hd + 2) + 2 + dd] = v;
        }
    }
}

// Merges the splits that hold positions (the rest are empty): one pass with a running
// max (rescaling the sum and the weighted V as the max grows), thread d owning dim d.
__device__ void attention_combine_impl(const AttnSplitArgs& g) {
    int h = blockIdx.x, hd = g.head_dim;
    int active = min(g.n_split, (*(const int*)g.pos + 1 + g.chunk - 1) / g.chunk);
    const float* part = (const float*)g.part + (size_t)h * g.n_split * (hd + 2);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float M = -INFINITY, L = 0.0f, v = 0.0f;
#pragma unroll 8
        for (int s = 0; s < active; s++) {
            const float* ps = part + s * (hd + 2);
            float ms = ps[0], ls = ps[1], vs = ps[2 + d];
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
