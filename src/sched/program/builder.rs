//! Building the persistent program from the fused decode schedule: one instruction per
//! fused group (attention two), then the argmax and its merge.

use super::deps::derive_deps;
use super::instr::{Body, Instr, Program, Region};
use super::sizing::{ProgramOptions, att_splits, attn_geom, matvec_split, staging};
use crate::codegen::catalogue::{ARGMAX_CHUNK, EMB_TILE, POp, QKV_PAIRS};
use crate::codegen::{KernelId, Kv, WType};
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Op};
use crate::sched::{BufferPlan, GroupKind, Phase, Schedule};

struct Builder<'g> {
    g: &'g Graph,
    opts: ProgramOptions,
    instrs: Vec<Instr>,
}

impl Builder<'_> {
    fn push(
        &mut self,
        group: Option<usize>,
        name: &str,
        body: Body,
        items: usize,
        rw: (Vec<Region>, Vec<Region>),
        weight_bytes: u64,
    ) {
        let op = match body {
            Body::Embed { .. } => POp::Embed,
            Body::Matvec { .. } => POp::Matvec,
            Body::Qkv { .. } => POp::Qkv,
            Body::Attn { .. } => POp::Attn,
            Body::AttnMerge { .. } => POp::AttnMerge,
            Body::Argmax { .. } => POp::Argmax,
            Body::ArgmaxMerge { .. } => POp::ArgmaxMerge,
        };
        self.instrs.push(Instr {
            op,
            group,
            name: name.to_string(),
            body,
            items,
            deps: Vec::new(),
            reads: rw.0,
            writes: rw.1,
            weight_bytes,
        });
    }

    fn value(&self, id: NodeId) -> Region {
        if id == self.g.output() {
            Region::Logits
        } else {
            Region::Value(id)
        }
    }

    /// A matvec group: `matmul` (and `up`) over the value `input`, optional norm prologue
    /// and residual.
    #[allow(clippy::too_many_arguments)]
    fn matvec(
        &mut self,
        gi: usize,
        kernel: KernelId,
        matmul: NodeId,
        up: Option<NodeId>,
        norm: Option<NodeId>,
        residual: Option<NodeId>,
        out: NodeId,
        weight_bytes: u64,
    ) -> Result<()> {
        let KernelId::Matvec { w, act, epi } = kernel else {
            return Err(Error::invalid(format!(
                "group {}: kernel {kernel} is not a matvec",
                self.g.node(out).name
            )));
        };
        let n = self.g.node(matmul);
        let input = match norm {
            Some(nm) => self.g.node(nm).inputs[0],
            None => n.inputs[0],
        };
        let (rows, k) = (n.width, n.in_width());
        let (ks, tile_rows) = matvec_split(rows, w, k, self.opts.ctas);
        let mut reads = vec![self.value(input)];
        reads.extend(residual.map(|r| self.value(r)));
        let body = Body::Matvec {
            matmul,
            up,
            norm,
            input,
            residual,
            out: self.value(out),
            w,
            act,
            epi,
            rows,
            k,
            ks,
            tile_rows,
            stage: staging(k, act, norm.is_some(), &[w]),
        };
        let name = self.g.node(out).name.clone();
        let out_region = self.value(out);
        self.push(
            Some(gi),
            &name,
            body,
            rows.div_ceil(tile_rows),
            (reads, vec![out_region]),
            weight_bytes,
        );
        Ok(())
    }
}

/// Builds the persistent program of a fused decode schedule. Errors name the group that
/// has no instruction (a node kept out of the fused groups, e.g. by an injected fault) or
/// the shape the kernel does not handle.
pub fn build(g: &Graph, s: &Schedule, opts: ProgramOptions) -> Result<Program> {
    if s.phase != Phase::Decode || !s.fused {
        return Err(Error::invalid(
            "the persistent decode kernel runs the fused decode schedule (not --no-fuse)",
        ));
    }
    let hp = &g.hparams;
    if hp.head_dim > 128
        || !hp.head_dim.is_multiple_of(16)
        || hp.n_head_kv == 0
        || !hp.n_head.is_multiple_of(hp.n_head_kv)
        || hp.n_head / hp.n_head_kv > 8
    {
        return Err(Error::invalid(format!(
            "the persistent decode kernel handles head dims up to 128 (multiples of 16) and up to 8 query heads per KV head; this model has head dim {} and {} query / {} KV heads",
            hp.head_dim, hp.n_head, hp.n_head_kv
        )));
    }
    let ctas = opts.ctas.max(1);
    let kv = Kv::from(g.kv_type());
    let group = hp.n_head / hp.n_head_kv;
    let n_split = att_splits(ctas, hp.n_head_kv, opts.n_ctx, opts.max_att_splits);
    let geom = attn_geom(
        n_split,
        group,
        hp.head_dim,
        kv,
        opts.smem_per_sm,
        opts.max_smem,
    )?;
    let mut b = Builder {
        g,
        opts: ProgramOptions { ctas, ..opts },
        instrs: Vec::new(),
    };
    for (gi, gr) in s.groups.iter().enumerate() {
        let main = *gr.kernels.last().expect("a group launches a kernel");
        match gr.kind.clone() {
            GroupKind::Single { node } if matches!(g.node(node).op, Op::Embedding) => {
                let n = g.node(node);
                let w = WType::of(n.weight_type()).ok_or_else(|| {
                    Error::invalid(format!(
                        "{}: no GPU kernels for {}",
                        n.name,
                        n.weight_type()
                    ))
                })?;
                let body = Body::Embed {
                    node,
                    w,
                    width: n.width,
                };
                let rw = (vec![Region::Token], vec![Region::Value(node)]);
                let items = n.width.div_ceil(EMB_TILE as usize);
                b.push(Some(gi), &gr.name, body, items, rw, gr.weight_bytes);
            }
            GroupKind::Single { node } if matches!(g.node(node).op, Op::Attention { .. }) => {
                let Op::Attention { layer, .. } = g.node(node).op else {
                    unreachable!()
                };
                let q = g.node(node).inputs[0];
                let reads = vec![
                    Region::Value(q),
                    Region::KCache(layer),
                    Region::VCache(layer),
                ];
                let body = Body::Attn {
                    node,
                    q,
                    layer,
                    geom,
                };
                let items = hp.n_head_kv * n_split;
                b.push(
                    Some(gi),
                    &gr.name,
                    body,
                    items,
                    (reads, vec![Region::AttnPart]),
                    0,
                );
                let body = Body::AttnMerge { node, geom };
                let rw = (vec![Region::AttnPart], vec![Region::Value(node)]);
                b.push(Some(gi), &gr.name, body, hp.n_head_kv, rw, 0);
            }
            GroupKind::Qkv {
                norm,
                q,
                k,
                v,
                q_bias,
                k_bias,
                v_bias,
                rope_q,
                ..
            } => {
                let KernelId::Qkv {
                    qk,
                    v: wv,
                    act,
                    kv: qkv_kv,
                } = main
                else {
                    return Err(Error::invalid(format!(
                        "group {}: kernel {main} is not a qkv kernel",
                        gr.name
                    )));
                };
                if qkv_kv != kv {
                    return Err(Error::invalid(format!(
                        "group {}: kernel {main} writes a {} cache, the graph's is {}",
                        gr.name,
                        qkv_kv.name(),
                        kv.name()
                    )));
                }
                let input = g.node(norm).inputs[0];
                let layer = g.node(q).layer.expect("a block node");
                let kdim = g.node(q).in_width();
                let body = Body::Qkv {
                    norm,
                    input,
                    mats: [q, k, v],
                    biases: [q_bias, k_bias, v_bias],
                    q_out: rope_q,
                    layer,
                    wqk: qk,
                    wv,
                    act,
                    k: kdim,
                    stage: staging(kdim, act, true, &[qk, wv]),
                };
                let pairs = (hp.n_head + 2 * hp.n_head_kv) * (hp.head_dim / 2);
                let rw = (
                    vec![Region::Value(input)],
                    vec![
                        Region::Value(rope_q),
                        Region::KCache(layer),
                        Region::VCache(layer),
                    ],
                );
                let items = pairs.div_ceil(QKV_PAIRS as usize);
                b.push(Some(gi), &gr.name, body, items, rw, gr.weight_bytes);
            }
            GroupKind::NormGateUp {
                norm,
                gate,
                up,
                mul,
                ..
            } => b.matvec(
                gi,
                main,
                gate,
                Some(up),
                Some(norm),
                None,
                mul,
                gr.weight_bytes,
            )?,
            GroupKind::MatmulAdd {
                matmul,
                add,
                residual,
            } => b.matvec(
                gi,
                main,
                matmul,
                None,
                None,
                Some(residual),
                add,
                gr.weight_bytes,
            )?,
            GroupKind::GateUp { .. }
            | GroupKind::SharedInput { .. }
            | GroupKind::QkvPost { .. } => {
                return Err(Error::invalid(format!(
                    "group {}: a prefill group ({}) in a decode schedule",
                    gr.name, gr.pass
                )));
            }
            GroupKind::NormMatmul { norm, matmul } => b.matvec(
                gi,
                main,
                matmul,
                None,
                Some(norm),
                None,
                matmul,
                gr.weight_bytes,
            )?,
            GroupKind::Single { .. } => {
                let faulted: Vec<&str> = g
                    .faults()
                    .iter()
                    .map(|(id, _)| g.node(*id).name.as_str())
                    .collect();
                let why = if faulted.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; nodes with an injected fault stay out of the fused groups: {}",
                        faulted.join(", ")
                    )
                };
                return Err(Error::invalid(format!(
                    "the persistent decode kernel has no instruction for group {} ({}, pass {}): it runs the fused groups of the Qwen2/Llama block{why}",
                    gr.name,
                    gr.kernel_names(),
                    gr.pass
                )));
            }
        }
    }
    if !b.instrs.iter().any(|i| i.writes.contains(&Region::Logits)) {
        return Err(Error::invalid(
            "the decode schedule computes no logits: no persistent program",
        ));
    }
    let vocab = g.node(g.output()).width;
    let parts = vocab.div_ceil(ARGMAX_CHUNK as usize);
    let rw = (vec![Region::Logits], vec![Region::ArgmaxPart]);
    b.push(None, "argmax", Body::Argmax { n: vocab }, parts, rw, 0);
    let rw = (vec![Region::ArgmaxPart], vec![Region::Result]);
    b.push(None, "argmax", Body::ArgmaxMerge { parts }, 1, rw, 0);

    let mut instrs = b.instrs;
    derive_deps(&mut instrs)?;
    let smem_bytes = instrs
        .iter()
        .map(|i| match &i.body {
            Body::Matvec { stage, .. } | Body::Qkv { stage, .. } => stage.bytes,
            Body::Attn { geom, .. } | Body::AttnMerge { geom, .. } => geom.smem,
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    let p = Program {
        instrs,
        ctas,
        smem_bytes,
        att_splits: n_split,
        kv,
        values: unshared_plan(g, s),
    };
    p.check()?;
    Ok(p)
}

/// Every value a group writes in its own memory (64-float aligned, one row): no reuse, so
/// nothing is overwritten within a launch and a trace reads every output after it.
fn unshared_plan(g: &Graph, s: &Schedule) -> BufferPlan {
    let mut offset = vec![None; g.len()];
    let mut total = 0;
    for gi in 0..s.groups.len() {
        for w in s.writes(gi) {
            if w != g.output() && offset[w.index()].is_none() {
                offset[w.index()] = Some(total);
                total += g.node(w).width.div_ceil(64) * 64;
            }
        }
    }
    BufferPlan {
        offset,
        total,
        rows: 1,
    }
}
