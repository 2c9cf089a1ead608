//! The persistent decode kernel on the device (kernels/persistent.cu): the fused decode
//! schedule as an instruction list (src/sched/program.rs) that one launch per token
//! executes, greedy token included.
//!
//! Built by `CudaEngine::set_decode_kernel(DecodeKernel::Persistent)`: the grid is every
//! CTA that fits at once (occupancy for the kernel's registers and shared memory × SMs, so
//! the same binary sizes itself on an H200's 132 SMs or an RTX 4090's 128), the program is
//! sized for it, and instructions, counters, a buffer arena without reuse and scratch are
//! uploaded once. A decode step uploads the token and position, launches once and reads
//! back four words (token and error status). A traced step (an observer that wants data)
//! launches the same kernel and then reads every group's output from the arena, named by
//! its graph node, as the multi-kernel path does after each group. Prefill stays on the
//! multi-kernel path (same KV cache). Where the kernel does not fit — unfused schedule, a
//! group without an instruction (an injected fault), shared memory or occupancy — the
//! engine keeps the multi-kernel CUDA graph and says why.
//!
//! Tuning and diagnosis knobs (`PersistentOptions`; from the environment when the kernel is
//! selected by `set_decode_kernel`): `GRAPHRUN_PERSISTENT_CTAS_PER_SM=N` caps the resident
//! CTAs per SM, `GRAPHRUN_PERSISTENT_SPLITS=N` the attention splits per KV head,
//! `GRAPHRUN_PERSISTENT_PREFETCH_KB=N` sets the L2 prefetch per CTA and instruction
//! (default: a quarter of the L2 over the CTAs; 0 turns prefetch off),
//! `GRAPHRUN_PERSISTENT_TIMEOUT_MS=N` the watchdog (default 2000: a wait longer than this
//! ends the launch with an error naming the instruction instead of hanging).

use super::CudaEngine;
use super::args::{Instr as DevInstr, PersistentArgs};
use super::device::cuda_err;
use crate::codegen::catalogue::{PERR_DISPATCH, PERR_GEOMETRY, PERR_TIMEOUT, PERSIST_THREADS};
use crate::codegen::{Act, Epi, KernelId};
use crate::error::{Error, Result};
use crate::exec::Observer;
use crate::graph::{KvKind, NodeId, Op};
use crate::model::RopeType;
use crate::sched::program::{self, Body, Program, ProgramOptions, Region, Staging};
use crate::sched::{GroupKind, Phase};
use cudarc::driver::CudaSlice;
use cudarc::driver::sys::CUdevice_attribute;

/// Which kernels run a GPU decode step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DecodeKernel {
    /// The fused groups' kernels, captured once as a CUDA graph and replayed (the default,
    /// and the parity reference).
    #[default]
    Graph,
    /// One persistent kernel per token executing the fused schedule as an instruction list
    /// (the multi-kernel graph where it does not fit, with a note saying why). Opt-in until
    /// it has been validated on a GPU.
    Persistent,
}

impl DecodeKernel {
    pub fn name(self) -> &'static str {
        match self {
            DecodeKernel::Persistent => "persistent",
            DecodeKernel::Graph => "graph",
        }
    }
}

/// The persistent kernel's device state.
pub(super) struct Persistent {
    pub program: Program,
    _instrs: CudaSlice<DevInstr>,
    ctr: CudaSlice<u32>,
    sync: CudaSlice<u32>,
    status: CudaSlice<i32>,
    arena: CudaSlice<f32>,
    _att_part: CudaSlice<f32>,
    _amax_part: CudaSlice<f32>,
    prof: CudaSlice<u64>,
    args: PersistentArgs,
    smem: u32,
    /// Resident CTAs per SM the grid was sized with.
    pub per_sm: usize,
}

/// Tuning and diagnosis settings of the persistent kernel (None: the default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PersistentOptions {
    /// At most this many resident CTAs per SM (default: the occupancy).
    pub ctas_per_sm: Option<usize>,
    /// At most this many attention splits per KV head (default: enough for every CTA).
    pub att_splits: Option<usize>,
    /// L2 prefetch per CTA and instruction, KiB (default: a quarter of the L2 over the
    /// CTAs; 0 = off).
    pub prefetch_kb: Option<usize>,
    /// Watchdog, ms (default 2000).
    pub timeout_ms: Option<usize>,
}

impl PersistentOptions {
    /// From `GRAPHRUN_PERSISTENT_CTAS_PER_SM`, `_SPLITS`, `_PREFETCH_KB`, `_TIMEOUT_MS`.
    pub fn from_env() -> Result<PersistentOptions> {
        Ok(PersistentOptions {
            ctas_per_sm: env_usize("GRAPHRUN_PERSISTENT_CTAS_PER_SM")?,
            att_splits: env_usize("GRAPHRUN_PERSISTENT_SPLITS")?,
            prefetch_kb: env_usize("GRAPHRUN_PERSISTENT_PREFETCH_KB")?,
            timeout_ms: env_usize("GRAPHRUN_PERSISTENT_TIMEOUT_MS")?,
        })
    }
}

fn env_usize(name: &str) -> Result<Option<usize>> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| Error::invalid(format!("{name}={v}: {e} (expected a whole number)"))),
    }
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
    /// Selects the kernels of GPU decode steps. For `Persistent`, builds the persistent
    /// kernel's program and device state; when it does not fit, keeps the multi-kernel
    /// graph and returns the reason (for a note on stderr).
    /// Tuning knobs come from the environment (`PersistentOptions::from_env`).
    pub fn set_decode_kernel(&mut self, k: DecodeKernel) -> Result<Option<String>> {
        let opts = PersistentOptions::from_env()?;
        self.set_decode_kernel_with(k, opts)
    }

    /// `set_decode_kernel` with explicit persistent-kernel settings.
    pub fn set_decode_kernel_with(
        &mut self,
        k: DecodeKernel,
        opts: PersistentOptions,
    ) -> Result<Option<String>> {
        self.persistent = None;
        self.decode_graph = None;
        if k == DecodeKernel::Graph {
            return Ok(None);
        }
        match self.build_persistent(opts) {
            Ok(p) => {
                self.persistent = Some(p);
                Ok(None)
            }
            Err(why) => Ok(Some(format!(
                "persistent decode kernel not used ({why}); decoding with the multi-kernel CUDA graph"
            ))),
        }
    }

    /// The decode kernel in use.
    pub fn decode_kernel(&self) -> DecodeKernel {
        if self.persistent.is_some() {
            DecodeKernel::Persistent
        } else {
            DecodeKernel::Graph
        }
    }

    /// The persistent kernel's program, when it is in use.
    pub fn persistent_program(&self) -> Option<&Program> {
        self.persistent.as_ref().map(|p| &p.program)
    }

    /// Resident CTAs per SM of the persistent launch, when it is in use.
    pub fn persistent_ctas_per_sm(&self) -> Option<usize> {
        self.persistent.as_ref().map(|p| p.per_sm)
    }

    fn build_persistent(&mut self, o: PersistentOptions) -> Result<Persistent> {
        if !self.fuse {
            return Err(Error::invalid("--no-fuse runs one kernel per graph node"));
        }
        let timeout_ms = o.timeout_ms.unwrap_or(2000);
        // The program's shared memory does not depend on the CTA count: size it once for
        // the occupancy query, then for the real grid.
        let sched = self.sched(Phase::Decode);
        let smem_per_sm = self
            .dev
            .ctx
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR)
            .map_err(cuda_err("reading the shared memory per SM"))?
            as usize;
        let opts = |ctas| ProgramOptions {
            ctas,
            n_ctx: self.n_ctx,
            max_att_splits: o.att_splits,
            smem_per_sm,
            max_smem: self.dev.max_smem as usize,
        };
        let probe = program::build(&self.graph, sched, opts(1))?;
        let smem = probe.smem_bytes as u32;
        if smem > self.dev.max_smem {
            return Err(Error::invalid(format!(
                "{smem} bytes of shared memory per CTA needed, this GPU allows {}",
                self.dev.max_smem
            )));
        }
        if probe.kv != self.kv {
            return Err(Error::invalid(format!(
                "the program is for a {} KV cache, the engine's is {}",
                probe.kv.name(),
                self.kv.name()
            )));
        }
        let kernel = KernelId::Persistent { kv: self.kv };
        let per_sm = self
            .kernels
            .occupancy(&self.dev, kernel, PERSIST_THREADS, smem)?;
        let ctas = program::persistent_ctas(per_sm, self.dev.n_sm as usize, o.ctas_per_sm)?;
        let p = program::build(&self.graph, self.sched(Phase::Decode), opts(ctas))?;
        let l2 = self
            .dev
            .ctx
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)
            .map_err(cuda_err("reading the L2 size"))? as u64;
        let pf_bytes = match o.prefetch_kb {
            Some(kb) => kb as u64 * 1024,
            // A quarter of the L2 over all CTAs: about what the memory delivers during an
            // instruction boundary (a few µs), and little enough to survive the streaming
            // of the instruction still running.
            None => (l2 / 4 / ctas as u64) & !127,
        };
        self.upload_persistent(p, smem, ctas / self.dev.n_sm as usize, pf_bytes, timeout_ms)
    }

    fn upload_persistent(
        &mut self,
        p: Program,
        smem: u32,
        per_sm: usize,
        pf_bytes: u64,
        timeout_ms: usize,
    ) -> Result<Persistent> {
        let hp = self.graph.hparams.clone();
        let n_split = p.att_splits;
        let arena = self.dev.zeros::<f32>(p.values.total)?;
        // [n_head, n_split, head_dim + 4]: max, sum, 2 unused, weighted V (attn_decode.cuh).
        let att_part = self
            .dev
            .zeros::<f32>(hp.n_head * n_split * (hp.head_dim + 4))?;
        let parts = p
            .instrs
            .iter()
            .find_map(|i| match i.body {
                Body::ArgmaxMerge { parts } => Some(parts),
                _ => None,
            })
            .expect("a program ends in the argmax");
        let amax_part = self.dev.zeros::<f32>(2 * parts)?;
        let ptrs = Ptrs {
            arena: self.ptr(&arena),
            att_part: self.ptr(&att_part),
            amax_part: self.ptr(&amax_part),
            logits: self.ptr(&self.logits),
        };
        let dev_instrs: Vec<DevInstr> = p
            .instrs
            .iter()
            .map(|ins| self.device_instr(&p, ins, &ptrs))
            .collect();
        let instrs = self.dev.upload(&dev_instrs)?;
        let n = dev_instrs.len();
        let ctr = self.dev.zeros::<u32>(n)?;
        let sync = self.dev.zeros::<u32>(2)?;
        let status = self.dev.zeros::<i32>(4)?;
        let prof = self.dev.zeros::<u64>(n + 1)?;
        let args = PersistentArgs {
            prog: self.ptr(&instrs),
            ctr: self.ptr(&ctr),
            sync: self.ptr(&sync),
            status: self.ptr(&status),
            tokens: self.ptr(&self.scratch.tokens),
            pos: self.ptr(&self.scratch.pos),
            inv_freq: self.ptr(&self.scratch.inv_freq),
            prof: 0,
            timeout_ns: timeout_ms as u64 * 1_000_000,
            pf_bytes,
            n_instr: n as i32,
            pad: 0,
        };
        self.dev.sync()?;
        Ok(Persistent {
            program: p,
            _instrs: instrs,
            ctr,
            sync,
            status,
            arena,
            _att_part: att_part,
            _amax_part: amax_part,
            prof,
            args,
            smem,
            per_sm,
        })
    }

    /// The device instruction of `ins`: its regions and weights resolved to addresses.
    fn device_instr(&self, p: &Program, ins: &program::Instr, b: &Ptrs) -> DevInstr {
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
        let cache = |l: usize, k: KvKind| self.ptr(self.cache(l, k));
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

    /// Launches the persistent kernel once (with per-instruction timestamps into `prof`
    /// when `profile`).
    fn persistent_launch(&mut self, profile: bool) -> Result<()> {
        let p = self
            .persistent
            .as_ref()
            .expect("the persistent kernel is in use");
        let mut args = p.args;
        if profile {
            args.prof = self.ptr(&p.prof);
        }
        let (grid, smem) = (p.program.ctas as u32, p.smem);
        let kernel = KernelId::Persistent { kv: p.program.kv };
        self.launch(kernel, (grid, 1), PERSIST_THREADS, smem, args)
    }

    /// Waits for the launch and returns its token word, or the kernel's error named by
    /// instruction and graph node.
    fn persistent_status(&mut self) -> Result<i32> {
        let p = self
            .persistent
            .as_ref()
            .expect("the persistent kernel is in use");
        let mut st = [0i32; 4];
        self.dev
            .stream
            .memcpy_dtoh(&p.status, &mut st)
            .map_err(cuda_err("reading the persistent kernel's status"))?;
        if st[1] != 0 {
            return Err(self.persistent_error(st));
        }
        Ok(st[0])
    }

    /// `persistent_status`, and the token word a valid token id: the argmax never picks a
    /// NaN, so an index outside the vocabulary means no logit was finite.
    fn persistent_result(&mut self) -> Result<u32> {
        let t = self.persistent_status()?;
        let vocab = self.graph.node(self.graph.output()).width;
        if t < 0 || t as usize >= vocab {
            return Err(Error::invalid(format!(
                "the persistent decode kernel chose token {t} (vocabulary {vocab}): the logits hold no finite value"
            )));
        }
        Ok(t as u32)
    }

    fn persistent_error(&self, st: [i32; 4]) -> Error {
        let p = &self.persistent.as_ref().expect("in use").program;
        let name = |i: i32| {
            p.instrs.get(i as usize).map_or_else(
                || format!("#{i}"),
                |ins| format!("{i} ({} {})", ins.op.name(), ins.name),
            )
        };
        let what = match st[1] as u32 {
            PERR_TIMEOUT => format!(
                "CTA {} waited longer than the watchdog allows at instruction {} for instruction {}: a synchronization fault (rerun with --decode-kernel graph)",
                st[3] >> 16,
                name(st[2]),
                name(st[3] & 0xffff)
            ),
            PERR_GEOMETRY => format!(
                "instruction {}: the kernel's tile geometry or shared memory ({} bytes) differs from the program's",
                name(st[2]),
                st[3]
            ),
            PERR_DISPATCH => format!(
                "instruction {}: no kernel instance for weight type id {}",
                name(st[2]),
                st[3]
            ),
            other => format!("unknown error code {other} at instruction {}", name(st[2])),
        };
        Error::invalid(format!("persistent decode kernel: {what}"))
    }

    /// A decode step on the persistent kernel: token → greedy token.
    pub(super) fn persistent_token(&mut self, token: u32) -> Result<u32> {
        self.upload_step(&[token])?;
        self.persistent_launch(false)?;
        let t = self.persistent_result()?;
        self.pos += 1;
        Ok(t)
    }

    /// A one-row step on the persistent kernel for `Engine::step` (logits in the logits
    /// buffer; the caller chooses their token and judges non-finite ones); with an observer
    /// that wants data, every group's output is read back and shown to it in schedule
    /// order, as the multi-kernel path does (a tracer names the first node with a NaN).
    pub(super) fn persistent_chunk(&mut self, toks: &[u32], obs: &mut dyn Observer) -> Result<()> {
        self.upload_step(toks)?;
        self.persistent_launch(false)?;
        self.persistent_status()?;
        if !obs.wants_data() {
            return Ok(());
        }
        for gi in 0..self.sched(Phase::Decode).groups.len() {
            let (id, mut data) = self.persistent_output(gi)?;
            let s = self.sched(Phase::Decode);
            let gr = &s.groups[gi];
            if gr.nodes.len() > 1 {
                let ops: Vec<&str> = self
                    .persistent
                    .as_ref()
                    .expect("in use")
                    .program
                    .instrs
                    .iter()
                    .filter(|i| i.group == Some(gi))
                    .map(|i| i.op.name())
                    .collect();
                obs.group(Some(&format!("persistent:{}", ops.join("+"))), &gr.nodes);
            } else {
                obs.group(None, &[id]);
            }
            obs.node_done(id, self.graph.node(id), self.pos, 1, &mut data)?;
        }
        Ok(())
    }

    /// The output of decode group `gi` after a persistent launch: (node, values).
    fn persistent_output(&self, gi: usize) -> Result<(NodeId, Vec<f32>)> {
        let gr = &self.sched(Phase::Decode).groups[gi];
        let out = gr.output();
        let len = self.graph.node(out).width;
        let p = self.persistent.as_ref().expect("in use");
        let view = match (&gr.kind, p.program.values.offset[out.index()]) {
            // The fused QKV group ends in the V-cache append: its output is the cache row
            // (widened to f32).
            (GroupKind::Qkv { v_cache, .. }, _) => {
                let layer = self.graph.node(*v_cache).layer.expect("a block node");
                let at = self.pos * len;
                return Ok((out, self.cache_values(layer, KvKind::V, at..at + len)?));
            }
            _ if out == self.graph.output() => self.logits.slice(0..len),
            (_, Some(o)) => p.arena.slice(o..o + len),
            (_, None) => {
                return Err(Error::invalid(format!(
                    "group {} has no readable output",
                    gr.name
                )));
            }
        };
        let mut host = vec![0.0f32; len];
        self.dev
            .stream
            .memcpy_dtoh(&view, &mut host)
            .map_err(cuda_err("reading a trace"))?;
        Ok((out, host))
    }

    /// Times one persistent decode step of `token` per instruction (ms, mean of `reps`
    /// launches after one warm-up, all at the same position): each instruction is charged
    /// the time from the latest completion before it to its own completion (%globaltimer
    /// stamps of the last CTA to finish it), so the times add up to the launch's span.
    pub fn profile_persistent(&mut self, token: u32, reps: usize) -> Result<Vec<f32>> {
        if self.persistent.is_none() {
            return Err(Error::invalid("the persistent decode kernel is not in use"));
        }
        self.upload_step(&[token])?;
        let n = self
            .persistent
            .as_ref()
            .expect("in use")
            .program
            .instrs
            .len();
        let mut sum = vec![0.0f64; n];
        for r in 0..=reps.max(1) {
            let mut init = vec![0u64; n + 1];
            init[0] = u64::MAX;
            let p = self.persistent.as_mut().expect("in use");
            self.dev
                .stream
                .memcpy_htod(&init, &mut p.prof)
                .map_err(cuda_err("resetting the profile"))?;
            self.persistent_launch(true)?;
            self.persistent_status()?;
            let p = self.persistent.as_ref().expect("in use");
            let mut stamps = vec![0u64; n + 1];
            self.dev
                .stream
                .memcpy_dtoh(&p.prof, &mut stamps)
                .map_err(cuda_err("reading the profile"))?;
            if r == 0 {
                continue;
            }
            let mut before = stamps[0];
            for (i, s) in sum.iter_mut().enumerate() {
                let end = stamps[i + 1];
                *s += end.saturating_sub(before) as f64 * 1e-6;
                before = before.max(end);
            }
        }
        self.pos += 1;
        let reps = reps.max(1) as f64;
        Ok(sum.iter().map(|s| (s / reps) as f32).collect())
    }

    /// Test access: puts the launch counters in the state after `epoch` launches (to cross
    /// the 2^32 wrap in a few steps), with instruction `lag`'s counter one launch behind
    /// (its consumers then wait until the watchdog fires), and sets the watchdog.
    pub fn persistent_set_state(
        &mut self,
        epoch: u32,
        lag: Option<usize>,
        timeout_ms: u64,
    ) -> Result<()> {
        let Some(p) = self.persistent.as_mut() else {
            return Err(Error::invalid("the persistent decode kernel is not in use"));
        };
        let ctr: Vec<u32> = p
            .program
            .instrs
            .iter()
            .enumerate()
            .map(|(i, ins)| {
                let e = if Some(i) == lag {
                    epoch.wrapping_sub(1)
                } else {
                    epoch
                };
                e.wrapping_mul(ins.items as u32)
            })
            .collect();
        let sync = [epoch, epoch.wrapping_mul(p.program.ctas as u32)];
        p.args.timeout_ns = timeout_ms * 1_000_000;
        let s = &self.dev.stream;
        s.memcpy_htod(&ctr, &mut p.ctr)
            .map_err(cuda_err("setting the counters"))?;
        s.memcpy_htod(&sync, &mut p.sync)
            .map_err(cuda_err("setting the epoch"))?;
        s.memcpy_htod(&[0i32; 4], &mut p.status)
            .map_err(cuda_err("clearing the status"))?;
        self.dev.sync()
    }
}

/// Device addresses of the persistent kernel's buffers.
struct Ptrs {
    arena: u64,
    att_part: u64,
    amax_part: u64,
    logits: u64,
}
