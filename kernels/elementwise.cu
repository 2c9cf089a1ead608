// elementwise.cu — the small per-element and per-row ops of the unfused graph, over T
// rows: rms_norm, bias_add, add, mul, silu, rope, kv_append (and scale, for fault
// injection). Each mirrors its CPU reference operation for operation: the function of the
// same name in src/exec/interp/ops.rs; kv_append and the scale fault are applied inline by
// the interpreter (src/exec/interp/mod.rs, run_node).
#include "quant.cuh"

// bias_add: y = x + b[col].
__device__ void bias_add_impl(const EltArgs& g) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < g.n; i += gridDim.x * blockDim.x)
        ((float*)g.out)[i] = __fadd_rn(((const float*)g.a)[i], ((const float*)g.b)[i % g.width]);
}
// add: y = a + b.
__device__ void add_impl(const EltArgs& g) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < g.n; i += gridDim.x * blockDim.x)
        ((float*)g.out)[i] = __fadd_rn(((const float*)g.a)[i], ((const float*)g.b)[i]);
}
// mul: y = a · b.
__device__ void mul_impl(const EltArgs& g) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < g.n; i += gridDim.x * blockDim.x)
        ((float*)g.out)[i] = __fmul_rn(((const float*)g.a)[i], ((const float*)g.b)[i]);
}
// scale: y = a · s (fault injection, src/fault.rs: scale=S in place, bias=off as a copy).
__device__ void scale_impl(const EltArgs& g) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < g.n; i += gridDim.x * blockDim.x)
        ((float*)g.out)[i] = __fmul_rn(((const float*)g.a)[i], g.eps);
}
// silu: y = x / (1 + exp(−x)).
__device__ void silu_impl(const EltArgs& g) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < g.n; i += gridDim.x * blockDim.x) {
        ((float*)g.out)[i] = silu(((const float*)g.a)[i]);
    }
}
// rms_norm, one CTA per row: y = (x · scale) · w with the CPU's scale (block_rms_scale).
__device__ void rms_norm_impl(const EltArgs& g) {
    __shared__ double red[32];
    int t = blockIdx.x;
    const float* x = (const float*)g.a + (size_t)t * g.width;
    float scale = block_rms_scale(x, g.width, g.eps, red);
    for (int i = threadIdx.x; i < g.width; i += blockDim.x)
        ((float*)g.out)[(size_t)t * g.width + i] = rms_apply(x[i], scale, ((const float*)g.b)[i]);
}

// rope over T rows at positions pos0.. (rope_pair, numerics.cuh); with g.seq (a batched
// decode step over several sequences), row t at position seq[t][0].
__device__ void rope_impl(const RopeArgs& g) {
    int half = g.head_dim / 2, per_row = g.n_head * half;
    int pos0 = *(const int*)g.pos + g.offset;
    const int* seq = (const int*)g.seq;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < g.T * per_row; i += gridDim.x * blockDim.x) {
        int t = i / per_row, j = i % per_row, h = j / half, k = j % half;
        int base = t * g.n_head * g.head_dim + h * g.head_dim;
        int ia = g.neox ? base + k : base + 2 * k;
        int ib = g.neox ? ia + half : ia + 1;
        float a = ((const float*)g.x)[ia], b = ((const float*)g.x)[ib];
        rope_pair(a, b, seq ? seq[2 * t] + g.offset : pos0 + t, ((const float*)g.inv_freq)[k]);
        ((float*)g.out)[ia] = a;
        ((float*)g.out)[ib] = b;
    }
}

// kv_append: cache rows pos0..pos0+T = x in the cache's element type (KV, numerics.cuh:
// f16 rounds to nearest even); the node's output is the rows as stored. With g.seq (a
// batched decode step), row t goes to cache row seq[t][1] + seq[t][0] (its sequence's first
// row plus its position).
template <class KV>
__device__ void kv_append_impl(const KvArgs& g) {
    int pos0 = *(const int*)g.pos;
    const int* seq = (const int*)g.seq;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < g.T * g.width; i += gridDim.x * blockDim.x) {
        float v = KV::round(((const float*)g.x)[i]);
        int t = i / g.width;
        size_t row = seq ? (size_t)seq[2 * t + 1] + seq[2 * t] : (size_t)pos0 + t;
        KV::store((void*)g.cache, row * g.width + i % g.width, v);
        if (g.out) ((float*)g.out)[i] = v;
    }
}

// qkv_post: a prefill block's bias_add, rope and kv_append nodes after its Q, K and V
// products (the fused group of sched::GroupKind::QkvPost), each element through the
// interpreter's formulas in its order — bias, RoPE at position pos0 + t, the cache's
// rounding — so the same bits as the three kernels. A CTA per row; its threads split a
// row's pairs by frequency k and head, so cos/sin of (position, k) are computed once per
// head group rather than per head.
template <class KV>
__device__ void qkv_post_impl(const QkvPostArgs& g) {
    const int half = g.head_dim / 2, nq = g.n_head * g.head_dim, nkv = g.n_head_kv * g.head_dim;
    const int heads = g.n_head + g.n_head_kv;
    // Head groups: each thread j < groups·half takes frequency j % half of heads
    // j / half, j / half + groups, ... (with half > blockDim, one group and a loop over k).
    const int groups = max(1, (int)blockDim.x / half), lanes = groups * half;
    const int pos0 = *(const int*)g.pos;
    const float *bq = (const float*)g.bq, *bk = (const float*)g.bk, *bv = (const float*)g.bv;
    const float* inv_freq = (const float*)g.inv_freq;
    for (int t = blockIdx.x; t < g.T; t += gridDim.x) {
        const int pos = pos0 + t;
        const float* q = (const float*)g.q + (size_t)t * nq;
        const float* k = (const float*)g.k + (size_t)t * nkv;
        const float* v = (const float*)g.v + (size_t)t * nkv;
        float* qo = (float*)g.q_out + (size_t)t * nq;
        const size_t crow = (size_t)pos * nkv;
        for (int j = threadIdx.x; j < lanes; j += blockDim.x) {
            const int kk = j % half;
            float c, s;
            rope_angle(pos, inv_freq[kk], c, s);
            for (int h = j / half; h < heads; h += groups) {
                const bool isq = h < g.n_head;
                const int base = (isq ? h : h - g.n_head) * g.head_dim;
                const int ia = g.neox ? base + kk : base + 2 * kk, ib = g.neox ? ia + half : ia + 1;
                const float* x = isq ? q : k;
                const float* b = isq ? bq : bk;
                float ya = x[ia], yb = x[ib];
                if (b) {
                    ya = __fadd_rn(ya, b[ia]);
                    yb = __fadd_rn(yb, b[ib]);
                }
                rope_rotate(ya, yb, c, s);
                if (isq) {
                    qo[ia] = ya;
                    qo[ib] = yb;
                } else {
                    KV::store((void*)g.k_cache, crow + ia, ya);
                    KV::store((void*)g.k_cache, crow + ib, yb);
                }
            }
        }
        for (int e = threadIdx.x; e < nkv; e += blockDim.x) {
            float y = v[e];
            if (bv) y = __fadd_rn(y, bv[e]);
            KV::store((void*)g.v_cache, crow + e, y);
        }
    }
}
