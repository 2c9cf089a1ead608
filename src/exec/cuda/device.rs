//! The device: CUDA context, the one stream everything runs on, the properties launch
//! geometry is sized from, and the memory budget checked before anything is allocated.

use crate::codegen;
use crate::error::{Error, Result};
use cudarc::driver::sys::CUdevice_attribute;
use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DevicePtr, DeviceRepr, ValidAsZeroBits};
use std::sync::Arc;

pub(super) fn cuda_err(what: &str) -> impl Fn(cudarc::driver::DriverError) -> Error + '_ {
    move |e| Error::invalid(format!("CUDA error while {what}: {e}"))
}

pub(super) struct Device {
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    pub arch: &'static str,
    pub name: String,
    /// Streaming multiprocessors: grids are sized in waves of resident CTAs over these.
    pub n_sm: u32,
    /// Largest dynamic shared memory a CTA may opt into.
    pub max_smem: u32,
    /// Shared memory of one SM, shared by its resident CTAs.
    pub smem_per_sm: u32,
    /// Bytes of L2 cache.
    pub l2_bytes: u32,
    /// Kernels are launched with programmatic stream serialization (compute capability 9.0
    /// and later, unless GRAPHRUN_PDL=0): a kernel starts while the one before it drains
    /// and waits in `grid_dep_wait` (kernels/common.cuh) for its results.
    pub pdl: bool,
}

impl Device {
    pub fn open(ordinal: usize) -> Result<Device> {
        let (name, cc) = super::super::gpu_probe::probe(ordinal).map_err(Error::invalid)?;
        let arch = codegen::arch_name(cc)?;
        let ctx = CudaContext::new(ordinal).map_err(cuda_err("opening the device"))?;
        // One stream, in order: cudarc's cross-stream event tracking is not needed, and its
        // events would otherwise be recorded into the captured decode graph.
        // SAFETY: called before any allocation or launch on this context.
        unsafe { ctx.disable_event_tracking() };
        // A created stream: the legacy default stream cannot be captured into a CUDA graph.
        let stream = ctx.new_stream().map_err(cuda_err("creating a stream"))?;
        let attr = |a, what| ctx.attribute(a).map(|v| v as u32).map_err(cuda_err(what));
        Ok(Device {
            n_sm: attr(
                CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
                "reading the SM count",
            )?,
            max_smem: attr(
                CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                "reading the shared memory limit",
            )?,
            smem_per_sm: attr(
                CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR,
                "reading the shared memory per SM",
            )?,
            l2_bytes: attr(
                CUdevice_attribute::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE,
                "reading the L2 size",
            )?,
            pdl: cc.0 >= 9 && std::env::var("GRAPHRUN_PDL").map_or(true, |v| v != "0"),
            ctx,
            stream,
            arch,
            name,
        })
    }

    /// Fails with a message that says what to lower when `need` bytes do not fit.
    pub fn check_memory(
        &self,
        need: usize,
        weight_bytes: usize,
        kv_bytes: usize,
        n_ctx: usize,
    ) -> Result<()> {
        let (free, total) = self
            .ctx
            .mem_get_info()
            .map_err(cuda_err("querying device memory"))?;
        if need > free {
            return Err(Error::invalid(format!(
                "out of GPU memory: this model needs about {} MiB ({} MiB weights, {} MiB KV cache for --ctx {n_ctx}) but {} has {} MiB free of {} MiB; lower --ctx or use --interp",
                need >> 20,
                weight_bytes >> 20,
                kv_bytes >> 20,
                self.name,
                free >> 20,
                total >> 20
            )));
        }
        Ok(())
    }

    /// `n` zeroed elements (at least one, so every buffer has an address).
    pub fn zeros<T: DeviceRepr + ValidAsZeroBits>(&self, n: usize) -> Result<CudaSlice<T>> {
        self.stream
            .alloc_zeros::<T>(n.max(1))
            .map_err(cuda_err("allocating device memory"))
    }

    pub fn upload<T: DeviceRepr>(&self, host: &[T]) -> Result<CudaSlice<T>> {
        self.stream
            .clone_htod(host)
            .map_err(cuda_err("uploading to the device"))
    }

    /// The device address of a buffer (what kernel argument structs carry).
    pub fn ptr<T>(&self, s: &CudaSlice<T>) -> u64 {
        s.device_ptr(&self.stream).0
    }

    pub fn sync(&self) -> Result<()> {
        self.stream.synchronize().map_err(cuda_err("synchronizing"))
    }
}
