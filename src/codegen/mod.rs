//! The generated CUDA kernel catalogue (expanded by `build.rs` from `kernels/`) and its
//! compilation to PTX through NVRTC, cached on disk by source hash + arch + NVRTC version.

use crate::error::{Error, Result};
use std::path::PathBuf;

include!(concat!(env!("OUT_DIR"), "/kernels.rs"));

/// Architectures `graphrun kernels --check` compiles for (A100, RTX 4090, H100).
pub const CHECK_ARCHS: [&str; 3] = ["sm_80", "sm_89", "sm_90"];

/// (kernel name, family) of every kernel.
pub fn catalogue() -> &'static [(&'static str, &'static str)] {
    KERNELS
}

pub fn families() -> impl Iterator<Item = (&'static str, &'static str)> {
    FAMILY_SOURCES.iter().copied()
}

pub fn family_of(kernel: &str) -> Option<&'static str> {
    KERNELS.iter().find(|(k, _)| *k == kernel).map(|(_, f)| *f)
}

pub fn family_source(family: &str) -> Option<&'static str> {
    FAMILY_SOURCES
        .iter()
        .find(|(f, _)| *f == family)
        .map(|(_, s)| *s)
}

/// The `sm_XY` name for a compute capability.
pub fn arch_name(cc: (i32, i32)) -> Result<&'static str> {
    const KNOWN: [(i32, i32, &str); 8] = [
        (7, 5, "sm_75"),
        (8, 0, "sm_80"),
        (8, 6, "sm_86"),
        (8, 7, "sm_87"),
        (8, 9, "sm_89"),
        (9, 0, "sm_90"),
        (10, 0, "sm_100"),
        (12, 0, "sm_120"),
    ];
    KNOWN
        .iter()
        .find(|(a, b, _)| (*a, *b) == cc)
        .map(|(_, _, n)| *n)
        .ok_or_else(|| {
            Error::invalid(format!(
                "unsupported GPU architecture sm_{}{} (graphrun targets sm_75 .. sm_120)",
                cc.0, cc.1
            ))
        })
}

/// NVRTC's (major, minor) version, or why NVRTC cannot be used.
pub fn nvrtc_version() -> Result<(i32, i32)> {
    // SAFETY: only tries to dlopen the NVRTC library.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(Error::invalid(
            "NVRTC (libnvrtc.so) not found: install the CUDA toolkit, or `pip install nvidia-cuda-nvrtc==13.0.88` and add its nvidia/cu13/lib folder to LD_LIBRARY_PATH",
        ));
    }
    let (mut a, mut b) = (0, 0);
    // SAFETY: plain out-parameters.
    let r = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut a, &mut b) };
    if r != cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(Error::invalid(format!("nvrtcVersion failed: {r:?}")));
    }
    Ok((a, b))
}

/// FNV-1a, 64 bit: a stable hash for cache keys.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Where compiled PTX is cached: `$GRAPHRUN_PTX_CACHE`, else `~/.cache/graphrun/ptx`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("GRAPHRUN_PTX_CACHE") {
        return d.into();
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".cache/graphrun/ptx")
}

/// PTX of a kernel family for `arch`, from the disk cache or compiled with NVRTC.
/// `fresh` ignores the cache (for `kernels --check`).
pub fn family_ptx(family: &str, arch: &'static str, fresh: bool) -> Result<String> {
    let src = family_source(family)
        .ok_or_else(|| Error::invalid(format!("no kernel family `{family}`")))?;
    let stem = format!("{family}-{:016x}-{arch}-nvrtc", fnv(src.as_bytes()));
    let (ma, mi) = match nvrtc_version() {
        Ok(v) => v,
        // Without NVRTC, PTX compiled elsewhere for this exact source and arch still serves.
        Err(e) => return cached_any(&stem).ok_or(e),
    };
    let key = format!("{stem}{ma}.{mi}.ptx");
    let path = cache_dir().join(&key);
    if !fresh && let Ok(p) = std::fs::read_to_string(&path) {
        return Ok(p);
    }
    let opts = cudarc::nvrtc::CompileOptions {
        arch: Some(arch),
        name: Some(format!("{family}.cu")),
        options: vec!["--std=c++17".into()],
        ..Default::default()
    };
    let ptx = cudarc::nvrtc::compile_ptx_with_opts(src, opts).map_err(|e| match e {
        cudarc::nvrtc::CompileError::CompileError { log, .. } => Error::invalid(format!(
            "NVRTC failed to compile kernel family `{family}` for {arch}:\n{}",
            log.to_string_lossy()
        )),
        other => Error::invalid(format!(
            "NVRTC error for kernel family `{family}` ({arch}): {other:?}"
        )),
    })?;
    let text = ptx.to_src();
    if std::fs::create_dir_all(cache_dir()).is_ok() {
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, &text).is_ok() {
            std::fs::rename(&tmp, &path).ok();
        }
    }
    Ok(text)
}

/// Any cached PTX whose name starts with `stem` (any NVRTC version).
fn cached_any(stem: &str) -> Option<String> {
    let dir = std::fs::read_dir(cache_dir()).ok()?;
    let p = dir.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(stem) && n.ends_with(".ptx"))
    })?;
    std::fs::read_to_string(p).ok()
}

/// The PTX of one kernel: its `.entry` out of its family's module, with the module header.
pub fn kernel_ptx(kernel: &str, arch: &'static str) -> Result<String> {
    let family = family_of(kernel).ok_or_else(|| {
        Error::invalid(format!(
            "no kernel `{kernel}` in the catalogue (see `graphrun kernels`)"
        ))
    })?;
    let ptx = family_ptx(family, arch, false)?;
    let header_end = ptx
        .find(".visible .entry")
        .or_else(|| ptx.find(".entry"))
        .unwrap_or(0);
    let start = ptx
        .find(&format!(".entry {kernel}("))
        .ok_or_else(|| Error::invalid(format!("`{kernel}` not found in the PTX of `{family}`")))?;
    let start = ptx[..start].rfind(".visible").unwrap_or(start);
    // The entry's body ends at the first closing brace at column 0 after it.
    let end = ptx[start..]
        .find("\n}\n")
        .map(|e| start + e + 3)
        .unwrap_or(ptx.len());
    Ok(format!("{}{}", &ptx[..header_end], &ptx[start..end]))
}
