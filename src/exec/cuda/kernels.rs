//! Kernel loading and launching by `KernelId`: one CUDA module per kernel family (PTX
//! embedded at build time, cached on disk, or compiled now with NVRTC; see `codegen`),
//! functions looked up once, launches checked against the device's limits.

use super::device::{Device, cuda_err};
use crate::codegen::catalogue::{MATVEC_THREADS, MMQ_SMEM_BYTES};
use crate::codegen::{self, Family, KernelId, PtxOrigin};
use crate::error::{Error, Result};
use crate::graph::{Graph, Op};
use crate::sched::{Phase, Schedule, node_kernels};
use cudarc::driver::sys::CUfunction_attribute_enum;
use cudarc::driver::{CudaFunction, CudaModule, DeviceRepr, LaunchConfig, PushKernelArg};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

pub(super) struct Kernels {
    arch: &'static str,
    modules: HashMap<Family, Arc<CudaModule>>,
    /// Where each loaded family's PTX came from (`graphrun kernels` and `dump` say it).
    pub origins: HashMap<Family, PtxOrigin>,
    funcs: HashMap<KernelId, CudaFunction>,
    /// One wave of resident CTAs per matvec kernel (occupancy × SMs), for the grid choice.
    slots: HashMap<KernelId, usize>,
    /// Launch with programmatic stream serialization: set for the kernels of decode steps
    /// where `Device::pdl` allows it (`CudaEngine::run_group`). Prefill launches stay
    /// plain: on the H200 the attribute cost the 0.5B and 1.5B 15-17% of pp512
    /// (evidence/h200/decode-pdl/).
    pub programmatic: bool,
}

impl Kernels {
    pub fn new(arch: &'static str) -> Kernels {
        Kernels {
            arch,
            modules: HashMap::new(),
            origins: HashMap::new(),
            funcs: HashMap::new(),
            slots: HashMap::new(),
            programmatic: false,
        }
    }

    /// Loads every kernel the schedules launch, plus the ones chosen at run time (a
    /// one-row prefill matmul runs as a decode matvec; the argmax and the sampler; with `batched`, the
    /// batched twins of the decode kernels), so no step pays for a module load.
    pub fn load_for(
        &mut self,
        dev: &Device,
        scheds: &[&Schedule],
        g: &Graph,
        batched: bool,
    ) -> Result<()> {
        let mut needed: Vec<KernelId> = vec![KernelId::Argmax, KernelId::Sample];
        for s in scheds {
            for gr in &s.groups {
                needed.extend(&gr.kernels);
                if batched {
                    needed.extend(gr.kernels.iter().map(|k| k.batched()));
                }
            }
        }
        for (_, n) in g.nodes() {
            if matches!(n.op, Op::MatMul { .. }) {
                needed.extend(node_kernels(n, Phase::Prefill, 1)?);
            }
        }
        needed.sort();
        needed.dedup();
        let mut families: Vec<Family> = needed.iter().map(|k| k.family()).collect();
        families.sort();
        families.dedup();
        self.load_families(dev, &families)?;
        for k in needed {
            self.func(dev, k)?;
            if matches!(k, KernelId::Matvec { .. }) {
                self.wave_slots(dev, k)?;
            }
        }
        Ok(())
    }

    /// Loads the families not loaded yet. Without embedded SASS for this device (see
    /// `load_family`) the driver translates a family's PTX on a machine's first run (and
    /// without embedded PTX NVRTC compiles it first): minutes in all, then cached. The
    /// families load one after another on a worker thread (loading them side by side did not
    /// help: on the H200 a first start took 168 s that way against 160 s in turn, so the
    /// driver serializes the translation), and a note on stderr says what is happening when
    /// it takes longer than a few seconds.
    fn load_families(&mut self, dev: &Device, families: &[Family]) -> Result<()> {
        let todo: Vec<Family> = families
            .iter()
            .copied()
            .filter(|f| !self.modules.contains_key(f))
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let arch = self.arch;
        let t0 = Instant::now();
        let mut told = false;
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| -> Result<()> {
            let list = &todo;
            s.spawn(move || {
                for &f in list {
                    let r = load_family(dev, arch, f);
                    let failed = r.is_err();
                    if tx.send((f, r)).is_err() || failed {
                        break;
                    }
                }
            });
            loop {
                match rx.recv_timeout(Duration::from_secs(5)) {
                    Ok((f, r)) => {
                        let (m, origin) = r?;
                        self.modules.insert(f, m);
                        self.origins.insert(f, origin);
                    }
                    Err(RecvTimeoutError::Timeout) if !told => {
                        told = true;
                        eprintln!(
                            "graphrun: loading {} kernel families for {arch}: without embedded machine code (SASS) for this GPU they are compiled now (PTX by NVRTC where none is embedded, then by the CUDA driver); both cache the result, so later starts take seconds...",
                            todo.len()
                        );
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return Ok(()),
                }
            }
        })?;
        if told {
            eprintln!(
                "graphrun: kernels ready in {:.1} s",
                t0.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }

    /// The modules loaded so far (the timeline arms each one's buffer: timeline.rs).
    pub fn loaded_modules(&self) -> Vec<(Family, Arc<CudaModule>)> {
        let mut v: Vec<_> = self.modules.iter().map(|(f, m)| (*f, m.clone())).collect();
        v.sort_by_key(|(f, _)| *f);
        v
    }

    fn module(&mut self, dev: &Device, f: Family) -> Result<Arc<CudaModule>> {
        if let Some(m) = self.modules.get(&f) {
            return Ok(m.clone());
        }
        let (m, origin) = load_family(dev, self.arch, f)?;
        self.modules.insert(f, m.clone());
        self.origins.insert(f, origin);
        Ok(m)
    }

    fn func(&mut self, dev: &Device, k: KernelId) -> Result<CudaFunction> {
        if let Some(f) = self.funcs.get(&k) {
            return Ok(f.clone());
        }
        let m = self.module(dev, k.family())?;
        let f = m
            .load_function(&k.name())
            .map_err(cuda_err("loading a kernel"))?;
        // Kernels with more than 48 KB of dynamic shared memory opt in: the GEMM's fixed
        // size, the attention kernels' the device's limit (their tiles are sized from it);
        // the batched matvecs too (their launches ask for different sizes, by matrix and
        // batch size, inside one captured step: the limit stays at the device's).
        let opt_in = match k.family() {
            Family::Mmq => Some(MMQ_SMEM_BYTES),
            Family::Attention | Family::MatvecBatch => Some(dev.max_smem),
            _ => None,
        };
        if let Some(bytes) = opt_in {
            f.set_attribute(
                CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                bytes as i32,
            )
            .map_err(cuda_err("raising a kernel's shared memory limit"))?;
        }
        self.funcs.insert(k, f.clone());
        Ok(f)
    }

    /// Launches `k` with its argument struct `a` on the device's stream.
    pub fn launch<A: DeviceRepr>(
        &mut self,
        dev: &Device,
        k: KernelId,
        grid: (u32, u32),
        block: u32,
        smem: u32,
        a: A,
    ) -> Result<()> {
        self.launch3(dev, k, (grid.0, grid.1, 1), block, smem, a)
    }

    /// `launch` with a three-dimensional grid.
    pub fn launch3<A: DeviceRepr>(
        &mut self,
        dev: &Device,
        k: KernelId,
        grid: (u32, u32, u32),
        block: u32,
        smem: u32,
        a: A,
    ) -> Result<()> {
        let f = self.func(dev, k)?;
        if smem > dev.max_smem {
            return Err(Error::invalid(format!(
                "kernel {k} needs {smem} bytes of shared memory; this GPU allows {}",
                dev.max_smem
            )));
        }
        let cfg = LaunchConfig {
            grid_dim: (grid.0.max(1), grid.1.max(1), grid.2.max(1)),
            block_dim: (block, 1, 1),
            shared_mem_bytes: smem,
        };
        let err = |e| Error::invalid(format!("launching {k}: {e}"));
        // The persistent kernel's CTAs wait on each other: it starts only when the kernel
        // before it has finished, as without the attribute.
        if self.programmatic && k.family() != Family::Persistent {
            return launch_programmatic(dev, &f, &cfg, a).map_err(err);
        }
        let mut b = dev.stream.launch_builder(&f);
        b.arg(&a);
        // SAFETY: `a` is the kernel's generated parameter struct (catalogue.rs); every
        // pointer in it refers to a live allocation of this engine sized for the launch.
        unsafe { b.launch(cfg) }.map_err(err)?;
        Ok(())
    }

    /// Resident CTAs per SM of `k` launched with `threads` threads and `smem` bytes of
    /// dynamic shared memory (first setting the kernel's dynamic shared memory limit to
    /// `smem`: without it the limit is 48 KiB less the kernel's static shared memory — for
    /// the persistent kernel, with 8,704 B of static partials, 40,448 B, less than the
    /// 43,056 B its program takes on the 0.5B shapes, so the query said 0 CTAs there).
    /// The batched matvecs keep the device's limit that `func` gave them.
    pub fn occupancy(
        &mut self,
        dev: &Device,
        k: KernelId,
        threads: u32,
        smem: u32,
    ) -> Result<usize> {
        let f = self.func(dev, k)?;
        if smem > 0 && k.family() != Family::MatvecBatch {
            f.set_attribute(
                CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                smem as i32,
            )
            .map_err(cuda_err("raising a kernel's shared memory limit"))?;
        }
        let per_sm = f
            .occupancy_max_active_blocks_per_multiprocessor(threads, smem as usize, None)
            .map_err(cuda_err("querying occupancy"))?;
        Ok(per_sm as usize)
    }

    /// CTAs of `k` (MATVEC_THREADS threads, no dynamic shared memory) resident at once on
    /// the whole device: one wave.
    pub fn wave_slots(&mut self, dev: &Device, k: KernelId) -> Result<usize> {
        if let Some(&s) = self.slots.get(&k) {
            return Ok(s);
        }
        let f = self.func(dev, k)?;
        let per_sm = f
            .occupancy_max_active_blocks_per_multiprocessor(MATVEC_THREADS, 0, None)
            .map_err(cuda_err("querying occupancy"))?;
        let s = (per_sm.max(1) * dev.n_sm) as usize;
        self.slots.insert(k, s);
        Ok(s)
    }
}

/// One family's module: the machine code (SASS) embedded at build time for this device's
/// architecture when there is one (nothing to translate: a first start takes seconds),
/// otherwise its PTX (embedded, cached or compiled now), translated by the driver; embedded
/// PTX the driver refuses (built with a newer NVRTC) is compiled here instead.
fn load_family(
    dev: &Device,
    arch: &'static str,
    f: Family,
) -> Result<(Arc<CudaModule>, PtxOrigin)> {
    if let Some(sass) = codegen::embedded_sass(f, arch)
        && let Ok(m) = dev.ctx.load_module(cudarc::nvrtc::Ptx::from_binary(sass))
    {
        return Ok((m, PtxOrigin::EmbeddedSass));
    }
    let load = |ptx: String| dev.ctx.load_module(cudarc::nvrtc::Ptx::from_src(ptx));
    let (ptx, origin) = codegen::family_ptx(f, arch, false, false)?;
    match load(ptx) {
        Ok(m) => Ok((m, origin)),
        // PTX built elsewhere can be newer than this driver accepts: compile it here.
        Err(first) if origin == PtxOrigin::Embedded => {
            let (ptx, origin) = codegen::family_ptx(f, arch, false, true)?;
            let m = load(ptx).map_err(|e| {
                Error::invalid(format!(
                    "loading kernels/{}.cu ({arch}): embedded PTX refused ({first}), compiled PTX refused ({e})",
                    f.name()
                ))
            })?;
            Ok((m, origin))
        }
        Err(e) => Err(Error::invalid(format!(
            "loading kernels/{}.cu ({arch}): {e}",
            f.name()
        ))),
    }
}

/// Launches `f` on the device's stream with programmatic stream serialization allowed
/// (`Device::pdl`): the kernel may start while the one before it drains; every generated
/// kernel waits for it (`grid_dep_wait`, kernels/common.cuh) before touching anything it
/// wrote. Captured into a CUDA graph, the edge stays programmatic.
fn launch_programmatic<A: DeviceRepr>(
    dev: &Device,
    f: &CudaFunction,
    cfg: &LaunchConfig,
    a: A,
) -> std::result::Result<(), cudarc::driver::DriverError> {
    use cudarc::driver::sys;
    dev.ctx.bind_to_thread()?;
    // SAFETY: a zeroed attribute is valid plain data; the id and the one union field the
    // driver reads for it are set below.
    let mut attr: sys::CUlaunchAttribute = unsafe { std::mem::zeroed() };
    attr.id = sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    attr.value.programmaticStreamSerializationAllowed = 1;
    let config = sys::CUlaunchConfig {
        gridDimX: cfg.grid_dim.0,
        gridDimY: cfg.grid_dim.1,
        gridDimZ: cfg.grid_dim.2,
        blockDimX: cfg.block_dim.0,
        blockDimY: cfg.block_dim.1,
        blockDimZ: cfg.block_dim.2,
        sharedMemBytes: cfg.shared_mem_bytes,
        hStream: dev.stream.cu_stream(),
        attrs: &mut attr,
        numAttrs: 1,
    };
    let mut arg = a;
    let mut params = [&mut arg as *mut A as *mut std::ffi::c_void];
    // SAFETY: `arg` is the kernel's one parameter, its generated argument struct
    // (catalogue.rs), alive until the call returns (the driver copies parameters at
    // launch); every pointer in it refers to a live allocation sized for the launch.
    unsafe {
        sys::cuLaunchKernelEx(
            &config,
            f.cu_function(),
            params.as_mut_ptr(),
            std::ptr::null_mut(),
        )
    }
    .result()
}
