//! The op vocabulary of the graph. Each op's exact arithmetic is defined by its CPU
//! reference in `src/exec/interp/ops.rs` (same name; `kv_append` is inline in
//! `src/exec/interp/mod.rs`) and mirrored on the GPU by the kernels `sched::node_kernels`
//! names for it (`kernels/README.md` says what each kernel mirrors).

use crate::model::RopeType;
use serde::{Deserialize, Serialize};

/// How a quantized matmul treats its f32 input: the node's choice, printed in dumps and
/// traces. The exact arithmetic of each is at `src/exec/interp/ops.rs` (`matmul`); they
/// differ by ~0.1% per matmul, and `contracts/trace_cross_semantics.yaml` bounds the drift.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ActSemantics {
    /// Dequantize weight blocks to f32 and dot with the f32 activations.
    F32,
    /// Quantize the activation row per block (Q8_0 / Q8_1 / Q8_K) and take integer dot
    /// products, as llama.cpp's CPU backend does.
    Q8,
}

impl ActSemantics {
    pub fn name(self) -> &'static str {
        match self {
            ActSemantics::F32 => "f32",
            ActSemantics::Q8 => "q8",
        }
    }
}

/// Element type of the KV cache, a property of the graph (its kv_append and attention
/// nodes carry it). K and V rows are rounded to it when appended — f16: round to nearest
/// even, exactly as the GPU stores them — and read back exactly by every executor. f16 is
/// what llama.cpp keeps (half the bytes read per decode step at depth); f32 keeps every
/// value as computed.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum KvType {
    #[default]
    F16,
    F32,
}

impl KvType {
    pub fn name(self) -> &'static str {
        match self {
            KvType::F16 => "f16",
            KvType::F32 => "f32",
        }
    }

    /// The value the cache holds for `v`.
    pub fn round(self, v: f32) -> f32 {
        match self {
            KvType::F16 => half::f16::from_f32(v).to_f32(),
            KvType::F32 => v,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KvKind {
    K,
    V,
}

/// One graph operation. Every node's output is an f32 tensor of shape `[T, width]`, where T
/// is the number of token rows of the step (T = prompt length in prefill, 1 in decode).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Op {
    /// Gather one (dequantized) row of the embedding matrix per input token.
    Embedding,
    /// y = (x · 1/sqrt(mean(x²) + eps)) · w, per row.
    RmsNorm { eps: f32 },
    /// y = x · Wᵀ with W `[out, in]` (raw GGML blocks), per row.
    MatMul { act: ActSemantics },
    /// y = x + b, per row.
    BiasAdd,
    /// Rotary position embedding over `n_head` heads of `head_dim`, positions from the step.
    Rope {
        rope: RopeType,
        base: f32,
        n_head: usize,
        head_dim: usize,
    },
    /// Append the step's rows to layer `layer`'s K or V cache, rounded to the cache's
    /// element type `kv`; output = the rows as stored.
    KvAppend {
        layer: usize,
        cache: KvKind,
        kv: KvType,
    },
    /// Causal GQA attention of the step's queries over layer `layer`'s cache (elements of
    /// type `kv`, read exactly).
    Attention {
        layer: usize,
        n_head: usize,
        n_head_kv: usize,
        head_dim: usize,
        scale: f32,
        kv: KvType,
    },
    /// y = x · sigmoid(x).
    Silu,
    /// y = a · b elementwise.
    Mul,
    /// y = a + b elementwise (residual connections).
    Add,
}

impl Op {
    /// The op's name: shared by the CPU reference function and, for the unfused ops, the
    /// kernel (`grep -r rms_norm` finds both; fused kernels are named by the sched pass).
    /// Parity bands are per activation semantics, not per op (`contracts/gpu_parity.yaml`).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Embedding => "embedding",
            Op::RmsNorm { .. } => "rms_norm",
            Op::MatMul { .. } => "matmul",
            Op::BiasAdd => "bias_add",
            Op::Rope { .. } => "rope",
            Op::KvAppend { .. } => "kv_append",
            Op::Attention { .. } => "attention",
            Op::Silu => "silu",
            Op::Mul => "mul",
            Op::Add => "add",
        }
    }
}
