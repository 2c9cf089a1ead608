//! Kernel parameter structs, `#[repr(C)]` mirrors of the structs in `kernels/*.cu` (field for
//! field, same order), passed by value. Device pointers are `u64` (CUdeviceptr).

use cudarc::driver::DeviceRepr;

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct MatvecArgs {
    pub w: u64,
    pub w2: u64,
    pub xf: u64,
    pub q0: u64,
    pub d0: u64,
    pub qk: u64,
    pub dk: u64,
    pub bs: u64,
    pub out: u64,
    pub extra: u64,
    pub rows: i32,
    pub k: i32,
    pub row_bytes: i32,
    pub ksplit: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct QkvArgs {
    pub wq: u64,
    pub wk: u64,
    pub wv: u64,
    pub bq: u64,
    pub bk: u64,
    pub bv: u64,
    pub xf: u64,
    pub q0: u64,
    pub d0: u64,
    pub qk: u64,
    pub dk: u64,
    pub bs: u64,
    pub q_out: u64,
    pub k_cache: u64,
    pub v_cache: u64,
    pub inv_freq: u64,
    pub pos: u64,
    pub k: i32,
    pub n_head: i32,
    pub n_head_kv: i32,
    pub head_dim: i32,
    pub rb_q: i32,
    pub rb_k: i32,
    pub rb_v: i32,
    pub neox: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct MatmulArgs {
    pub w: u64,
    pub out: u64,
    pub xf: u64,
    pub q0: u64,
    pub d0: u64,
    pub qk: u64,
    pub dk: u64,
    pub bs: u64,
    pub rows: i32,
    pub k: i32,
    pub row_bytes: i32,
    pub t: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct MmqArgs {
    pub w: u64,
    pub out: u64,
    pub q0: u64,
    pub d0: u64,
    pub qk: u64,
    pub dk: u64,
    pub bs: u64,
    pub rows: i32,
    pub k: i32,
    pub row_bytes: i32,
    pub t: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PrepArgs {
    pub x: u64,
    pub norm_w: u64,
    pub xf: u64,
    pub q0: u64,
    pub d0: u64,
    pub qk: u64,
    pub dk: u64,
    pub bs: u64,
    pub k: i32,
    pub eps: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct QuantizeArgs {
    pub x: u64,
    pub q0: u64,
    pub d0: u64,
    pub qk: u64,
    pub dk: u64,
    pub bs: u64,
    pub k: i32,
    pub t: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct EltArgs {
    pub a: u64,
    pub b: u64,
    pub out: u64,
    pub n: i32,
    pub width: i32,
    pub eps: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct RopeArgs {
    pub x: u64,
    pub out: u64,
    pub inv_freq: u64,
    pub pos: u64,
    pub t: i32,
    pub n_head: i32,
    pub head_dim: i32,
    pub neox: i32,
    pub offset: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct KvArgs {
    pub x: u64,
    pub cache: u64,
    pub out: u64,
    pub pos: u64,
    pub t: i32,
    pub width: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct AttnArgs {
    pub q: u64,
    pub k_cache: u64,
    pub v_cache: u64,
    pub out: u64,
    pub pos: u64,
    pub n_head: i32,
    pub n_head_kv: i32,
    pub head_dim: i32,
    pub t: i32,
    pub scale: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct AttnSplitArgs {
    pub q: u64,
    pub k_cache: u64,
    pub v_cache: u64,
    pub out: u64,
    pub pos: u64,
    pub part: u64,
    pub n_head: i32,
    pub n_head_kv: i32,
    pub head_dim: i32,
    pub n_split: i32,
    pub scale: f32,
    /// Per-head tickets (`n_head` u32, zero between launches).
    pub ticket: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct EmbArgs {
    pub w: u64,
    pub tokens: u64,
    pub out: u64,
    pub t: i32,
    pub width: i32,
    pub row_bytes: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct ArgmaxArgs {
    pub x: u64,
    pub out: u64,
    pub n: i32,
    pub pad: i32,
    /// Scratch of `2 * ARGMAX_CTAS + 1` words (partials, then the ticket), zeroed.
    pub part: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct ReadArgs {
    pub x: u64,
    pub out: u64,
    pub n16: u64,
}

// SAFETY: plain-old-data structs of integers and floats with C layout, matching the
// kernels' parameter structs.
unsafe impl DeviceRepr for MatvecArgs {}
unsafe impl DeviceRepr for QkvArgs {}
unsafe impl DeviceRepr for MatmulArgs {}
unsafe impl DeviceRepr for MmqArgs {}
unsafe impl DeviceRepr for QuantizeArgs {}
unsafe impl DeviceRepr for PrepArgs {}
unsafe impl DeviceRepr for EltArgs {}
unsafe impl DeviceRepr for RopeArgs {}
unsafe impl DeviceRepr for KvArgs {}
unsafe impl DeviceRepr for AttnArgs {}
unsafe impl DeviceRepr for AttnSplitArgs {}
unsafe impl DeviceRepr for EmbArgs {}
unsafe impl DeviceRepr for ArgmaxArgs {}
unsafe impl DeviceRepr for ReadArgs {}
