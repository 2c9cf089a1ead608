//! Lowering: model file + architecture description → static graph.
//!
//! Every tensor is checked against the hyperparameters before it becomes a node, and the
//! file may hold no tensor the graph does not read. Errors name the tensor (or key), what
//! was expected and what was found. The rules, and why each is an error:
//! - `token_embd` is `[vocab, hidden]`, vocab being the stated vocabulary size (the
//!   embedding's rows when the file states none), and the tokenizer has no more tokens
//!   than the embedding has rows: every id the tokenizer produces or the logits pick is
//!   looked up in it. (llama.cpp requires the same exact shape.)
//! - A matmul weight is `[out, in]`: `in` is its input node's width, `out` the
//!   hyperparameter its description names (`out` in `graph/<arch>.json`), so a
//!   `feed_forward_length` of 4863 with 4864-row FFN tensors names the tensor. The output
//!   projection, tied or not, is `[vocab, hidden]`.
//! - Norm and bias weights are `[width]` of a float type: ggml's binary ops take no
//!   quantized operand, so no working file has one.
//! - GGUF `rope.dimension_count` and `attention.value_length`, when present, equal the
//!   head dimension: the graph rotates whole heads and uses one head size.
//! - A tensor the graph does not read is an error, never silently ignored: a
//!   `block_count` below the file's blocks, Qwen2 biases under a `llama` architecture,
//!   Llama 3's `rope_freqs` would each compute a different model than the file describes.
//!   llama.cpp refuses such files too ("wrong number of tensors"), except the optional
//!   tensors it then *uses* (llama's Q/K/V biases, rope factors), which graphrun would
//!   not. No case is left to a warning.

use super::arch::{ArchSpec, NodeSpec, OutDim};
use super::{ActSemantics, Graph, KvKind, KvType, Node, NodeId, Op, WeightRef};
use crate::error::{Error, Result};
use crate::model::{Metadata, ModelFile};
use crate::quant::GgmlType;
use petgraph::graph::DiGraph;
use smallvec::SmallVec;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

#[derive(Clone, Copy, Debug)]
pub struct LowerOptions {
    /// Activation semantics of every quantized matmul node.
    pub act: ActSemantics,
    /// Element type of the KV cache (every kv_append and attention node).
    pub kv: KvType,
}

impl Default for LowerOptions {
    fn default() -> Self {
        LowerOptions {
            act: ActSemantics::Q8,
            kv: KvType::F16,
        }
    }
}

pub fn lower(m: &ModelFile, opts: LowerOptions) -> Result<Graph> {
    let spec = ArchSpec::for_arch(&m.hparams.arch)
        .map_err(|e| Error::invalid(format!("{}: {e}", m.path)))?;
    check_head_keys(m)?;
    let mut b = Builder {
        m,
        spec: &spec,
        opts,
        g: DiGraph::new(),
        vocab: 0,
        used: RefCell::new(HashSet::new()),
    };
    let emb = b.embedding(&spec.embedding)?;
    let mut x = emb;
    for layer in 0..m.hparams.n_layer {
        x = b.section(&spec.block, x, Some(layer))?;
    }
    b.section(&spec.head, x, None)?;
    b.check_all_used()?;
    let mut hparams = m.hparams.clone();
    hparams.rope_type = Some(hparams.rope_type.unwrap_or(spec.rope.rope_type()));
    hparams.vocab_size = b.vocab;
    Ok(Graph {
        arch: spec.arch.clone(),
        hparams,
        g: b.g,
    })
}

/// GGUF keys that describe the heads beyond what `Hparams` reads: when present they must
/// agree with the head dimension the graph uses.
fn check_head_keys(m: &ModelFile) -> Result<()> {
    let Metadata::Gguf(kv) = &m.metadata else {
        return Ok(());
    };
    let hd = m.hparams.head_dim as u64;
    for (suffix, why) in [
        (
            "rope.dimension_count",
            "graphrun rotates whole heads (partial RoPE is not supported)",
        ),
        (
            "attention.value_length",
            "graphrun's attention uses one head size for keys and values",
        ),
    ] {
        let key = m.hparam_key(suffix);
        if let Some((_, v)) = kv.iter().find(|(k, _)| *k == key)
            && v.as_u64() != Some(hd)
        {
            return Err(Error::meta(
                &m.path,
                &key,
                format!(
                    "expected the head dimension {hd}, found {}: {why}",
                    v.summary()
                ),
            ));
        }
    }
    Ok(())
}

struct Builder<'a> {
    m: &'a ModelFile,
    spec: &'a ArchSpec,
    opts: LowerOptions,
    g: DiGraph<Node, ()>,
    /// Rows of the embedding (set by `embedding`): the vocabulary the graph serves.
    vocab: usize,
    /// Tensors read by some node.
    used: RefCell<HashSet<String>>,
}

impl Builder<'_> {
    fn err(&self, node: &str, msg: impl std::fmt::Display) -> Error {
        Error::invalid(format!(
            "{}: lowering node `{node}` ({} architecture): {msg}",
            self.m.path, self.spec.arch
        ))
    }

    fn tensor_err(&self, w: &WeightRef, msg: impl Into<String>) -> Error {
        Error::tensor(&self.m.path, &w.name, msg)
    }

    fn add(&mut self, node: Node) -> NodeId {
        let inputs = node.inputs.clone();
        let idx = self.g.add_node(node);
        for i in inputs {
            self.g
                .add_edge(petgraph::graph::NodeIndex::new(i.index()), idx, ());
        }
        NodeId(idx.index() as u32)
    }

    fn width(&self, id: NodeId) -> usize {
        self.g[petgraph::graph::NodeIndex::new(id.index())].width
    }

    /// Looks up the node's weight (or its fallback) in the model file and marks it used.
    fn weight(&self, node: &str, ns: &NodeSpec, prefix: &str) -> Result<WeightRef> {
        let name = ns
            .weight
            .as_ref()
            .ok_or_else(|| self.err(node, "needs a `weight`"))?;
        let full = format!("{prefix}{name}");
        let t = self
            .m
            .tensor(&full)
            .or_else(|| ns.fallback.as_ref().and_then(|f| self.m.tensor(f)))
            .ok_or_else(|| {
                let fb = ns
                    .fallback
                    .as_ref()
                    .map_or(String::new(), |f| format!(" (nor its fallback `{f}`)"));
                let block = if !prefix.is_empty()
                    && !self.m.tensors.iter().any(|t| t.name.starts_with(prefix))
                {
                    format!(
                        "; the file has no `{prefix}*` tensors at all, yet {} = {} blocks",
                        self.m.hparam_key("block_count"),
                        self.m.hparams.n_layer
                    )
                } else {
                    String::new()
                };
                Error::tensor(
                    &self.m.path,
                    &full,
                    format!("required by node `{node}` but missing{fb}{block}"),
                )
            })?;
        self.used.borrow_mut().insert(t.name.clone());
        Ok(WeightRef {
            name: t.name.clone(),
            dtype: t.dtype,
            shape: t.shape.clone(),
            bytes: t.nbytes,
        })
    }

    /// The output width a matmul's `out` names, with a description for errors.
    fn out_dim(&self, d: OutDim) -> (usize, String) {
        let hp = &self.m.hparams;
        let k = |s: &str| self.m.hparam_key(s);
        match d {
            OutDim::Embd => (
                hp.n_embd,
                format!("{} = {}", k("embedding_length"), hp.n_embd),
            ),
            OutDim::Ff => (
                hp.n_ff,
                format!("{} = {}", k("feed_forward_length"), hp.n_ff),
            ),
            OutDim::Q => (
                hp.n_head * hp.head_dim,
                format!(
                    "{} = {} heads × head dimension {}",
                    k("attention.head_count"),
                    hp.n_head,
                    hp.head_dim
                ),
            ),
            OutDim::Kv => (
                hp.n_head_kv * hp.head_dim,
                format!(
                    "{} = {} KV heads × head dimension {}",
                    k("attention.head_count_kv"),
                    hp.n_head_kv,
                    hp.head_dim
                ),
            ),
            OutDim::Vocab => (self.vocab, format!("the vocabulary of {}", self.vocab)),
        }
    }

    fn embedding(&mut self, ns: &NodeSpec) -> Result<NodeId> {
        let w = self.weight(&ns.name, ns, "")?;
        let hp = &self.m.hparams;
        let rows = w.shape.first().copied().unwrap_or(0) as usize;
        let vocab = if hp.vocab_size > 0 {
            hp.vocab_size
        } else {
            rows
        };
        if w.shape != [vocab as u64, hp.n_embd as u64] {
            return Err(self.tensor_err(
                &w,
                format!(
                    "expected shape [{vocab}, {}] ([vocabulary size{}, {} = {}]), found {:?}",
                    hp.n_embd,
                    if hp.vocab_size > 0 {
                        format!(" {}", self.m.hparam_key("vocab_size"))
                    } else {
                        String::new()
                    },
                    self.m.hparam_key("embedding_length"),
                    hp.n_embd,
                    w.shape
                ),
            ));
        }
        let tokens = self.m.tokenizer.tokens.len();
        if tokens > vocab {
            return Err(self.tensor_err(
                &w,
                format!(
                    "has {vocab} rows but the tokenizer has {tokens} tokens: ids from {vocab} on would read past the embedding"
                ),
            ));
        }
        self.vocab = vocab;
        Ok(self.add(Node {
            name: ns.name.clone(),
            op: Op::Embedding,
            inputs: SmallVec::new(),
            width: hp.n_embd,
            weight: Some(w),
            layer: None,
            fault: None,
        }))
    }

    /// After the whole graph is built: every tensor of the file must have been read.
    fn check_all_used(&self) -> Result<()> {
        let unused: Vec<&str> = self
            .m
            .tensors
            .iter()
            .map(|t| t.name.as_str())
            .filter(|n| !self.used.borrow().contains(*n))
            .collect();
        let Some(first) = unused.first() else {
            return Ok(());
        };
        let n_layer = self.m.hparams.n_layer;
        let last_block = unused
            .iter()
            .filter_map(|n| {
                n.strip_prefix("blk.")?
                    .split('.')
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .filter(|&l| l >= n_layer)
            .max();
        let why = match last_block {
            Some(l) => format!(
                "the file has tensors for {} blocks but {} = {n_layer}",
                l + 1,
                self.m.hparam_key("block_count")
            ),
            None => format!(
                "the {arch} graph (graph/{arch}.json) does not read them, and ignoring them would compute a different model than the file describes (is general.architecture `{arch}` right?)",
                arch = self.spec.arch
            ),
        };
        let list = unused
            .iter()
            .take(4)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        let more = if unused.len() > 4 {
            format!(", … {} in all", unused.len())
        } else {
            String::new()
        };
        Err(Error::tensor(
            &self.m.path,
            first,
            format!("not used by the model graph (unused: {list}{more}): {why}"),
        ))
    }

    /// Instantiates a list of node descriptions with `x` bound to `input`; returns the
    /// last node.
    fn section(
        &mut self,
        nodes: &[NodeSpec],
        input: NodeId,
        layer: Option<usize>,
    ) -> Result<NodeId> {
        let prefix = layer.map_or(String::new(), |l| format!("blk.{l}."));
        let mut local: HashMap<&str, NodeId> = HashMap::from([("x", input)]);
        let mut last = input;
        for ns in nodes {
            let name = format!("{prefix}{}", ns.name);
            let inputs: SmallVec<[NodeId; 3]> = ns
                .inputs
                .iter()
                .map(|i| {
                    local
                        .get(i.as_str())
                        .copied()
                        .ok_or_else(|| self.err(&name, format!("unknown input `{i}`")))
                })
                .collect::<Result<_>>()?;
            let node = self.node(&name, ns, inputs, layer, &prefix)?;
            last = self.add(node);
            local.insert(&ns.name, last);
        }
        Ok(last)
    }

    fn node(
        &self,
        name: &str,
        ns: &NodeSpec,
        inputs: SmallVec<[NodeId; 3]>,
        layer: Option<usize>,
        prefix: &str,
    ) -> Result<Node> {
        let hp = &self.m.hparams;
        let op_name = ns.op.as_deref().unwrap_or("");
        let arity = match op_name {
            "attention" => 3,
            "mul" | "add" => 2,
            _ => 1,
        };
        if inputs.len() != arity {
            return Err(self.err(
                name,
                format!("op `{op_name}` takes {arity} inputs, got {}", inputs.len()),
            ));
        }
        let in_w = self.width(inputs[0]);
        let need_layer = || {
            layer
                .ok_or_else(|| self.err(name, format!("op `{op_name}` only exists inside a block")))
        };
        let heads = |which: Option<&str>| match which {
            Some("q") => Ok(hp.n_head),
            Some("kv") => Ok(hp.n_head_kv),
            other => Err(self.err(
                name,
                format!("`heads` must be \"q\" or \"kv\", got {other:?}"),
            )),
        };
        let check_width = |what: &str, got: usize, want: usize| {
            if got == want {
                Ok(())
            } else {
                Err(self.err(name, format!("{what} has width {got}, expected {want}")))
            }
        };
        let mut weight = None;
        let (op, width) = match op_name {
            "rms_norm" | "bias_add" => {
                let w = self.weight(name, ns, prefix)?;
                if w.shape != [in_w as u64] {
                    return Err(self.tensor_err(
                        &w,
                        format!(
                            "expected shape [{in_w}] (the width of node `{name}`'s input), found {:?}",
                            w.shape
                        ),
                    ));
                }
                if !matches!(w.dtype, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16) {
                    return Err(self.tensor_err(
                        &w,
                        format!(
                            "expected a float type (F32, F16 or BF16) for the {op_name} of node `{name}`, found {}",
                            w.dtype
                        ),
                    ));
                }
                weight = Some(w);
                let op = if op_name == "rms_norm" {
                    Op::RmsNorm { eps: hp.rms_eps }
                } else {
                    Op::BiasAdd
                };
                (op, in_w)
            }
            "matmul" => {
                let w = self.weight(name, ns, prefix)?;
                let dim = ns.out.ok_or_else(|| {
                    self.err(name, "a matmul needs `out` (embd, ff, q, kv or vocab)")
                })?;
                let (out, what) = self.out_dim(dim);
                if w.shape != [out as u64, in_w as u64] {
                    return Err(self.tensor_err(
                        &w,
                        format!(
                            "expected shape [{out}, {in_w}] for node `{name}` (rows: {what}; columns: the width of its input), found {:?}",
                            w.shape
                        ),
                    ));
                }
                let act = if w.dtype.is_quantized() {
                    self.opts.act
                } else {
                    ActSemantics::F32
                };
                weight = Some(w);
                (Op::MatMul { act }, out)
            }
            "rope" => {
                let n = heads(ns.heads.as_deref())?;
                check_width("input", in_w, n * hp.head_dim)?;
                let rope = hp.rope_type.unwrap_or(self.spec.rope.rope_type());
                (
                    Op::Rope {
                        rope,
                        base: hp.rope_base,
                        n_head: n,
                        head_dim: hp.head_dim,
                    },
                    in_w,
                )
            }
            "kv_append" => {
                let kind = match ns.cache.as_deref() {
                    Some("k") => KvKind::K,
                    Some("v") => KvKind::V,
                    other => {
                        return Err(self.err(
                            name,
                            format!("`cache` must be \"k\" or \"v\", got {other:?}"),
                        ));
                    }
                };
                check_width("input", in_w, hp.n_head_kv * hp.head_dim)?;
                (
                    Op::KvAppend {
                        layer: need_layer()?,
                        cache: kind,
                        kv: self.opts.kv,
                    },
                    in_w,
                )
            }
            "attention" => {
                check_width("query", in_w, hp.n_head * hp.head_dim)?;
                check_width("keys", self.width(inputs[1]), hp.n_head_kv * hp.head_dim)?;
                check_width("values", self.width(inputs[2]), hp.n_head_kv * hp.head_dim)?;
                let op = Op::Attention {
                    layer: need_layer()?,
                    n_head: hp.n_head,
                    n_head_kv: hp.n_head_kv,
                    head_dim: hp.head_dim,
                    scale: 1.0 / (hp.head_dim as f32).sqrt(),
                    kv: self.opts.kv,
                };
                (op, in_w)
            }
            "silu" => (Op::Silu, in_w),
            "mul" | "add" => {
                check_width("second input", self.width(inputs[1]), in_w)?;
                (if op_name == "mul" { Op::Mul } else { Op::Add }, in_w)
            }
            other => return Err(self.err(name, format!("unknown op `{other}`"))),
        };
        Ok(Node {
            name: name.to_string(),
            op,
            inputs,
            width,
            weight,
            layer,
            fault: None,
        })
    }
}
