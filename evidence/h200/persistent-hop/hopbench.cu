// hopbench.cu — the cost of one dependent hop between "instructions" of a persistent kernel
// (every CTA waits until all CTAs finished the previous instruction), against the same chain
// as kernel launches (programmatic dependent launches, captured in a CUDA graph).
// Build: nvcc -O3 -arch=sm_90 -std=c++17 hopbench.cu -o hopbench -lcuda
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <cuda_runtime.h>
typedef unsigned int u32;
typedef unsigned long long u64;

__device__ __forceinline__ u32 ld_relaxed(const u32* p) { u32 v; asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory"); return v; }
__device__ __forceinline__ u32 ld_acquire(const u32* p) { u32 v; asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory"); return v; }
__device__ __forceinline__ void fence_acq_rel() { asm volatile("fence.acq_rel.gpu;" ::: "memory"); }
__device__ __forceinline__ void red_release(u32* p, u32 v) { asm volatile("red.release.gpu.global.add.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory"); }
__device__ __forceinline__ void red_relaxed(u32* p, u32 v) { asm volatile("red.relaxed.gpu.global.add.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory"); }
__device__ __forceinline__ bool reached(u32 a, u32 b) { return (int)(a - b) >= 0; }

// Work per instruction: each CTA reads `words` u32 of `buf` (written by every CTA in the
// previous instruction: its slice) through L2 and writes its own slice: the data hop.
// MODE: 0 = relaxed poll + nanosleep backoff + fence.acq_rel (persistent.cu today)
//       1 = relaxed poll, no backoff, fence.acq_rel
//       2 = ld.acquire poll, no backoff
//       3 = no wait at all (loop + release only: the floor without the dependency)
//       4 = mode 1 but the release as __threadfence + red.relaxed
//       5 = mode 1, 8 counters (CTA c adds to ctr[i][c%8]; waiters poll all 8 by lanes 0..7)
template <int MODE>
__global__ void __launch_bounds__(256) chain(u32* ctr, u32* buf, int n_instr, int words, u32 epoch) {
    __shared__ u32 sink;
    const int G = gridDim.x, c = blockIdx.x, tid = threadIdx.x;
    u32 acc = 0;
    for (int i = 0; i < n_instr; i++) {
        if (i > 0 && MODE != 3) {
            if (MODE == 5) {
                if (tid < 8) {
                    const u32* p = ctr + (size_t)(i - 1) * 8 + tid;
                    const u32 target = epoch * (u32)((G - tid + 7) / 8);
                    while (!reached(ld_relaxed(p), target)) {}
                    fence_acq_rel();
                }
            } else if (tid == 0) {
                const u32* p = ctr + (size_t)(i - 1) * 8;
                const u32 target = epoch * (u32)G;
                for (u32 n = 1;; n++) {
                    u32 v = MODE == 2 ? ld_acquire(p) : ld_relaxed(p);
                    if (reached(v, target)) break;
                    if (MODE == 0 && n > 64) __nanosleep(n > 4096 ? 256 : 32);
                }
                if (MODE != 2) fence_acq_rel();
            }
            __syncthreads();
        }
        // the data hop: read the previous instruction's slices of another CTA, write ours
        if (words > 0) {
            const u32* src = buf + (size_t)((i + 1) & 1) * G * words + (size_t)((c + 1) % G) * words;
            u32* dst = buf + (size_t)(i & 1) * G * words + (size_t)c * words;
            for (int w = tid; w < words; w += blockDim.x) { u32 v = __ldcg(src + w); acc += v; dst[w] = v + 1; }
        }
        __syncthreads();
        if (tid == 0) {
            u32* p = ctr + (size_t)i * 8 + (MODE == 5 ? c % 8 : 0);
            if (MODE == 4) { __threadfence(); red_relaxed(p, 1); }
            else red_release(p, 1);
        }
    }
    if (acc == 0x12345678) sink = acc;
}

// The launch chain: each kernel waits for the one before (griddepcontrol), reads/writes as above.
__global__ void __launch_bounds__(256) step(u32* buf, int i, int words) {
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;");
    const int G = gridDim.x, c = blockIdx.x, tid = threadIdx.x;
    if (words > 0) {
        const u32* src = buf + (size_t)((i + 1) & 1) * G * words + (size_t)((c + 1) % G) * words;
        u32* dst = buf + (size_t)(i & 1) * G * words + (size_t)c * words;
        u32 acc = 0;
        for (int w = tid; w < words; w += blockDim.x) { u32 v = __ldcg(src + w); acc += v; dst[w] = v + 1; }
    }
}

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("%s: %s\n", #x, cudaGetErrorString(e)); exit(1); } } while (0)

template <int MODE>
float run_chain(int G, int n, int words, u32* ctr, u32* buf, u32& epoch) {
    cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
    float best = 1e9;
    for (int r = 0; r < 6; r++) {
        epoch++;
        cudaEventRecord(a);
        chain<MODE><<<G, 256>>>(ctr, buf, n, words, epoch);
        cudaEventRecord(b);
        CK(cudaEventSynchronize(b));
        float ms; cudaEventElapsedTime(&ms, a, b);
        if (r > 0 && ms < best) best = ms;
    }
    return best;
}

int main(int argc, char** argv) {
    int dev = 0; cudaDeviceProp pr; CK(cudaGetDeviceProperties(&pr, dev));
    const int n = 2000;
    u32 *ctr, *buf;
    CK(cudaMalloc(&ctr, (size_t)n * 8 * 4)); CK(cudaMemset(ctr, 0, (size_t)n * 8 * 4));
    CK(cudaMalloc(&buf, 2u << 24)); CK(cudaMemset(buf, 0, 2u << 24));
    printf("device %s, %d SMs\n", pr.name, pr.multiProcessorCount);
    for (int per_sm : {1, 2}) for (int words : {0, 256, 1536}) {
        const int G = per_sm * pr.multiProcessorCount;
        u32 epoch = 0;
        CK(cudaMemset(ctr, 0, (size_t)n * 8 * 4));
        float t0 = run_chain<0>(G, n, words, ctr, buf, epoch);
        float t1 = run_chain<1>(G, n, words, ctr, buf, epoch);
        float t2 = run_chain<2>(G, n, words, ctr, buf, epoch);
        float t3 = run_chain<3>(G, n, words, ctr, buf, epoch);
        float t4 = run_chain<4>(G, n, words, ctr, buf, epoch);
        CK(cudaMemset(ctr, 0, (size_t)n * 8 * 4)); epoch = 0;
        float t5 = run_chain<5>(G, n, words, ctr, buf, epoch);
        // launch chain in a CUDA graph, programmatic edges
        cudaStream_t s; CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
        cudaGraph_t gr; cudaGraphExec_t ge;
        CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
        for (int i = 0; i < n; i++) {
            cudaLaunchConfig_t cfg = {}; cfg.gridDim = G; cfg.blockDim = 256; cfg.stream = s;
            cudaLaunchAttribute at[1]; at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization; at[0].val.programmaticStreamSerializationAllowed = 1;
            cfg.attrs = at; cfg.numAttrs = 1;
            CK(cudaLaunchKernelEx(&cfg, step, buf, i, words));
        }
        CK(cudaStreamEndCapture(s, &gr)); CK(cudaGraphInstantiate(&ge, gr, 0));
        cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
        float tl = 1e9;
        for (int r = 0; r < 4; r++) { cudaEventRecord(a, s); CK(cudaGraphLaunch(ge, s)); cudaEventRecord(b, s); CK(cudaEventSynchronize(b)); float ms; cudaEventElapsedTime(&ms, a, b); if (r > 0 && ms < tl) tl = ms; }
        printf("G=%3d words=%4d  us/hop: today %.2f  nobackoff %.2f  acquire %.2f  nowait %.2f  fence+relaxed %.2f  8ctrs %.2f  | graph of PDL launches %.2f\n",
               G, words, 1e3 * t0 / n, 1e3 * t1 / n, 1e3 * t2 / n, 1e3 * t3 / n, 1e3 * t4 / n, 1e3 * t5 / n, 1e3 * tl / n);
        cudaGraphExecDestroy(ge); cudaGraphDestroy(gr); cudaStreamDestroy(s);
    }
    return 0;
}
