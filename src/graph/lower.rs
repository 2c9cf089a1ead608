//! Lowering: model file + architecture description → static graph. Every weight the
//! description names is looked up in the file and its shape checked against the node's
//! input width, so a malformed or mismatched file fails here with the tensor named.

use super::arch::{ArchSpec, NodeSpec};
use super::{ActSemantics, Graph, KvKind, Node, NodeId, Op, WeightRef};
use crate::error::{Error, Result};
use crate::model::ModelFile;
use petgraph::graph::DiGraph;
use smallvec::SmallVec;
use std::collections::HashMap;

#[derive(Clone, Copy, Debug)]
pub struct LowerOptions {
    /// Activation semantics of every quantized matmul node.
    pub act: ActSemantics,
}

impl Default for LowerOptions {
    fn default() -> Self {
        LowerOptions {
            act: ActSemantics::Q8,
        }
    }
}

pub fn lower(m: &ModelFile, opts: LowerOptions) -> Result<Graph> {
    let spec = ArchSpec::for_arch(&m.hparams.arch)
        .map_err(|e| Error::invalid(format!("{}: {e}", m.path)))?;
    let mut b = Builder {
        m,
        spec: &spec,
        opts,
        g: DiGraph::new(),
    };
    let emb = b.embedding(&spec.embedding)?;
    let mut x = emb;
    for layer in 0..m.hparams.n_layer {
        x = b.section(&spec.block, x, Some(layer))?;
    }
    b.section(&spec.head, x, None)?;
    let mut hparams = m.hparams.clone();
    hparams.rope_type = Some(hparams.rope_type.unwrap_or(spec.rope.rope_type()));
    Ok(Graph {
        arch: spec.arch.clone(),
        hparams,
        g: b.g,
    })
}

struct Builder<'a> {
    m: &'a ModelFile,
    spec: &'a ArchSpec,
    opts: LowerOptions,
    g: DiGraph<Node, ()>,
}

impl Builder<'_> {
    fn err(&self, node: &str, msg: impl std::fmt::Display) -> Error {
        Error::invalid(format!(
            "{}: lowering node `{node}` ({} architecture): {msg}",
            self.m.path, self.spec.arch
        ))
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

    /// Looks up the node's weight (or its fallback) in the model file.
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
                Error::tensor(
                    &self.m.path,
                    &full,
                    format!("required by node `{node}` but missing{fb}"),
                )
            })?;
        Ok(WeightRef {
            name: t.name.clone(),
            dtype: t.dtype,
            shape: t.shape.clone(),
            bytes: t.nbytes,
        })
    }

    fn embedding(&mut self, ns: &NodeSpec) -> Result<NodeId> {
        let w = self.weight(&ns.name, ns, "")?;
        let hp = &self.m.hparams;
        if w.shape.len() != 2 || w.shape[1] as usize != hp.n_embd {
            return Err(Error::tensor(
                &self.m.path,
                &w.name,
                format!("shape {:?} does not match [vocab, {}]", w.shape, hp.n_embd),
            ));
        }
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
                    return Err(Error::tensor(
                        &self.m.path,
                        &w.name,
                        format!(
                            "shape {:?} does not match the input width {in_w} of node `{name}`",
                            w.shape
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
                if w.shape.len() != 2 || w.shape[1] as usize != in_w {
                    return Err(Error::tensor(
                        &self.m.path,
                        &w.name,
                        format!(
                            "shape {:?} does not match [out, {in_w}] for node `{name}`",
                            w.shape
                        ),
                    ));
                }
                let out = w.shape[0] as usize;
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
