//! The axes of the kernel catalogue: what a concrete kernel (`KernelId`, catalogue.rs) is
//! chosen by — weight type, activation semantics, KV cache element, matvec epilogue,
//! elementwise op — and the family (source file in `kernels/`) it lives in. Like
//! catalogue.rs, std only: `build.rs` includes this file too. The crate reaches these
//! types as `codegen::catalogue::X` (re-exported there) or `codegen::X`.

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

/// Element type of the KV cache (the graph's `KvType`, in kernel terms): every kernel that
/// writes or reads the cache takes it as a template parameter (`KvF32`, `KvF16` in
/// kernels/numerics.cuh).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kv {
    F32,
    F16,
}

impl Kv {
    pub const ALL: [Kv; 2] = [Kv::F32, Kv::F16];
    pub fn name(self) -> &'static str {
        match self {
            Kv::F32 => "f32",
            Kv::F16 => "f16",
        }
    }
    /// The C++ trait type of the cache element (kernels/numerics.cuh).
    pub fn cpp(self) -> &'static str {
        match self {
            Kv::F32 => "KvF32",
            Kv::F16 => "KvF16",
        }
    }
    /// Bytes of one cache element.
    pub fn bytes(self) -> usize {
        match self {
            Kv::F32 => 4,
            Kv::F16 => 2,
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
    MatvecBatch,
    Mmq,
    Persistent,
    Quantize,
}

impl Family {
    pub const ALL: [Family; 11] = [
        Family::Argmax,
        Family::Attention,
        Family::Bandwidth,
        Family::Elementwise,
        Family::Embedding,
        Family::Matmul,
        Family::Matvec,
        Family::MatvecBatch,
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
            Family::MatvecBatch => "matvec_batch",
            Family::Mmq => "mmq",
            Family::Persistent => "persistent",
            Family::Quantize => "quantize",
        }
    }
}
