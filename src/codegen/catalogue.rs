//! The CUDA kernel catalogue, written once. `build.rs` includes this file (it uses only
//! `std`) to generate every kernel's `extern "C"` wrapper, the argument structs on both
//! sides (C++ in `args.cuh`, Rust in `args.rs`, with layout asserts) and the launch
//! constants below as `#define`s; the crate uses the same types to name, load and launch
//! kernels. A kernel's printed name (`KernelId::name`, e.g. `matvec_q4_k_q8_swiglu`) is
//! built in `name` alone; `graphrun kernels` lists them all.
//!
//! Name scheme: `matvec_{w}_{act}_{epi}`, `qkv_{w_qk}_{w_v}_{act}`, `matmul_{w}_{act}`,
//! `mmq_{w}`, `embedding_{w}`, and the plain names of the other kernels.

use std::fmt;

/// Weight types with GPU kernels: the one list (scheduler, executor and kernels agree on it).
/// Spelled as GGML spells them.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WType {
    F32,
    F16,
    Q4_0,
    Q5_0,
    Q8_0,
    Q4_K,
    Q5_K,
    Q6_K,
}

impl WType {
    pub const ALL: [WType; 8] = [
        WType::F32,
        WType::F16,
        WType::Q4_0,
        WType::Q5_0,
        WType::Q8_0,
        WType::Q4_K,
        WType::Q5_K,
        WType::Q6_K,
    ];

    /// The GGML type id (as in GGUF files).
    pub fn ggml_id(self) -> u32 {
        match self {
            WType::F32 => 0,
            WType::F16 => 1,
            WType::Q4_0 => 2,
            WType::Q5_0 => 6,
            WType::Q8_0 => 8,
            WType::Q4_K => 12,
            WType::Q5_K => 13,
            WType::Q6_K => 14,
        }
    }

    pub fn from_ggml_id(id: u32) -> Option<WType> {
        WType::ALL.into_iter().find(|w| w.ggml_id() == id)
    }

    /// Fragment in kernel names (`q4_k`).
    pub fn name(self) -> &'static str {
        match self {
            WType::F32 => "f32",
            WType::F16 => "f16",
            WType::Q4_0 => "q4_0",
            WType::Q5_0 => "q5_0",
            WType::Q8_0 => "q8_0",
            WType::Q4_K => "q4_k",
            WType::Q5_K => "q5_k",
            WType::Q6_K => "q6_k",
        }
    }

    /// The C++ trait type of the weight (kernels/quant.cuh).
    pub fn cpp(self) -> &'static str {
        match self {
            WType::F32 => "TF32",
            WType::F16 => "TF16",
            WType::Q4_0 => "TQ4_0",
            WType::Q5_0 => "TQ5_0",
            WType::Q8_0 => "TQ8_0",
            WType::Q4_K => "TQ4_K",
            WType::Q5_K => "TQ5_K",
            WType::Q6_K => "TQ6_K",
        }
    }

    /// Quantized types have a q8 (integer dot) variant; float types only f32.
    pub fn quantized(self) -> bool {
        !matches!(self, WType::F32 | WType::F16)
    }

    /// K-quants: 256-weight super-blocks, dotted against Q8_K activations under q8 (the
    /// legacy 32-weight types take Q8_0).
    pub fn k_quant(self) -> bool {
        matches!(self, WType::Q4_K | WType::Q5_K | WType::Q6_K)
    }

    /// Weights one lane handles per work item in kernels/quant.cuh (`W::UNIT`).
    pub fn unit(self) -> usize {
        match self {
            WType::Q4_K | WType::Q5_K => 64,
            _ => 32,
        }
    }

    /// Activation semantics a kernel over this weight type exists for.
    pub fn acts(self) -> &'static [Act] {
        if self.quantized() {
            &[Act::F32, Act::Q8]
        } else {
            &[Act::F32]
        }
    }

    /// The activation semantics a kernel over this type really computes: float weights
    /// have only f32 math, whatever the node asks for.
    pub fn effective_act(self, act: Act) -> Act {
        if self.quantized() { act } else { Act::F32 }
    }
}

/// Activation semantics of a matrix kernel (the graph's `ActSemantics`, in kernel terms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Act {
    F32,
    Q8,
}

impl Act {
    pub const ALL: [Act; 2] = [Act::F32, Act::Q8];
    pub fn name(self) -> &'static str {
        match self {
            Act::F32 => "f32",
            Act::Q8 => "q8",
        }
    }
    /// The template argument (`#define`d in the generated args.cuh as its index in `ALL`).
    pub fn cpp(self) -> &'static str {
        match self {
            Act::F32 => "ACT_F32",
            Act::Q8 => "ACT_Q8",
        }
    }
}

/// Epilogue of a decode matvec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Epi {
    /// `out[r] = W·x`.
    None,
    /// `out[r] = W·x + extra[r]` (residual).
    Add,
    /// `out[r] = silu(W·x) · (W2·x)` (gate and up in one pass).
    Swiglu,
}

impl Epi {
    pub const ALL: [Epi; 3] = [Epi::None, Epi::Add, Epi::Swiglu];
    pub fn name(self) -> &'static str {
        match self {
            Epi::None => "none",
            Epi::Add => "add",
            Epi::Swiglu => "swiglu",
        }
    }
    /// The template argument (`#define`d in the generated args.cuh as its index in `ALL`).
    pub fn cpp(self) -> &'static str {
        match self {
            Epi::None => "EPI_NONE",
            Epi::Add => "EPI_ADD",
            Epi::Swiglu => "EPI_SWIGLU",
        }
    }
}

/// The per-element and per-row kernels of kernels/elementwise.cu (`EltArgs`), named after
/// the graph op each mirrors (`scale` is fault injection's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Elt {
    BiasAdd,
    Add,
    Mul,
    Silu,
    RmsNorm,
    Scale,
}

impl Elt {
    pub const ALL: [Elt; 6] = [
        Elt::BiasAdd,
        Elt::Add,
        Elt::Mul,
        Elt::Silu,
        Elt::RmsNorm,
        Elt::Scale,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Elt::BiasAdd => "bias_add",
            Elt::Add => "add",
            Elt::Mul => "mul",
            Elt::Silu => "silu",
            Elt::RmsNorm => "rms_norm",
            Elt::Scale => "scale",
        }
    }
}

/// A kernel source file in `kernels/` (one module, compiled once per architecture).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Argmax,
    Attention,
    Bandwidth,
    Elementwise,
    Embedding,
    Matmul,
    Matvec,
    Mmq,
    Persistent,
    Quantize,
}

impl Family {
    pub const ALL: [Family; 10] = [
        Family::Argmax,
        Family::Attention,
        Family::Bandwidth,
        Family::Elementwise,
        Family::Embedding,
        Family::Matmul,
        Family::Matvec,
        Family::Mmq,
        Family::Persistent,
        Family::Quantize,
    ];
    /// The file stem in kernels/ (`matvec` → kernels/matvec.cu).
    pub fn name(self) -> &'static str {
        match self {
            Family::Argmax => "argmax",
            Family::Attention => "attention",
            Family::Bandwidth => "bandwidth",
            Family::Elementwise => "elementwise",
            Family::Embedding => "embedding",
            Family::Matmul => "matmul",
            Family::Matvec => "matvec",
            Family::Mmq => "mmq",
            Family::Persistent => "persistent",
            Family::Quantize => "quantize",
        }
    }
}

/// One concrete kernel of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KernelId {
    /// Decode matrix-vector product (kernels/matvec.cu), input prepared by `Prep`.
    Matvec { w: WType, act: Act, epi: Epi },
    /// Decode Q/K/V projections (+bias) → RoPE → KV-cache append (kernels/matvec.cu).
    Qkv { qk: WType, v: WType, act: Act },
    /// Prefill product over T token rows on CUDA cores (kernels/matmul.cu).
    Matmul { w: WType, act: Act },
    /// Prefill q8 product as a tiled integer GEMM on tensor cores (kernels/mmq.cu).
    Mmq { w: WType },
    /// Embedding row gather (kernels/embedding.cu).
    Embedding { w: WType },
    /// An elementwise or per-row op (kernels/elementwise.cu).
    Elt(Elt),
    /// RoPE over T rows (kernels/elementwise.cu).
    Rope,
    /// Append T rows to a KV cache (kernels/elementwise.cu).
    KvAppend,
    /// Quantize T activation rows to Q8_0/Q8_K for the prefill GEMMs (kernels/quantize.cu).
    QuantizeQ8,
    /// Decode input preparation: optional RMSNorm prologue, then Q8_0/Q8_K and/or an f32
    /// copy for the matvecs (kernels/quantize.cu).
    Prep,
    /// Prefill attention, one CTA per (head, query row) (kernels/attention.cu).
    Attention,
    /// Decode attention split over positions, merged by the last CTA (kernels/attention.cu).
    AttentionSplit,
    /// Greedy token on the device (kernels/argmax.cu).
    Argmax,
    /// A plain streaming read, for `graphrun bench`'s bandwidth ceiling (kernels/bandwidth.cu).
    ReadBandwidth,
    /// The whole decode step in one launch: resident CTAs walk an instruction list
    /// (src/sched/program.rs) with counter synchronization (kernels/persistent.cu).
    Persistent,
}

impl KernelId {
    /// Every kernel of the catalogue, in a stable order.
    pub fn all() -> Vec<KernelId> {
        let mut k = Vec::new();
        for w in WType::ALL {
            for &act in w.acts() {
                for epi in Epi::ALL {
                    k.push(KernelId::Matvec { w, act, epi });
                }
                k.push(KernelId::Matmul { w, act });
            }
            if w.quantized() {
                k.push(KernelId::Mmq { w });
            }
            k.push(KernelId::Embedding { w });
        }
        // Q/K share a type; V may differ, but all three are quantized or all float.
        for qk in WType::ALL {
            for v in WType::ALL {
                if qk.quantized() == v.quantized() {
                    for &act in qk.acts() {
                        k.push(KernelId::Qkv { qk, v, act });
                    }
                }
            }
        }
        k.extend(Elt::ALL.map(KernelId::Elt));
        k.extend([
            KernelId::Rope,
            KernelId::KvAppend,
            KernelId::QuantizeQ8,
            KernelId::Prep,
            KernelId::Attention,
            KernelId::AttentionSplit,
            KernelId::Argmax,
            KernelId::ReadBandwidth,
            KernelId::Persistent,
        ]);
        k
    }

    /// The kernel's name: its `extern "C"` symbol, and what lists, traces and profiles print.
    pub fn name(&self) -> String {
        match *self {
            KernelId::Matvec { w, act, epi } => {
                format!("matvec_{}_{}_{}", w.name(), act.name(), epi.name())
            }
            KernelId::Qkv { qk, v, act } => {
                format!("qkv_{}_{}_{}", qk.name(), v.name(), act.name())
            }
            KernelId::Matmul { w, act } => format!("matmul_{}_{}", w.name(), act.name()),
            KernelId::Mmq { w } => format!("mmq_{}", w.name()),
            KernelId::Embedding { w } => format!("embedding_{}", w.name()),
            KernelId::Elt(e) => e.name().to_string(),
            KernelId::Rope => "rope".into(),
            KernelId::KvAppend => "kv_append".into(),
            KernelId::QuantizeQ8 => "quantize_q8".into(),
            KernelId::Prep => "prep".into(),
            KernelId::Attention => "attention".into(),
            KernelId::AttentionSplit => "attention_split".into(),
            KernelId::Argmax => "argmax".into(),
            KernelId::ReadBandwidth => "read_bandwidth".into(),
            KernelId::Persistent => "persistent".into(),
        }
    }

    /// The kernel named `name` (`graphrun kernels --ptx NAME`).
    pub fn parse(name: &str) -> Option<KernelId> {
        KernelId::all().into_iter().find(|k| k.name() == name)
    }

    pub fn family(&self) -> Family {
        match self {
            KernelId::Matvec { .. } | KernelId::Qkv { .. } => Family::Matvec,
            KernelId::Matmul { .. } => Family::Matmul,
            KernelId::Mmq { .. } => Family::Mmq,
            KernelId::Embedding { .. } => Family::Embedding,
            KernelId::Elt(_) | KernelId::Rope | KernelId::KvAppend => Family::Elementwise,
            KernelId::QuantizeQ8 | KernelId::Prep => Family::Quantize,
            KernelId::Attention | KernelId::AttentionSplit => Family::Attention,
            KernelId::Argmax => Family::Argmax,
            KernelId::ReadBandwidth => Family::Bandwidth,
            KernelId::Persistent => Family::Persistent,
        }
    }

    /// The argument struct the kernel takes (one of `ARG_STRUCTS`).
    pub fn args(&self) -> &'static str {
        match self {
            KernelId::Matvec { .. } => "MatvecArgs",
            KernelId::Qkv { .. } => "QkvArgs",
            KernelId::Matmul { .. } => "MatmulArgs",
            KernelId::Mmq { .. } => "MmqArgs",
            KernelId::Embedding { .. } => "EmbArgs",
            KernelId::Elt(_) => "EltArgs",
            KernelId::Rope => "RopeArgs",
            KernelId::KvAppend => "KvArgs",
            KernelId::QuantizeQ8 => "QuantizeArgs",
            KernelId::Prep => "PrepArgs",
            KernelId::Attention => "AttnArgs",
            KernelId::AttentionSplit => "AttnSplitArgs",
            KernelId::Argmax => "ArgmaxArgs",
            KernelId::ReadBandwidth => "ReadArgs",
            KernelId::Persistent => "PersistentArgs",
        }
    }

    /// The C++ template instantiation the wrapper calls.
    pub fn call(&self) -> String {
        match *self {
            KernelId::Matvec { w, act, epi } => {
                format!("matvec_impl<{}, {}, {}>", w.cpp(), act.cpp(), epi.cpp())
            }
            KernelId::Qkv { qk, v, act } => {
                format!("qkv_impl<{}, {}, {}>", qk.cpp(), v.cpp(), act.cpp())
            }
            KernelId::Matmul { w, act } => format!("matmul_impl<{}, {}>", w.cpp(), act.cpp()),
            KernelId::Mmq { w } => format!("mmq_impl<{}>", w.cpp()),
            KernelId::Embedding { w } => format!("embedding_impl<{}>", w.cpp()),
            KernelId::Elt(e) => format!("{}_impl", e.name()),
            KernelId::ReadBandwidth => "read_bw_impl".into(),
            KernelId::QuantizeQ8 => "quantize_impl".into(),
            other => format!("{}_impl", other.name()),
        }
    }

    /// `__launch_bounds__(threads, min CTAs per SM)` of the wrapper, if any. Decode matvecs
    /// stream weights: 4 resident CTAs of 256 threads per SM (at most 64 registers a thread)
    /// keep more loads in flight. Not for the SwiGLU epilogue: with two weight streams it
    /// spills under that cap (7B gate+up 41 -> 51 us on the H100). The persistent kernel
    /// runs every code path in one function: PERSIST_MIN_CTAS CTAs per SM (at most 128
    /// registers a thread), its grid sized at run time from the occupancy.
    pub fn launch_bounds(&self) -> Option<(u32, u32)> {
        match self {
            KernelId::Matvec { epi, .. } if *epi != Epi::Swiglu => Some((MATVEC_THREADS, 4)),
            KernelId::Persistent => Some((PERSIST_THREADS, PERSIST_MIN_CTAS)),
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
/// Prefill GEMM tile: weight rows × tokens per CTA, and the K chunk (kernels/mmq.cu).
pub const MMQ_BM: u32 = 64;
pub const MMQ_BN: u32 = 128;
pub const MMQ_CH: u32 = 128;
/// Dynamic shared memory of the prefill GEMM: `sizeof(MmqSmem)`, asserted in kernels/mmq.cu.
pub const MMQ_SMEM_BYTES: u32 = 79872;
/// Positions per CTA of the decode attention (kernels/attention.cu).
pub const ATT_SPLIT_CHUNK: u32 = 32;
/// CTAs of the device argmax (kernels/argmax.cu).
pub const ARGMAX_CTAS: u32 = 128;

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
/// Positions per online-softmax step of the persistent decode attention; a split's chunk
/// of positions is a multiple of it.
pub const ATT_TILE: u32 = 32;
/// Logits per argmax work item of the persistent kernel.
pub const ARGMAX_CHUNK: u32 = 4096;

/// Error codes the persistent kernel writes to its status word (`status[1]`).
pub const PERR_TIMEOUT: u32 = 1;
pub const PERR_GEOMETRY: u32 = 2;
pub const PERR_DISPATCH: u32 = 3;

/// (name, value) of every launch constant, for the generated header.
pub const LAUNCH_CONSTANTS: &[(&str, u32)] = &[
    ("MATVEC_THREADS", MATVEC_THREADS),
    ("MM_BM", MMQ_BM),
    ("MM_BN", MMQ_BN),
    ("MM_CH", MMQ_CH),
    ("MMQ_SMEM_BYTES", MMQ_SMEM_BYTES),
    ("SPLIT_CHUNK", ATT_SPLIT_CHUNK),
    ("ARGMAX_CTAS", ARGMAX_CTAS),
    ("PERSIST_THREADS", PERSIST_THREADS),
    ("QKV_PAIRS", QKV_PAIRS),
    ("EMB_TILE", EMB_TILE),
    ("ATT_TILE", ATT_TILE),
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

/// Lanes sharing one matvec row of `units` units (kernels/matvec.cuh, `lanes_per_row`).
pub fn matvec_lanes(units: usize) -> usize {
    let mut l = 32;
    while l > 1 && l / 2 >= units {
        l /= 2;
    }
    l
}

/// Instruction kinds of the persistent decode kernel: src/sched/program.rs builds them
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

// ---- Kernel argument structs ----------------------------------------------------------

/// A field of an argument struct: C++ name (the Rust field is its lowercase), type, meaning.
pub struct ArgField {
    pub name: &'static str,
    pub ty: FieldTy,
    pub doc: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FieldTy {
    /// A device pointer (CUdeviceptr): `u64` on both sides.
    Ptr,
    U64,
    I32,
    F32,
}

impl FieldTy {
    pub fn cpp(self) -> &'static str {
        match self {
            FieldTy::Ptr | FieldTy::U64 => "u64",
            FieldTy::I32 => "int",
            FieldTy::F32 => "float",
        }
    }
    pub fn rust(self) -> &'static str {
        match self {
            FieldTy::Ptr | FieldTy::U64 => "u64",
            FieldTy::I32 => "i32",
            FieldTy::F32 => "f32",
        }
    }
    pub fn size(self) -> usize {
        match self {
            FieldTy::Ptr | FieldTy::U64 => 8,
            FieldTy::I32 | FieldTy::F32 => 4,
        }
    }
}

/// A kernel's argument struct, passed by value.
pub struct ArgStruct {
    pub name: &'static str,
    pub fields: &'static [ArgField],
}

impl ArgStruct {
    /// C layout: each field at the next multiple of its size; the struct padded to its
    /// largest alignment (8).
    pub fn size(&self) -> usize {
        let end = self.fields.iter().fold(0usize, |at, f| {
            at.next_multiple_of(f.ty.size()) + f.ty.size()
        });
        end.next_multiple_of(8)
    }
}

const fn f(name: &'static str, ty: FieldTy, doc: &'static str) -> ArgField {
    ArgField { name, ty, doc }
}

use FieldTy::{F32, I32, Ptr, U64};

/// Every argument struct of the catalogue.
pub const ARG_STRUCTS: &[ArgStruct] = &[
    ArgStruct {
        name: "MatvecArgs",
        fields: &[
            f("w", Ptr, "weights, row 0"),
            f("w2", Ptr, "second weights (EPI_SWIGLU: the up projection)"),
            f("xf", Ptr, "prepared f32 input [K] (f32 semantics)"),
            f("q0", Ptr, "prepared Q8_0 values [K] (legacy weights, q8)"),
            f("d0", Ptr, "Q8_0 scales [K/32]"),
            f("qk", Ptr, "prepared Q8_K values [K] (k-quant weights, q8)"),
            f("dk", Ptr, "Q8_K scales [K/256]"),
            f("bs", Ptr, "Q8_K block sums [K/16]"),
            f("out", Ptr, "f32 [rows]"),
            f("extra", Ptr, "f32 [rows] added by EPI_ADD"),
            f("rows", I32, "output rows"),
            f("K", I32, "input width"),
            f("row_bytes", I32, "bytes of one weight row"),
            f("ksplit", I32, "warps sharing a row set (1, 2, 4 or 8)"),
        ],
    },
    ArgStruct {
        name: "QkvArgs",
        fields: &[
            f("wq", Ptr, "Q weights"),
            f("wk", Ptr, "K weights"),
            f("wv", Ptr, "V weights"),
            f("bq", Ptr, "Q bias (0 = none)"),
            f("bk", Ptr, "K bias (0 = none)"),
            f("bv", Ptr, "V bias (0 = none)"),
            f("xf", Ptr, "prepared f32 input [K] (f32 semantics)"),
            f("q0", Ptr, "prepared Q8_0 values [K] (legacy weights, q8)"),
            f("d0", Ptr, "Q8_0 scales [K/32]"),
            f("qk", Ptr, "prepared Q8_K values [K] (k-quant weights, q8)"),
            f("dk", Ptr, "Q8_K scales [K/256]"),
            f("bs", Ptr, "Q8_K block sums [K/16]"),
            f("q_out", Ptr, "f32 [n_head·head_dim], RoPE applied"),
            f(
                "k_cache",
                Ptr,
                "f32 [n_ctx, n_head_kv·head_dim] of this layer",
            ),
            f(
                "v_cache",
                Ptr,
                "f32 [n_ctx, n_head_kv·head_dim] of this layer",
            ),
            f(
                "inv_freq",
                Ptr,
                "f32 [head_dim/2] (numerics::rope_inv_freq)",
            ),
            f(
                "pos",
                Ptr,
                "int [1]: the position (device memory, so a captured graph replays with the current value)",
            ),
            f("K", I32, "input width"),
            f("n_head", I32, "query heads"),
            f("n_head_kv", I32, "KV heads"),
            f("head_dim", I32, "dims per head"),
            f("rb_q", I32, "bytes of one Q weight row"),
            f("rb_k", I32, "bytes of one K weight row"),
            f("rb_v", I32, "bytes of one V weight row"),
            f("neox", I32, "1: NeoX RoPE pairs (i, i+d/2); 0: (2i, 2i+1)"),
        ],
    },
    ArgStruct {
        name: "MatmulArgs",
        fields: &[
            f("w", Ptr, "weights, row 0"),
            f("out", Ptr, "f32 [T, rows]"),
            f("xf", Ptr, "f32 [T, K] (f32 semantics)"),
            f("q0", Ptr, "Q8_0 values [T, K]"),
            f("d0", Ptr, "Q8_0 scales [T, K/32]"),
            f("qk", Ptr, "Q8_K values [T, K]"),
            f("dk", Ptr, "Q8_K scales [T, K/256]"),
            f("bs", Ptr, "Q8_K block sums [T, K/16]"),
            f("rows", I32, "output rows"),
            f("K", I32, "input width"),
            f("row_bytes", I32, "bytes of one weight row"),
            f("T", I32, "token rows"),
        ],
    },
    ArgStruct {
        name: "MmqArgs",
        fields: &[
            f("w", Ptr, "weights, row 0"),
            f("out", Ptr, "f32 [T, rows]"),
            f("q0", Ptr, "Q8_0 values [T, K]"),
            f("d0", Ptr, "Q8_0 scales [T, K/32]"),
            f("qk", Ptr, "Q8_K values [T, K]"),
            f("dk", Ptr, "Q8_K scales [T, K/256]"),
            f("bs", Ptr, "Q8_K block sums [T, K/16]"),
            f("rows", I32, "output rows"),
            f("K", I32, "input width"),
            f("row_bytes", I32, "bytes of one weight row"),
            f("T", I32, "token rows"),
        ],
    },
    ArgStruct {
        name: "PrepArgs",
        fields: &[
            f("x", Ptr, "input row f32 [K]"),
            f(
                "norm_w",
                Ptr,
                "RMSNorm weight [K], or 0 for no norm prologue",
            ),
            f("xf", Ptr, "f32 output [K] (0 = not needed)"),
            f("q0", Ptr, "Q8_0 values [K] (0 = not needed)"),
            f("d0", Ptr, "Q8_0 scales [K/32]"),
            f("qk", Ptr, "Q8_K values [K] (0 = not needed)"),
            f("dk", Ptr, "Q8_K scales [K/256]"),
            f("bs", Ptr, "Q8_K block sums [K/16]"),
            f("K", I32, "row width"),
            f("eps", F32, "RMSNorm epsilon"),
        ],
    },
    ArgStruct {
        name: "QuantizeArgs",
        fields: &[
            f("x", Ptr, "f32 [T, K]"),
            f("q0", Ptr, "Q8_0 values [T, K] (0 = not needed)"),
            f("d0", Ptr, "Q8_0 scales [T, K/32]"),
            f("qk", Ptr, "Q8_K values [T, K] (0 = not needed)"),
            f("dk", Ptr, "Q8_K scales [T, K/256]"),
            f("bs", Ptr, "Q8_K block sums [T, K/16]"),
            f("K", I32, "row width"),
            f("T", I32, "rows"),
        ],
    },
    ArgStruct {
        name: "EltArgs",
        fields: &[
            f("a", Ptr, "first input"),
            f("b", Ptr, "second input or weight (0 = none)"),
            f("out", Ptr, "output"),
            f("n", I32, "total elements (T·width)"),
            f("width", I32, "row width"),
            f("eps", F32, "RMSNorm epsilon; the factor of `scale`"),
        ],
    },
    ArgStruct {
        name: "RopeArgs",
        fields: &[
            f("x", Ptr, "f32 [T, n_head·head_dim]"),
            f("out", Ptr, "f32 [T, n_head·head_dim]"),
            f("inv_freq", Ptr, "f32 [head_dim/2]"),
            f("pos", Ptr, "int [1]: position of row 0 (device memory)"),
            f("T", I32, "rows"),
            f("n_head", I32, "heads"),
            f("head_dim", I32, "dims per head"),
            f("neox", I32, "1: NeoX pairs"),
            f(
                "offset",
                I32,
                "added to every position (fault injection; normally 0)",
            ),
        ],
    },
    ArgStruct {
        name: "KvArgs",
        fields: &[
            f("x", Ptr, "f32 [T, width]"),
            f("cache", Ptr, "f32 [n_ctx, width]"),
            f("out", Ptr, "the rows appended (0 = not needed)"),
            f("pos", Ptr, "int [1]: position of row 0 (device memory)"),
            f("T", I32, "rows"),
            f("width", I32, "row width"),
        ],
    },
    ArgStruct {
        name: "AttnArgs",
        fields: &[
            f("q", Ptr, "f32 [T, n_head·head_dim]"),
            f("k_cache", Ptr, "f32 [n_ctx, n_head_kv·head_dim]"),
            f("v_cache", Ptr, "f32 [n_ctx, n_head_kv·head_dim]"),
            f("out", Ptr, "f32 [T, n_head·head_dim]"),
            f(
                "pos",
                Ptr,
                "int [1]: position of query row 0 (device memory)",
            ),
            f("n_head", I32, "query heads"),
            f("n_head_kv", I32, "KV heads"),
            f("head_dim", I32, "dims per head"),
            f("T", I32, "query rows"),
            f("scale", F32, "score scale 1/sqrt(head_dim)"),
        ],
    },
    ArgStruct {
        name: "AttnSplitArgs",
        fields: &[
            f("q", Ptr, "f32 [n_head·head_dim]"),
            f("k_cache", Ptr, "f32 [n_ctx, n_head_kv·head_dim]"),
            f("v_cache", Ptr, "f32 [n_ctx, n_head_kv·head_dim]"),
            f("out", Ptr, "f32 [n_head·head_dim]"),
            f("pos", Ptr, "int [1]: the query's position (device memory)"),
            f("part", Ptr, "f32 [n_head, n_split, head_dim + 2] partials"),
            f("n_head", I32, "query heads"),
            f("n_head_kv", I32, "KV heads"),
            f("head_dim", I32, "dims per head"),
            f(
                "n_split",
                I32,
                "splits of SPLIT_CHUNK positions (cover the context)",
            ),
            f("scale", F32, "score scale"),
            f("ticket", Ptr, "unsigned [n_head], zero between launches"),
        ],
    },
    ArgStruct {
        name: "EmbArgs",
        fields: &[
            f("w", Ptr, "embedding matrix, row 0"),
            f(
                "tokens",
                Ptr,
                "int [T] token ids (checked < rows on the host)",
            ),
            f("out", Ptr, "f32 [T, width]"),
            f("T", I32, "rows"),
            f("width", I32, "row width"),
            f("row_bytes", I32, "bytes of one embedding row"),
        ],
    },
    ArgStruct {
        name: "ArgmaxArgs",
        fields: &[
            f("x", Ptr, "f32 [n]"),
            f("out", Ptr, "int [1]: the index"),
            f("n", I32, "values"),
            f("pad", I32, "unused"),
            f(
                "part",
                Ptr,
                "scratch: float v[grid], int i[grid], unsigned ticket (zeroed)",
            ),
        ],
    },
    ArgStruct {
        name: "Instr",
        fields: &[
            f(
                "w",
                Ptr,
                "weights (matvec: W; qkv: Q; embed: the embedding matrix)",
            ),
            f("w2", Ptr, "second weights (matvec SwiGLU: up; qkv: K)"),
            f("w3", Ptr, "third weights (qkv: V)"),
            f("b1", Ptr, "qkv: Q bias (0 = none)"),
            f("b2", Ptr, "qkv: K bias (0 = none)"),
            f("b3", Ptr, "qkv: V bias (0 = none)"),
            f(
                "x",
                Ptr,
                "input (matvec, qkv: the row before the norm; attn: q; attn_merge, argmax_merge: partials; argmax: logits)",
            ),
            f("norm_w", Ptr, "RMSNorm weight of the prologue (0 = none)"),
            f("extra", Ptr, "EPI_ADD operand (the residual)"),
            f(
                "out",
                Ptr,
                "output (matvec, attn_merge, embed: f32 row; qkv: RoPE-d q; attn, argmax: partials)",
            ),
            f("k_cache", Ptr, "this layer's K cache (qkv, attn)"),
            f("v_cache", Ptr, "this layer's V cache (qkv, attn)"),
            f("wbytes", U64, "bytes of w (L2 prefetch)"),
            f("wbytes2", U64, "bytes of w2"),
            f("wbytes3", U64, "bytes of w3"),
            f("op", I32, "OP_* kind"),
            f("wtype", I32, "GGML type id of w (qkv: of Q and K)"),
            f("wtype2", I32, "GGML type id of w3 (qkv: V)"),
            f("act", I32, "ACT_F32 / ACT_Q8"),
            f("epi", I32, "EPI_NONE / EPI_ADD / EPI_SWIGLU"),
            f(
                "items",
                I32,
                "work items; CTA c takes [items·c/G, items·(c+1)/G)",
            ),
            f("dep0", I32, "producer instruction waited for (-1 = none)"),
            f("dep1", I32, "producer instruction waited for (-1 = none)"),
            f("dep2", I32, "producer instruction waited for (-1 = none)"),
            f(
                "rows",
                I32,
                "matvec: output rows; embed: width; argmax: logits; argmax_merge: partials",
            ),
            f("K", I32, "input width"),
            f("rb", I32, "bytes of one row of w"),
            f("rb2", I32, "bytes of one row of w2 (qkv: K)"),
            f("rb3", I32, "bytes of one row of w3 (qkv: V)"),
            f("ks", I32, "matvec: warps sharing a row set (1, 2, 4 or 8)"),
            f(
                "tile_rows",
                I32,
                "matvec: rows per work item (checked on the device)",
            ),
            f("n_head", I32, "query heads"),
            f("n_head_kv", I32, "KV heads"),
            f("head_dim", I32, "dims per head"),
            f("neox", I32, "1: NeoX RoPE pairs (i, i+d/2); 0: (2i, 2i+1)"),
            f("n_split", I32, "attention: position splits per KV head"),
            f("eps", F32, "RMSNorm epsilon"),
            f("scale", F32, "attention score scale"),
            f(
                "sm_xf",
                I32,
                "byte offset of the staged f32 input in dynamic shared memory (-1 = read x)",
            ),
            f("sm_q0", I32, "staged Q8_0 values (-1 = none)"),
            f("sm_d0", I32, "staged Q8_0 scales"),
            f("sm_qk", I32, "staged Q8_K values (-1 = none)"),
            f("sm_dk", I32, "staged Q8_K scales"),
            f("sm_bs", I32, "staged Q8_K block sums"),
            f(
                "group",
                I32,
                "index of the schedule group (traces, profiles)",
            ),
        ],
    },
    ArgStruct {
        name: "PersistentArgs",
        fields: &[
            f("prog", Ptr, "Instr [n_instr]"),
            f(
                "ctr",
                Ptr,
                "u32 [n_instr]: work items done, summed over launches (wraps)",
            ),
            f(
                "sync",
                Ptr,
                "u32 [2]: last finished launch (epoch), CTAs finished (wraps)",
            ),
            f(
                "status",
                Ptr,
                "int [4]: token, error code, error instruction, error detail",
            ),
            f("tokens", Ptr, "int [1]: the token id"),
            f("pos", Ptr, "int [1]: the position"),
            f("inv_freq", Ptr, "f32 [head_dim/2]"),
            f(
                "prof",
                Ptr,
                "u64 [1 + n_instr]: first start, last end per instruction (0 = off)",
            ),
            f(
                "timeout_ns",
                U64,
                "a wait longer than this is an error (watchdog)",
            ),
            f(
                "pf_bytes",
                U64,
                "L2 prefetch budget per CTA per instruction (split over its weights)",
            ),
            f("n_instr", I32, "instructions"),
            f("pad", I32, "unused"),
        ],
    },
    ArgStruct {
        name: "ReadArgs",
        fields: &[
            f("x", Ptr, "buffer"),
            f("out", Ptr, "u32 [1] sink that keeps the loads alive"),
            f("n16", U64, "16-byte words to read"),
        ],
    },
];
