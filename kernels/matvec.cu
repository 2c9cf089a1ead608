// matvec.cu — decode (one token) matrix-vector products over raw GGML blocks.
// Each CTA first stages its input in shared memory — optionally RMSNorm-ed (fused
// prologue) and, for q8 semantics, quantized to Q8_0/Q8_K exactly as the CPU does — then
// each warp computes whole rows: lanes stride over the row's units, a warp sum closes the
// row, and lane 0 applies the epilogue. CTAs loop over rows (grid sized to the GPU).
// CPU reference: src/exec/interp/ops.rs (matmul, rms_norm, bias_add, add, silu, mul, rope).
#include "quant.cuh"

#define ACT_F32 0
#define ACT_Q8 1
#define PRO_PLAIN 0
#define PRO_NORM 1    // RMSNorm of the input with norm_w before use
#define EPI_NONE 0
#define EPI_ADD 1     // + extra[r]  (bias, or residual)
#define EPI_SWIGLU 2  // silu(W·x)[r] · (W2·x)[r]

struct MatvecArgs {
    u64 w, w2;        // weights (row 0); w2 = up-projection for EPI_SWIGLU
    u64 x;            // input f32 [K]
    u64 norm_w;       // RMSNorm weight [K], or 0 for no prologue
    u64 out;          // f32 [rows]
    u64 extra;        // f32 [rows] for EPI_ADD
    int rows, K, row_bytes;
    float eps;
};

// Shared memory (dynamic): 64 doubles for the norm reduction, then for f32 semantics
// K floats; for q8 semantics Q8_0 scales [K/32] + values [K] when a legacy type is
// involved, and Q8_K scales [K/256] + bsums [K/16] + values [K] when a k-quant is.
// The host computes the same size (src/exec/cuda/launch.rs, `stage_bytes`).

// Stages the input for weight types WA (and WB) under ACT; returns the Act view.
template <class WA, class WB, int ACT>
__device__ Act stage(const float* x, const float* nw, float eps, int K, u8* smem) {
    double* red = (double*)smem;
    u8* p = smem + 64 * sizeof(double);
    float scale = nw ? block_rms_scale(x, K, eps, red) : 1.0f;
    Act a = {0, 0, 0, 0, 0, 0};
    if (ACT == ACT_F32) {
        float* xs = (float*)p;
        stage_f32(x, nw, scale, K, xs);
        a.xf = xs;
    } else {
        if (NeedsL<WA>::v || NeedsL<WB>::v) {
            float* d = (float*)p;
            i8* q = (i8*)(p + (K / 32) * 4);
            stage_q8_0(x, nw, scale, K, q, d);
            a.q0 = q; a.d0 = d;
            p += K + (K / 32) * 4;
        }
        if (NeedsK<WA>::v || NeedsK<WB>::v) {
            float* d = (float*)p;
            int* bs = (int*)(p + (K / 256) * 4);
            i8* q = (i8*)(p + (K / 256) * 4 + (K / 16) * 4);
            stage_q8_k(x, nw, scale, K, q, d, bs);
            a.qk = q; a.dk = d; a.bs = bs;
        }
    }
    __syncthreads();
    return a;
}

template <class W, int ACT>
__device__ __forceinline__ float row_dot(const u8* row, int K, const Act& a) {
    int lane = threadIdx.x & 31;
    float acc = 0.0f;
    for (int u = lane; u < K / W::UNIT; u += 32) acc += ACT == ACT_Q8 ? W::q8(row, u, a) : W::f32(row, u, a.xf);
    return warp_sum(acc);
}

template <class W, int ACT, int PRO, int EPI>
__device__ void matvec_impl(const MatvecArgs& g) {
    extern __shared__ __align__(16) u8 smem[];
    const float* nw = PRO == PRO_NORM ? (const float*)g.norm_w : 0;
    Act a = stage<W, W, ACT>((const float*)g.x, nw, g.eps, g.K, smem);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
    const u8* w = (const u8*)g.w;
    float* out = (float*)g.out;
    for (int r = blockIdx.x * nwarps + warp; r < g.rows; r += gridDim.x * nwarps) {
        float acc = row_dot<W, ACT>(w + (size_t)r * g.row_bytes, g.K, a);
        if (EPI == EPI_SWIGLU) {
            float up = row_dot<W, ACT>((const u8*)g.w2 + (size_t)r * g.row_bytes, g.K, a);
            if (lane == 0) {
                float silu = __fdiv_rn(acc, __fadd_rn(1.0f, expf(-acc)));
                out[r] = __fmul_rn(silu, up);
            }
        } else if (lane == 0) {
            out[r] = EPI == EPI_ADD ? __fadd_rn(acc, ((const float*)g.extra)[r]) : acc;
        }
    }
}

// ---- Fused attention input: RMSNorm → Q/K/V (+bias) → RoPE → KV-cache append --------
struct QkvArgs {
    u64 wq, wk, wv, bq, bk, bv;   // weights, biases (0 = none)
    u64 x, norm_w;                // block input, attn_norm weight
    u64 q_out;                    // f32 [n_head·hd]
    u64 k_cache, v_cache;         // f32 [n_ctx, n_head_kv·hd] of this layer
    u64 inv_freq;                 // f32 [hd/2]
    u64 pos;                      // int [1]: the position (device memory, so a captured
                                  // CUDA graph replays with the current value)
    int K, n_head, n_head_kv, head_dim, rb_q, rb_k, rb_v, neox;
    float eps;
};

// RoPE of one pair, as the CPU: θ = (float)p·inv_freq (one f32 rounding), cos/sin in
// double rounded to float, (a·c − b·s, a·s + b·c) with separate roundings.
__device__ __forceinline__ void rope_pair(float& a, float& b, int pos, float f) {
    float th = __fmul_rn((float)pos, f);
    float c = (float)cos((double)th), s = (float)sin((double)th);
    float ra = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    float rb = __fadd_rn(__fmul_rn(a, s), __fmul_rn(b, c));
    a = ra;
    b = rb;
}

template <class WQK, class WV, int ACT>
__device__ void qkv_impl(const QkvArgs& g) {
    extern __shared__ __align__(16) u8 smem[];
    Act a = stage<WQK, WV, ACT>((const float*)g.x, (const float*)g.norm_w, g.eps, g.K, smem);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
    int half = g.head_dim / 2;
    int pq = g.n_head * half, pk = g.n_head_kv * half;
    int kvw = g.n_head_kv * g.head_dim;
    int pos = *(const int*)g.pos;
    for (int it = blockIdx.x * nwarps + warp; it < pq + 2 * pk; it += gridDim.x * nwarps) {
        // Work item = one pair of output rows (the two members of a RoPE pair).
        int which = it < pq ? 0 : (it < pq + pk ? 1 : 2);
        int j = which == 0 ? it : (which == 1 ? it - pq : it - pq - pk);
        int h = j / half, i = j % half;
        int r0 = g.neox ? h * g.head_dim + i : h * g.head_dim + 2 * i;
        int r1 = g.neox ? r0 + half : r0 + 1;
        float y0, y1;
        const float* bias;
        if (which == 2) {
            const u8* w = (const u8*)g.wv;
            y0 = row_dot<WV, ACT>(w + (size_t)r0 * g.rb_v, g.K, a);
            y1 = row_dot<WV, ACT>(w + (size_t)r1 * g.rb_v, g.K, a);
            bias = (const float*)g.bv;
        } else {
            const u8* w = (const u8*)(which == 0 ? g.wq : g.wk);
            int rb = which == 0 ? g.rb_q : g.rb_k;
            y0 = row_dot<WQK, ACT>(w + (size_t)r0 * rb, g.K, a);
            y1 = row_dot<WQK, ACT>(w + (size_t)r1 * rb, g.K, a);
            bias = (const float*)(which == 0 ? g.bq : g.bk);
        }
        if (lane != 0) continue;
        if (bias) {
            y0 = __fadd_rn(y0, bias[r0]);
            y1 = __fadd_rn(y1, bias[r1]);
        }
        if (which < 2) rope_pair(y0, y1, pos, ((const float*)g.inv_freq)[i]);
        float* dst = which == 0 ? (float*)g.q_out : (float*)(which == 1 ? g.k_cache : g.v_cache) + (size_t)pos * kvw;
        dst[r0] = y0;
        dst[r1] = y1;
    }
}
