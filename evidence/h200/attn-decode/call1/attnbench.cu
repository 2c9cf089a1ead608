// attnbench.cu — where do the ~10 µs of a decode attention launch go (#11)?
// `graphrun dump --stage fused --profile` puts attention_split_f16 at 10.2–10.6 µs a layer on
// the 1.5B and 7B presets (28 layers: 23% of a 1.5B decode step), while a one-wave kernel that
// reads 1.3 MB costs 4.1 µs back to back (mvbench2). This times graphrun's generated decode
// attention kernel (the attention family source, included as FAM) on the Qwen2.5 7B / 1.5B /
// 0.5B shapes at 8, 576 and 4,160 positions, back to back with and without programmatic
// launches, against:
//   st0    a copy of attention_split_impl / split_partial that stamps clock64 and
//          %globaltimer at each phase (thread 0 of every CTA) — output compared bit for bit;
//   st1    the same without the merge chain (no fence, ticket or merge: partials only);
//   st2    st0 with the first K/V stage's cp.async issued before griddepcontrol.wait (what
//          overlapping the cache read with the kernel before could gain; here nothing
//          changes between launches, so the output is the same);
//   empty  griddepcontrol only, with the attention kernel's grid, threads and shared memory;
//   empty0 the same without dynamic shared memory.
// Build: nvcc -O3 -arch=sm_90 -std=c++17 -DFAM='"fam_att.cu"' attnbench.cu -o attnbench
#include FAM
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <algorithm>
#include <cuda_runtime.h>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e)); exit(1); } } while (0)

#define NST 12  // stamps per CTA: 0 entry gt, 1 exit gt, 2.. clock64 at phases
__device__ __forceinline__ u64 gtime() { u64 t; asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); return t; }
#define STAMP(k) do { if (my) my[k] = clock64(); } while (0)

// split_partial of attn_decode.cuh with stamps (3: stage issued + q, 4: first stage landed,
// 5: first scores done, 6: stages done, 7: partial written).
template <class KV>
__device__ void split_partial_st(const AttnSplitArgs& g, u8* smem, int kvh, int sp, int npos, int per, u64* my, bool staged) {
    constexpr int MG = ATT_MAX_GROUP;
    SplitHead& S = *(SplitHead*)smem;
    u8* stage = smem + sizeof(SplitHead);
    const int tid = threadIdx.x, nt = blockDim.x;
    const int warp = tid >> 5, lane = tid & 31;
    const int hd = g.head_dim, nd4 = hd / 4, G = g.n_head / g.n_head_kv, nc = g.nc;
    const int j0 = sp * per, j1 = min(j0 + per, npos), nst = (j1 - j0 + nc - 1) / nc;
    float* part = (float*)g.part;
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (!staged) split_stage<KV>(g, stage, kvh, j0, j1);
    for (int i = tid; i < G * hd; i += nt) S.q[i / hd][i % hd] = ((const float*)g.q)[(size_t)kvh * G * hd + i];
    STAMP(3);
    float m = -INFINITY, l = 0.0f;
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
        if (c == 0) STAMP(4);
        const int jc = j0 + c * nc;
        if (warp < G) {
            float s[2], mx = -INFINITY;
#pragma unroll
            for (int u = 0; u < 2; u++) {
                int jj = lane + 32 * u;
                s[u] = -INFINITY;
                if (jj < nc && jc + jj < j1) {
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
        if (c == 0) STAMP(5);
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
        __syncthreads();
    }
    STAMP(6);
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
    STAMP(7);
}

// attention_split_impl with stamps (2: after the wait, 8: ticket taken, 9: merge done).
template <class KV, int MODE>
__global__ void __launch_bounds__(256, 2) att_st(AttnSplitArgs g, u64* st) {
    u64 gt0 = gtime();
    extern __shared__ float4 att_smem[];
    u8* smem = (u8*)att_smem;
    SplitHead& S = *(SplitHead*)smem;
    const int kvh = blockIdx.x, sp = blockIdx.y, tid = threadIdx.x;
    u64* my = tid == 0 ? st + (size_t)(blockIdx.y * gridDim.x + blockIdx.x) * NST : nullptr;
    if (my) { my[0] = gt0; for (int k = 2; k < NST; k++) my[k] = 0; my[10] = clock64(); }
    bool staged = false;
    if (MODE == 2) {
        int np = *(const int*)g.pos + 1;
        int per = split_per(np, g.n_split, g.nc);
        if (sp < (np + per - 1) / per) {
            split_stage<KV>(g, smem + sizeof(SplitHead), kvh, sp * per, min(sp * per + per, np));
            staged = true;
        }
    }
    grid_dep_wait();
    grid_dep_launch();
    STAMP(2);
    int npos = *(const int*)g.pos + 1;
    const int per = split_per(npos, g.n_split, g.nc);
    const int active = (npos + per - 1) / per;
    if (sp >= active) { if (my) my[1] = gtime(); return; }
    split_partial_st<KV>(g, smem, kvh, sp, npos, per, my, staged);
    if (MODE == 1) { if (my) my[1] = gtime(); return; }
    __threadfence();
    __syncthreads();
    if (tid == 0) S.last = atomicAdd((unsigned*)g.ticket + kvh, 1u) == (unsigned)(active - 1);
    __syncthreads();
    STAMP(8);
    if (!S.last) { if (my) my[1] = gtime(); return; }
    __threadfence();
    split_merge(g, smem, kvh, active);
    if (tid == 0) ((unsigned*)g.ticket)[kvh] = 0;
    STAMP(9);
    if (my) my[1] = gtime();
}

__global__ void __launch_bounds__(256, 2) empty_k(int) { grid_dep_enter(); }

__global__ void fill_f16(u16* p, size_t n, u32 seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        u32 x = (u32)i * 2654435761u ^ seed;
        x ^= x >> 13; x *= 0x5bd1e995u; x ^= x >> 15;
        p[i] = f32_to_f16(((int)(x & 0xffff) - 32768) / 32768.0f);
    }
}
__global__ void fill_f32(float* p, size_t n, u32 seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        u32 x = (u32)i * 2654435761u ^ seed;
        x ^= x >> 13; x *= 0x5bd1e995u; x ^= x >> 15;
        p[i] = ((int)(x & 0xffff) - 32768) / 16384.0f;
    }
}

static bool g_pdl = true;
static int g_sms = 0;

struct Shape { const char* name; int nh, nkv, hd; };

enum { V_GEN, V_ST0, V_ST1, V_ST2, V_EMPTY, V_EMPTY0, NV };
static const char* vname[NV] = {"gen", "st0", "st1", "st2", "empty", "empty0"};

struct Setup {
    AttnSplitArgs a;
    dim3 grid;
    int smem;
    u64* st;
};

static void launch(const Setup& s, int v, u64* st) {
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at;
    cfg.numAttrs = g_pdl ? 1 : 0;
    cfg.gridDim = s.grid;
    cfg.blockDim = dim3(ATT_THREADS);
    cfg.dynamicSmemBytes = v == V_EMPTY0 ? 0 : s.smem;
    cfg.stream = 0;
    switch (v) {
    case V_GEN: CK(cudaLaunchKernelEx(&cfg, attention_split_f16, s.a)); break;
    case V_ST0: CK(cudaLaunchKernelEx(&cfg, att_st<KvF16, 0>, s.a, st)); break;
    case V_ST1: CK(cudaLaunchKernelEx(&cfg, att_st<KvF16, 1>, s.a, st)); break;
    case V_ST2: CK(cudaLaunchKernelEx(&cfg, att_st<KvF16, 2>, s.a, st)); break;
    default: CK(cudaLaunchKernelEx(&cfg, empty_k, 0)); break;
    }
}

static double time_us(const Setup& s, int v, int reps) {
    static cudaEvent_t e0 = nullptr, e1 = nullptr;
    if (!e0) { CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1)); }
    for (int i = 0; i < 20; i++) launch(s, v, s.st);
    CK(cudaEventRecord(e0));
    for (int i = 0; i < reps; i++) launch(s, v, s.st);
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    return 1000.0 * ms / reps;
}

int main(int argc, char** argv) {
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    g_sms = prop.multiProcessorCount;
    int clk_khz = 0;
    CK(cudaDeviceGetAttribute(&clk_khz, cudaDevAttrClockRate, 0));
    printf("device %s, %d SMs, clock attr %d MHz\n", prop.name, g_sms, clk_khz / 1000);
    Shape shapes[] = {{"7b", 28, 4, 128}, {"1.5b", 12, 2, 128}, {"0.5b", 14, 2, 64}};
    int nposes[] = {8, 576, 4160};
    const int n_ctx = 8192;
    void (*fns[])(AttnSplitArgs, u64*) = {att_st<KvF16, 0>, att_st<KvF16, 1>, att_st<KvF16, 2>};
    for (const Shape& sh : shapes) {
        const int G = sh.nh / sh.nkv, n_split = (g_sms + sh.nkv - 1) / sh.nkv, nc = 64;
        const int row_bytes = sh.hd * 2 + 16, stage = 2 * nc * row_bytes;
        const int smem = ATT_SPLIT_HEAD_BYTES + std::max(2 * stage, std::max(ATT_THREADS * G * 16, G * n_split * 4));
        CK(cudaFuncSetAttribute(attention_split_f16, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        for (auto f : fns) CK(cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        CK(cudaFuncSetAttribute(empty_k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        size_t kvn = (size_t)n_ctx * sh.nkv * sh.hd;
        u16 *k, *v; float *q, *out, *part; unsigned* ticket; int* pos; u64 *stA, *stB;
        CK(cudaMalloc(&k, kvn * 2)); CK(cudaMalloc(&v, kvn * 2));
        CK(cudaMalloc(&q, sh.nh * sh.hd * 4)); CK(cudaMalloc(&out, sh.nh * sh.hd * 4));
        CK(cudaMalloc(&part, (size_t)sh.nh * n_split * (sh.hd + 4) * 4));
        CK(cudaMalloc(&ticket, 64 * 4)); CK(cudaMemset(ticket, 0, 64 * 4));
        CK(cudaMalloc(&pos, 4));
        size_t nst = (size_t)sh.nkv * n_split * NST;
        CK(cudaMalloc(&stA, nst * 8)); CK(cudaMalloc(&stB, nst * 8));
        fill_f16<<<512, 256>>>(k, kvn, 1); fill_f16<<<512, 256>>>(v, kvn, 2); fill_f32<<<64, 256>>>(q, sh.nh * sh.hd, 3);
        CK(cudaDeviceSynchronize());
        Setup s;
        s.a = AttnSplitArgs{};
        s.a.q = (u64)q; s.a.k_cache = (u64)k; s.a.v_cache = (u64)v; s.a.out = (u64)out; s.a.pos = (u64)pos;
        s.a.part = (u64)part; s.a.ticket = (u64)ticket; s.a.seq = 0;
        s.a.n_head = sh.nh; s.a.n_head_kv = sh.nkv; s.a.head_dim = sh.hd; s.a.n_split = n_split;
        s.a.scale = 1.0f / sqrtf((float)sh.hd); s.a.nc = nc; s.a.row_bytes = row_bytes; s.a.stage_bytes = stage;
        s.grid = dim3(sh.nkv, n_split);
        s.smem = smem;
        s.st = stA;
        printf("\n== %s: %d heads, %d KV heads, hd %d, grid %dx%d, %d B shared\n", sh.name, sh.nh, sh.nkv, sh.hd, sh.nkv, n_split, smem);
        for (int np : nposes) {
            int p = np - 1;
            CK(cudaMemcpy(pos, &p, 4, cudaMemcpyHostToDevice));
            std::vector<float> ref(sh.nh * sh.hd), got(sh.nh * sh.hd);
            g_pdl = false;
            launch(s, V_GEN, stA); CK(cudaDeviceSynchronize());
            CK(cudaMemcpy(ref.data(), out, ref.size() * 4, cudaMemcpyDeviceToHost));
            const char* same[NV] = {"", "", "", "", "", ""};
            for (int vv : {V_ST0, V_ST2}) {
                CK(cudaMemset(out, 0, ref.size() * 4));
                launch(s, vv, stA); CK(cudaDeviceSynchronize());
                CK(cudaMemcpy(got.data(), out, got.size() * 4, cudaMemcpyDeviceToHost));
                same[vv] = memcmp(ref.data(), got.data(), ref.size() * 4) == 0 ? "bits=" : "DIFFER";
            }
            printf("npos %5d:", np);
            for (int pdl = 1; pdl >= 0; pdl--) {
                g_pdl = pdl;
                printf("  %s", pdl ? "pdl" : "plain");
                for (int vv = 0; vv < NV; vv++) printf(" %s %.2f%s", vname[vv], time_us(s, vv, 200), same[vv][0] && pdl ? same[vv] : "");
            }
            printf("  (us/launch)\n");
            // Stamps: two consecutive programmatic launches of st0 after 50 warm ones.
            g_pdl = true;
            for (int i = 0; i < 50; i++) launch(s, V_ST0, stB);
            launch(s, V_ST0, stA);
            launch(s, V_ST0, stB);
            CK(cudaDeviceSynchronize());
            std::vector<u64> A(nst), B(nst);
            CK(cudaMemcpy(A.data(), stA, nst * 8, cudaMemcpyDeviceToHost));
            CK(cudaMemcpy(B.data(), stB, nst * 8, cudaMemcpyDeviceToHost));
            auto span = [&](const std::vector<u64>& X, u64& t0, u64& t1) {
                t0 = ~0ull; t1 = 0;
                for (size_t c = 0; c < nst / NST; c++) { t0 = std::min(t0, X[c * NST]); t1 = std::max(t1, X[c * NST + 1]); }
            };
            u64 a0, a1, b0, b1;
            span(A, a0, a1);
            span(B, b0, b1);
            printf("   st0 stamps: launch A %.2f us first entry to last exit; B starts %.2f us after A's last exit, lasts %.2f us\n",
                   (a1 - a0) / 1e3, ((double)b0 - (double)a1) / 1e3, (b1 - b0) / 1e3);
            // Per phase (clock64 deltas in ns, using the CTA's own cycles/ns), for the merging
            // CTA of KV head 0 and the mean over the other active CTAs.
            const char* ph[] = {"wait", "stage+q issued", "first stage landed", "scores", "rest of stages+PV", "partial written", "fence+ticket", "merge"};
            int idx[] = {2, 3, 4, 5, 6, 7, 8, 9};
            for (int which = 0; which < 2; which++) {
                const std::vector<u64>& X = which ? B : A;
                double sum[8] = {0}; int cnt = 0; double mg[8] = {0}; bool have = false; double entry_off = 0, mg_entry = 0;
                u64 x0, x1; span(X, x0, x1);
                for (size_t c = 0; c < nst / NST; c++) {
                    const u64* r = &X[c * NST];
                    if (!r[7]) continue;  // inactive split
                    double ns_per_cyc = (double)(r[1] - r[0]) / (double)((r[9] ? r[9] : r[8] ? r[8] : r[7]) - r[10] + 1);
                    double d[8]; u64 prev = r[10];
                    for (int i = 0; i < 8; i++) { u64 t = r[idx[i]] ? r[idx[i]] : prev; d[i] = (t - prev) * ns_per_cyc; prev = t; }
                    if (r[9] && c % (size_t)sh.nkv == 0 && !have) { for (int i = 0; i < 8; i++) mg[i] = d[i]; have = true; mg_entry = (r[0] - x0) / 1e3; }
                    for (int i = 0; i < 8; i++) sum[i] += d[i];
                    entry_off += (r[0] - x0) / 1e3;
                    cnt++;
                }
                printf("   launch %c, %d active CTAs, mean entry %.2f us after the first; phases (ns) mean / merging CTA (entry %.2f us):", which ? 'B' : 'A', cnt, cnt ? entry_off / cnt : 0, mg_entry);
                for (int i = 0; i < 8; i++) printf(" %s %.0f/%.0f;", ph[i], cnt ? sum[i] / cnt : 0, mg[i]);
                printf("\n");
            }
        }
        cudaFree(k); cudaFree(v); cudaFree(q); cudaFree(out); cudaFree(part); cudaFree(ticket); cudaFree(pos); cudaFree(stA); cudaFree(stB);
    }
    return 0;
}
