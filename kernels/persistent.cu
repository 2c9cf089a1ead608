// persistent.cu — the whole decode step in one launch (issue #11; `--decode-kernel persistent`).
//
// The grid is every CTA that fits on the device at once (occupancy × SMs, sized and checked
// on the host: src/exec/cuda/persistent/). Each CTA walks the same instruction list
// (src/sched/program/ builds it from the fused decode schedule; `Instr` is generated from
// src/codegen/arg_structs.rs) in order. Instruction i has `items` work items; CTA c takes the
// contiguous range [items·c/G, items·(c+1)/G) (row tiles of a matvec, RoPE-pair tiles of
// Q/K/V, (KV head, chunk) attention items, ...). Before its first item it waits until each
// producer instruction it depends on (dep0..dep2) has finished all of its items this launch;
// after its last item it adds its item count to instruction i's counter.
//
// Synchronization: counters in global memory, u32, summed over launches. Launch e (the
// epoch, read from `sync[0]` + 1) is finished with instruction d when ctr[d] reaches
// e·items(d); counters wrap, so "reached" compares by signed difference. A CTA publishes with
// __syncthreads then red.release.gpu by thread 0 (the CTA's writes are ordered before the
// count, as CUTLASS's semaphores do it), and waits by thread 0 polling with relaxed loads,
// then fence.acq_rel.gpu (the acquire; it also drops the SM's stale L1 lines, so every load
// of data produced in the launch — all come after an acquire of their producer — reads
// L2), then __syncthreads. The last CTA to finish bumps `sync[0]` to e, so a replay needs
// no reset.
//
// Deadlock freedom: (1) every CTA is resident at once — the grid never exceeds occupancy ×
// SMs (checked on the host), so a spinning CTA never keeps a CTA it waits for from being
// scheduled; (2) every CTA executes instructions in the same (topological) order, and an
// instruction waits only on earlier ones (program/deps.rs checks deps point backwards); (3) a
// CTA signals an instruction after work that itself waits on nothing later. Hence take the
// lowest-indexed instruction i at which some CTA waits, on producer d < i: every CTA that
// still owes items of d is at an instruction ≤ d < i, so by minimality it is not waiting,
// and it runs to its signal of d; d completes, and the waiter moves on.
//
// Watchdog: a wait at instruction i longer than `timeout_ns` · (1 + i / n_instr)
// (%globaltimer) records PERR_TIMEOUT with the instruction, its producer and the CTA in
// `status`, and every later wait gives up at once, so a broken invariant ends the launch with
// an error the host reports instead of a hang. The limit grows with the instruction so that
// of waits that began together behind one stuck counter — a CTA with no items in the
// instructions between moves straight on to a later wait — the earliest fires first and the
// report names the stuck pair, not a bystander downstream.
//
// Weight streaming across instruction boundaries: on reaching an instruction — before
// waiting for its producers — each CTA issues prefetch.global.L2 over the start of its 1/G
// share of the instruction's weights (`pf_bytes` in all, split over its weights), so the
// memory system keeps reading while the producers finish.
//
// The work itself is the multi-kernel path's device code: matvec tiles and Q/K/V work
// items of matvec.cuh, activation staging (RMSNorm, Q8_0/Q8_K) of numerics.cuh — recomputed
// by every CTA into its shared memory instead of a prep launch — the weight types of
// quant.cuh, the argmax of argmax.cuh, the decode attention of attn_decode.cuh (attention.cu's
// attention_split: same partials, same merge). The per-row arithmetic is the fused path's,
// so parity is at the level of reassociation (matvec K splits, attention splits).
//
// The kernel is a template over the KV cache's element type (KvF16, KvF32 of numerics.cuh),
// one catalogue kernel per type (`persistent_f16`, `persistent_f32`), chosen from the graph's
// KvType as every kernel that touches the cache is: the Q/K/V append stores in that type and
// the attention stages and widens it.
//
// Batching (B ≤ 8 sequences, not implemented): a matvec tile would stage B input rows
// (B × the staging bytes of one) and keep B accumulators per weight row, reading each
// weight once; Q/K/V work items would store B rows at B positions (a `pos` array) into B
// caches (`k_cache`/`v_cache` as arrays of per-sequence bases); attention items become
// (sequence, KV head, chunk), merge items (sequence, head); the argmax items per sequence.
// Instructions, counters and dependencies stay as they are.
#include "matvec.cuh"
#include "attn_decode.cuh"
#include "argmax.cuh"

// Generated from the catalogue by build.rs and appended to this file: from an instruction's
// weight type (GGML id), activation semantics and epilogue to the template instances.
__device__ __forceinline__ int matvec_dispatch(int wtype, int act, int epi, const MatvecArgs& g, const Act& a, int t0, int t1, int tile_rows, float* part);
__device__ __forceinline__ int pair_dot_dispatch(int wtype, int act, const u8* ra, const u8* rb, int K, const Act& a, float& y0, float& y1);
__device__ __forceinline__ int deq_dispatch(int wtype, const u8* row, int i, float& v);

// Register allocation: the kernel is capped at 128 registers a thread (launch bounds), and
// the SwiGLU matvec alone takes about that many. Each instance (and each instruction's
// runner below) is therefore a separate, not inlined function taking its arguments by
// value, so ptxas allocates it on its own: no instance spills under q8 semantics (ptxas -v,
// sm_90); only the f32-semantics SwiGLU of Q4_K/Q5_K spills a few words. (The Q/K/V pair
// dots stay inlined in run_qkv, which spills a little outside them: as separate functions
// they would double ptxas's time for this module, ~50 s for sm_90, which the driver spends
// once when it loads the PTX.)

// Matvec tiles t0 .. t1 of one weight type/semantics/epilogue (called by the dispatch).
template <class W, int ACT, int EPI>
__device__ __noinline__ int matvec_tiles(const MatvecArgs g, const Act a, int t0, int t1, int tile_rows, float* part) {
    if (matvec_tile_rows<W>(g.K, g.ksplit) != tile_rows) return PERR_GEOMETRY;
    // The instruction's pointers reach this (not inlined) function as integers, so ptxas
    // would read through them with generic loads (LD): the weights and outputs are in
    // global memory, and under q8 semantics the staged activations in shared memory
    // (stage_input; every quantized type is staged under q8) — said so, they load with LDG
    // and LDS (persistent_f16, sm_90, scripts/sass-report: 8,219 generic loads -> 5,213).
    __builtin_assume(__isGlobal((const void*)g.w));
    if constexpr (EPI == EPI_SWIGLU) __builtin_assume(__isGlobal((const void*)g.w2));
    if constexpr (EPI == EPI_ADD) __builtin_assume(__isGlobal((const void*)g.extra));
    __builtin_assume(__isGlobal((const void*)g.out));
    if constexpr (ACT == ACT_Q8 && W::QK > 1) {
        if constexpr (NeedsK<W>::v) {
            __builtin_assume(__isShared(a.qk));
            __builtin_assume(__isShared(a.dk));
            __builtin_assume(__isShared(a.bs));
        } else {
            __builtin_assume(__isShared(a.q0));
            __builtin_assume(__isShared(a.d0));
        }
    }
    for (int t = t0; t < t1; t++) matvec_tile<W, ACT, EPI>(g, a, t * tile_rows, part);
    return 0;
}

// ---- Synchronization primitives -----------------------------------------------------

// Spinning reads are relaxed (an acquire load would also drop the SM's L1 lines on every
// poll, under the feet of the other CTA on the SM); one fence.acq_rel after the poll that
// sees the count completes the acquire (SASS: MEMBAR.ALL.GPU + CCTL.IVALL, sm_90).
__device__ __forceinline__ u32 ld_relaxed(const u32* p) {
    u32 v;
    asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void fence_acquire() { asm volatile("fence.acq_rel.gpu;" ::: "memory"); }
// Release: MEMBAR.ALL.GPU + the atomic add (sm_90), after the CTA's __syncthreads.
__device__ __forceinline__ void add_release(u32* p, u32 v) {
    asm volatile("red.release.gpu.global.add.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ u64 global_ns() {
    u64 t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}
__device__ __forceinline__ u32 dynamic_smem_bytes() {
    u32 n;
    asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(n));
    return n;
}
__device__ __forceinline__ void prefetch_l2(const void* p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }
// Counter value `a` has reached `b` (both wrap around 2^32).
__device__ __forceinline__ bool reached(u32 a, u32 b) { return (int)(a - b) >= 0; }

// Records the first error of the launch: code, instruction, detail (status[1..3]).
__device__ void fail(const PersistentArgs& g, int code, int instr, int detail) {
    int* st = (int*)g.status;
    if (atomicCAS(st + 1, 0, code) == 0) {
        st[2] = instr;
        st[3] = detail;
    }
}

// Thread 0: waits until instruction `dep` has finished all its items of launch `epoch`.
// Gives up (PERR_TIMEOUT, detail = dep | CTA << 16) after the watchdog's limit for
// instruction `me`, or at once when an error is already recorded.
__device__ void wait_for(const PersistentArgs& g, const Instr* prog, int me, int dep, u32 epoch) {
    const u32* c = (const u32*)g.ctr + dep;
    const u32 target = epoch * (u32)prog[dep].items;
    if (reached(ld_relaxed(c), target)) {
        fence_acquire();
        return;
    }
    const u64 t0 = global_ns();
    const u64 limit = g.timeout_ns + g.timeout_ns * (u64)me / (u64)max(1, g.n_instr);
    for (u32 n = 1;; n++) {
        if (n > 64) __nanosleep(n > 4096 ? 256 : 32);
        if (reached(ld_relaxed(c), target)) {
            fence_acquire();
            return;
        }
        if ((n & 255) == 0) {
            if (*(volatile int*)((int*)g.status + 1) != 0) return;
            if (global_ns() - t0 > limit) {
                fail(g, PERR_TIMEOUT, me, dep | (int)(blockIdx.x << 16));
                return;
            }
        }
    }
}

// This CTA's 1/G share of `bytes` of weights at `base` (at most `budget` bytes) into L2.
__device__ __forceinline__ void prefetch_share(u64 base, u64 bytes, u64 budget) {
    if (!base || !bytes) return;
    u64 b0 = bytes * blockIdx.x / gridDim.x, b1 = bytes * (blockIdx.x + 1) / gridDim.x;
    b1 = min(b1, b0 + budget);
    for (u64 o = (b0 & ~(u64)127) + (u64)threadIdx.x * 128; o < b1; o += (u64)blockDim.x * 128) prefetch_l2((const u8*)base + o);
}

// ---- Instructions ---------------------------------------------------------------------

// The op input as the matvec reads it, in this CTA's shared memory: RMSNorm-ed when the
// instruction has the norm prologue, then staged as f32 (f32 semantics with a norm), Q8_0
// and/or Q8_K (q8 semantics) — quantize.cu's prep arithmetic, for the whole row. Without a
// norm under f32 semantics the matvec reads x itself. Offsets come from the host
// (program/sizing.rs `Staging`). Every thread calls it; false (error recorded) when the staging
// does not fit the dynamic shared memory of the launch.
__device__ bool stage_input(const PersistentArgs& g, const Instr& in, int me, u8* dsm, double* red, Act& a) {
    const float* x = (const float*)in.x;
    const float* nw = (const float*)in.norm_w;
    const int K = in.K, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    int need = 0;
    if (in.sm_xf >= 0) need = max(need, in.sm_xf + 4 * K);
    if (in.sm_q0 >= 0) need = max(need, max(in.sm_q0 + K, in.sm_d0 + K / 8));
    if (in.sm_qk >= 0) need = max(need, max(in.sm_qk + K, max(in.sm_dk + K / 64, in.sm_bs + K / 4)));
    if ((u32)need > dynamic_smem_bytes()) {
        if (threadIdx.x == 0) fail(g, PERR_GEOMETRY, me, need);
        return false;
    }
    const float scale = nw ? block_rms_scale(x, K, in.eps, red) : 1.0f;
    a = Act{};
    a.xf = x;
    if (in.sm_xf >= 0) {
        float* xf = (float*)(dsm + in.sm_xf);
        for (int i = threadIdx.x; i < K; i += blockDim.x) xf[i] = act_in(x, nw, scale, i);
        a.xf = xf;
    }
    if (in.sm_q0 >= 0) {
        a.q0 = (const i8*)(dsm + in.sm_q0);
        a.d0 = (const float*)(dsm + in.sm_d0);
        stage_q8_0(x, nw, scale, K, (i8*)a.q0, (float*)a.d0, warp, nwarps);
    }
    if (in.sm_qk >= 0) {
        a.qk = (const i8*)(dsm + in.sm_qk);
        a.dk = (const float*)(dsm + in.sm_dk);
        a.bs = (const int*)(dsm + in.sm_bs);
        stage_q8_k(x, nw, scale, K, (i8*)a.qk, (float*)a.dk, (int*)a.bs, warp, nwarps);
    }
    __syncthreads();
    return true;
}

__device__ __noinline__ void run_embed(const PersistentArgs& g, const Instr& in, int me, int t0, int t1) {
    const int tok = *(const int*)g.tokens;
    const u8* row = (const u8*)in.w + (size_t)tok * in.rb;
    for (int t = t0; t < t1; t++) {
        int e = t * EMB_TILE + threadIdx.x;
        if (e >= in.rows) continue;
        float v = 0.0f;
        if (deq_dispatch(in.wtype, row, e, v)) fail(g, PERR_DISPATCH, me, in.wtype);
        ((float*)in.out)[e] = v;
    }
}

__device__ __noinline__ void run_matvec(const PersistentArgs& g, const Instr& in, int me, int t0, int t1, u8* dsm, double* red, float* part) {
    Act a;
    if (!stage_input(g, in, me, dsm, red, a)) return;
    MatvecArgs m = {};
    m.w = in.w;
    m.w2 = in.w2;
    m.out = in.out;
    m.extra = in.extra;
    m.rows = in.rows;
    m.K = in.K;
    m.row_bytes = in.rb;
    m.ksplit = in.ks;
    int err = matvec_dispatch(in.wtype, in.act, in.epi, m, a, t0, t1, in.tile_rows, part);
    if (err && threadIdx.x == 0) fail(g, err, me, in.wtype);
}

template <class KV>
__device__ __noinline__ void run_qkv(const PersistentArgs& g, const Instr& in, int me, int t0, int t1, int pos, u8* dsm, double* red) {
    Act a;
    if (!stage_input(g, in, me, dsm, red, a)) return;
    QkvArgs q = {};
    q.wq = in.w;
    q.wk = in.w2;
    q.wv = in.w3;
    q.bq = in.b1;
    q.bk = in.b2;
    q.bv = in.b3;
    q.q_out = in.out;
    q.k_cache = in.k_cache;
    q.v_cache = in.v_cache;
    q.inv_freq = g.inv_freq;
    q.K = in.K;
    q.n_head = in.n_head;
    q.n_head_kv = in.n_head_kv;
    q.head_dim = in.head_dim;
    q.rb_q = in.rb;
    q.rb_k = in.rb2;
    q.rb_v = in.rb3;
    q.neox = in.neox;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int end = min(t1 * QKV_PAIRS, qkv_items(q));
    for (int it = t0 * QKV_PAIRS + warp; it < end; it += QKV_PAIRS) {
        QkvItem w = qkv_item(q, it);
        int rb;
        const u8* wm = qkv_weights(q, w.which, rb);
        __builtin_assume(__isGlobal(wm));  // weights: global loads (LDG), not generic
        float y0, y1;
        int err = pair_dot_dispatch(w.which == 2 ? in.wtype2 : in.wtype, in.act, wm + (size_t)w.r0 * rb, wm + (size_t)w.r1 * rb, in.K, a, y0, y1);
        if (lane != 0) continue;
        if (err)
            fail(g, err, me, w.which);
        else
            qkv_store<KV>(q, w, y0, y1, pos, pos, 0);
    }
}

// The attention arguments of an attn / attn_merge instruction (attn_decode.cuh reads them);
// false (error recorded) when the shape or the shared memory does not fit the kernel.
__device__ bool attn_args(const PersistentArgs& g, const Instr& in, int me, AttnSplitArgs& a) {
    a = AttnSplitArgs{};
    a.q = in.x;
    a.k_cache = in.k_cache;
    a.v_cache = in.v_cache;
    a.out = in.out;
    a.part = in.op == OP_ATTN ? in.out : in.x;
    a.n_head = in.n_head;
    a.n_head_kv = in.n_head_kv;
    a.head_dim = in.head_dim;
    a.n_split = in.n_split;
    a.scale = in.scale;
    a.nc = in.nc;
    a.row_bytes = in.row_bytes;
    a.stage_bytes = in.stage_bytes;
    const int G = in.n_head_kv > 0 ? in.n_head / in.n_head_kv : 0;
    const bool shape = G >= 1 && G <= ATT_MAX_GROUP && in.head_dim <= ATT_MAX_HD && in.head_dim % 16 == 0 &&
                       (in.nc == 32 || in.nc == ATT_SPLIT_MAX_NC) && in.n_split >= 1;
    const int need = shape ? split_smem_bytes(a, blockDim.x) : 0;
    if (!shape || (u32)need > dynamic_smem_bytes()) {
        if (threadIdx.x == 0) fail(g, PERR_GEOMETRY, me, shape ? need : in.head_dim);
        return false;
    }
    return true;
}

// Items (KV head t / n_split, split t % n_split): attention_split's partials.
template <class KV>
__device__ __noinline__ void run_attn(const PersistentArgs& g, const Instr& in, int me, int t0, int t1, int pos, u8* dsm) {
    AttnSplitArgs a;
    if (!attn_args(g, in, me, a)) return;
    const int npos = pos + 1, per = split_per(npos, a.n_split, a.nc), active = (npos + per - 1) / per;
    for (int t = t0; t < t1; t++) {
        const int kvh = t / a.n_split, sp = t % a.n_split;
        if (sp >= active) continue;  // the same for every thread: no positions in this split
        split_partial<KV>(a, dsm, kvh, sp, npos, per);
        __syncthreads();  // the next item restages the shared memory
    }
}

// Item t: the merge of KV head t's partials (attention_split's merge).
__device__ __noinline__ void run_attn_merge(const PersistentArgs& g, const Instr& in, int me, int t0, int t1, int pos, u8* dsm) {
    AttnSplitArgs a;
    if (!attn_args(g, in, me, a)) return;
    const int npos = pos + 1, per = split_per(npos, a.n_split, a.nc), active = (npos + per - 1) / per;
    for (int t = t0; t < t1; t++) {
        split_merge(a, dsm, t, active);
        __syncthreads();
    }
}

// Chunk maxima: item t covers logits [t·ARGMAX_CHUNK, ...); partials are (value[items],
// index[items]) at `out`.
__device__ __noinline__ void run_argmax(const Instr& in, int t0, int t1, float* bv, int* bi) {
    const float* x = (const float*)in.x;
    float* pv = (float*)in.out;
    int* pi = (int*)(pv + in.items);
    for (int t = t0; t < t1; t++) {
        float best = -INFINITY;
        int idx = 0x7fffffff;
        const int end = min(in.rows, (t + 1) * ARGMAX_CHUNK);
        for (int i = t * ARGMAX_CHUNK + threadIdx.x; i < end; i += blockDim.x) amax_merge(best, idx, __ldcg(x + i), i);
        block_amax(best, idx, bv, bi);
        if (threadIdx.x == 0) {
            pv[t] = best;
            pi[t] = idx;
        }
        __syncthreads();
    }
}

// The greedy token from the `rows` chunk maxima, into status[0].
__device__ __noinline__ void run_argmax_merge(const PersistentArgs& g, const Instr& in, float* bv, int* bi) {
    const float* pv = (const float*)in.x;
    const int* pi = (const int*)(pv + in.rows);
    float best = -INFINITY;
    int idx = 0x7fffffff;
    for (int c = threadIdx.x; c < in.rows; c += blockDim.x) amax_merge(best, idx, __ldcg(pv + c), __ldcg(pi + c));
    block_amax(best, idx, bv, bi);
    if (threadIdx.x == 0) ((int*)g.status)[0] = idx;
}

// ---- The kernel -------------------------------------------------------------------------

template <class KV>
__device__ void persistent_impl(const PersistentArgs& g) {
    extern __shared__ __align__(16) u8 dsm[];
    __shared__ float part[MATVEC_PART_FLOATS];
    __shared__ double red[32];
    __shared__ float bv[32];
    __shared__ int bi[32];
    const Instr* prog = (const Instr*)g.prog;
    u32* sync = (u32*)g.sync;
    // Finished launches before this one: no CTA of this launch bumps it before every CTA
    // has read it (the bump waits for all CTAs to finish).
    const u32 epoch = __ldcg(sync) + 1;
    const int G = gridDim.x, c = blockIdx.x, tid = threadIdx.x;
    const int pos = *(const int*)g.pos;
    unsigned long long* prof = (unsigned long long*)g.prof;
    if (prof && tid == 0) atomicMin(prof, (unsigned long long)global_ns());
    for (int i = 0; i < g.n_instr; i++) {
        const Instr& in = prog[i];
        const u64 budget = g.pf_bytes / max(1, (in.wbytes > 0) + (in.wbytes2 > 0) + (in.wbytes3 > 0));
        prefetch_share(in.w, in.wbytes, budget);
        prefetch_share(in.w2, in.wbytes2, budget);
        prefetch_share(in.w3, in.wbytes3, budget);
        const int t0 = (int)((long long)in.items * c / G), t1 = (int)((long long)in.items * (c + 1) / G);
        if (t0 >= t1) continue;
        if (tid == 0) {
            if (in.dep0 >= 0) wait_for(g, prog, i, in.dep0, epoch);
            if (in.dep1 >= 0) wait_for(g, prog, i, in.dep1, epoch);
            if (in.dep2 >= 0) wait_for(g, prog, i, in.dep2, epoch);
        }
        __syncthreads();
        switch (in.op) {
        case OP_EMBED: run_embed(g, in, i, t0, t1); break;
        case OP_MATVEC: run_matvec(g, in, i, t0, t1, dsm, red, part); break;
        case OP_QKV: run_qkv<KV>(g, in, i, t0, t1, pos, dsm, red); break;
        case OP_ATTN: run_attn<KV>(g, in, i, t0, t1, pos, dsm); break;
        case OP_ATTN_MERGE: run_attn_merge(g, in, i, t0, t1, pos, dsm); break;
        case OP_ARGMAX: run_argmax(in, t0, t1, bv, bi); break;
        case OP_ARGMAX_MERGE: run_argmax_merge(g, in, bv, bi); break;
        default:
            if (tid == 0) fail(g, PERR_DISPATCH, i, in.op);
        }
        __syncthreads();
        if (tid == 0) {
            add_release((u32*)g.ctr + i, (u32)(t1 - t0));
            if (prof) atomicMax(prof + 1 + i, (unsigned long long)global_ns());
        }
    }
    if (tid == 0) {
        __threadfence();
        if (atomicAdd(sync + 1, 1u) + 1u == epoch * (u32)G) atomicExch(sync, epoch);
    }
}
