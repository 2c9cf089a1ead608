//! The CPU reference interpreter: walks the unfused graph in topological order, one
//! reference implementation per op (`ops.rs`; `kv_append`, which writes this interpreter's
//! KV caches, and the `scale` fault are in `run_node`), rayon across rows. It keeps KV
//! caches for incremental decode, one per slot (a sequence; one slot unless asked for more).
//! A step runs T token rows: prefill runs a whole prompt in one slot, decode one row per
//! slot, and a batched decode step runs one row for each of several slots at their own
//! positions. Matmuls see all T rows at once (each weight row is read once per step); rope,
//! KV append and attention run per run of consecutive rows of one slot (`Run`). The caches
//! hold values of the graph's `KvType`: kv_append rounds K and V to it (f16: round to
//! nearest even, as the GPU stores them) and keeps them as f32, which represents every f16
//! exactly, so attention reads back exactly what the GPU reads.

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
    /// The element type the caches hold.
    kv: KvType,
    /// One KV cache per sequence slot.
    slots: Vec<KvSlot>,
    inv_freq: Vec<f32>,
    n_ctx: usize,
}

/// One sequence's KV cache: per layer, K and V rows `[n_ctx, kv_width]`, and the number of
/// positions filled. The buffers are zero-initialized allocations, so pages a short
/// sequence never reaches are never touched.
struct KvSlot {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    pos: usize,
}

/// Step rows `start..start + len`, which belong to `slot` at positions `pos..pos + len`.
#[derive(Clone, Copy, Debug)]
struct Run {
    slot: usize,
    pos: usize,
    start: usize,
    len: usize,
}

impl<'m> Interpreter<'m> {
    /// Prepares to run `graph` (lowered from `model`) with room for `n_ctx` positions.
    pub fn new(model: &'m ModelFile, graph: Graph, n_ctx: usize) -> Result<Interpreter<'m>> {
        Self::with_slots(model, graph, n_ctx, 1)
    }

    /// Like `new`, with `n_slots` independent KV caches of `n_ctx` positions each (for
    /// batched decode of several sequences; `step` and `pos` use slot 0).
    pub fn with_slots(
        model: &'m ModelFile,
        graph: Graph,
        n_ctx: usize,
        n_slots: usize,
    ) -> Result<Interpreter<'m>> {
        let hp = &graph.hparams;
        if n_ctx == 0 {
            return Err(Error::invalid("context length must be at least 1"));
        }
        if n_slots == 0 {
            return Err(Error::invalid(
                "the interpreter needs at least one KV-cache slot",
            ));
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
            slots: (0..n_slots)
                .map(|_| KvSlot {
                    k: (0..hp.n_layer).map(|_| vec![0.0; n_ctx * kvw]).collect(),
                    v: (0..hp.n_layer).map(|_| vec![0.0; n_ctx * kvw]).collect(),
                    pos: 0,
                })
                .collect(),
            inv_freq: crate::numerics::rope_inv_freq(hp.rope_base, hp.head_dim),
            weights,
            small,
            graph,
            n_ctx,
        })
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Number of positions already in slot 0's KV cache.
    pub fn pos(&self) -> usize {
        self.slots[0].pos
    }

    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Number of KV-cache slots (sequences that can be decoded together).
    pub fn n_slots(&self) -> usize {
        self.slots.len()
    }

    /// Forgets slot 0's KV cache (the next step starts at position 0).
    pub fn reset(&mut self) {
        self.slots[0].pos = 0;
    }

    /// Runs one step over `tokens` in slot 0 at positions pos..pos+T and returns the logits
    /// of the step rows in `logit_rows` (`[rows, vocab]`; e.g. `T-1..T` for generation).
    pub fn step(
        &mut self,
        tokens: &[u32],
        logit_rows: Range<usize>,
        obs: &mut dyn Observer,
    ) -> Result<Vec<f32>> {
        self.step_slot(0, tokens, logit_rows, obs)
    }

    /// `step` in any slot: `tokens` at that slot's next positions.
    pub fn step_slot(
        &mut self,
        slot: usize,
        tokens: &[u32],
        logit_rows: Range<usize>,
        obs: &mut dyn Observer,
    ) -> Result<Vec<f32>> {
        self.check_slot(slot)?;
        let run = Run {
            slot,
            pos: self.slots[slot].pos,
            start: 0,
            len: tokens.len(),
        };
        self.run_step(tokens, &[run], logit_rows, obs)
    }

    /// One batched decode step: row i feeds `batch[i].1` to slot `batch[i].0` at that slot's
    /// next position (slots distinct). All rows go through every matmul together; the
    /// logits come back as `[batch.len(), vocab]` in batch order. Each row's numbers are
    /// bit-identical to a `step_slot` of that token alone: no op mixes rows.
    pub fn decode_batch(
        &mut self,
        batch: &[(usize, u32)],
        obs: &mut dyn Observer,
    ) -> Result<Vec<f32>> {
        let mut runs = Vec::with_capacity(batch.len());
        for (i, &(slot, _)) in batch.iter().enumerate() {
            self.check_slot(slot)?;
            if batch[..i].iter().any(|&(s, _)| s == slot) {
                return Err(Error::invalid(format!(
                    "slot {slot} appears twice in one decode step"
                )));
            }
            runs.push(Run {
                slot,
                pos: self.slots[slot].pos,
                start: i,
                len: 1,
            });
        }
        let tokens: Vec<u32> = batch.iter().map(|&(_, t)| t).collect();
        self.run_step(&tokens, &runs, 0..batch.len(), obs)
    }

    /// Positions already in `slot`'s KV cache.
    pub fn slot_pos(&self, slot: usize) -> usize {
        self.slots.get(slot).map_or(0, |s| s.pos)
    }

    /// Forgets `slot`'s KV cache (its next step starts at position 0).
    pub fn reset_slot(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot) {
            s.pos = 0;
        }
    }

    fn check_slot(&self, slot: usize) -> Result<()> {
        if slot >= self.slots.len() {
            return Err(Error::invalid(format!(
                "KV-cache slot {slot} does not exist ({} slots)",
                self.slots.len()
            )));
        }
        Ok(())
    }

    /// Runs the graph over the step rows of `runs` (together covering `tokens`, in order)
    /// and returns the logits of the rows in `logit_rows`.
    fn run_step(
        &mut self,
        tokens: &[u32],
        runs: &[Run],
        logit_rows: Range<usize>,
        obs: &mut dyn Observer,
    ) -> Result<Vec<f32>> {
        let t_rows = tokens.len();
        if runs.is_empty() {
            return Err(Error::invalid("a step needs at least one token"));
        }
        // One run (a slot's prefill or decode) is checked as a single-sequence step; in a
        // batch, each row is checked against its slot's context and the error names the slot.
        let vocab = self.graph.n_tokens();
        for r in runs {
            let rows = if runs.len() == 1 {
                logit_rows.clone()
            } else {
                0..r.len
            };
            let toks = &tokens[r.start..r.start + r.len];
            super::check_step(toks, &rows, r.pos, self.n_ctx, vocab).map_err(|e| {
                if self.slots.len() == 1 {
                    e
                } else {
                    Error::invalid(format!("slot {}: {e}", r.slot))
                }
            })?;
        }
        obs.step_start();
        let n = self.graph.len();
        // Each value with the first step row it holds.
        let mut bufs: Vec<Option<(usize, Vec<f32>)>> = vec![None; n];
        let output = self.graph.output();
        // The output tail (the output, the final norm, the last block's layers after its
        // attention) is computed at the logit rows only: nothing else reads it.
        let tail = self.graph.output_tail();
        for i in 0..n {
            let id = NodeId(i as u32);
            let rows = if id >= tail {
                logit_rows.clone()
            } else {
                0..t_rows
            };
            let (width, input_ids) = {
                let node = self.graph.node(id);
                (node.width, node.inputs.clone())
            };
            let inputs: smallvec::SmallVec<[&[f32]; 3]> = input_ids
                .iter()
                .map(|k| {
                    let (r0, b) = bufs[k.index()]
                        .as_ref()
                        .expect("inputs are computed before their consumers");
                    // A tail node reads only the rows whose logits were asked for.
                    let w = self.graph.node(*k).width;
                    &b[(rows.start - r0) * w..(rows.end - r0) * w]
                })
                .collect();
            let mut out = vec![0.0f32; rows.len() * width];
            self.run_node(id, tokens, runs, &inputs, &mut out);
            drop(inputs);
            // The observer sees each run's rows (within `rows`) with their positions.
            for r in runs {
                let (lo, hi) = (r.start.max(rows.start), (r.start + r.len).min(rows.end));
                if lo < hi {
                    let data = &mut out[(lo - rows.start) * width..(hi - rows.start) * width];
                    obs.node_done(id, self.graph.node(id), r.pos + lo - r.start, hi - lo, data)?;
                }
            }
            bufs[i] = Some((rows.start, out));
            for inp in input_ids {
                if self.last_use[inp.index()] == Some(id) {
                    bufs[inp.index()] = None;
                }
            }
        }
        for r in runs {
            self.slots[r.slot].pos = r.pos + r.len;
        }
        Ok(bufs[output.index()].take().expect("output computed").1)
    }

    /// Computes node `id` over the step rows (`runs` says which slot and position each row
    /// has; only rope, KV append and attention need it).
    fn run_node(
        &mut self,
        id: NodeId,
        tokens: &[u32],
        runs: &[Run],
        inputs: &[&[f32]],
        out: &mut [f32],
    ) {
        let input = |k: usize| inputs[k];
        let node = self.graph.node(id);
        let w = self.weights[id.index()];
        let small = self.small[id.index()].as_deref();
        let hp = &self.graph.hparams;
        let width = node.width;
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
            } => {
                let shift = match node.fault {
                    Some(FaultKind::Offset(n)) => n as usize,
                    _ => 0,
                };
                for r in runs {
                    let rows = r.start * width..(r.start + r.len) * width;
                    ops::rope(
                        &input(0)[rows.clone()],
                        *rope,
                        &self.inv_freq,
                        *n_head,
                        *head_dim,
                        r.pos + shift,
                        &mut out[rows],
                    )
                }
            }
            Op::KvAppend { layer, cache, kv } => {
                // The rows as the cache stores them (f16: rounded), which is also the output.
                for (o, &v) in out.iter_mut().zip(input(0)) {
                    *o = kv.round(v);
                }
                let kvw = hp.n_head_kv * hp.head_dim;
                for r in runs {
                    let slot = &mut self.slots[r.slot];
                    let c = match cache {
                        KvKind::K => &mut slot.k[*layer],
                        KvKind::V => &mut slot.v[*layer],
                    };
                    c[r.pos * kvw..(r.pos + r.len) * kvw]
                        .copy_from_slice(&out[r.start * kvw..(r.start + r.len) * kvw]);
                }
            }
            Op::Attention {
                layer,
                n_head,
                n_head_kv,
                head_dim,
                scale,
                ..
            } => {
                for r in runs {
                    let slot = &self.slots[r.slot];
                    let rows = r.start * width..(r.start + r.len) * width;
                    ops::attention(
                        &input(0)[rows.clone()],
                        &slot.k[*layer],
                        &slot.v[*layer],
                        *n_head,
                        *n_head_kv,
                        *head_dim,
                        *scale,
                        r.pos,
                        &mut out[rows],
                    )
                }
            }
            Op::Silu => ops::silu(input(0), out),
            Op::Mul => ops::mul(input(0), input(1), out),
            Op::Add => ops::add(input(0), input(1), out),
        }
        if let Some(FaultKind::Scale(s)) = node.fault {
            out.iter_mut().for_each(|x| *x *= s);
        }
    }

    /// Runs `nodes` in order for the rows of `tokens` (embedding) or of the given input
    /// values, in slot 0 at position `pos`, reading inputs from and writing outputs to
    /// `values`. Parity harnesses use it to feed both executors the same inputs; the op code
    /// is `run_node`'s. Slot 0's filled position count is left as it was.
    pub fn eval_nodes(
        &mut self,
        nodes: &[NodeId],
        tokens: &[u32],
        pos: usize,
        values: &mut HashMap<NodeId, Vec<f32>>,
    ) {
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
            let run = Run {
                slot: 0,
                pos,
                start: 0,
                len: rows,
            };
            self.run_node(id, tokens, &[run], &refs, &mut out);
            values.insert(id, out);
        }
    }

    /// Slot 0's K or V cache of a layer (`[n_ctx, kv_width]`, values of the graph's
    /// `KvType`).
    pub fn cache(&self, layer: usize, kind: KvKind) -> &[f32] {
        match kind {
            KvKind::K => &self.slots[0].k[layer],
            KvKind::V => &self.slots[0].v[layer],
        }
    }

    /// Writes elements 0.. of slot 0's K or V cache of a layer, rounded to the cache's
    /// element type (as the GPU harness's `write_cache`), e.g. to fill it for a parity test.
    pub fn write_cache(&mut self, layer: usize, kind: KvKind, data: &[f32]) {
        let kv = self.kv;
        let c = match kind {
            KvKind::K => &mut self.slots[0].k[layer],
            KvKind::V => &mut self.slots[0].v[layer],
        };
        for (c, &v) in c.iter_mut().zip(data) {
            *c = kv.round(v);
        }
    }

    pub fn model(&self) -> &ModelFile {
        self.model
    }
}
