//! Finding out, without crashing, whether a CUDA GPU can be used: the driver library is
//! loaded at run time (cudarc dynamic loading), so a machine without one just says so.

/// Name and compute capability of CUDA device `ordinal`, or why none can be used.
pub fn probe(ordinal: usize) -> Result<(String, (i32, i32)), String> {
    // SAFETY: only tries to dlopen the driver library; nothing is called through it here.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err("no CUDA driver library (libcuda) found".into());
    }
    cudarc::driver::result::init().map_err(|e| format!("CUDA driver failed to initialize: {e}"))?;
    let n = cudarc::driver::result::device::get_count()
        .map_err(|e| format!("cannot count CUDA devices: {e}"))?;
    if n <= 0 {
        return Err("the CUDA driver reports no devices".into());
    }
    if ordinal >= n as usize {
        return Err(format!(
            "--device {ordinal} requested but only {n} CUDA device(s) present"
        ));
    }
    let ctx = cudarc::driver::CudaContext::new(ordinal)
        .map_err(|e| format!("cannot open CUDA device {ordinal}: {e}"))?;
    let name = ctx.name().map_err(|e| e.to_string())?;
    let cc = ctx.compute_capability().map_err(|e| e.to_string())?;
    Ok((name, cc))
}
