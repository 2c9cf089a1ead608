//! The CUDA kernel catalogue, written once. `build.rs` includes this file (it uses only
//! `std`) to generate every kernel's `extern "C"` wrapper and the launch constants below as
//! `#define`s; the crate uses the same types to name, load and launch kernels. (The
//! argument structs are in `arg_structs.rs`, generated for both sides the same way.) A
//! kernel's printed name (`KernelId::name`, e.g. `matvec_q4_k_q8_swiglu`) is built in
//! `name` alone; `graphrun kernels` lists them all.
//!
//! Name scheme: `matvec_{w}_{act}_{epi}`, `qkv_{w_qk}_{w_v}_{act}_{kv}`, `matmul_{w}_{act}`,
//! `mmq_{w}`, `embedding_{w}`, `kv_append_{kv}`, `attention_{kv}`, `attention_split_{kv}`,
//! `persistent_{kv}`, and the plain names of the other kernels.
//!
//! The axes a kernel is chosen by (`WType`, `Act`, `Kv`, `Epi`, `Elt`) and its `Family`
//! are in `axes.rs`, re-exported here.

pub use super::axes::{Act, Elt, Epi, Family, Kv, WType};
use std::fmt;

/// One concrete kernel of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KernelId {
    /// Decode matrix-vector product (kernels/matvec.cu), input prepared by `Prep`.
    Matvec { w: WType, act: Act, epi: Epi },
    /// Decode Q/K/V projections (+bias) → RoPE → KV-cache append (kernels/matvec.cu).
    Qkv {
        qk: WType,
        v: WType,
        act: Act,
        kv: Kv,
    },
    /// `Matvec` over the 1 to `MATVEC_MAX_BATCH` rows of a batched decode step, each weight
    /// unit read once for all of them (kernels/matvec_batch.cu).
    MatvecBatch { w: WType, act: Act, epi: Epi },
    /// `MatvecBatch` in whole rows a warp (every part of the K split summed by one warp, no
    /// barrier), q8 over 64-value units (Q4_K, Q5_K): the host's choice for split rows that
    /// fill the grid (`batch_matvec_whole`; kernels/matvec_batch.cu).
    MatvecBatchWhole { w: WType, epi: Epi },
    /// `MatvecBatch` on tensor cores: 16 weight rows × 8 input rows a warp, one mma.sync
    /// (s8) per 32-value group, q8 over Q4_K/Q5_K: the host's choice at 2 to 8 rows when the
    /// staged rows fit (`batch_matvec_mma`; kernels/matvec_batch.cu).
    MatvecBatchMma { w: WType, epi: Epi },
    /// `Qkv` over the rows of a batched decode step, each row at its own position and cache
    /// slot (kernels/matvec_batch.cu).
    QkvBatch {
        qk: WType,
        v: WType,
        act: Act,
        kv: Kv,
    },
    /// Prefill product over T token rows on CUDA cores (kernels/matmul.cu).
    Matmul { w: WType, act: Act },
    /// Prefill q8 product as a tiled integer GEMM on tensor cores (kernels/mmq.cu).
    Mmq { w: WType },
    /// `Mmq` over a gate/up pair of one weight type, tiles of rows of both, SiLU(gate) · up
    /// in registers (kernels/mmq.cu, `PAIR`).
    MmqPair { w: WType },
    /// `Mmq` over a shared input whose third matrix (V) has another type `v` of the same
    /// activation format (k-quants on Q8_K, legacy types on Q8_0): the third's tiles, then
    /// the first two matrices' (type `w`), in one grid (kernels/mmq.cu, `mmq_mixed_impl`).
    MmqMixed { w: WType, v: WType },
    /// Embedding row gather (kernels/embedding.cu).
    Embedding { w: WType },
    /// An elementwise or per-row op (kernels/elementwise.cu).
    Elt(Elt),
    /// RoPE over T rows (kernels/elementwise.cu).
    Rope,
    /// Append T rows to a KV cache (kernels/elementwise.cu).
    KvAppend { kv: Kv },
    /// Prefill: what follows the Q, K and V products in one launch — the biases, RoPE of Q
    /// and K, the K and V rows into the cache (element type `kv`), Q to its buffer
    /// (kernels/elementwise.cu).
    QkvPost { kv: Kv },
    /// Quantize T activation rows to Q8_0/Q8_K for the prefill GEMMs (kernels/quantize.cu).
    QuantizeQ8,
    /// Decode input preparation: optional RMSNorm prologue, then Q8_0/Q8_K and/or an f32
    /// copy for the matvecs (kernels/quantize.cu).
    Prep,
    /// `Prep` of the attn_out matvec that first merges decode attention's partials (the
    /// deferred merge of a captured single-row step; kernels/quantize.cu, prep_merge): its
    /// own entry, so the plain `prep` keeps its few registers.
    PrepMerge,
    /// Prefill attention, flash-attention style: a CTA takes a tile of query rows of one KV
    /// group and streams the cache through shared memory (kernels/attention.cu).
    Attention { kv: Kv },
    /// Prefill attention over an f16 cache on tensor cores, f32 semantics (Q and P split
    /// into two f16 parts; kernels/attn_prefill_mma.cuh).
    AttentionMma,
    /// Decode attention: a CTA per (KV head, split of positions) serving every query head
    /// of the group, merged by the group's last CTA (kernels/attention.cu).
    AttentionSplit { kv: Kv },
    /// Greedy token on the device (kernels/argmax.cu).
    Argmax,
    /// Sampled token on the device: top-k candidates, temperature, top-p and the host's
    /// uniform draw, as `sample::sample` (kernels/argmax.cu).
    Sample,
    /// A plain streaming read, for `graphrun bench`'s bandwidth ceiling (kernels/bandwidth.cu).
    ReadBandwidth,
    /// The whole decode step in one launch: resident CTAs walk an instruction list
    /// (src/sched/program/) with counter synchronization (kernels/persistent.cu); `kv`:
    /// the cache element its Q/K/V append writes and its attention reads.
    Persistent { kv: Kv },
}

impl KernelId {
    /// Every kernel of the catalogue, in a stable order.
    pub fn all() -> Vec<KernelId> {
        let mut k = Vec::new();
        for w in WType::ALL {
            for &act in w.acts() {
                for epi in Epi::ALL {
                    k.push(KernelId::Matvec { w, act, epi });
                    k.push(KernelId::MatvecBatch { w, act, epi });
                    k.extend(KernelId::batch_whole(w, act, epi));
                    k.extend(KernelId::batch_mma(w, act, epi));
                }
                k.push(KernelId::Matmul { w, act });
            }
            if w.quantized() {
                k.push(KernelId::Mmq { w });
                k.push(KernelId::MmqPair { w });
            }
            k.push(KernelId::Embedding { w });
        }
        for w in WType::ALL {
            for v in WType::ALL {
                if KernelId::mixable(w, v) {
                    k.push(KernelId::MmqMixed { w, v });
                }
            }
        }
        // Q/K share a type; V may differ, but all three are quantized or all float.
        for qk in WType::ALL {
            for v in WType::ALL {
                if qk.quantized() == v.quantized() {
                    for &act in qk.acts() {
                        for kv in Kv::ALL {
                            k.push(KernelId::Qkv { qk, v, act, kv });
                            k.push(KernelId::QkvBatch { qk, v, act, kv });
                        }
                    }
                }
            }
        }
        k.extend(Elt::ALL.map(KernelId::Elt));
        k.extend([
            KernelId::Rope,
            KernelId::QuantizeQ8,
            KernelId::Prep,
            KernelId::PrepMerge,
        ]);
        for kv in Kv::ALL {
            k.extend([
                KernelId::KvAppend { kv },
                KernelId::QkvPost { kv },
                KernelId::Attention { kv },
                KernelId::AttentionSplit { kv },
            ]);
        }
        k.push(KernelId::AttentionMma);
        k.extend([KernelId::Argmax, KernelId::Sample, KernelId::ReadBandwidth]);
        k.extend(Kv::ALL.map(|kv| KernelId::Persistent { kv }));
        k
    }

    /// The kernel's name: its `extern "C"` symbol, and what lists, traces and profiles print.
    pub fn name(&self) -> String {
        match *self {
            KernelId::Matvec { w, act, epi } => {
                format!("matvec_{}_{}_{}", w.name(), act.name(), epi.name())
            }
            KernelId::Qkv { qk, v, act, kv } => {
                format!(
                    "qkv_{}_{}_{}_{}",
                    qk.name(),
                    v.name(),
                    act.name(),
                    kv.name()
                )
            }
            KernelId::MatvecBatch { w, act, epi } => {
                format!("matvec_batch_{}_{}_{}", w.name(), act.name(), epi.name())
            }
            KernelId::MatvecBatchWhole { w, epi } => {
                format!("matvec_batch_whole_{}_q8_{}", w.name(), epi.name())
            }
            KernelId::MatvecBatchMma { w, epi } => {
                format!("matvec_batch_mma_{}_q8_{}", w.name(), epi.name())
            }
            KernelId::QkvBatch { qk, v, act, kv } => {
                format!(
                    "qkv_batch_{}_{}_{}_{}",
                    qk.name(),
                    v.name(),
                    act.name(),
                    kv.name()
                )
            }
            KernelId::Matmul { w, act } => format!("matmul_{}_{}", w.name(), act.name()),
            KernelId::Mmq { w } => format!("mmq_{}", w.name()),
            KernelId::MmqPair { w } => format!("mmq_pair_{}", w.name()),
            KernelId::MmqMixed { w, v } => format!("mmq_{}_v_{}", w.name(), v.name()),
            KernelId::Embedding { w } => format!("embedding_{}", w.name()),
            KernelId::Elt(e) => e.name().to_string(),
            KernelId::Rope => "rope".into(),
            KernelId::KvAppend { kv } => format!("kv_append_{}", kv.name()),
            KernelId::QkvPost { kv } => format!("qkv_post_{}", kv.name()),
            KernelId::QuantizeQ8 => "quantize_q8".into(),
            KernelId::Prep => "prep".into(),
            KernelId::PrepMerge => "prep_merge".into(),
            KernelId::Attention { kv } => format!("attention_{}", kv.name()),
            KernelId::AttentionMma => "attention_mma_f16".into(),
            KernelId::AttentionSplit { kv } => format!("attention_split_{}", kv.name()),
            KernelId::Argmax => "argmax".into(),
            KernelId::Sample => "sample".into(),
            KernelId::ReadBandwidth => "read_bandwidth".into(),
            KernelId::Persistent { kv } => format!("persistent_{}", kv.name()),
        }
    }

    /// What the kernel computes against the interpreter's arithmetic (its semantics), for
    /// `graphrun dump --stage fused`: which activation semantics, which units, and where
    /// its results may differ from the interpreter's (summation order only, or not at all).
    pub fn numerics(&self) -> String {
        let act = |act: Act| match act {
            Act::Q8 => {
                "q8 (the interpreter's --act q8): activations quantized per block (Q8_0/Q8_K), exact integer dot products per block, their scaled f32 sum in another order"
            }
            Act::F32 => {
                "f32 (the interpreter's --act f32): weight blocks dequantized to f32, f32 dot products in another order"
            }
        };
        match *self {
            KernelId::Matvec { act: a, .. }
            | KernelId::MatvecBatch { act: a, .. }
            | KernelId::Matmul { act: a, .. } => format!("{}; CUDA cores", act(a)),
            KernelId::MatvecBatchWhole { .. } => format!("{}; CUDA cores", act(Act::Q8)),
            KernelId::MatvecBatchMma { .. } => format!(
                "{}; the integer sums on tensor cores (mma.sync s8), the same terms and order as the single-row kernel",
                act(Act::Q8)
            ),
            KernelId::Qkv { act: a, .. } | KernelId::QkvBatch { act: a, .. } => format!(
                "{}; CUDA cores; then bias, RoPE and the cache write as the interpreter",
                act(a)
            ),
            KernelId::Mmq { .. } => "q8 on tensor cores (mma.sync s8) over the raw weight blocks and Q8 activations: the per-block integer sums are exact, as the interpreter's --act q8 dot products; in a matmul + add group its epilogue adds the residual (one f32 add, the interpreter's)".into(),
            KernelId::MmqMixed { .. } => "the q8 GEMM over Q, K and a V of another weight type (one launch, each tile of one matrix and type; integer sums exact as the interpreter's --act q8 dot products)".into(),
            KernelId::MmqPair { .. } => "the q8 GEMM over a gate/up pair (one launch, tiles of rows of both; integer sums exact as the interpreter's --act q8 dot products), its epilogue applies silu(gate) · up in registers (the interpreter's silu and mul)".into(),
            KernelId::Attention { .. } => {
                "f32 attention on CUDA cores (online softmax): summation order differs".into()
            }
            KernelId::AttentionMma => "f32 attention on tensor cores (mma.sync f16, f32 accumulators): K and V exact f16 from the cache, Q and P split into f16 hi + lo (~22 bits); summation order differs".into(),
            KernelId::AttentionSplit { .. } => "f32 attention on CUDA cores, split over positions and merged: summation order differs".into(),
            KernelId::Persistent { .. } => "the fused decode kernels' numerics, in one launch".into(),
            KernelId::Prep => "the interpreter's RMSNorm (its sum of squares in another order), then its Q8 quantization or an f32 copy".into(),
            KernelId::PrepMerge => "decode attention's merge (the merging CTA's arithmetic in its order), then the interpreter's Q8 quantization".into(),
            KernelId::QuantizeQ8 => "the interpreter's Q8_0/Q8_K quantization of each row".into(),
            KernelId::Elt(Elt::RmsNorm) => {
                "f32 RMSNorm, the interpreter's formula (its sum of squares in another order)".into()
            }
            KernelId::Argmax => "the interpreter's greedy choice (first maximum)".into(),
            KernelId::Sample => "the host sampler (`sample::sample`): top-k by (logit, id), f64 weights, nucleus and draw in its order; its f64 exp may differ from the host's in the last bit".into(),
            KernelId::ReadBandwidth => "none (a bandwidth probe)".into(),
            KernelId::QkvPost { .. } => "the interpreter's bias_add, rope and kv_append, element by element in its order (f32; an f16 cache rounds as it does): the same bits".into(),
            KernelId::Embedding { .. }
            | KernelId::Elt(_)
            | KernelId::Rope
            | KernelId::KvAppend { .. } => {
                "the interpreter's formula element by element (f32; an f16 cache rounds as it does)".into()
            }
        }
    }

    /// The kernel a batched decode step of more than one row launches in place of this
    /// decode kernel (`MatvecBatch` for `Matvec`, `QkvBatch` for `Qkv`); itself otherwise.
    /// Both read a row's weights and activations in the same order, so a row's result is
    /// the same bits in either (kernels/matvec_batch.cu).
    pub fn batched(self) -> KernelId {
        match self {
            KernelId::Matvec { w, act, epi } => KernelId::MatvecBatch { w, act, epi },
            KernelId::Qkv { qk, v, act, kv } => KernelId::QkvBatch { qk, v, act, kv },
            other => other,
        }
    }

    /// The whole-row batched matvec over `w` under `act` and `epi`, where the catalogue has
    /// one: q8 over 64-value units (Q4_K, Q5_K). `batch_matvec_whole` says when the host
    /// takes it.
    pub fn batch_whole(w: WType, act: Act, epi: Epi) -> Option<KernelId> {
        (act == Act::Q8 && w.quantized() && w.unit() == 64)
            .then_some(KernelId::MatvecBatchWhole { w, epi })
    }

    /// The tensor-core batched matvec over `w` under `act` and `epi`, where the catalogue
    /// has one: q8 over Q4_K and Q5_K (their super-block order, kernels/quant.cuh kq_add).
    /// `batch_matvec_mma` says when the host takes it.
    pub fn batch_mma(w: WType, act: Act, epi: Epi) -> Option<KernelId> {
        (act == Act::Q8 && matches!(w, WType::Q4_K | WType::Q5_K))
            .then_some(KernelId::MatvecBatchMma { w, epi })
    }

    /// Whether a shared-input GEMM launch can take matrices of type `w` with a third of
    /// type `v` (`MmqMixed`): both quantized, different, on the same activation format.
    pub fn mixable(w: WType, v: WType) -> bool {
        w.quantized() && v.quantized() && w != v && w.k_quant() == v.k_quant()
    }

    /// The kernel named `name` (`graphrun kernels --ptx NAME`).
    pub fn parse(name: &str) -> Option<KernelId> {
        KernelId::all().into_iter().find(|k| k.name() == name)
    }

    pub fn family(&self) -> Family {
        match self {
            KernelId::Matvec { .. } | KernelId::Qkv { .. } => Family::Matvec,
            KernelId::MatvecBatch { .. }
            | KernelId::MatvecBatchWhole { .. }
            | KernelId::MatvecBatchMma { .. }
            | KernelId::QkvBatch { .. } => Family::MatvecBatch,
            KernelId::Matmul { .. } => Family::Matmul,
            KernelId::Mmq { .. } | KernelId::MmqPair { .. } | KernelId::MmqMixed { .. } => {
                Family::Mmq
            }
            KernelId::Embedding { .. } => Family::Embedding,
            KernelId::Elt(_)
            | KernelId::Rope
            | KernelId::KvAppend { .. }
            | KernelId::QkvPost { .. } => Family::Elementwise,
            KernelId::QuantizeQ8 | KernelId::Prep | KernelId::PrepMerge => Family::Quantize,
            KernelId::Attention { .. }
            | KernelId::AttentionMma
            | KernelId::AttentionSplit { .. } => Family::Attention,
            KernelId::Argmax | KernelId::Sample => Family::Argmax,
            KernelId::ReadBandwidth => Family::Bandwidth,
            KernelId::Persistent { .. } => Family::Persistent,
        }
    }

    /// The argument struct the kernel takes (one of `ARG_STRUCTS`).
    pub fn args(&self) -> &'static str {
        match self {
            KernelId::Matvec { .. }
            | KernelId::MatvecBatch { .. }
            | KernelId::MatvecBatchWhole { .. }
            | KernelId::MatvecBatchMma { .. } => "MatvecArgs",
            KernelId::Qkv { .. } | KernelId::QkvBatch { .. } => "QkvArgs",
            KernelId::Matmul { .. } => "MatmulArgs",
            KernelId::Mmq { .. } | KernelId::MmqPair { .. } | KernelId::MmqMixed { .. } => {
                "MmqArgs"
            }
            KernelId::Embedding { .. } => "EmbArgs",
            KernelId::Elt(_) => "EltArgs",
            KernelId::Rope => "RopeArgs",
            KernelId::KvAppend { .. } => "KvArgs",
            KernelId::QkvPost { .. } => "QkvPostArgs",
            KernelId::QuantizeQ8 => "QuantizeArgs",
            KernelId::Prep | KernelId::PrepMerge => "PrepArgs",
            KernelId::Attention { .. } => "AttnArgs",
            KernelId::AttentionMma => "AttnMmaArgs",
            KernelId::AttentionSplit { .. } => "AttnSplitArgs",
            KernelId::Argmax => "ArgmaxArgs",
            KernelId::Sample => "SampleArgs",
            KernelId::ReadBandwidth => "ReadArgs",
            KernelId::Persistent { .. } => "PersistentArgs",
        }
    }

    /// Whether the kernel's body calls `grid_dep_enter` itself, after work that does not
    /// depend on the kernel before: the matvec and Q/K/V kernels and the batched matvecs
    /// prefetch weights into L2 (kernels/matvec.cu, kernels/matvec_batch.cu), decode
    /// attention stages the cache rows older than the newest (kernels/attention.cu), `prep`
    /// brings its norm weights into L1 (kernels/quantize.cu); every other wrapper calls it
    /// first (build.rs).
    pub fn enters_in_body(&self) -> bool {
        matches!(
            self,
            KernelId::Matvec { .. }
                | KernelId::Qkv { .. }
                | KernelId::AttentionSplit { .. }
                | KernelId::Prep
                | KernelId::MatvecBatch { .. }
                | KernelId::MatvecBatchWhole { .. }
                | KernelId::MatvecBatchMma { .. }
        )
    }

    /// The C++ template instantiation the wrapper calls.
    pub fn call(&self) -> String {
        match *self {
            KernelId::Matvec { w, act, epi } => {
                format!("matvec_impl<{}, {}, {}>", w.cpp(), act.cpp(), epi.cpp())
            }
            KernelId::Qkv { qk, v, act, kv } => format!(
                "qkv_impl<{}, {}, {}, {}>",
                qk.cpp(),
                v.cpp(),
                act.cpp(),
                kv.cpp()
            ),
            KernelId::MatvecBatch { w, act, epi } => {
                format!(
                    "matvec_batch_impl<{}, {}, {}>",
                    w.cpp(),
                    act.cpp(),
                    epi.cpp()
                )
            }
            KernelId::MatvecBatchWhole { w, epi } => {
                format!(
                    "matvec_batch_whole_impl<{}, {}, {}>",
                    w.cpp(),
                    Act::Q8.cpp(),
                    epi.cpp()
                )
            }
            KernelId::MatvecBatchMma { w, epi } => {
                format!("matvec_batch_mma_impl<{}, {}>", w.cpp(), epi.cpp())
            }
            KernelId::QkvBatch { qk, v, act, kv } => format!(
                "qkv_batch_impl<{}, {}, {}, {}>",
                qk.cpp(),
                v.cpp(),
                act.cpp(),
                kv.cpp()
            ),
            KernelId::Matmul { w, act } => format!("matmul_impl<{}, {}>", w.cpp(), act.cpp()),
            KernelId::Mmq { w } => format!("mmq_impl<{}, false>", w.cpp()),
            KernelId::MmqPair { w } => format!("mmq_impl<{}, true>", w.cpp()),
            KernelId::MmqMixed { w, v } => format!("mmq_mixed_impl<{}, {}>", w.cpp(), v.cpp()),
            KernelId::Embedding { w } => format!("embedding_impl<{}>", w.cpp()),
            KernelId::Elt(e) => format!("{}_impl", e.name()),
            KernelId::ReadBandwidth => "read_bw_impl".into(),
            KernelId::QuantizeQ8 => "quantize_impl".into(),
            KernelId::KvAppend { kv } => format!("kv_append_impl<{}>", kv.cpp()),
            KernelId::QkvPost { kv } => format!("qkv_post_impl<{}>", kv.cpp()),
            KernelId::Attention { kv } => format!("attention_impl<{}>", kv.cpp()),
            KernelId::AttentionMma => "attention_mma_impl".into(),
            KernelId::AttentionSplit { kv } => format!("attention_split_impl<{}>", kv.cpp()),
            KernelId::Persistent { kv } => format!("persistent_impl<{}>", kv.cpp()),
            other => format!("{}_impl", other.name()),
        }
    }

    /// `__launch_bounds__(threads, min CTAs per SM)` of the wrapper, if any. Decode matvecs
    /// stream weights: 4 resident CTAs of 256 threads per SM (at most 64 registers a thread)
    /// keep more loads in flight. Not for the SwiGLU epilogue: with two weight streams it
    /// spills under that cap (7B gate+up 41 -> 51 us on the H100); under q8 its Q4_K
    /// kernel (gate and up sums spread over the quads, kernels/matvec.cuh) takes 3 CTAs (at
    /// most 80 registers, no spill in its unit loop: 7B gate+up 38.4 us at 89 registers and
    /// 2 CTAs, 35.5 at 3; evidence/h200/batched-mma-sb/). Not Q5_K's: its high bits take
    /// registers (126 unbounded, 80 bytes of stack at 80), and no preset measures it.
    /// Attention kernels: at most ATT_THREADS threads, 2 resident CTAs per SM (at most 128
    /// registers a thread), so one CTA's tile loads overlap the other's arithmetic; the
    /// tensor-core prefill attention ATT_MMA_MIN_CTAS of ATT_MMA_THREADS.
    /// The batched decode kernels (8 rows of sums per weight row, activations from shared
    /// or global memory): 2 resident CTAs per SM (at most 128 registers a thread), so the
    /// host's one wave of CTAs is two per SM whatever the register count drifts to; 3 (at
    /// most 80 registers) for the q8 kernels that fit that without spilling in their unit
    /// loop (`batch_matvec_three_ctas`): they wait on latency, and more warps hide more of
    /// it (7B, 8 rows: Q6_K down −13%, logits −8%, SwiGLU −1%;
    /// evidence/h200/batched-stage-planes/). The whole-row kernels (`MatvecBatchWhole`) stay
    /// at 128 registers: at 80 the SwiGLU one spills 6 accumulators in its unit loop (7B
    /// gate+up 84.8 µs at 3 CTAs, 78.5 at 2; evidence/h200/batched-warp-rows/); their bound
    /// is (MATVEC_WIDE_THREADS, 1), the same cap, so the host launches them as CTAs of
    /// MATVEC_THREADS or, staging long rows, MATVEC_WIDE_THREADS (`batch_matvec_wide`).
    /// The persistent kernel runs every code path in one function: PERSIST_MIN_CTAS CTAs
    /// per SM (at most 128 registers a thread), its grid sized at run time from the
    /// occupancy.
    /// The prefill GEMM: 2 resident CTAs of MMQ_THREADS per SM (at most 128 registers a
    /// thread; its shared memory allows two on sm_90), so one CTA's staging overlaps the
    /// other's MMAs.
    pub fn launch_bounds(&self) -> Option<(u32, u32)> {
        match self {
            KernelId::Mmq { .. } | KernelId::MmqPair { .. } | KernelId::MmqMixed { .. } => {
                Some((MMQ_THREADS, 2))
            }
            KernelId::Matvec { epi, .. } if *epi != Epi::Swiglu => Some((MATVEC_THREADS, 4)),
            KernelId::Matvec {
                w: WType::Q4_K,
                act: Act::Q8,
                ..
            } => Some((MATVEC_THREADS, 3)),
            KernelId::MatvecBatch { w, act, epi }
                if *act == Act::Q8 && batch_matvec_three_ctas(*w, *epi) =>
            {
                Some((MATVEC_THREADS, 3))
            }
            KernelId::MatvecBatch { .. } | KernelId::QkvBatch { .. } => Some((MATVEC_THREADS, 2)),
            // Launched with MATVEC_THREADS or MATVEC_WIDE_THREADS: the same 128 registers a
            // thread as (MATVEC_THREADS, 2).
            KernelId::MatvecBatchWhole { .. } => Some((MATVEC_WIDE_THREADS, 1)),
            // SwiGLU keeps two CTAs an SM (123 registers with its load ahead, kernels/
            // matvec_batch.cu MMA_AHEAD); the plain and residual tiles are built for one (159
            // registers): the 7B's and 1.5B's attn_out and down grids are their tiles, at
            // most one CTA an SM (the 7B's down is held to one by its shared memory anyway).
            // Measured so (evidence/h200/batched-mma-ahead/, v3).
            KernelId::MatvecBatchMma { epi, .. } if *epi == Epi::Swiglu => {
                Some((MATVEC_THREADS, 2))
            }
            KernelId::MatvecBatchMma { .. } => Some((MATVEC_THREADS, 1)),
            KernelId::Attention { .. } | KernelId::AttentionSplit { .. } => Some((ATT_THREADS, 2)),
            KernelId::AttentionMma => Some((ATT_MMA_THREADS, ATT_MMA_MIN_CTAS)),
            KernelId::Persistent { .. } => Some((PERSIST_THREADS, PERSIST_MIN_CTAS)),
            _ => None,
        }
    }
}

impl fmt::Display for KernelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

// ---- Launch constants shared by host and kernels (emitted into args.cuh as #defines) ----

/// Threads of a decode matvec CTA (8 warps; kernels/matvec.cu sizes its shared arrays by it).
pub const MATVEC_THREADS: u32 = 256;
/// Rows a batched decode step carries at most (kernels/matvec_batch.cu keeps this many
/// sums per weight row in registers; src/exec/cuda/batch.rs `MAX_BATCH`).
pub const MATVEC_MAX_BATCH: u32 = 8;
/// Weight rows per lane group of the batched matvec (each with `MATVEC_MAX_BATCH` sums).
pub const MATVEC_BATCH_ROWS: u32 = 2;
/// Threads of a whole-row batched matvec CTA whose staged activation rows take more than
/// `MATVEC_BATCH_STAGE_BYTES` (`batch_matvec_wide`): 16 warps, so one CTA per SM, holding
/// the rows once, keeps as many warps streaming weights as two CTAs of MATVEC_THREADS.
pub const MATVEC_WIDE_THREADS: u32 = 2 * MATVEC_THREADS;
/// Prefill GEMM tile: weight rows × tokens per CTA, and the K chunk (kernels/mmq.cu).
pub const MMQ_BM: u32 = 64;
pub const MMQ_BN: u32 = 128;
/// Threads of a prefill GEMM CTA (8 warps of 16 rows × 64 tokens; kernels/mmq.cu).
pub const MMQ_THREADS: u32 = 256;
pub const MMQ_CH: u32 = 128;
/// Dynamic shared memory of the prefill GEMM: `sizeof(MmqSmem)`, asserted in kernels/mmq.cu.
pub const MMQ_SMEM_BYTES: u32 = 101376;
// Checked at compile time: an RTX 4090 (sm_89) allows 99 KB of dynamic shared memory per
// CTA; an H200 SM has 228 KB, 1 KB of it reserved per CTA, for the two CTAs the kernel's
// launch bounds ask for.
const _: () = assert!(MMQ_SMEM_BYTES <= 101_376 && 2 * (MMQ_SMEM_BYTES + 1024) <= 233_472);
/// Attention (kernels/attention.cu). Both kernels run at most ATT_THREADS threads; they
/// handle up to ATT_MAX_GROUP query heads per KV head and head dims up to ATT_MAX_HD (a
/// multiple of 16; the engine checks the model).
pub const ATT_THREADS: u32 = 256;
pub const ATT_MAX_GROUP: u32 = 8;
pub const ATT_MAX_HD: u32 = 128;
/// Prefill tile: ATT_BK keys per step, ATT_KEY_THREADS threads across them, and
/// ATT_ROWS_PER_THREAD query rows per thread (a CTA of n threads takes n / 4 query rows).
/// Shared rows are padded by ATT_PAD floats (conflict-free 16-byte reads).
pub const ATT_BK: u32 = 64;
pub const ATT_KEY_THREADS: u32 = 16;
pub const ATT_ROWS_PER_THREAD: u32 = 4;
pub const ATT_PAD: u32 = 4;
/// Prefill on tensor cores (kernels/attn_prefill_mma.cuh): at most ATT_MMA_THREADS threads
/// (16 query rows per warp), ATT_MMA_BK keys per tile, f16 rows padded by ATT_MMA_PAD
/// halves, and ATT_MMA_HEAD_BYTES of per-row scales and limits before the tiles.
pub const ATT_MMA_THREADS: u32 = 128;
pub const ATT_MMA_BK: u32 = 64;
pub const ATT_MMA_PAD: u32 = 8;
pub const ATT_MMA_HEAD_BYTES: u32 = 512;
/// `__launch_bounds__` minimum resident CTAs of the tensor-core prefill attention: 3 (at
/// most 168 registers a thread: 166 on sm_90, no spills), so an SM with the shared memory
/// for three single-stage CTAs (H100/H200) runs 12 warps rather than 8.
pub const ATT_MMA_MIN_CTAS: u32 = 3;
/// Decode: positions staged per step (at most), and the bytes of the fixed part of its
/// shared memory (`SplitHead`, asserted in kernels/attention.cu): the group's queries, the
/// step's probabilities and the per-head rescale factors.
pub const ATT_SPLIT_MAX_NC: u32 = 64;
pub const ATT_SPLIT_HEAD_BYTES: u32 = 6192;
/// The deferred merge of decode attention's partials in `prep` (kernels/quantize.cu,
/// prep_merge): a CTA of PREP_THREADS threads merges that many output columns (one
/// 256-wide Q8_K block, eight Q8_0 blocks), holding the merge weights of the heads it spans
/// (each head's by one of its warps) in PREP_MERGE_W floats (heads × active splits; the
/// engine defers only where its geometry fits) and loading each column's first
/// PREP_MERGE_PRE partials before the weights are known.
pub const PREP_THREADS: u32 = 256;
pub const PREP_MERGE_W: u32 = 2048;
pub const PREP_MERGE_PRE: u32 = 32;
/// CTAs of the device argmax (kernels/argmax.cu).
pub const ARGMAX_CTAS: u32 = 128;
/// Slots of the host-mapped token ring a chained decode step writes its token to (at its
/// position modulo CHAIN_RING; kernels/argmax.cuh `chain_advance`, src/exec/cuda/chain.rs).
/// The host reads step k's token while step k + 1 runs, so two slots would do; four leave
/// room.
pub const CHAIN_RING: u32 = 4;
/// The device sampler (kernels/argmax.cu): threads of a CTA; logits per CTA (each CTA keeps
/// its slice in registers and selects its top k); the largest top-k it serves; the most CTAs
/// (the last CTA selects from all CTAs' candidates, at most one slice of them, so
/// vocabularies up to SAMPLE_MAX_CTAS · SAMPLE_SLICE = 262,144 tokens).
pub const SAMPLE_THREADS: u32 = 512;
pub const SAMPLE_SLICE: u32 = 4096;
pub const SAMPLE_MAX_K: u32 = 64;
pub const SAMPLE_MAX_CTAS: u32 = 64;
const _: () = assert!(SAMPLE_MAX_CTAS * SAMPLE_MAX_K <= SAMPLE_SLICE);

/// Threads of a persistent-kernel CTA: its matvec tiles are the decode matvec's CTA
/// iterations (kernels/matvec.cuh), so the shape is the same.
pub const PERSIST_THREADS: u32 = MATVEC_THREADS;
/// `__launch_bounds__` minimum resident CTAs per SM of the persistent kernel (so at most
/// 128 registers a thread).
pub const PERSIST_MIN_CTAS: u32 = 2;
/// RoPE pairs per QKV work item of the persistent kernel (one per warp).
pub const QKV_PAIRS: u32 = PERSIST_THREADS / 32;
/// Embedding elements per work item of the persistent kernel (one per thread).
pub const EMB_TILE: u32 = PERSIST_THREADS;
/// Logits per argmax work item of the persistent kernel.
pub const ARGMAX_CHUNK: u32 = 4096;

/// Error codes the persistent kernel writes to its status word (`status[1]`).
pub const PERR_TIMEOUT: u32 = 1;
pub const PERR_GEOMETRY: u32 = 2;
pub const PERR_DISPATCH: u32 = 3;

/// (name, value) of every launch constant, for the generated header.
pub const LAUNCH_CONSTANTS: &[(&str, u32)] = &[
    ("MATVEC_THREADS", MATVEC_THREADS),
    ("MATVEC_MAX_BATCH", MATVEC_MAX_BATCH),
    ("MATVEC_BATCH_ROWS", MATVEC_BATCH_ROWS),
    ("MM_BM", MMQ_BM),
    ("MM_BN", MMQ_BN),
    ("MM_CH", MMQ_CH),
    ("MMQ_SMEM_BYTES", MMQ_SMEM_BYTES),
    ("ATT_THREADS", ATT_THREADS),
    ("ATT_MAX_GROUP", ATT_MAX_GROUP),
    ("ATT_MAX_HD", ATT_MAX_HD),
    ("ATT_BK", ATT_BK),
    ("ATT_KEY_THREADS", ATT_KEY_THREADS),
    ("ATT_ROWS_PER_THREAD", ATT_ROWS_PER_THREAD),
    ("ATT_PAD", ATT_PAD),
    ("ATT_MMA_THREADS", ATT_MMA_THREADS),
    ("ATT_MMA_BK", ATT_MMA_BK),
    ("ATT_MMA_PAD", ATT_MMA_PAD),
    ("ATT_MMA_HEAD_BYTES", ATT_MMA_HEAD_BYTES),
    ("ATT_SPLIT_MAX_NC", ATT_SPLIT_MAX_NC),
    ("ATT_SPLIT_HEAD_BYTES", ATT_SPLIT_HEAD_BYTES),
    ("PREP_THREADS", PREP_THREADS),
    ("PREP_MERGE_W", PREP_MERGE_W),
    ("PREP_MERGE_PRE", PREP_MERGE_PRE),
    ("ARGMAX_CTAS", ARGMAX_CTAS),
    ("CHAIN_RING", CHAIN_RING),
    ("SAMPLE_THREADS", SAMPLE_THREADS),
    ("SAMPLE_SLICE", SAMPLE_SLICE),
    ("SAMPLE_MAX_K", SAMPLE_MAX_K),
    ("SAMPLE_MAX_CTAS", SAMPLE_MAX_CTAS),
    ("PERSIST_THREADS", PERSIST_THREADS),
    ("QKV_PAIRS", QKV_PAIRS),
    ("EMB_TILE", EMB_TILE),
    ("ARGMAX_CHUNK", ARGMAX_CHUNK),
    ("PERR_TIMEOUT", PERR_TIMEOUT),
    ("PERR_GEOMETRY", PERR_GEOMETRY),
    ("PERR_DISPATCH", PERR_DISPATCH),
];

/// Rows one CTA iteration of the decode matvec covers (kernels/matvec.cuh,
/// `matvec_tile_rows`): 8 warps in 8/`ks` row sets, each set `RowsPerWarp` (4) rows per
/// group of lanes, 32/L groups of L lanes, L the smallest power of two covering a row's
/// units (`lanes_per_row`). The host's one copy of that geometry.
pub fn matvec_tile_rows(w: WType, k: usize, ks: usize) -> usize {
    let warps = (MATVEC_THREADS / 32) as usize;
    (warps / ks) * 4 * (32 / matvec_lanes(k / w.unit()))
}

/// Rows one CTA iteration of the batched matvec covers (kernels/matvec_batch.cu,
/// `matvec_batch_tile`): as `matvec_tile_rows` with `MATVEC_BATCH_ROWS` rows per lane group
/// (one under the SwiGLU epilogue: `BatchRows`).
pub fn matvec_batch_tile_rows(w: WType, k: usize, ks: usize, epi: Epi) -> usize {
    let warps = (MATVEC_THREADS / 32) as usize;
    let r = if epi == Epi::Swiglu {
        1
    } else {
        MATVEC_BATCH_ROWS as usize
    };
    (warps / ks) * r * (32 / matvec_lanes(k / w.unit()))
}

/// Rows one warp takes at a time in the whole-row batched matvec (`MatvecBatchWhole`,
/// kernels/matvec_batch.cu `matvec_batch_warp`): `MATVEC_BATCH_ROWS` per group of lanes
/// (one under SwiGLU), 32/L groups of L lanes (one group for the split rows it takes).
pub fn matvec_batch_warp_rows(w: WType, k: usize, epi: Epi) -> usize {
    matvec_batch_tile_rows(w, k, 1, epi) / (MATVEC_THREADS / 32) as usize
}

/// Whether a q8 batched matvec takes whole rows a warp (the `MatvecBatchWhole` kernel: each
/// warp sums every part of the K split `ks` itself, no barrier, no shared partial sums)
/// rather than CTA tiles (`MatvecBatch`: the split over `ks` warps): for 64-value units
/// (Q4_K, Q5_K) split over warps (so the rows take all 32 lanes), when the whole-row tasks
/// fill at least 3/4 of the whole kernel's `warp_slots`. Measured on the H200 at 8 rows
/// (evidence/h200/batched-warp-rows/), whole rows against the tiles:
/// - the 7B's Q4_K gate+up (SwiGLU), attn_out and down: 86.6 → 77.1, 22.7 → 18.4 and
///   85.5 → 76.3 µs a launch (2 CTAs per SM; at 3 the SwiGLU loop spills: 84.8);
/// - its Q6_K down (32-value units: twice the units a row, more activation loads a value
///   from global memory): 76.5 → 143.7 µs;
/// - with every launch whole, the 1.5B served 8 streams 20% slower: its 1,536-row
///   matrices give a third of the warps a task, where the split over warps fills them.
pub fn batch_matvec_whole(
    w: WType,
    act: Act,
    k: usize,
    rows: usize,
    epi: Epi,
    ks: usize,
    warp_slots: usize,
) -> bool {
    // The kernel takes a row on all 32 lanes (matvec_grid splits only such rows; checked
    // here, not assumed).
    let full = matvec_lanes(k / w.unit()) == 32;
    let tasks = rows.div_ceil(matvec_batch_warp_rows(w, k, epi));
    KernelId::batch_whole(w, act, epi).is_some() && ks > 1 && full && 4 * tasks >= 3 * warp_slots
}

/// Bytes of one super-block of staged activation rows in the tensor-core batched matvec
/// (kernels/matvec_batch.cu, MMA_SB_BYTES): 8 groups × 8 rows × 32 q8 values, 8 rows × 8
/// int16 group sums, 8 rows' dk.
pub const MATVEC_MMA_SB_BYTES: usize = 8 * 8 * 32 + 8 * 16 + 8 * 4;

/// Dynamic shared memory of the tensor-core batched matvec (`MatvecBatchMma`) over rows of
/// `k` inputs: the staged rows (MATVEC_MMA_SB_BYTES a super-block, 8 rows whatever nb)
/// and the K split's parts (4 floats a thread).
pub fn batch_mma_smem(k: usize) -> usize {
    k / 256 * MATVEC_MMA_SB_BYTES + MATVEC_THREADS as usize * 4 * 4
}

/// Rows from which a q8 Q4_K/Q5_K batched matvec takes the tensor cores: the MMA computes 8
/// input rows whatever nb. Under SwiGLU from 4 rows; the plain and residual matvecs from 5
/// (at 4 rows their CUDA-core kernels, sums spread over the quads, were faster: 7B, 4
/// streams, 1,120 tok/s against 1,080–1,083); at 2 rows the CUDA-core kernels were faster
/// for all (7B, 2 streams: 607 tok/s against 574). evidence/h200/batched-mma-sb/.
pub fn matvec_mma_min_rows(epi: Epi) -> usize {
    if epi == Epi::Swiglu { 4 } else { 5 }
}

/// Whether a batched matvec of `nb` rows takes the tensor-core kernel (`MatvecBatchMma`):
/// q8 Q4_K/Q5_K (`KernelId::batch_mma`), `matvec_mma_min_rows` to 8 rows, its staged rows
/// within the `max_smem` bytes a CTA may take.
pub fn batch_matvec_mma(
    w: WType,
    act: Act,
    k: usize,
    nb: usize,
    epi: Epi,
    max_smem: usize,
) -> bool {
    KernelId::batch_mma(w, act, epi).is_some()
        && nb >= matvec_mma_min_rows(epi)
        && k.is_multiple_of(256)
        && batch_mma_smem(k) <= max_smem
}

/// Dynamic shared memory of a batched kernel whose only shared array is the staged rows
/// (`batch_matvec_stage_bytes` when `stage`, else none): the whole-row matvec
/// (`MatvecBatchWhole`) and the batched Q/K/V (`QkvBatch`, in its Q/K weight type's layout).
pub fn batch_staged_smem(w: WType, k: usize, nb: usize, stage: bool) -> usize {
    if stage {
        batch_matvec_stage_bytes(w, k, nb)
    } else {
        0
    }
}

/// Whether a q8 batched matvec over `w` is built for 3 resident CTAs per SM (80 registers a
/// thread; `KernelId::launch_bounds`): Q6_K and the legacy types need no more. Q4_K and
/// Q5_K not: their SwiGLU loop, which fit before, spills at 80 registers under kq_add's
/// gathers (1.5B gate+up at 2 rows 16.6 -> 25.7 µs, evidence/h200/batched-mma-sb/call6);
/// their plain and residual kernels, two weight rows a group, spill in both loops.
pub fn batch_matvec_three_ctas(w: WType, _epi: Epi) -> bool {
    !matches!(w, WType::Q4_K | WType::Q5_K) && w.quantized()
}

/// Most bytes of staged activation rows in a batched matvec (`batch_matvec_stage_bytes`):
/// the 7B's K = 3,584 at 8 rows (Q4_K 40,320 bytes, Q6_K 48,384) fits, and with the partial
/// sums two CTAs still fit an SM of 100 KB (an RTX 4090's).
pub const MATVEC_BATCH_STAGE_BYTES: usize = 48 * 1024;

/// Shared memory of `nb` staged q8 activation rows of `k` values of weight type `w`
/// (kernels/matvec_batch.cu, `matvec_batch_impl`; the layout is ld_plane's in
/// kernels/quant.cuh): unit/16 planes of values and one of scales, each holding a 16-byte
/// chunk for every (unit, row) at slot unit·S + row, S = nb made odd (conflict-free reads).
pub fn batch_matvec_stage_bytes(w: WType, k: usize, nb: usize) -> usize {
    let planes = w.unit() / 16 + 1;
    planes * (k / w.unit()) * (nb | 1) * 16
}

/// Dynamic shared memory of a batched matvec (kernels/matvec_batch.cu,
/// `matvec_batch_impl`) over `nb` rows of `k` inputs: the K-split partial sums
/// ([warp][sum | up][lane group][row][b] floats), then, when `stage`, the nb q8 rows
/// (`batch_matvec_stage_bytes`).
pub fn batch_matvec_smem(w: WType, k: usize, epi: Epi, nb: usize, stage: bool) -> usize {
    let warps = (MATVEC_THREADS / 32) as usize;
    let r = if epi == Epi::Swiglu {
        1
    } else {
        MATVEC_BATCH_ROWS as usize
    };
    let groups = 32 / matvec_lanes(k / w.unit());
    let part = warps * 2 * groups * r * MATVEC_MAX_BATCH as usize * 4;
    part + if stage {
        batch_matvec_stage_bytes(w, k, nb)
    } else {
        0
    }
}

/// Whether the batched matvec over `nb` rows of `k` inputs stages them in shared memory:
/// q8 activations of a quantized type, at most MATVEC_BATCH_STAGE_BYTES staged.
pub fn batch_matvec_stages(w: WType, act: Act, k: usize, nb: usize) -> bool {
    batch_rows_fit(w, act, k, nb, MATVEC_BATCH_STAGE_BYTES)
}

/// Whether `nb` rows of `k` activations for weights `w` can be staged at all (q8
/// activations of a quantized type, whole units) in at most `bytes` of shared memory.
fn batch_rows_fit(w: WType, act: Act, k: usize, nb: usize, bytes: usize) -> bool {
    act == Act::Q8
        && w.quantized()
        && k.is_multiple_of(w.unit())
        && batch_matvec_stage_bytes(w, k, nb) <= bytes
}

/// Whether a whole-row batched matvec (`MatvecBatchWhole`) whose `nb` q8 rows of `k`
/// inputs are too long for `batch_matvec_stages` stages them anyway, in CTAs of
/// MATVEC_WIDE_THREADS (one a SM), when they fit the `max_smem` bytes a CTA may take.
pub fn batch_matvec_wide(w: WType, act: Act, k: usize, nb: usize, max_smem: usize) -> bool {
    batch_rows_fit(w, act, k, nb, max_smem)
}

/// The decode attention's shared memory (kernels/attn_decode.cuh, the one copy of the
/// layout for both its launches: attention_split and the persistent kernel) for a CTA of
/// `threads` threads staging `nc` positions per step of a `kv` cache: (staged row stride,
/// bytes of a stage, dynamic bytes in all). `SplitHead`, then an area holding two stages
/// (nc K rows and nc V rows, each padded by 16 bytes) that the slice sums (`threads` × G
/// float4s) and the merge weights (G × n_split floats) reuse.
pub fn attn_split_smem(
    threads: usize,
    nc: usize,
    hd: usize,
    kv: Kv,
    group: usize,
    n_split: usize,
) -> (usize, usize, usize) {
    let row_bytes = hd * kv.bytes() + 16;
    let stage = 2 * nc * row_bytes;
    let area = (2 * stage)
        .max(threads * group * 16)
        .max(group * n_split * 4);
    (row_bytes, stage, ATT_SPLIT_HEAD_BYTES as usize + area)
}

/// Lanes sharing one matvec row of `units` units (kernels/matvec.cuh, `lanes_per_row`).
pub fn matvec_lanes(units: usize) -> usize {
    let mut l = 32;
    while l > 1 && l / 2 >= units {
        l /= 2;
    }
    l
}

/// Instruction kinds of the persistent decode kernel: src/sched/program/ builds them
/// from the fused schedule, kernels/persistent.cu executes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum POp {
    /// Gather the token's embedding row.
    Embed,
    /// Optional RMSNorm prologue, activation staging, matvec with an epilogue.
    Matvec,
    /// RMSNorm → Q/K/V (+bias) → RoPE → KV-cache append.
    Qkv,
    /// Decode attention partials of (KV head, position chunk) work items.
    Attn,
    /// Merge of the attention partials, one work item per query head.
    AttnMerge,
    /// Per-chunk (value, index) maxima of the logits.
    Argmax,
    /// The greedy token from the chunk maxima.
    ArgmaxMerge,
}

impl POp {
    pub const ALL: [POp; 7] = [
        POp::Embed,
        POp::Matvec,
        POp::Qkv,
        POp::Attn,
        POp::AttnMerge,
        POp::Argmax,
        POp::ArgmaxMerge,
    ];
    pub fn name(self) -> &'static str {
        match self {
            POp::Embed => "embed",
            POp::Matvec => "matvec",
            POp::Qkv => "qkv",
            POp::Attn => "attn",
            POp::AttnMerge => "attn_merge",
            POp::Argmax => "argmax",
            POp::ArgmaxMerge => "argmax_merge",
        }
    }
    /// The `#define`d name in the generated args.cuh (its value: the index in `ALL`).
    pub fn cpp(self) -> &'static str {
        match self {
            POp::Embed => "OP_EMBED",
            POp::Matvec => "OP_MATVEC",
            POp::Qkv => "OP_QKV",
            POp::Attn => "OP_ATTN",
            POp::AttnMerge => "OP_ATTN_MERGE",
            POp::Argmax => "OP_ARGMAX",
            POp::ArgmaxMerge => "OP_ARGMAX_MERGE",
        }
    }
    /// The value of `cpp()` (the instruction's `op` field).
    pub fn code(self) -> i32 {
        POp::ALL.iter().position(|p| *p == self).expect("listed") as i32
    }
}
