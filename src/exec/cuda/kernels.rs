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

pub(super) struct Kernels {
    arch: &'static str,
    modules: HashMap<Family, Arc<CudaModule>>,
    /// Where each loaded family's PTX came from (`graphrun kernels` and `dump` say it).
    pub origins: HashMap<Family, PtxOrigin>,
    funcs: HashMap<KernelId, CudaFunction>,
    /// One wave of resident CTAs per matvec kernel (occupancy × SMs), for the grid choice.
    slots: HashMap<KernelId, usize>,
}

impl Kernels {
    pub fn new(arch: &'static str) -> Kernels {
        Kernels {
            arch,
            modules: HashMap::new(),
            origins: HashMap::new(),
            funcs: HashMap::new(),
            slots: HashMap::new(),
        }
    }

    /// Loads every kernel the schedules launch, plus the ones chosen at run time (a
    /// one-row prefill matmul runs as a decode matvec; the argmax; with `batched`, the
    /// batched twins of the decode kernels), so no step pays for a module load.
    pub fn load_for(
        &mut self,
        dev: &Device,
        scheds: &[&Schedule],
        g: &Graph,
        batched: bool,
    ) -> Result<()> {
        let mut needed: Vec<KernelId> = vec![KernelId::Argmax];
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
        for k in needed {
            self.func(dev, k)?;
            if matches!(k, KernelId::Matvec { .. }) {
                self.wave_slots(dev, k)?;
            }
        }
        Ok(())
    }

    fn module(&mut self, dev: &Device, f: Family) -> Result<Arc<CudaModule>> {
        if let Some(m) = self.modules.get(&f) {
            return Ok(m.clone());
        }
        let load = |ptx: String| dev.ctx.load_module(cudarc::nvrtc::Ptx::from_src(ptx));
        let (ptx, origin) = codegen::family_ptx(f, self.arch, false, false)?;
        let (m, origin) = match load(ptx) {
            Ok(m) => (m, origin),
            // PTX built elsewhere can be newer than this driver accepts: compile it here.
            Err(first) if origin == PtxOrigin::Embedded => {
                let (ptx, origin) = codegen::family_ptx(f, self.arch, false, true)?;
                let m = load(ptx).map_err(|e| {
                    Error::invalid(format!(
                        "loading kernels/{}.cu ({}): embedded PTX refused ({first}), compiled PTX refused ({e})",
                        f.name(),
                        self.arch
                    ))
                })?;
                (m, origin)
            }
            Err(e) => {
                return Err(Error::invalid(format!(
                    "loading kernels/{}.cu ({}): {e}",
                    f.name(),
                    self.arch
                )));
            }
        };
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
        // size, the attention kernels' the device's limit (their tiles are sized from it).
        let opt_in = match k.family() {
            Family::Mmq => Some(MMQ_SMEM_BYTES),
            Family::Attention => Some(dev.max_smem),
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
        let mut b = dev.stream.launch_builder(&f);
        b.arg(&a);
        // SAFETY: `a` is the kernel's generated parameter struct (catalogue.rs); every
        // pointer in it refers to a live allocation of this engine sized for the launch.
        unsafe { b.launch(cfg) }.map_err(|e| Error::invalid(format!("launching {k}: {e}")))?;
        Ok(())
    }

    /// Resident CTAs per SM of `k` launched with `threads` threads and `smem` bytes of
    /// dynamic shared memory (first setting the kernel's dynamic shared memory limit to
    /// `smem`: without it the limit is 48 KiB less the kernel's static shared memory — for
    /// the persistent kernel, with 8,704 B of static partials, 40,448 B, less than the
    /// 43,056 B its program takes on the 0.5B shapes, so the query said 0 CTAs there).
    pub fn occupancy(
        &mut self,
        dev: &Device,
        k: KernelId,
        threads: u32,
        smem: u32,
    ) -> Result<usize> {
        let f = self.func(dev, k)?;
        if smem > 0 {
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
