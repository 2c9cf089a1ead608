// matvec.cu — decode (one token) matrix-vector products over raw GGML blocks.
// The input was prepared by quantize.cu's prep kernel (RMSNorm-ed when the group has the
// norm prologue; quantized to Q8_0/Q8_K exactly as the CPU does under q8 semantics; under
// f32 without a norm prologue it is the node input itself) and is read straight from global
// memory (L1/L2). Lanes stride over a row's units; a row with
// few units shares a warp with other rows; each lane group keeps several rows' weight
// streams in flight; lane 0 of a group (of the first warp of a K split) applies the
// epilogue. CTAs loop over rows.
// CPU reference: a sequence of graph nodes, each defined in src/exec/interp/ops.rs —
// matvec_*: matmul of one row (EPI_NONE; after the final norm: fuse_norm_matmul), with
// EPI_ADD + add (O/down projection + residual: fuse_matmul_add), with EPI_SWIGLU two
// matmuls, silu, mul (gate, up: fuse_norm_gate_up) — fuse_* are the passes in src/sched;
// qkv_*: three matmuls, bias_add, rope (q, k), then the KV-cache write of kv_append
// (src/exec/interp/mod.rs) (fuse_qkv). The RMSNorm before them runs in quantize.cu's prep.
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

// Two rows at once (both weight streams in flight), each summed over the warp.
template <class W, int ACT>
__device__ __forceinline__ void pair_dot(const u8* ra, const u8* rb, int K, const Act& a, float& ya, float& yb) {
    int lane = threadIdx.x & 31;
    float acc0 = 0.0f, acc1 = 0.0f;
    for (int u = lane; u < K / W::UNIT; u += 32) {
        acc0 += ACT == ACT_Q8 ? W::q8(ra, u, a) : W::f32(ra, u, a.xf);
        acc1 += ACT == ACT_Q8 ? W::q8(rb, u, a) : W::f32(rb, u, a.xf);
    }
    ya = warp_sum(acc0);
    yb = warp_sum(acc1);
}

// Rows per lane group by weight type (bounded by the registers a unit's values take).
template <class W> struct RowsPerWarp { static constexpr int v = W::UNIT >= 128 ? 2 : 4; };

// Lanes that share one row: the smallest power of two >= the row's units (a row of few
// units leaves no lanes idle: 32/L rows are worked on side by side). The host mirrors this
// in src/exec/cuda/geometry.rs (matvec_grid).
__device__ __forceinline__ int lanes_per_row(int units) {
    int l = 32;
    while (l > 1 && l / 2 >= units) l /= 2;
    return l;
}

// A CTA of 8 warps works on 8/KS row sets at a time; the KS warps of a row set split the
// row's units between them (interleaved) and join their sums in shared memory. KS > 1
// gives small matrices (few rows, long rows) enough warps to keep the memory busy.
template <class W, int ACT, int EPI>
__device__ void matvec_impl(const MatvecArgs& g) {
    constexpr int R = RowsPerWarp<W>::v;
    __shared__ float part[MATVEC_THREADS / 32][2][R * 32];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
    int KS = g.ksplit, sets = nwarps / KS, set = warp / KS, ks = warp % KS;
    int units = g.K / W::UNIT;
    int L = lanes_per_row(units), groups = 32 / L;
    int li = lane % L, grp = lane / L;
    int rows_per_cta = sets * R * groups;
    const u8* w = (const u8*)g.w;
    Act a = act_view(g.xf, g.q0, g.d0, g.qk, g.dk, g.bs);
    float* out = (float*)g.out;
    for (int base = blockIdx.x * rows_per_cta; base < g.rows; base += gridDim.x * rows_per_cta) {
        int r0 = base + set * R * groups + grp * R;
        int valid = max(0, min(R, g.rows - r0));
        float acc[R], up[R];
#pragma unroll
        for (int r = 0; r < R; r++) acc[r] = up[r] = 0.0f;
        for (int u = ks * L + li; u < units; u += KS * L) {
#pragma unroll
            for (int r = 0; r < R; r++)
                if (r < valid) {
                    const u8* row = w + (size_t)(r0 + r) * g.row_bytes;
                    acc[r] += ACT == ACT_Q8 ? W::q8(row, u, a) : W::f32(row, u, a.xf);
                    if (EPI == EPI_SWIGLU) {
                        const u8* row2 = (const u8*)g.w2 + (size_t)(r0 + r) * g.row_bytes;
                        up[r] += ACT == ACT_Q8 ? W::q8(row2, u, a) : W::f32(row2, u, a.xf);
                    }
                }
        }
        // Sum within each group of L lanes (xor offsets below L stay inside the group).
#pragma unroll
        for (int r = 0; r < R; r++)
            for (int o = L / 2; o > 0; o >>= 1) {
                acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], o);
                if (EPI == EPI_SWIGLU) up[r] += __shfl_xor_sync(0xffffffffu, up[r], o);
            }
        if (KS > 1) {
            if (li == 0)
#pragma unroll
                for (int r = 0; r < R; r++) {
                    part[warp][0][grp * R + r] = acc[r];
                    part[warp][1][grp * R + r] = up[r];
                }
            __syncthreads();
            if (ks == 0 && li == 0)
#pragma unroll
                for (int r = 0; r < R; r++)
                    for (int k = 1; k < KS; k++) {
                        acc[r] += part[warp + k][0][grp * R + r];
                        up[r] += part[warp + k][1][grp * R + r];
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
}

// ---- Fused attention input: RMSNorm → Q/K/V (+bias) → RoPE → KV-cache append --------

// K and V rows go to the cache in its element type KV (numerics.cuh).
template <class WQK, class WV, int ACT, class KV>
__device__ void qkv_impl(const QkvArgs& g) {
    Act a = act_view(g.xf, g.q0, g.d0, g.qk, g.dk, g.bs);
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
            pair_dot<WV, ACT>(w + (size_t)r0 * g.rb_v, w + (size_t)r1 * g.rb_v, g.K, a, y0, y1);
            bias = (const float*)g.bv;
        } else {
            const u8* w = (const u8*)(which == 0 ? g.wq : g.wk);
            int rb = which == 0 ? g.rb_q : g.rb_k;
            pair_dot<WQK, ACT>(w + (size_t)r0 * rb, w + (size_t)r1 * rb, g.K, a, y0, y1);
            bias = (const float*)(which == 0 ? g.bq : g.bk);
        }
        if (lane != 0) continue;
        if (bias) {
            y0 = __fadd_rn(y0, bias[r0]);
            y1 = __fadd_rn(y1, bias[r1]);
        }
        if (which < 2) rope_pair(y0, y1, pos, ((const float*)g.inv_freq)[i]);
        if (which == 0) {
            ((float*)g.q_out)[r0] = y0;
            ((float*)g.q_out)[r1] = y1;
        } else {
            void* cache = (void*)(which == 1 ? g.k_cache : g.v_cache);
            KV::store(cache, (size_t)pos * kvw + r0, y0);
            KV::store(cache, (size_t)pos * kvw + r1, y1);
        }
    }
}
