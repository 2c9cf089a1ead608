//! The CPU reference interpreter: walks the unfused graph in topological order, one
//! reference implementation per op (`ops.rs`; `kv_append`, which writes this interpreter's
//! KV cache, and the `scale` fault are in `run_node`), rayon across rows. It keeps a KV
//! cache for incremental decode; a step runs T token rows (prefill: the whole prompt at
//! once; decode: T = 1). The cache holds values of the graph's `KvType`: kv_append rounds K
//! and V to it (f16: round to nearest even, as the GPU stores them) and keeps them as f32,
//! which represents every f16 exactly, so attention reads back exactly what the GPU reads.

pub mod ops;

use super::Observer;
use crate::error::{Error, Result};
use crate::fault::FaultKind;
use crate::graph::{Graph, KvKind, KvType, NodeId, Op};
use crate::model::ModelFile;
use std::collections::HashMap;
use std::ops::Range;

pub struct Interpreter<'m> {
    model: &'m ModelFile,
    graph: Graph,
    /// Raw weight bytes per node (None for weightless ops).
    weights: Vec<Option<&'m [u8]>>,
    /// f32 copies of small float weights (norms, biases) per node.
    small: Vec<Option<Vec<f32>>>,
    last_use: Vec<Option<NodeId>>,
    /// Per layer: K and V caches, `[n_ctx, kv_width]` each, holding values of type `kv`.
    kv: KvType,
    k_cache: Vec<Vec<f32>>,
    v_cache: Vec<Vec<f32>>,
    inv_freq: Vec<f32>,
    n_ctx: usize,
    pos: usize,
}

impl<'m> Interpreter<'m> {
    /// Prepares to run `graph` (lowered from `model`) with room for `n_ctx` positions.
    pub fn new(model: &'m ModelFile, graph: Graph, n_ctx: usize) -> Result<Interpreter<'m>> {
        let hp = &graph.hparams;
        if n_ctx == 0 {
            return Err(Error::invalid("context length must be at least 1"));
        }
        let kvw = hp.n_head_kv * hp.head_dim;
        let mut weights = Vec::with_capacity(graph.len());
        let mut small = Vec::with_capacity(graph.len());
        for (_, n) in graph.nodes() {
            let bytes = match &n.weight {
                Some(w) => Some(model.tensor_bytes(model.require(&w.name)?)),
                None => None,
            };
            let f = match (&n.op, &n.weight, bytes) {
                (Op::RmsNorm { .. } | Op::BiasAdd, Some(w), Some(b)) => {
                    Some(crate::quant::dequantize(w.dtype, b, n.width))
                }
                _ => None,
            };
            weights.push(bytes);
            small.push(f);
        }
        Ok(Interpreter {
            model,
            last_use: graph.last_use(),
            kv: graph.kv_type(),
            k_cache: vec![vec![0.0; n_ctx * kvw]; hp.n_layer],
            v_cache: vec![vec![0.0; n_ctx * kvw]; hp.n_layer],
            inv_freq: crate::numerics::rope_inv_freq(hp.rope_base, hp.head_dim),
            weights,
            small,
            graph,
            n_ctx,
            pos: 0,
        })
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Number of positions already in the KV cache.
    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Forgets the KV cache (the next step starts at position 0).
    pub fn reset(&mut self) {
        self.pos = 0;
    }

    /// Runs one step over `tokens` at positions pos..pos+T and returns the logits of the step
    /// rows in `logit_rows` (`[rows, vocab]`; e.g. `T-1..T` for generation).
    pub fn step(
        &mut self,
        tokens: &[u32],
        logit_rows: Range<usize>,
        obs: &mut dyn Observer,
    ) -> Result<Vec<f32>> {
        let t_rows = tokens.len();
        super::check_step(
            tokens,
            &logit_rows,
            self.pos,
            self.n_ctx,
            self.graph.n_tokens(),
        )?;
        obs.step_start();
        let n = self.graph.len();
        let mut bufs: Vec<Option<Vec<f32>>> = vec![None; n];
        let output = self.graph.output();
        for i in 0..n {
            let id = NodeId(i as u32);
            let is_out = id == output;
            let rows = if is_out { logit_rows.len() } else { t_rows };
            let (width, input_ids) = {
                let node = self.graph.node(id);
                (node.width, node.inputs.clone())
            };
            let inputs: smallvec::SmallVec<[&[f32]; 3]> = input_ids
                .iter()
                .map(|k| {
                    let b = bufs[k.index()]
                        .as_deref()
                        .expect("inputs are computed before their consumers");
                    if is_out {
                        // The output node reads only the rows whose logits were asked for.
                        let w = b.len() / t_rows;
                        &b[logit_rows.start * w..logit_rows.end * w]
                    } else {
                        b
                    }
                })
                .collect();
            let mut out = vec![0.0f32; rows * width];
            self.run_node(id, tokens, &inputs, &mut out);
            drop(inputs);
            let first = if is_out {
                self.pos + logit_rows.start
            } else {
                self.pos
            };
            obs.node_done(id, self.graph.node(id), first, rows, &mut out)?;
            bufs[i] = Some(out);
            for inp in input_ids {
                if self.last_use[inp.index()] == Some(id) {
                    bufs[inp.index()] = None;
                }
            }
        }
        self.pos += t_rows;
        Ok(bufs[output.index()].take().expect("output computed"))
    }

    fn run_node(&mut self, id: NodeId, tokens: &[u32], inputs: &[&[f32]], out: &mut [f32]) {
        let input = |k: usize| inputs[k];
        let node = self.graph.node(id);
        let w = self.weights[id.index()];
        let small = self.small[id.index()].as_deref();
        let hp = &self.graph.hparams;
        match &node.op {
            Op::Embedding => {
                let wr = node.weight.as_ref().expect("embedding weight");
                ops::embedding(w.expect("weight"), wr.dtype, node.width, tokens, out)
            }
            Op::RmsNorm { eps } => ops::rms_norm(input(0), small.expect("norm weight"), *eps, out),
            Op::MatMul { act } => {
                let wr = node.weight.as_ref().expect("matmul weight");
                ops::matmul(
                    w.expect("weight"),
                    wr.dtype,
                    node.width,
                    wr.shape[1] as usize,
                    input(0),
                    *act,
                    out,
                )
            }
            Op::BiasAdd if node.fault == Some(FaultKind::BiasOff) => out.copy_from_slice(input(0)),
            Op::BiasAdd => ops::bias_add(input(0), small.expect("bias"), out),
            Op::Rope {
                rope,
                n_head,
                head_dim,
                ..
            } => ops::rope(
                input(0),
                *rope,
                &self.inv_freq,
                *n_head,
                *head_dim,
                match node.fault {
                    Some(FaultKind::Offset(n)) => self.pos + n as usize,
                    _ => self.pos,
                },
                out,
            ),
            Op::KvAppend { layer, cache, kv } => {
                // The rows as the cache stores them (f16: rounded), which is also the output.
                for (o, &v) in out.iter_mut().zip(input(0)) {
                    *o = kv.round(v);
                }
                let kvw = hp.n_head_kv * hp.head_dim;
                let c = match cache {
                    KvKind::K => &mut self.k_cache[*layer],
                    KvKind::V => &mut self.v_cache[*layer],
                };
                c[self.pos * kvw..self.pos * kvw + out.len()].copy_from_slice(out);
            }
            Op::Attention {
                layer,
                n_head,
                n_head_kv,
                head_dim,
                scale,
                ..
            } => ops::attention(
                input(0),
                &self.k_cache[*layer],
                &self.v_cache[*layer],
                *n_head,
                *n_head_kv,
                *head_dim,
                *scale,
                self.pos,
                out,
            ),
            Op::Silu => ops::silu(input(0), out),
            Op::Mul => ops::mul(input(0), input(1), out),
            Op::Add => ops::add(input(0), input(1), out),
        }
        if let Some(FaultKind::Scale(s)) = node.fault {
            out.iter_mut().for_each(|x| *x *= s);
        }
    }

    /// Runs `nodes` in order for the rows of `tokens` (embedding) or of the given input
    /// values, at position `pos`, reading inputs from and writing outputs to `values`. Parity
    /// harnesses use it to feed both executors the same inputs; the op code is `run_node`'s.
    pub fn eval_nodes(
        &mut self,
        nodes: &[NodeId],
        tokens: &[u32],
        pos: usize,
        values: &mut HashMap<NodeId, Vec<f32>>,
    ) {
        let saved = self.pos;
        self.pos = pos;
        for &id in nodes {
            let node = self.graph.node(id).clone();
            // Inputs not given (the cache nodes feeding attention) are empty: the op reads
            // the cache itself.
            let inputs: Vec<Vec<f32>> = node
                .inputs
                .iter()
                .map(|i| values.get(i).cloned().unwrap_or_default())
                .collect();
            let rows = inputs.first().map_or(tokens.len(), |x| {
                x.len() / self.graph.node(node.inputs[0]).width
            });
            let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
            let mut out = vec![0.0f32; rows * node.width];
            self.run_node(id, tokens, &refs, &mut out);
            values.insert(id, out);
        }
        self.pos = saved;
    }

    /// A layer's K or V cache (`[n_ctx, kv_width]`, values of the graph's `KvType`).
    pub fn cache(&self, layer: usize, kind: KvKind) -> &[f32] {
        match kind {
            KvKind::K => &self.k_cache[layer],
            KvKind::V => &self.v_cache[layer],
        }
    }

    /// Writes elements 0.. of a layer's K or V cache, rounded to the cache's element type
    /// (as the GPU harness's `write_cache`), e.g. to fill it for a parity test.
    pub fn write_cache(&mut self, layer: usize, kind: KvKind, data: &[f32]) {
        let kv = self.kv;
        let c = match kind {
            KvKind::K => &mut self.k_cache[layer],
            KvKind::V => &mut self.v_cache[layer],
        };
        for (c, &v) in c.iter_mut().zip(data) {
            *c = kv.round(v);
        }
    }

    pub fn model(&self) -> &ModelFile {
        self.model
    }
}
