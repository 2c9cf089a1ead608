//! The persistent program's instructions as the kernel reads them (`args::Instr`): regions,
//! weights and caches resolved to device addresses, staging and attention geometry as
//! fields.

use crate::codegen::{Act, Epi};
use crate::exec::cuda::CudaEngine;
use crate::exec::cuda::args::Instr as DevInstr;
use crate::graph::{KvKind, NodeId, Op};
use crate::model::RopeType;
use crate::sched::program::{self, Body, Program, Region, Staging};

/// Device addresses of the persistent kernel's buffers.
pub(super) struct Ptrs {
    pub arena: u64,
    pub att_part: u64,
    pub amax_part: u64,
    pub logits: u64,
}

fn act_code(a: Act) -> i32 {
    Act::ALL.iter().position(|x| *x == a).expect("listed") as i32
}

fn epi_code(e: Epi) -> i32 {
    Epi::ALL.iter().position(|x| *x == e).expect("listed") as i32
}

fn off(o: Option<usize>) -> i32 {
    o.map_or(-1, |o| o as i32)
}

fn attn_fields(d: &mut DevInstr, g: &program::AttnGeom) {
    d.n_split = g.n_split as i32;
    d.nc = g.nc as i32;
    d.row_bytes = g.row_bytes as i32;
    d.stage_bytes = g.stage_bytes as i32;
}

fn stage_fields(d: &mut DevInstr, s: &Staging) {
    d.sm_xf = off(s.xf);
    d.sm_q0 = off(s.q0);
    d.sm_d0 = off(s.d0);
    d.sm_qk = off(s.qk);
    d.sm_dk = off(s.dk);
    d.sm_bs = off(s.bs);
}

impl CudaEngine<'_> {
    /// The device instruction of `ins`: its regions and weights resolved to addresses.
    pub(super) fn device_instr(&self, p: &Program, ins: &program::Instr, b: &Ptrs) -> DevInstr {
        let hp = &self.graph.hparams;
        let region = |r: Region| -> u64 {
            match r {
                Region::Value(id) => {
                    let o = p.values.offset[id.index()].expect("every written value has a buffer");
                    b.arena + (o * 4) as u64
                }
                Region::Logits => b.logits,
                Region::AttnPart => b.att_part,
                Region::ArgmaxPart => b.amax_part,
                Region::Token | Region::Result | Region::KCache(_) | Region::VCache(_) => {
                    unreachable!("not an arena region: {r:?}")
                }
            }
        };
        let val = |id: NodeId| {
            region(if id == self.graph.output() {
                Region::Logits
            } else {
                Region::Value(id)
            })
        };
        let rb = |id: NodeId| self.graph.node(id).row_bytes();
        let wbytes = |id: NodeId| (self.graph.node(id).width * rb(id)) as u64;
        let cache = |l: usize, k: KvKind| self.cache_ptr(l, k);
        let mut d = DevInstr {
            op: ins.op.code(),
            items: ins.items as i32,
            dep0: ins.deps.first().map_or(-1, |&x| x as i32),
            dep1: ins.deps.get(1).map_or(-1, |&x| x as i32),
            dep2: ins.deps.get(2).map_or(-1, |&x| x as i32),
            group: ins.group.map_or(-1, |g| g as i32),
            sm_xf: -1,
            sm_q0: -1,
            sm_d0: -1,
            sm_qk: -1,
            sm_dk: -1,
            sm_bs: -1,
            n_head: hp.n_head as i32,
            n_head_kv: hp.n_head_kv as i32,
            head_dim: hp.head_dim as i32,
            ..Default::default()
        };
        match &ins.body {
            Body::Embed { node, w, width } => {
                d.w = self.wptr(*node);
                d.wtype = w.ggml_id() as i32;
                d.rows = *width as i32;
                d.rb = rb(*node) as i32;
                d.out = region(Region::Value(*node));
            }
            Body::Matvec {
                matmul,
                up,
                norm,
                input,
                residual,
                out,
                w,
                act,
                epi,
                rows,
                k,
                ks,
                tile_rows,
                stage,
            } => {
                d.w = self.wptr(*matmul);
                d.wbytes = wbytes(*matmul);
                if let Some(up) = up {
                    d.w2 = self.wptr(*up);
                    d.wbytes2 = wbytes(*up);
                }
                d.x = val(*input);
                d.norm_w = self.wptr_opt(*norm);
                d.eps = norm.map_or(0.0, |n| self.graph.node(n).rms_eps());
                d.extra = residual.map_or(0, &val);
                d.out = region(*out);
                d.wtype = w.ggml_id() as i32;
                d.act = act_code(*act);
                d.epi = epi_code(*epi);
                d.rows = *rows as i32;
                d.k = *k as i32;
                d.rb = rb(*matmul) as i32;
                d.ks = *ks as i32;
                d.tile_rows = *tile_rows as i32;
                stage_fields(&mut d, stage);
            }
            Body::Qkv {
                norm,
                input,
                mats: [q, k, v],
                biases: [bq, bk, bv],
                q_out,
                layer,
                wqk,
                wv,
                act,
                k: kdim,
                stage,
            } => {
                d.w = self.wptr(*q);
                d.w2 = self.wptr(*k);
                d.w3 = self.wptr(*v);
                (d.wbytes, d.wbytes2, d.wbytes3) = (wbytes(*q), wbytes(*k), wbytes(*v));
                d.b1 = self.wptr_opt(*bq);
                d.b2 = self.wptr_opt(*bk);
                d.b3 = self.wptr_opt(*bv);
                d.x = val(*input);
                d.norm_w = self.wptr(*norm);
                d.eps = self.graph.node(*norm).rms_eps();
                d.out = region(Region::Value(*q_out));
                d.k_cache = cache(*layer, KvKind::K);
                d.v_cache = cache(*layer, KvKind::V);
                d.wtype = wqk.ggml_id() as i32;
                d.wtype2 = wv.ggml_id() as i32;
                d.act = act_code(*act);
                d.k = *kdim as i32;
                (d.rb, d.rb2, d.rb3) = (rb(*q) as i32, rb(*k) as i32, rb(*v) as i32);
                d.neox = (hp.rope_type == Some(RopeType::Neox)) as i32;
                stage_fields(&mut d, stage);
            }
            Body::Attn {
                node,
                q,
                layer,
                geom,
            } => {
                d.x = val(*q);
                d.k_cache = cache(*layer, KvKind::K);
                d.v_cache = cache(*layer, KvKind::V);
                d.out = region(Region::AttnPart);
                attn_fields(&mut d, geom);
                if let Op::Attention { scale, .. } = self.graph.node(*node).op {
                    d.scale = scale;
                }
            }
            Body::AttnMerge { node, geom } => {
                d.x = region(Region::AttnPart);
                d.out = region(Region::Value(*node));
                attn_fields(&mut d, geom);
            }
            Body::Argmax { n } => {
                d.x = region(Region::Logits);
                d.out = region(Region::ArgmaxPart);
                d.rows = *n as i32;
            }
            Body::ArgmaxMerge { parts } => {
                d.x = region(Region::ArgmaxPart);
                d.rows = *parts as i32;
            }
        }
        d
    }
}
