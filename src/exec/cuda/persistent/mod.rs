//! The persistent decode kernel on the device (kernels/persistent.cu): the fused decode
//! schedule as an instruction list (src/sched/program/) that one launch per token
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
//! `GRAPHRUN_PERSISTENT_TIMEOUT_MS=N` the watchdog (default 2000: a wait longer than this,
//! up to twice as long for the program's last instructions, ends the launch with an error
//! naming the instruction instead of hanging).
//!
//! Rooms: this file selects the kernel, sizes its program and uploads its state;
//! `encode.rs` turns instructions into device instructions; `run.rs` launches a step and
//! reads back its token, errors, traces and profile.

mod encode;
mod run;

use self::encode::Ptrs;
use super::CudaEngine;
use super::args::{Instr as DevInstr, PersistentArgs};
use super::device::cuda_err;
use crate::codegen::KernelId;
use crate::codegen::catalogue::PERSIST_THREADS;
use crate::error::{Error, Result};
use crate::sched::Phase;
use crate::sched::program::{self, Body, Program, ProgramOptions};
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
        self.sample_graph = None;
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
}
