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
    for (int k = 0; k < per; k++) {
        int d = lane + 32 * k;
        qv[k] = d < hd ? q[d] : 0.0f;
        acc[k] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int j = warp; j < npos; j += nwarps) {
        const float* kr = (const float*)g.k_cache + (size_t)j * kvw + kvh * hd;
        float s = 0.0f;
        for (int k = 0; k < per; k++) {
            int d = lane + 32 * k;
            if (d < hd) s = fmaf(qv[k], kr[d], s);
        }
        s = __fmul_rn(warp_sum(s), g.scale);
        float mn = fmaxf(m, s);
        float corr = expf(m - mn), e = expf(s - mn);
        l = l * corr + e;
        const float* vr = (const float*)g.v_cache + (size_t)j * kvw + kvh * hd;
        for (int k = 0; k < per; k++) {
            int d = lane + 32 * k;
            if (d < hd) acc[k] = fmaf(e, vr[d], acc[k] * corr);
        }
        m = mn;
    }
    if (lane == 0) { sm_m[warp] = m; sm_l[warp] = l; }
    for (int k = 0; k < per; k++) {
        int d = lane + 32 * k;
        if (d < hd) sm_acc[warp][d] = acc[k];
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
