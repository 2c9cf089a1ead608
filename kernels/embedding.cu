// embedding.cu — gather the (exactly dequantized) embedding rows of T tokens.
// CPU reference: src/exec/interp/ops.rs (embedding) via src/quant/dequant.rs.
#include "quant.cuh"

template <class W>
__device__ void embedding_impl(const EmbArgs& g) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < g.T * g.width; i += gridDim.x * blockDim.x) {
        int t = i / g.width, c = i % g.width;
        int tok = ((const int*)g.tokens)[t];
        ((float*)g.out)[i] = W::deq((const u8*)g.w + (size_t)tok * g.row_bytes, c);
    }
}
