//! The kernels' argument structs, written once: `build.rs` includes this file (std only) and
//! generates the C++ structs (`args.cuh`, with `static_assert`s on their sizes) and the
//! Rust twins (`src/exec/cuda/args.rs` includes them, with the same size asserts), so the
//! two sides cannot drift apart. `KernelId::args` names the struct each kernel takes.

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
            f(
                "nb",
                I32,
                "rows of a batched step (matvec_batch_*: inputs [nb, K], outputs [nb, rows]; 1 elsewhere)",
            ),
            f(
                "prefetch",
                I32,
                "1: each CTA brings its first tile's weights into L2 before it waits for the kernel before it (matvec_*: set for a grid of one wave launched programmatically)",
            ),
            f(
                "stage",
                I32,
                "1: each CTA of matvec_batch_* first copies the nb q8 activation rows to shared memory, after the partial sums (the host sizes it: batch_matvec_smem); 0 elsewhere",
            ),
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
                "KV [n_ctx, n_head_kv·head_dim] of this layer (KV: the cache element)",
            ),
            f(
                "v_cache",
                Ptr,
                "KV [n_ctx, n_head_kv·head_dim] of this layer",
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
            f(
                "seq",
                Ptr,
                "int [nb][2] of a batched step: each row's position and its slot's first cache row (0 = one row at `pos`, cache row = position)",
            ),
            f("K", I32, "input width"),
            f("n_head", I32, "query heads"),
            f("n_head_kv", I32, "KV heads"),
            f("head_dim", I32, "dims per head"),
            f("rb_q", I32, "bytes of one Q weight row"),
            f("rb_k", I32, "bytes of one K weight row"),
            f("rb_v", I32, "bytes of one V weight row"),
            f("neox", I32, "1: NeoX RoPE pairs (i, i+d/2); 0: (2i, 2i+1)"),
            f(
                "nb",
                I32,
                "rows of the step (inputs [nb, K], q_out [nb, n_head·head_dim]; 1 outside a batched step)",
            ),
            f(
                "stage",
                I32,
                "1: each CTA of qkv_batch_* first copies the nb q8 activation rows to shared memory in the Q/K weight type's layout (the host sizes it: batch_matvec_stage_bytes); 0 elsewhere",
            ),
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
            f(
                "resid",
                Ptr,
                "f32 [T, rows] added to the product (residual epilogue), or 0",
            ),
            f(
                "w2",
                Ptr,
                "a second matrix of the same type and K over the same input (its CTAs follow w's; for mmq_pair_*, up), or 0",
            ),
            f("out2", Ptr, "f32 [T, rows2]"),
            f("w3", Ptr, "a third such matrix (CTAs after w2's), or 0"),
            f("out3", Ptr, "f32 [T, rows3]"),
            f("rows2", I32, "output rows of w2 (0: none)"),
            f("rows3", I32, "output rows of w3 (0: none)"),
            f(
                "row_bytes3",
                I32,
                "bytes of one w3 row (mmq_*_v_*: w3 has another type; elsewhere unread)",
            ),
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
            f(
                "part",
                Ptr,
                "0, or the deferred merge: decode attention's partials (AttnSplitArgs.part), which prep merges into x before it quantizes x",
            ),
            f(
                "pos",
                Ptr,
                "int [1]: the query's position (with part: which splits are active)",
            ),
            f("K", I32, "row width"),
            f("eps", F32, "RMSNorm epsilon"),
            f(
                "n_split",
                I32,
                "with part: the attention's splits per KV head",
            ),
            f("nc", I32, "with part: the attention's positions per stage"),
            f(
                "head_dim",
                I32,
                "with part: dims per head (K = heads · head_dim)",
            ),
            f("pad", I32, "unused"),
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
            f(
                "seq",
                Ptr,
                "int [T][2] or 0: per row its position and the first cache row of its sequence (a batched decode step over several sequences); 0: rows at positions pos0.. of one cache",
            ),
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
            f("cache", Ptr, "KV [n_ctx, width] (KV: the cache element)"),
            f(
                "out",
                Ptr,
                "f32 [T, width]: the rows as stored (0 = not needed)",
            ),
            f("pos", Ptr, "int [1]: position of row 0 (device memory)"),
            f(
                "seq",
                Ptr,
                "int [T][2] or 0: per row its position and the first cache row of its sequence (a batched decode step over several sequences); 0: rows at positions pos0.. of one cache",
            ),
            f("T", I32, "rows"),
            f("width", I32, "row width"),
        ],
    },
    ArgStruct {
        name: "QkvPostArgs",
        fields: &[
            f("q", Ptr, "f32 [T, n_head·head_dim]: the Q product"),
            f("k", Ptr, "f32 [T, n_head_kv·head_dim]: the K product"),
            f("v", Ptr, "f32 [T, n_head_kv·head_dim]: the V product"),
            f("bq", Ptr, "f32 [n_head·head_dim] Q bias (0 = none)"),
            f("bk", Ptr, "f32 [n_head_kv·head_dim] K bias (0 = none)"),
            f("bv", Ptr, "f32 [n_head_kv·head_dim] V bias (0 = none)"),
            f(
                "q_out",
                Ptr,
                "f32 [T, n_head·head_dim]: Q after bias and RoPE",
            ),
            f("k_cache", Ptr, "KV [n_ctx, n_head_kv·head_dim]"),
            f("v_cache", Ptr, "KV [n_ctx, n_head_kv·head_dim]"),
            f("inv_freq", Ptr, "f32 [head_dim/2]"),
            f("pos", Ptr, "int [1]: position of row 0 (device memory)"),
            f("T", I32, "rows"),
            f("n_head", I32, "query heads"),
            f("n_head_kv", I32, "KV heads"),
            f("head_dim", I32, "dims per head"),
            f("neox", I32, "1: NeoX pairs"),
        ],
    },
    ArgStruct {
        name: "AttnArgs",
        fields: &[
            f("q", Ptr, "f32 [T, n_head·head_dim]"),
            f("k_cache", Ptr, "KV [n_ctx, n_head_kv·head_dim]"),
            f("v_cache", Ptr, "KV [n_ctx, n_head_kv·head_dim]"),
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
            f(
                "kp_at",
                I32,
                "dynamic shared memory: float offset of the K tile (then P)",
            ),
            f(
                "v_at",
                I32,
                "dynamic shared memory: float offset of the V tile",
            ),
        ],
    },
    ArgStruct {
        name: "AttnMmaArgs",
        fields: &[
            f("q", Ptr, "f32 [T, n_head·head_dim]"),
            f("k_cache", Ptr, "f16 [n_ctx, n_head_kv·head_dim]"),
            f("v_cache", Ptr, "f16 [n_ctx, n_head_kv·head_dim]"),
            f("out", Ptr, "f32 [T, n_head·head_dim]"),
            f(
                "pos",
                Ptr,
                "int [1]: position of query row 0 (device memory)",
            ),
            f("n_head", I32, "query heads"),
            f("n_head_kv", I32, "KV heads"),
            f(
                "head_dim",
                I32,
                "dims per head (a multiple of 16, at most ATT_MAX_HD)",
            ),
            f("T", I32, "query rows"),
            f("scale", F32, "score scale 1/sqrt(head_dim)"),
            f(
                "stages",
                I32,
                "K/V tiles in shared memory: 2 = the next one loads during the math",
            ),
        ],
    },
    ArgStruct {
        name: "AttnSplitArgs",
        fields: &[
            f("q", Ptr, "f32 [n_head·head_dim]"),
            f("k_cache", Ptr, "KV [n_ctx, n_head_kv·head_dim]"),
            f("v_cache", Ptr, "KV [n_ctx, n_head_kv·head_dim]"),
            f("out", Ptr, "f32 [n_head·head_dim]"),
            f("pos", Ptr, "int [1]: the query's position (device memory)"),
            f(
                "part",
                Ptr,
                "f32 [n_head, n_split, head_dim + 4] partials: max, sum, 2 unused, weighted V",
            ),
            f(
                "ticket",
                Ptr,
                "unsigned [n_head_kv], zero between launches (with seq: [T][n_head_kv])",
            ),
            f(
                "seq",
                Ptr,
                "int [T][2] or 0: with grid.z = T rows of several sequences, per row its position and the first cache row of its sequence (q, out, part and ticket per row); 0: one query at *pos",
            ),
            f("n_head", I32, "query heads"),
            f("n_head_kv", I32, "KV heads"),
            f("head_dim", I32, "dims per head"),
            f(
                "n_split",
                I32,
                "CTAs per KV head (grid.y); positions are shared out among them",
            ),
            f("scale", F32, "score scale"),
            f(
                "nc",
                I32,
                "positions staged per step (32 or ATT_SPLIT_MAX_NC)",
            ),
            f(
                "row_bytes",
                I32,
                "shared-memory stride of a staged K or V row (bytes)",
            ),
            f(
                "stage_bytes",
                I32,
                "bytes of one stage (nc K rows, then nc V rows); two stages follow SplitHead",
            ),
            f(
                "defer",
                I32,
                "1: splits write partials and no CTA merges (the next launch, prep, merges them); 0: the group's last split merges",
            ),
            f("pad", I32, "unused"),
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
            f("x", Ptr, "f32 [rows][n] (rows: the grid's y)"),
            f("out", Ptr, "int [rows]: each row's index"),
            f("n", I32, "values a row"),
            f("pad", I32, "unused"),
            f(
                "part",
                Ptr,
                "scratch a row: float v[grid.x], int i[grid.x], unsigned ticket (zeroed)",
            ),
            f(
                "chain_pos",
                Ptr,
                "int [1]: a chained one-row decode step's position, advanced by one (0: not chained)",
            ),
            f(
                "chain_tokens",
                Ptr,
                "int [1]: the next step's input token (the token, or 0 for an id past the vocabulary)",
            ),
            f(
                "chain_ring",
                Ptr,
                "int [CHAIN_RING], host-mapped: the token at slot position % CHAIN_RING",
            ),
        ],
    },
    ArgStruct {
        name: "SampleArgs",
        fields: &[
            f("x", Ptr, "f32 [rows = grid.y][n]: the logits rows"),
            f(
                "out",
                Ptr,
                "int [rows]: the tokens (0x7fffffff: a non-finite candidate)",
            ),
            f(
                "n",
                I32,
                "values a row (at most SAMPLE_MAX_CTAS · SAMPLE_SLICE)",
            ),
            f("pad", I32, "unused"),
            f(
                "part",
                Ptr,
                "scratch per row: u64 keys [SAMPLE_MAX_CTAS][SAMPLE_MAX_K], unsigned ticket (zeroed)",
            ),
            f(
                "params",
                Ptr,
                "SampleParams [rows]: f64 draw, f32 temperature, f32 top_p, int top_k (uploaded per step)",
            ),
            f("chain_pos", Ptr, "as ArgmaxArgs.chain_pos"),
            f("chain_tokens", Ptr, "as ArgmaxArgs.chain_tokens"),
            f("chain_ring", Ptr, "as ArgmaxArgs.chain_ring"),
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
            f(
                "k_cache",
                Ptr,
                "this layer's K cache, KV elements (qkv, attn)",
            ),
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
            f(
                "nc",
                I32,
                "attention: positions staged per step (32 or ATT_SPLIT_MAX_NC)",
            ),
            f(
                "row_bytes",
                I32,
                "attention: shared-memory stride of a staged K or V row (bytes)",
            ),
            f(
                "stage_bytes",
                I32,
                "attention: bytes of one stage (nc K rows, then nc V rows)",
            ),
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
