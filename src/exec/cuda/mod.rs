//! The CUDA executor: runs the scheduled graph with the generated kernels.
//!
//! - Weights are uploaded once as raw GGML blocks (norm and bias vectors as f32).
//! - The KV cache (f32) lives on the device; positions and token ids are read by the kernels
//!   from device memory, so the decode step can be captured once as a CUDA graph and
//!   replayed (`step_argmax`), with greedy argmax on the device (4 bytes back per token).
//! - Decode (T = 1) runs the fused schedule (or one kernel per node with `--no-fuse`);
//!   prefill runs one kernel per node with batched matmuls, in chunks of `ubatch` rows.

pub mod args;

use self::args::*;
use super::{Engine, Observer};
use crate::codegen;
use crate::error::{Error, Result};
use crate::fault::FaultKind;
use crate::graph::{ActSemantics, Graph, KvKind, Node, NodeId, Op};
use crate::model::{ModelFile, RopeType};
use crate::quant::GgmlType;
use crate::sched::{BufferPlan, GroupKind, Schedule, schedule, wname};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaGraph, CudaModule, CudaSlice, CudaStream, DevicePtr,
    LaunchConfig, PushKernelArg,
};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

/// CTAs of the device argmax (kernels/argmax.cu).
const ARGMAX_CTAS: u32 = 128;

/// Rows per prefill chunk.
pub const UBATCH: usize = 512;
/// Dynamic shared memory of the prefill GEMM (`sizeof(MmqSmem)` in kernels/mmq.cu, which
/// asserts the same number).
const MMQ_SMEM_BYTES: u32 = 79872;
/// Prefill GEMM tile: weight rows × tokens per CTA (`MM_BM`, `MM_BN` in kernels/mmq.cu).
const MMQ_TILE: (usize, usize) = (64, 128);
const MATVEC_THREADS: u32 = 256;

fn cuda_err(what: &str) -> impl Fn(cudarc::driver::DriverError) -> Error + '_ {
    move |e| Error::invalid(format!("CUDA error while {what}: {e}"))
}

/// Device pointers of a prepared matvec input (0 where a format is not needed).
#[derive(Clone, Copy, Default)]
struct ActPtrs {
    xf: u64,
    q0: u64,
    d0: u64,
    qk: u64,
    dk: u64,
    bs: u64,
}

fn wtype(n: &Node) -> GgmlType {
    n.weight.as_ref().expect("node has a weight").dtype
}

/// Options for building the executor.
#[derive(Clone, Debug)]
pub struct CudaOptions {
    pub device: usize,
    pub n_ctx: usize,
    /// Fused decode schedule (false = one kernel per graph node, `--no-fuse`).
    pub fuse: bool,
    /// Most logit rows one step may ask for (perplexity asks for many).
    pub max_logit_rows: usize,
    pub quiet: bool,
}

pub struct CudaEngine<'m> {
    model: &'m ModelFile,
    graph: Graph,
    /// [decode schedule, prefill schedule (unfused)]
    scheds: [Schedule; 2],
    plans: [BufferPlan; 2],
    arenas: [CudaSlice<f32>; 2],
    pub fuse: bool,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    arch: &'static str,
    modules: HashMap<&'static str, Arc<CudaModule>>,
    funcs: HashMap<String, CudaFunction>,
    /// One wave of resident CTAs per matvec kernel (occupancy x SMs), for the grid choice.
    slots: HashMap<String, usize>,
    weights: HashMap<String, CudaSlice<u8>>,
    small: HashMap<String, CudaSlice<f32>>,
    k_cache: Vec<CudaSlice<f32>>,
    v_cache: Vec<CudaSlice<f32>>,
    logits: CudaSlice<f32>,
    max_logit_rows: usize,
    /// Prefill activation quantization scratch: q0, d0, qk, dk, bs.
    q0: CudaSlice<i8>,
    d0: CudaSlice<f32>,
    qk: CudaSlice<i8>,
    dk: CudaSlice<f32>,
    bs: CudaSlice<i32>,
    /// The prepared f32 input of decode matvecs (f32 semantics with a norm prologue).
    xf_buf: CudaSlice<f32>,
    tokens: CudaSlice<i32>,
    pos_buf: CudaSlice<i32>,
    amax: CudaSlice<i32>,
    /// Argmax partials and ticket (kernels/argmax.cu).
    amax_part: CudaSlice<u32>,
    inv_freq: CudaSlice<f32>,
    /// Decode attention partials `[n_head, att_splits, head_dim + 2]`.
    att_part: CudaSlice<f32>,
    /// Per-head tickets of the decode attention's last-CTA merge (kernels/attention.cu).
    att_ticket: CudaSlice<u32>,
    att_splits: usize,
    n_sm: u32,
    max_smem: u32,
    pos: usize,
    n_ctx: usize,
    decode_graph: Option<CudaGraph>,
    /// When set, every group's kernel time (ms) of the next decode step is recorded here.
    pub profile: Option<Vec<f32>>,
    pub device_name: String,
}

impl<'m> CudaEngine<'m> {
    pub fn new(model: &'m ModelFile, graph: Graph, opts: &CudaOptions) -> Result<CudaEngine<'m>> {
        let (name, cc) = super::gpu_probe::probe(opts.device).map_err(Error::invalid)?;
        let arch = codegen::arch_name(cc)?;
        let ctx = CudaContext::new(opts.device).map_err(cuda_err("opening the device"))?;
        // One stream, in order: cudarc's cross-stream event tracking is not needed, and its
        // events would otherwise be recorded into the captured decode graph.
        // SAFETY: called before any allocation or launch on this context.
        unsafe { ctx.disable_event_tracking() };
        // A created stream: the legacy default stream cannot be captured into a CUDA graph.
        let stream = ctx.new_stream().map_err(cuda_err("creating a stream"))?;
        let n_sm = ctx
            .attribute(
                cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
            )
            .map_err(cuda_err("reading the SM count"))? as u32;
        let max_smem = ctx
            .attribute(cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)
            .map_err(cuda_err("reading the shared memory limit"))? as u32;
        let hp = graph.hparams.clone();
        let fused = schedule(&graph, opts.fuse);
        let unfused = schedule(&graph, false);
        let plans = [fused.plan(&graph, 1), unfused.plan(&graph, UBATCH)];
        check_gpu_types(&graph, model)?;

        // Memory: weights + KV cache + arenas + logits + scratch, checked before allocating.
        let vocab = graph.node(graph.output()).width;
        let kvw = hp.n_head_kv * hp.head_dim;
        let kmax = graph
            .nodes()
            .filter_map(|(_, n)| {
                n.weight
                    .as_ref()
                    .map(|w| *w.shape.last().unwrap_or(&1) as usize)
            })
            .max()
            .unwrap_or(1);
        let mut names: Vec<String> = graph
            .nodes()
            .filter_map(|(_, n)| n.weight.as_ref().map(|w| w.name.clone()))
            .collect();
        names.sort_unstable();
        names.dedup();
        let weight_bytes: u64 = names
            .iter()
            .map(|n| model.tensor(n).map_or(0, |t| t.nbytes))
            .sum();
        let need = weight_bytes as usize
            + 2 * hp.n_layer * opts.n_ctx * kvw * 4
            + (plans[0].total + plans[1].total) * 4
            + opts.max_logit_rows.max(1) * vocab * 4
            + UBATCH * kmax * 2 * 2
            + (1 << 24);
        let (free, total) = ctx
            .mem_get_info()
            .map_err(cuda_err("querying device memory"))?;
        if need > free {
            return Err(Error::invalid(format!(
                "out of GPU memory: this model needs about {} MiB ({} MiB weights, {} MiB KV cache for --ctx {}) but {name} has {} MiB free of {} MiB; lower --ctx or use --interp",
                need >> 20,
                weight_bytes >> 20,
                (2 * hp.n_layer * opts.n_ctx * kvw * 4) >> 20,
                opts.n_ctx,
                free >> 20,
                total >> 20
            )));
        }
        // Decode attention: splits of 32 positions (kernels/attention.cu, SPLIT_CHUNK), one
        // CTA per (query head, split). The kernels take head dims up to 256 (multiples of
        // 4); the check below keeps the GPU to the shapes it has been validated on.
        let att_chunk = 32;
        let att_splits = opts.n_ctx.div_ceil(att_chunk);
        if hp.n_head / hp.n_head_kv > 8 || hp.head_dim > 128 || !hp.head_dim.is_multiple_of(16) {
            return Err(Error::invalid(format!(
                "the GPU attention kernels handle up to 8 query heads per KV head and head dims up to 128 (multiple of 16); this model has {} per KV head and head dim {}; use --interp",
                hp.n_head / hp.n_head_kv,
                hp.head_dim
            )));
        }
        let alloc_f32 = |n: usize| {
            stream
                .alloc_zeros::<f32>(n.max(1))
                .map_err(cuda_err("allocating device memory"))
        };
        let mut eng = CudaEngine {
            model,
            scheds: [fused, unfused],
            arenas: [alloc_f32(plans[0].total)?, alloc_f32(plans[1].total)?],
            plans,
            fuse: opts.fuse,
            arch,
            modules: HashMap::new(),
            funcs: HashMap::new(),
            slots: HashMap::new(),
            weights: HashMap::new(),
            small: HashMap::new(),
            k_cache: (0..hp.n_layer)
                .map(|_| alloc_f32(opts.n_ctx * kvw))
                .collect::<Result<_>>()?,
            v_cache: (0..hp.n_layer)
                .map(|_| alloc_f32(opts.n_ctx * kvw))
                .collect::<Result<_>>()?,
            logits: alloc_f32(opts.max_logit_rows.max(1) * vocab)?,
            max_logit_rows: opts.max_logit_rows.max(1),
            q0: stream
                .alloc_zeros::<i8>(UBATCH * kmax)
                .map_err(cuda_err("allocating scratch"))?,
            d0: alloc_f32(UBATCH * kmax / 32)?,
            qk: stream
                .alloc_zeros::<i8>(UBATCH * kmax)
                .map_err(cuda_err("allocating scratch"))?,
            dk: alloc_f32(UBATCH * kmax / 256 + 1)?,
            bs: stream
                .alloc_zeros::<i32>(UBATCH * kmax / 16)
                .map_err(cuda_err("allocating scratch"))?,
            xf_buf: alloc_f32(kmax)?,
            tokens: stream
                .alloc_zeros::<i32>(UBATCH)
                .map_err(cuda_err("allocating scratch"))?,
            pos_buf: stream
                .alloc_zeros::<i32>(1)
                .map_err(cuda_err("allocating scratch"))?,
            amax: stream
                .alloc_zeros::<i32>(1)
                .map_err(cuda_err("allocating scratch"))?,
            amax_part: stream
                .alloc_zeros::<u32>(2 * ARGMAX_CTAS as usize + 1)
                .map_err(cuda_err("allocating scratch"))?,
            inv_freq: stream
                .clone_htod(&crate::exec::interp::ops::rope_inv_freq(
                    hp.rope_base,
                    hp.head_dim,
                ))
                .map_err(cuda_err("uploading RoPE frequencies"))?,
            att_part: alloc_f32(hp.n_head * att_splits * (hp.head_dim + 2))?,
            att_ticket: stream
                .alloc_zeros::<u32>(hp.n_head)
                .map_err(cuda_err("allocating scratch"))?,
            att_splits,
            n_sm,
            max_smem,
            pos: 0,
            n_ctx: opts.n_ctx,
            decode_graph: None,
            profile: None,
            device_name: name,
            graph,
            ctx,
            stream,
        };
        eng.upload_weights(&names, weight_bytes, opts.quiet)?;
        eng.load_kernels()?;
        Ok(eng)
    }

    fn upload_weights(&mut self, names: &[String], total: u64, quiet: bool) -> Result<()> {
        let t0 = std::time::Instant::now();
        let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let mut done = 0u64;
        let small_names: Vec<String> = self
            .graph
            .nodes()
            .filter(|(_, n)| matches!(n.op, Op::RmsNorm { .. } | Op::BiasAdd))
            .filter_map(|(_, n)| n.weight.as_ref().map(|w| w.name.clone()))
            .collect();
        for name in names {
            let t = self.model.require(name)?;
            let bytes = self.model.tensor_bytes(t);
            if small_names.contains(name) {
                let f = crate::quant::dequantize(t.dtype, bytes, t.n_elements() as usize);
                self.small.insert(
                    name.clone(),
                    self.stream
                        .clone_htod(&f)
                        .map_err(cuda_err("uploading weights"))?,
                );
            } else {
                // 64 zero bytes of padding: kernels assemble unaligned words from aligned
                // loads that may reach 2 bytes past a tensor's last block.
                let mut dev = self
                    .stream
                    .alloc_zeros::<u8>(bytes.len() + 64)
                    .map_err(cuda_err("allocating weights"))?;
                self.stream
                    .memcpy_htod(bytes, &mut dev.slice_mut(0..bytes.len()))
                    .map_err(cuda_err("uploading weights"))?;
                self.weights.insert(name.clone(), dev);
            }
            let before = done;
            done += t.nbytes;
            if !quiet && total > (256 << 20) {
                if tty {
                    eprint!(
                        "\rgraphrun: uploading weights {:>5} / {} MiB",
                        done >> 20,
                        total >> 20
                    );
                } else if before * 4 / total != done * 4 / total {
                    // Logs get one line per quarter instead of one per tensor.
                    eprintln!(
                        "graphrun: uploading weights {:>5} / {} MiB",
                        done >> 20,
                        total >> 20
                    );
                }
            }
        }
        self.stream
            .synchronize()
            .map_err(cuda_err("uploading weights"))?;
        if !quiet && total > (256 << 20) {
            if tty {
                eprintln!(" ({:.1} s)", t0.elapsed().as_secs_f64());
            } else {
                eprintln!(
                    "graphrun: weights uploaded in {:.1} s",
                    t0.elapsed().as_secs_f64()
                );
            }
        }
        Ok(())
    }

    /// Every kernel either schedule may launch, loaded up front (NVRTC compiles a family on
    /// first use and caches the PTX on disk).
    fn load_kernels(&mut self) -> Result<()> {
        let mut needed: Vec<String> = [
            "argmax",
            "quantize_q8",
            "prep",
            "attention_split",
            "attention",
        ]
        .map(String::from)
        .to_vec();
        for s in &self.scheds {
            for gr in &s.groups {
                needed.extend(gr.kernel.split('+').map(String::from));
                if let GroupKind::Single { node } = gr.kind {
                    let n = self.graph.node(node);
                    if let Op::MatMul { act } = n.op {
                        let mmq =
                            format!("mmq_{}", wname(n.weight.as_ref().expect("weight").dtype));
                        if act == ActSemantics::Q8 && codegen::family_of(&mmq).is_some() {
                            needed.push(mmq);
                        }
                        needed.push(format!(
                            "matmul_{}_{}",
                            wname(n.weight.as_ref().expect("weight").dtype),
                            act.name()
                        ));
                    }
                }
            }
        }
        needed.sort();
        needed.dedup();
        for k in needed {
            self.func(&k)?;
            if k.starts_with("matvec_") {
                self.wave_slots(&k)?;
            }
        }
        Ok(())
    }

    fn func(&mut self, kernel: &str) -> Result<CudaFunction> {
        if let Some(f) = self.funcs.get(kernel) {
            return Ok(f.clone());
        }
        let family = codegen::family_of(kernel)
            .ok_or_else(|| Error::invalid(format!("kernel `{kernel}` is not in the catalogue")))?;
        if !self.modules.contains_key(family) {
            let ptx = codegen::family_ptx(family, self.arch, false)?;
            let m = self
                .ctx
                .load_module(cudarc::nvrtc::Ptx::from_src(ptx))
                .map_err(|e| {
                    Error::invalid(format!(
                        "loading kernel family `{family}` ({}): {e}",
                        self.arch
                    ))
                })?;
            self.modules.insert(family, m);
        }
        let f = self.modules[family]
            .load_function(kernel)
            .map_err(cuda_err("loading a kernel"))?;
        if family == "mmq" {
            f.set_attribute(
                cudarc::driver::sys::CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                MMQ_SMEM_BYTES as i32,
            )
            .map_err(cuda_err("raising the GEMM's shared memory limit"))?;
        }
        self.funcs.insert(kernel.to_string(), f.clone());
        Ok(f)
    }

    fn launch<A: cudarc::driver::DeviceRepr>(
        &mut self,
        kernel: &str,
        grid: (u32, u32),
        block: u32,
        smem: u32,
        a: A,
    ) -> Result<()> {
        let f = self.func(kernel)?;
        if smem > self.max_smem {
            return Err(Error::invalid(format!(
                "kernel {kernel} needs {smem} bytes of shared memory; this GPU allows {}",
                self.max_smem
            )));
        }
        let cfg = LaunchConfig {
            grid_dim: (grid.0.max(1), grid.1.max(1), 1),
            block_dim: (block, 1, 1),
            shared_mem_bytes: smem,
        };
        let mut b = self.stream.launch_builder(&f);
        b.arg(&a);
        // SAFETY: `a` mirrors the kernel's parameter struct; every pointer in it refers to a
        // live allocation of this engine sized for the launch.
        unsafe { b.launch(cfg) }.map_err(|e| Error::invalid(format!("launching {kernel}: {e}")))?;
        Ok(())
    }

    fn ptr<T>(&self, s: &CudaSlice<T>) -> u64 {
        s.device_ptr(&self.stream).0
    }

    fn wptr(&self, n: &Node) -> u64 {
        let w = n.weight.as_ref().expect("node has a weight");
        match self.weights.get(&w.name) {
            Some(s) => self.ptr(s),
            None => self.ptr(&self.small[&w.name]),
        }
    }

    /// Device address of a node's output buffer in schedule `s`.
    fn buf(&self, s: usize, id: NodeId) -> u64 {
        if id == self.graph.output() {
            return self.ptr(&self.logits);
        }
        let off = self.plans[s].offset[id.index()]
            .unwrap_or_else(|| panic!("node {} has no buffer", self.graph.node(id).name));
        self.ptr(&self.arenas[s]) + (off * 4) as u64
    }

    fn small_ptr(&self, n: Option<NodeId>) -> u64 {
        n.map_or(0, |id| {
            let w = self.graph.node(id).weight.as_ref().expect("weight");
            self.ptr(&self.small[&w.name])
        })
    }

    /// The group prologue: prepares the K-wide input at `x` for weights of `types` under
    /// `act` — RMSNorm with `norm` (weight pointer, eps) when given, then Q8_0 and/or Q8_K
    /// quantization (q8) or an f32 copy — into the decode activation buffers.
    fn prep(
        &mut self,
        x: u64,
        norm: Option<(u64, f32)>,
        k: usize,
        act: ActSemantics,
        types: &[GgmlType],
    ) -> Result<ActPtrs> {
        let q8 = act == ActSemantics::Q8 && types.iter().all(|t| t.is_quantized());
        let legacy = q8 && types.iter().any(|t| t.block_elems() == 32);
        let kq = q8 && types.iter().any(|t| t.block_elems() == 256);
        if !q8 && norm.is_none() {
            return Ok(ActPtrs {
                xf: x,
                ..Default::default()
            });
        }
        let p = ActPtrs {
            xf: if q8 { 0 } else { self.ptr(&self.xf_buf) },
            q0: if legacy { self.ptr(&self.q0) } else { 0 },
            d0: if legacy { self.ptr(&self.d0) } else { 0 },
            qk: if kq { self.ptr(&self.qk) } else { 0 },
            dk: if kq { self.ptr(&self.dk) } else { 0 },
            bs: if kq { self.ptr(&self.bs) } else { 0 },
        };
        let (nw, eps) = norm.unwrap_or((0, 0.0));
        let a = PrepArgs {
            x,
            norm_w: nw,
            xf: p.xf,
            q0: p.q0,
            d0: p.d0,
            qk: p.qk,
            dk: p.dk,
            bs: p.bs,
            k: k as i32,
            eps,
        };
        self.launch("prep", ((k / 32).div_ceil(8) as u32, 1), 256, 0, a)?;
        Ok(p)
    }

    /// (CTAs, warps per row set) for a matvec of `rows` rows of `k` inputs. Mirrors
    /// kernels/matvec.cu: lanes per row = smallest power of two covering the row's units,
    /// rows per lane group (RowsPerWarp); the K split grows (up to the 8 warps of a CTA)
    /// until about 2048 warps are busy, as long as every warp keeps half a pass of units.
    /// Then, when the grid spans several waves of `slots` resident CTAs, a larger split is
    /// taken if it fills the waves clearly better (a last, partly filled wave leaves SMs
    /// idle while it drains), as long as every warp still gets units.
    fn matvec_grid(&self, rows: usize, t: GgmlType, k: usize, slots: usize) -> (u32, i32) {
        let unit = match t {
            GgmlType::Q4_K | GgmlType::Q5_K => 64,
            _ => 32,
        };
        let units = k / unit;
        let mut lanes = 32;
        while lanes > 1 && lanes / 2 >= units {
            lanes /= 2;
        }
        let per_set = (if unit >= 128 { 2 } else { 4 }) * (32 / lanes);
        let sets = rows.div_ceil(per_set);
        let mut ks = 1;
        while ks < 8 && sets * ks < 2048 && units >= lanes * ks {
            ks *= 2;
        }
        let warps = (MATVEC_THREADS / 32) as usize;
        let grid = |ks: usize| rows.div_ceil(warps / ks * per_set);
        let fill = |ks: usize| {
            let g = grid(ks);
            g as f64 / (g.div_ceil(slots.max(1)) * slots.max(1)) as f64
        };
        if grid(ks) > slots {
            let mut best = ks;
            for c in [ks * 2, ks * 4, ks * 8] {
                if c <= warps && units > lanes * (c - 1) && fill(c) > fill(best) + 0.1 {
                    best = c;
                }
            }
            ks = best;
        }
        (grid(ks) as u32, ks as i32)
    }

    /// CTAs of `kernel` (MATVEC_THREADS threads, no dynamic shared memory) resident per SM,
    /// times the SMs: one wave.
    fn wave_slots(&mut self, kernel: &str) -> Result<usize> {
        if let Some(&s) = self.slots.get(kernel) {
            return Ok(s);
        }
        let f = self.func(kernel)?;
        let per_sm = f
            .occupancy_max_active_blocks_per_multiprocessor(MATVEC_THREADS, 0, None)
            .map_err(cuda_err("querying occupancy"))?;
        let s = (per_sm.max(1) * self.n_sm) as usize;
        self.slots.insert(kernel.to_string(), s);
        Ok(s)
    }

    fn act(n: &Node) -> ActSemantics {
        match n.op {
            Op::MatMul { act } => act,
            _ => ActSemantics::F32,
        }
    }

    /// Runs group `gi` of schedule `s` for `t` rows; `lrows` = logit rows of the step (the
    /// output node computes only those).
    fn run_group(&mut self, s: usize, gi: usize, t: usize, lrows: &Range<usize>) -> Result<()> {
        let kind = self.scheds[s].groups[gi].kind.clone();
        let kernel = self.scheds[s].groups[gi].kernel.clone();
        let hp = self.graph.hparams.clone();
        let g = &self.graph;
        match kind {
            GroupKind::Single { node } => {
                self.run_node(s, node, t, lrows)?;
                self.scale_fault(s, node, t, lrows)
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
                let (nq, nk, nv) = (g.node(q).clone(), g.node(k).clone(), g.node(v).clone());
                let kdim = in_width(&nq);
                let layer = nq.layer.expect("block node");
                let types = [wtype(&nq), wtype(&nv)];
                let x = self.buf(s, g.node(norm).inputs[0]);
                let nn = g.node(norm).clone();
                let p = self.prep(
                    x,
                    Some((self.wptr(&nn), rms_eps(&nn))),
                    kdim,
                    Self::act(&nq),
                    &types,
                )?;
                let a = QkvArgs {
                    wq: self.wptr(&nq),
                    wk: self.wptr(&nk),
                    wv: self.wptr(&nv),
                    bq: self.small_ptr(q_bias),
                    bk: self.small_ptr(k_bias),
                    bv: self.small_ptr(v_bias),
                    xf: p.xf,
                    q0: p.q0,
                    d0: p.d0,
                    qk: p.qk,
                    dk: p.dk,
                    bs: p.bs,
                    q_out: self.buf(s, rope_q),
                    k_cache: self.ptr(&self.k_cache[layer]),
                    v_cache: self.ptr(&self.v_cache[layer]),
                    inv_freq: self.ptr(&self.inv_freq),
                    pos: self.ptr(&self.pos_buf),
                    k: kdim as i32,
                    n_head: hp.n_head as i32,
                    n_head_kv: hp.n_head_kv as i32,
                    head_dim: hp.head_dim as i32,
                    rb_q: row_bytes(&nq),
                    rb_k: row_bytes(&nk),
                    rb_v: row_bytes(&nv),
                    neox: (hp.rope_type == Some(RopeType::Neox)) as i32,
                };
                let pairs = (hp.n_head + 2 * hp.n_head_kv) * hp.head_dim / 2;
                let name = kernel.trim_start_matches("prep+").to_string();
                self.launch(
                    &name,
                    (pairs.div_ceil((MATVEC_THREADS / 32) as usize) as u32, 1),
                    MATVEC_THREADS,
                    0,
                    a,
                )
            }
            GroupKind::NormGateUp {
                norm,
                gate,
                up,
                mul,
                ..
            } => {
                let (ng, nu, nn) = (
                    g.node(gate).clone(),
                    g.node(up).clone(),
                    g.node(norm).clone(),
                );
                let x = self.buf(s, nn.inputs[0]);
                let (w, w2, out) = (self.wptr(&ng), self.wptr(&nu), self.buf(s, mul));
                self.matvec(
                    &ng,
                    x,
                    Some((self.wptr(&nn), rms_eps(&nn))),
                    w2,
                    out,
                    0,
                    "swiglu",
                )?;
                let _ = w;
                Ok(())
            }
            GroupKind::MatmulAdd {
                matmul,
                add,
                residual,
            } => {
                let nm = g.node(matmul).clone();
                let (x, out, extra) = (
                    self.buf(s, nm.inputs[0]),
                    self.buf(s, add),
                    self.buf(s, residual),
                );
                self.matvec(&nm, x, None, 0, out, extra, "add")
            }
            GroupKind::NormMatmul { norm, matmul } => {
                let (nm, nn) = (g.node(matmul).clone(), g.node(norm).clone());
                let (x, out) = (self.buf(s, nn.inputs[0]), self.buf(s, matmul));
                self.matvec(
                    &nm,
                    x,
                    Some((self.wptr(&nn), rms_eps(&nn))),
                    0,
                    out,
                    0,
                    "none",
                )
            }
        }
    }

    /// Decode matvec of node `n` (prep + matvec kernel): input at `x`, optional RMSNorm
    /// prologue, optional second weight (`w2`, swiglu) and epilogue operand (`extra`).
    #[allow(clippy::too_many_arguments)]
    fn matvec(
        &mut self,
        n: &Node,
        x: u64,
        norm: Option<(u64, f32)>,
        w2: u64,
        out: u64,
        extra: u64,
        epi: &str,
    ) -> Result<()> {
        let (k, t) = (in_width(n), wtype(n));
        let act = Self::act(n);
        let p = self.prep(x, norm, k, act, &[t])?;
        let a = MatvecArgs {
            w: self.wptr(n),
            w2,
            xf: p.xf,
            q0: p.q0,
            d0: p.d0,
            qk: p.qk,
            dk: p.dk,
            bs: p.bs,
            out,
            extra,
            rows: n.width as i32,
            k: k as i32,
            row_bytes: row_bytes(n),
            ksplit: 1,
        };
        let name = format!(
            "matvec_{}_{}_{epi}",
            wname(t),
            if t.is_quantized() { act.name() } else { "f32" }
        );
        let slots = self.wave_slots(&name)?;
        let (grid, ksplit) = self.matvec_grid(n.width, t, k, slots);
        self.launch(
            &name,
            (grid, 1),
            MATVEC_THREADS,
            0,
            MatvecArgs { ksplit, ..a },
        )
    }

    /// Applies an injected `scale=S` fault to a node's output, in place (src/fault.rs; the
    /// scheduler gives a faulted node a group of its own).
    fn scale_fault(&mut self, s: usize, id: NodeId, t: usize, lrows: &Range<usize>) -> Result<()> {
        let Some(FaultKind::Scale(f)) = self.graph.node(id).fault else {
            return Ok(());
        };
        let rows = if id == self.graph.output() {
            lrows.len()
        } else {
            t
        };
        let width = self.graph.node(id).width;
        let out = self.buf(s, id);
        self.launch_scale(out, out, rows, width, f)
    }

    /// `out = x · s` over `rows` rows of `width` (the `scale` kernel of fault injection).
    fn launch_scale(&mut self, x: u64, out: u64, rows: usize, width: usize, s: f32) -> Result<()> {
        let count = rows * width;
        let a = EltArgs {
            a: x,
            b: 0,
            out,
            n: count as i32,
            width: width as i32,
            eps: s,
        };
        self.launch(
            "scale",
            ((count.div_ceil(256) as u32).min(4096), 1),
            256,
            0,
            a,
        )
    }

    /// One graph node as its own kernel(s), for `t` rows.
    fn run_node(&mut self, s: usize, id: NodeId, t: usize, lrows: &Range<usize>) -> Result<()> {
        let n = self.graph.node(id).clone();
        let hp = self.graph.hparams.clone();
        let inp = |e: &Self, k: usize| e.buf(s, n.inputs[k]);
        let elt_grid = |count: usize| (count.div_ceil(256) as u32).min(4096);
        let width = n.width;
        match &n.op {
            Op::Embedding => {
                let a = EmbArgs {
                    w: self.wptr(&n),
                    tokens: self.ptr(&self.tokens),
                    out: self.buf(s, id),
                    t: t as i32,
                    width: width as i32,
                    row_bytes: row_bytes(&n),
                };
                self.launch(
                    &format!("embedding_{}", wname(n.weight.as_ref().expect("w").dtype)),
                    (elt_grid(t * width), 1),
                    256,
                    0,
                    a,
                )
            }
            Op::RmsNorm { eps } => {
                let a = EltArgs {
                    a: inp(self, 0),
                    b: self.wptr(&n),
                    out: self.buf(s, id),
                    n: (t * width) as i32,
                    width: width as i32,
                    eps: *eps,
                };
                self.launch("rms_norm", (t as u32, 1), 256, 0, a)
            }
            Op::MatMul { act } => {
                let is_out = id == self.graph.output();
                let (rows_t, first) = if is_out {
                    (lrows.len(), lrows.start)
                } else {
                    (t, 0)
                };
                let k = in_width(&n);
                let x = inp(self, 0) + (first * k * 4) as u64;
                let wt = n.weight.as_ref().expect("w").dtype;
                if rows_t == 1 {
                    let out = self.buf(s, id);
                    return self.matvec(&n, x, None, 0, out, 0, "none");
                }
                let q8 = *act == ActSemantics::Q8 && wt.is_quantized();
                let legacy = wt.block_elems() == 32;
                if q8 {
                    let qa = QuantizeArgs {
                        x,
                        q0: if legacy { self.ptr(&self.q0) } else { 0 },
                        d0: self.ptr(&self.d0),
                        qk: if legacy { 0 } else { self.ptr(&self.qk) },
                        dk: self.ptr(&self.dk),
                        bs: self.ptr(&self.bs),
                        k: k as i32,
                        t: rows_t as i32,
                    };
                    self.launch("quantize_q8", (rows_t as u32, 1), 256, 0, qa)?;
                }
                let a = MatmulArgs {
                    w: self.wptr(&n),
                    out: self.buf(s, id),
                    xf: x,
                    q0: self.ptr(&self.q0),
                    d0: self.ptr(&self.d0),
                    qk: self.ptr(&self.qk),
                    dk: self.ptr(&self.dk),
                    bs: self.ptr(&self.bs),
                    rows: width as i32,
                    k: k as i32,
                    row_bytes: row_bytes(&n),
                    t: rows_t as i32,
                };
                let mmq = format!("mmq_{}", wname(wt));
                if q8 && k.is_multiple_of(128) && codegen::family_of(&mmq).is_some() {
                    // Tiled integer GEMM (MMQ_TILE rows × tokens per CTA).
                    let m = MmqArgs {
                        w: a.w,
                        out: a.out,
                        q0: a.q0,
                        d0: a.d0,
                        qk: a.qk,
                        dk: a.dk,
                        bs: a.bs,
                        rows: a.rows,
                        k: a.k,
                        row_bytes: a.row_bytes,
                        t: a.t,
                    };
                    return self.launch(
                        &mmq,
                        (
                            width.div_ceil(MMQ_TILE.0) as u32,
                            rows_t.div_ceil(MMQ_TILE.1) as u32,
                        ),
                        256,
                        MMQ_SMEM_BYTES,
                        m,
                    );
                }
                let grid = (width.div_ceil(8) as u32, rows_t.div_ceil(8) as u32);
                self.launch(
                    &format!("matmul_{}_{}", wname(wt), act.name()),
                    grid,
                    256,
                    0,
                    a,
                )
            }
            Op::BiasAdd if n.fault == Some(FaultKind::BiasOff) => {
                let (x, out) = (inp(self, 0), self.buf(s, id));
                self.launch_scale(x, out, t, width, 1.0)
            }
            Op::BiasAdd | Op::Add | Op::Mul | Op::Silu => {
                let b = match n.op {
                    Op::BiasAdd => self.wptr(&n),
                    Op::Add | Op::Mul => inp(self, 1),
                    _ => 0,
                };
                let a = EltArgs {
                    a: inp(self, 0),
                    b,
                    out: self.buf(s, id),
                    n: (t * width) as i32,
                    width: width as i32,
                    eps: 0.0,
                };
                self.launch(n.op.name(), (elt_grid(t * width), 1), 256, 0, a)
            }
            Op::Rope {
                n_head,
                head_dim,
                rope,
                ..
            } => {
                let a = RopeArgs {
                    x: inp(self, 0),
                    out: self.buf(s, id),
                    inv_freq: self.ptr(&self.inv_freq),
                    pos: self.ptr(&self.pos_buf),
                    t: t as i32,
                    n_head: *n_head as i32,
                    head_dim: *head_dim as i32,
                    neox: (*rope == RopeType::Neox) as i32,
                    offset: match n.fault {
                        Some(FaultKind::Offset(k)) => k as i32,
                        _ => 0,
                    },
                };
                self.launch("rope", (elt_grid(t * width / 2), 1), 256, 0, a)
            }
            Op::KvAppend { layer, cache } => {
                let c = match cache {
                    KvKind::K => self.ptr(&self.k_cache[*layer]),
                    KvKind::V => self.ptr(&self.v_cache[*layer]),
                };
                let a = KvArgs {
                    x: inp(self, 0),
                    cache: c,
                    out: self.buf(s, id),
                    pos: self.ptr(&self.pos_buf),
                    t: t as i32,
                    width: width as i32,
                };
                self.launch("kv_append", (elt_grid(t * width), 1), 256, 0, a)
            }
            Op::Attention {
                layer,
                n_head,
                n_head_kv,
                head_dim,
                scale,
            } => {
                if *head_dim > 256 {
                    return Err(Error::invalid(format!(
                        "head dim {head_dim} exceeds the attention kernel's 256"
                    )));
                }
                let a = AttnArgs {
                    q: inp(self, 0),
                    k_cache: self.ptr(&self.k_cache[*layer]),
                    v_cache: self.ptr(&self.v_cache[*layer]),
                    out: self.buf(s, id),
                    pos: self.ptr(&self.pos_buf),
                    n_head: *n_head as i32,
                    n_head_kv: *n_head_kv as i32,
                    head_dim: *head_dim as i32,
                    t: t as i32,
                    scale: *scale,
                };
                let _ = hp;
                if t > 1 {
                    return self.launch("attention", (*n_head as u32, t as u32), 128, 0, a);
                }
                // Decode: split the positions over CTAs, the last CTA of each head merges
                // the splits (fixed grid, so the captured graph serves every position).
                let sa = AttnSplitArgs {
                    q: a.q,
                    k_cache: a.k_cache,
                    v_cache: a.v_cache,
                    out: a.out,
                    pos: a.pos,
                    part: self.ptr(&self.att_part),
                    n_head: a.n_head,
                    n_head_kv: a.n_head_kv,
                    head_dim: a.head_dim,
                    n_split: self.att_splits as i32,
                    scale: a.scale,
                    ticket: self.ptr(&self.att_ticket),
                };
                self.launch(
                    "attention_split",
                    (*n_head as u32, self.att_splits as u32),
                    128,
                    0,
                    sa,
                )
            }
        }
    }

    /// Copies the output of group `gi` (its last node) to the host.
    fn group_output(
        &mut self,
        s: usize,
        gi: usize,
        t: usize,
        lrows: &Range<usize>,
    ) -> Result<(NodeId, usize, Vec<f32>)> {
        let gr = &self.scheds[s].groups[gi];
        let out = gr.output();
        let n = self.graph.node(out);
        let rows = if out == self.graph.output() {
            lrows.len()
        } else {
            t
        };
        let len = rows * n.width;
        let mut host = vec![0.0f32; len];
        self.stream
            .synchronize()
            .map_err(cuda_err("running a kernel"))?;
        match (
            &gr.kind,
            self.plans[s].offset.get(out.index()).copied().flatten(),
        ) {
            (GroupKind::Qkv { v_cache, .. }, _) => {
                let layer = self.graph.node(*v_cache).layer.expect("layer");
                let view = self.v_cache[layer].slice(self.pos * n.width..self.pos * n.width + len);
                self.stream
                    .memcpy_dtoh(&view, &mut host)
                    .map_err(cuda_err("reading a trace"))?;
            }
            _ if out == self.graph.output() => {
                let view = self.logits.slice(0..len);
                self.stream
                    .memcpy_dtoh(&view, &mut host)
                    .map_err(cuda_err("reading a trace"))?;
            }
            (_, Some(off)) => {
                let view = self.arenas[s].slice(off..off + len);
                self.stream
                    .memcpy_dtoh(&view, &mut host)
                    .map_err(cuda_err("reading a trace"))?;
            }
            (_, None) => {
                return Err(Error::invalid(format!(
                    "group {} has no readable output",
                    gr.name
                )));
            }
        }
        Ok((out, rows, host))
    }

    /// Runs one chunk (≤ UBATCH rows) at the current position.
    fn run_chunk(
        &mut self,
        toks: &[u32],
        lrows: Option<Range<usize>>,
        obs: &mut dyn Observer,
    ) -> Result<()> {
        let t = toks.len();
        let ids: Vec<i32> = toks.iter().map(|&x| x as i32).collect();
        self.stream
            .memcpy_htod(&ids, &mut self.tokens.slice_mut(0..t))
            .map_err(cuda_err("uploading tokens"))?;
        self.stream
            .memcpy_htod(&[self.pos as i32], &mut self.pos_buf)
            .map_err(cuda_err("uploading the position"))?;
        let s = if t == 1 { 0 } else { 1 };
        let out = self.graph.output();
        let want = obs.wants_data();
        let lr = lrows.clone().unwrap_or(0..0);
        for gi in 0..self.scheds[s].groups.len() {
            let covers_out = self.scheds[s].groups[gi].nodes.contains(&out);
            if covers_out && lrows.is_none() {
                continue;
            }
            self.run_group(s, gi, t, &lr)?;
            if want {
                let (id, rows, mut data) = self.group_output(s, gi, t, &lr)?;
                let first = if id == out {
                    self.pos + lr.start
                } else {
                    self.pos
                };
                let gr = &self.scheds[s].groups[gi];
                if self.scheds[s].fused && gr.nodes.len() > 1 {
                    obs.group(Some(&gr.kernel), &gr.nodes);
                } else {
                    obs.group(None, &[id]);
                }
                obs.node_done(id, self.graph.node(id), first, rows, &mut data)?;
            }
        }
        Ok(())
    }

    /// Decode step through the captured CUDA graph: token → fused kernels → argmax.
    fn decode_graph_step(&mut self, token: u32) -> Result<u32> {
        self.stream
            .memcpy_htod(&[token as i32], &mut self.tokens.slice_mut(0..1))
            .map_err(cuda_err("uploading tokens"))?;
        self.stream
            .memcpy_htod(&[self.pos as i32], &mut self.pos_buf)
            .map_err(cuda_err("uploading the position"))?;
        if self.decode_graph.is_none() {
            self.stream
                .begin_capture(
                    cudarc::driver::sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL,
                )
                .map_err(cuda_err("starting graph capture"))?;
            let r = self.decode_kernels();
            let g = self
                .stream
                .end_capture(cudarc::driver::sys::CUgraphInstantiate_flags(0))
                .map_err(cuda_err("capturing the decode graph"))?;
            r?;
            self.decode_graph = g;
        }
        self.decode_graph
            .as_ref()
            .ok_or_else(|| Error::invalid("CUDA graph capture produced no graph"))?
            .launch()
            .map_err(cuda_err("replaying the decode graph"))?;
        let mut out = [0i32];
        self.stream
            .memcpy_dtoh(&self.amax, &mut out)
            .map_err(cuda_err("reading the token"))?;
        self.pos += 1;
        Ok(out[0] as u32)
    }

    fn decode_kernels(&mut self) -> Result<()> {
        for gi in 0..self.scheds[0].groups.len() {
            self.run_group(0, gi, 1, &(0..1))?;
        }
        self.argmax_kernel()
    }

    fn argmax_kernel(&mut self) -> Result<()> {
        let vocab = self.graph.node(self.graph.output()).width;
        let a = ArgmaxArgs {
            x: self.ptr(&self.logits),
            out: self.ptr(&self.amax),
            n: vocab as i32,
            pad: 0,
            part: self.ptr(&self.amax_part),
        };
        self.launch("argmax", (ARGMAX_CTAS, 1), 256, 0, a)
    }

    /// Times every group of one decode step (CUDA events), for `dump --profile`.
    pub fn profile_decode(&mut self, token: u32) -> Result<Vec<f32>> {
        self.stream
            .memcpy_htod(&[token as i32], &mut self.tokens.slice_mut(0..1))
            .map_err(cuda_err("uploading tokens"))?;
        self.stream
            .memcpy_htod(&[self.pos as i32], &mut self.pos_buf)
            .map_err(cuda_err("uploading the position"))?;
        let mut times = Vec::new();
        for gi in 0..self.scheds[0].groups.len() {
            let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
            let e0 = self
                .ctx
                .new_event(flags)
                .map_err(cuda_err("creating an event"))?;
            let e1 = self
                .ctx
                .new_event(flags)
                .map_err(cuda_err("creating an event"))?;
            // Every group is idempotent for a fixed position, so it is run back to back and
            // the mean taken: the event overhead (several microseconds) would otherwise
            // dominate the short kernels.
            const REPS: usize = 20;
            self.run_group(0, gi, 1, &(0..1))?;
            e0.record(&self.stream)
                .map_err(cuda_err("recording an event"))?;
            for _ in 0..REPS {
                self.run_group(0, gi, 1, &(0..1))?;
            }
            e1.record(&self.stream)
                .map_err(cuda_err("recording an event"))?;
            e1.synchronize().map_err(cuda_err("timing a kernel"))?;
            times.push(e0.elapsed_ms(&e1).map_err(cuda_err("timing a kernel"))? / REPS as f32);
        }
        self.pos += 1;
        Ok(times)
    }

    pub fn schedule(&self) -> &Schedule {
        &self.scheds[0]
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Measured device read bandwidth (bytes/s) of a plain streaming-read kernel over `bytes`.
    pub fn read_bandwidth(&mut self, bytes: usize) -> Result<f64> {
        let buf = self
            .stream
            .alloc_zeros::<u8>(bytes)
            .map_err(cuda_err("allocating the bandwidth buffer"))?;
        let sink = self
            .stream
            .alloc_zeros::<u32>(1)
            .map_err(cuda_err("allocating"))?;
        let a = ReadArgs {
            x: self.ptr(&buf),
            out: self.ptr(&sink),
            n16: (bytes / 16) as u64,
        };
        let grid = self.n_sm * 8;
        let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
        self.launch("read_bandwidth", (grid, 1), 512, 0, a)?;
        let mut best = f64::MAX;
        for _ in 0..10 {
            let e0 = self
                .ctx
                .new_event(flags)
                .map_err(cuda_err("creating an event"))?;
            let e1 = self
                .ctx
                .new_event(flags)
                .map_err(cuda_err("creating an event"))?;
            e0.record(&self.stream).map_err(cuda_err("recording"))?;
            self.launch("read_bandwidth", (grid, 1), 512, 0, a)?;
            e1.record(&self.stream).map_err(cuda_err("recording"))?;
            e1.synchronize().map_err(cuda_err("timing"))?;
            best = best.min(e0.elapsed_ms(&e1).map_err(cuda_err("timing"))? as f64);
        }
        Ok(bytes as f64 / (best / 1000.0))
    }

    // ---- Access for parity harnesses (tests/backend_ops.rs) --------------------------

    /// Sets the position the next kernels see.
    pub fn set_pos(&mut self, pos: usize) -> Result<()> {
        self.pos = pos;
        self.stream
            .memcpy_htod(&[pos as i32], &mut self.pos_buf)
            .map_err(cuda_err("uploading the position"))
    }

    /// Writes a node's value buffer in the decode (`decode = true`) or prefill schedule.
    pub fn write_value(&mut self, decode: bool, id: NodeId, data: &[f32]) -> Result<()> {
        let s = if decode { 0 } else { 1 };
        let off = self.plans[s].offset[id.index()].ok_or_else(|| {
            Error::invalid(format!("node {} has no buffer", self.graph.node(id).name))
        })?;
        self.stream
            .memcpy_htod(data, &mut self.arenas[s].slice_mut(off..off + data.len()))
            .map_err(cuda_err("writing a value"))
    }

    /// Reads `len` values of a node's buffer (the logits buffer for the graph output).
    pub fn read_value(&mut self, decode: bool, id: NodeId, len: usize) -> Result<Vec<f32>> {
        let s = if decode { 0 } else { 1 };
        let mut host = vec![0.0f32; len];
        self.stream
            .synchronize()
            .map_err(cuda_err("running a kernel"))?;
        if id == self.graph.output() {
            self.stream
                .memcpy_dtoh(&self.logits.slice(0..len), &mut host)
                .map_err(cuda_err("reading a value"))?;
        } else {
            let off = self.plans[s].offset[id.index()].ok_or_else(|| {
                Error::invalid(format!("node {} has no buffer", self.graph.node(id).name))
            })?;
            self.stream
                .memcpy_dtoh(&self.arenas[s].slice(off..off + len), &mut host)
                .map_err(cuda_err("reading a value"))?;
        }
        Ok(host)
    }

    /// Writes rows 0.. of a layer's K or V cache.
    pub fn write_cache(&mut self, layer: usize, kind: KvKind, data: &[f32]) -> Result<()> {
        let c = match kind {
            KvKind::K => &mut self.k_cache[layer],
            KvKind::V => &mut self.v_cache[layer],
        };
        self.stream
            .memcpy_htod(data, &mut c.slice_mut(0..data.len()))
            .map_err(cuda_err("writing the cache"))
    }

    /// Reads elements `range` of a layer's K or V cache.
    pub fn read_cache(
        &mut self,
        layer: usize,
        kind: KvKind,
        range: Range<usize>,
    ) -> Result<Vec<f32>> {
        let c = match kind {
            KvKind::K => &self.k_cache[layer],
            KvKind::V => &self.v_cache[layer],
        };
        let mut host = vec![0.0f32; range.len()];
        self.stream
            .memcpy_dtoh(&c.slice(range), &mut host)
            .map_err(cuda_err("reading the cache"))?;
        Ok(host)
    }

    /// Uploads token ids (for the embedding) without running anything.
    pub fn write_tokens(&mut self, toks: &[u32]) -> Result<()> {
        let ids: Vec<i32> = toks.iter().map(|&x| x as i32).collect();
        self.stream
            .memcpy_htod(&ids, &mut self.tokens.slice_mut(0..ids.len()))
            .map_err(cuda_err("uploading tokens"))
    }

    /// Runs one group of the decode or prefill schedule for `t` rows (all logit rows).
    pub fn run_group_alone(&mut self, decode: bool, gi: usize, t: usize) -> Result<()> {
        self.run_group(if decode { 0 } else { 1 }, gi, t, &(0..t))?;
        self.sync()
    }

    /// The decode (`true`) or prefill schedule.
    pub fn schedule_of(&self, decode: bool) -> &Schedule {
        &self.scheds[if decode { 0 } else { 1 }]
    }

    pub fn sync(&self) -> Result<()> {
        self.stream.synchronize().map_err(cuda_err("synchronizing"))
    }
}

fn row_bytes(n: &Node) -> i32 {
    let w = n.weight.as_ref().expect("weight");
    w.dtype
        .bytes_for(*w.shape.last().expect("shape"))
        .expect("whole blocks") as i32
}

fn in_width(n: &Node) -> usize {
    n.weight.as_ref().expect("weight").shape[1] as usize
}

fn rms_eps(n: &Node) -> f32 {
    match n.op {
        Op::RmsNorm { eps } => eps,
        _ => 0.0,
    }
}

/// Every weight the GPU kernels read must have a GPU kernel for its type.
fn check_gpu_types(g: &Graph, m: &ModelFile) -> Result<()> {
    for (_, n) in g.nodes() {
        if let (Op::MatMul { .. } | Op::Embedding, Some(w)) = (&n.op, &n.weight) {
            let name = format!("embedding_{}", wname(w.dtype));
            if !codegen::catalogue().iter().any(|(k, _)| *k == name) {
                return Err(Error::tensor(
                    &m.path,
                    &w.name,
                    format!(
                        "type {} has no GPU kernels yet (GPU types: F32, F16, Q4_0, Q5_0, Q8_0, Q4_K, Q5_K, Q6_K); run with --interp",
                        w.dtype
                    ),
                ));
            }
        }
    }
    Ok(())
}

impl Engine for CudaEngine<'_> {
    fn step(
        &mut self,
        tokens: &[u32],
        logit_rows: Range<usize>,
        obs: &mut dyn Observer,
    ) -> Result<Vec<f32>> {
        let t = tokens.len();
        let vocab = self.graph.node(self.graph.output()).width;
        if t == 0 || logit_rows.start >= logit_rows.end || logit_rows.end > t {
            return Err(Error::invalid(format!(
                "step of {t} tokens cannot return logit rows {logit_rows:?}"
            )));
        }
        if self.pos + t > self.n_ctx {
            return Err(Error::invalid(format!(
                "context length exceeded: {} positions used + {t} new tokens > context size {} (raise --ctx)",
                self.pos, self.n_ctx
            )));
        }
        if let Some(&bad) = tokens.iter().find(|&&x| x as usize >= vocab) {
            return Err(Error::invalid(format!(
                "token id {bad} is outside the vocabulary ({vocab} tokens)"
            )));
        }
        let mut out = Vec::with_capacity(logit_rows.len() * vocab);
        let mut c0 = 0;
        while c0 < t {
            let c1 = (c0 + UBATCH).min(t);
            let lr = logit_rows.start.max(c0)..logit_rows.end.min(c1);
            let lr = (lr.start < lr.end).then(|| lr.start - c0..lr.end - c0);
            if let Some(r) = &lr
                && r.len() > self.max_logit_rows
            {
                return Err(Error::invalid(format!(
                    "{} logit rows asked for; the engine was built for {}",
                    r.len(),
                    self.max_logit_rows
                )));
            }
            self.run_chunk(&tokens[c0..c1], lr.clone(), obs)?;
            if let Some(r) = lr {
                let mut host = vec![0.0f32; r.len() * vocab];
                self.stream
                    .memcpy_dtoh(&self.logits.slice(0..r.len() * vocab), &mut host)
                    .map_err(cuda_err("reading logits"))?;
                out.extend_from_slice(&host);
            }
            self.pos += c1 - c0;
            c0 = c1;
        }
        Ok(out)
    }

    fn step_argmax(&mut self, tokens: &[u32], obs: &mut dyn Observer) -> Result<u32> {
        if tokens.len() == 1 && !obs.wants_data() && self.pos < self.n_ctx {
            let vocab = self.graph.node(self.graph.output()).width;
            if tokens[0] as usize >= vocab {
                return Err(Error::invalid(format!(
                    "token id {} is outside the vocabulary",
                    tokens[0]
                )));
            }
            return self.decode_graph_step(tokens[0]);
        }
        let t = tokens.len();
        let logits = self.step(tokens, t - 1..t, obs)?;
        Ok(crate::generate::argmax(&logits) as u32)
    }

    fn reset(&mut self) {
        self.pos = 0;
    }
    fn pos(&self) -> usize {
        self.pos
    }
    fn n_ctx(&self) -> usize {
        self.n_ctx
    }
    fn name(&self) -> &'static str {
        "cuda"
    }
}
