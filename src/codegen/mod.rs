//! The generated CUDA kernel catalogue and its PTX.
//!
//! `catalogue.rs` names every kernel (`KernelId`, over the weight types with GPU kernels
//! and the other axes in `axes.rs`), `arg_structs.rs` the argument structs; `build.rs`
//! expands them into one complete source per family (from `kernels/`) and, when NVRTC was
//! present at build time, embeds their PTX. At run time a family's PTX comes from, in
//! order: the embedded copy for the device's architecture, the disk cache (keyed by source
//! hash + arch + NVRTC version), or NVRTC (then cached).

pub mod arg_structs;
mod axes;
pub mod catalogue;

pub use catalogue::{Act, Elt, Epi, Family, KernelId, Kv, WType};

use crate::error::{Error, Result};
use crate::graph::{ActSemantics, KvType};
use crate::quant::GgmlType;
use std::path::PathBuf;

include!(concat!(env!("OUT_DIR"), "/kernels.rs"));
include!(concat!(env!("OUT_DIR"), "/ptx.rs"));

/// Architectures `graphrun kernels --check` compiles for (A100, RTX 3090, RTX 4090, H100/H200).
pub const CHECK_ARCHS: [&str; 4] = ["sm_80", "sm_86", "sm_89", "sm_90"];

impl WType {
    /// The GPU weight type of a GGML type, if it has kernels.
    pub fn of(t: GgmlType) -> Option<WType> {
        WType::from_ggml_id(t.id())
    }
}

impl From<ActSemantics> for Act {
    fn from(a: ActSemantics) -> Act {
        match a {
            ActSemantics::F32 => Act::F32,
            ActSemantics::Q8 => Act::Q8,
        }
    }
}

impl From<KvType> for Kv {
    fn from(k: KvType) -> Kv {
        match k {
            KvType::F32 => Kv::F32,
            KvType::F16 => Kv::F16,
        }
    }
}

/// The GGML types with GPU kernels, for messages (`F32, F16, Q4_0, ...`).
pub fn gpu_type_names() -> String {
    WType::ALL
        .iter()
        .map(|w| w.name().to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The complete CUDA source of a kernel family.
pub fn family_source(f: Family) -> &'static str {
    FAMILY_SOURCES
        .iter()
        .find(|(x, _)| *x == f)
        .map(|(_, s)| *s)
        .expect("build.rs writes every family")
}

/// How the build treated PTX (embedded for which archs, or why not).
pub fn embed_note() -> &'static str {
    EMBED_NOTE
}

/// A table build.rs writes: (family, arch, NVRTC version, deflated bytes).
type Embedded = [(Family, &'static str, &'static str, &'static [u8])];

fn archs_in(table: &'static Embedded) -> Vec<&'static str> {
    let mut v: Vec<&str> = table.iter().map(|e| e.1).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The inflated entry of `table` for `f` on `arch`, if any.
fn inflated(table: &Embedded, f: Family, arch: &str) -> Option<Vec<u8>> {
    let (_, _, _, packed) = table.iter().find(|e| e.0 == f && e.1 == arch)?;
    miniz_oxide::inflate::decompress_to_vec(packed).ok()
}

/// The architectures with embedded PTX.
pub fn embedded_archs() -> Vec<&'static str> {
    archs_in(EMBEDDED_PTX)
}

/// The architectures with embedded machine code (SASS): their GPUs load the kernels
/// without the driver translating PTX.
pub fn embedded_sass_archs() -> Vec<&'static str> {
    archs_in(EMBEDDED_SASS)
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

/// Where a family's PTX came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtxOrigin {
    /// Machine code (SASS) for the device, compiled at build time and embedded.
    EmbeddedSass,
    /// Compiled at build time and embedded in the binary.
    Embedded,
    /// Read from the disk cache.
    Cached,
    /// Compiled now with NVRTC (and cached).
    Compiled,
}

/// The PTX embedded at build time for `f` on `arch`, if any.
pub fn embedded_ptx(f: Family, arch: &str) -> Option<String> {
    String::from_utf8(inflated(EMBEDDED_PTX, f, arch)?).ok()
}

/// The machine code (CUBIN) NVRTC made beside the embedded PTX for `f` on `arch`, if any.
pub fn embedded_sass(f: Family, arch: &str) -> Option<Vec<u8>> {
    inflated(EMBEDDED_SASS, f, arch)
}

/// PTX of a kernel family for `arch`: embedded, cached or compiled with NVRTC.
/// `fresh` compiles with NVRTC whatever exists (for `kernels --check`); `skip_embedded`
/// passes over the embedded copy (when the driver refused it).
pub fn family_ptx(
    f: Family,
    arch: &'static str,
    fresh: bool,
    skip_embedded: bool,
) -> Result<(String, PtxOrigin)> {
    if !fresh
        && !skip_embedded
        && let Some(p) = embedded_ptx(f, arch)
    {
        return Ok((p, PtxOrigin::Embedded));
    }
    let src = family_source(f);
    let stem = format!("{}-{:016x}-{arch}-nvrtc", f.name(), fnv(src.as_bytes()));
    let (ma, mi) = match nvrtc_version() {
        Ok(v) => v,
        // Without NVRTC, PTX compiled elsewhere for this exact source and arch still serves.
        Err(e) => {
            return cached_any(&stem).map(|p| (p, PtxOrigin::Cached)).ok_or(e);
        }
    };
    let path = cache_dir().join(format!("{stem}{ma}.{mi}.ptx"));
    if !fresh && let Ok(p) = std::fs::read_to_string(&path) {
        return Ok((p, PtxOrigin::Cached));
    }
    let opts = cudarc::nvrtc::CompileOptions {
        arch: Some(arch),
        name: Some(format!("{}.cu", f.name())),
        options: vec!["--std=c++17".into()],
        ..Default::default()
    };
    let ptx = cudarc::nvrtc::compile_ptx_with_opts(src, opts).map_err(|e| match e {
        cudarc::nvrtc::CompileError::CompileError { log, .. } => Error::invalid(format!(
            "NVRTC failed to compile kernels/{}.cu for {arch}:\n{}",
            f.name(),
            log.to_string_lossy()
        )),
        other => Error::invalid(format!(
            "NVRTC error for kernels/{}.cu ({arch}): {other:?}",
            f.name()
        )),
    })?;
    let text = ptx.to_src();
    if std::fs::create_dir_all(cache_dir()).is_ok() {
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, &text).is_ok() {
            std::fs::rename(&tmp, &path).ok();
        }
    }
    Ok((text, PtxOrigin::Compiled))
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

/// The PTX of one kernel: its `.entry` out of its family's module, with the module header
/// and the bodies of the non-inlined functions it calls that the module defines after its
/// first entry (the persistent kernel's `run_attn` / `run_qkv` instances, for example).
pub fn kernel_ptx(kernel: KernelId, arch: &'static str) -> Result<String> {
    let name = kernel.name();
    let (ptx, _) = family_ptx(kernel.family(), arch, false, false)?;
    entry_ptx(&ptx, &name).ok_or_else(|| {
        Error::invalid(format!(
            "`{name}` not found in the PTX of kernels/{}.cu",
            kernel.family().name()
        ))
    })
}

/// `kernel_ptx` on a module's text: the header (everything before the first entry, which
/// holds the declarations and the functions defined ahead of the entries), the entry `name`,
/// then every function defined after the first entry that the entry calls, directly or
/// through another such function, each once. None when the module has no such entry.
fn entry_ptx(ptx: &str, name: &str) -> Option<String> {
    let first_entry = ptx.find(".visible .entry").or_else(|| ptx.find(".entry"))?;
    let start = ptx.find(&format!(".entry {name}("))?;
    let start = ptx[..start].rfind(".visible").unwrap_or(start);
    let end = body_end(ptx, start);
    let mut out = format!("{}{}", &ptx[..first_entry], &ptx[start..end]);
    let mut done: Vec<String> = Vec::new();
    let mut todo = ptx_callees(&ptx[start..end]);
    while let Some(f) = todo.pop() {
        if done.contains(&f) {
            continue;
        }
        if let Some((at, d)) = func_definition(ptx, &f) {
            // One the header holds is printed already; its callees may not be.
            if at >= first_entry {
                out.push('\n');
                out.push_str(d);
            }
            todo.extend(ptx_callees(d));
        }
        done.push(f);
    }
    Some(out)
}

/// End of the body that starts at `at`: just past the first closing brace at column 0.
fn body_end(ptx: &str, at: usize) -> usize {
    ptx[at..]
        .find("\n}\n")
        .map(|e| at + e + 3)
        .unwrap_or(ptx.len())
}

/// Names of the functions a PTX body calls directly (`call`, `call.uni`, with or without a
/// return value; calls through a register are skipped).
fn ptx_callees(body: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (i, _) in body.match_indices("call") {
        let before = body[..i].chars().next_back();
        let after = body[i + 4..].chars().next();
        if !matches!(before, Some('\t' | ' ' | '\n')) || !matches!(after, Some('.' | ' ' | '\t')) {
            continue;
        }
        let rest =
            body[i + 4..].trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '.');
        let mut rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('(') {
            let Some(close) = r.find(')') else { continue };
            rest = r[close + 1..]
                .trim_start()
                .trim_start_matches(',')
                .trim_start();
        }
        let id: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$'))
            .collect();
        let starts_well =
            id.starts_with(|c: char| c.is_ascii_alphabetic() || matches!(c, '_' | '$'));
        if starts_well && !names.contains(&id) {
            names.push(id);
        }
    }
    names
}

/// The definition (not a declaration) of function `f` in `ptx`: where its `.func` line
/// starts, and the text from there through the closing brace of its body.
fn func_definition<'a>(ptx: &'a str, f: &str) -> Option<(usize, &'a str)> {
    let mut at = 0;
    while let Some(i) = ptx[at..].find(f) {
        let pos = at + i;
        at = pos + f.len();
        let line_start = ptx[..pos].rfind('\n').map_or(0, |n| n + 1);
        let head = &ptx[line_start..pos];
        let tail = ptx[at..].chars().next();
        let is_func = head
            .trim_start_matches(".visible ")
            .trim_start_matches(".weak ")
            .starts_with(".func");
        // The whole name: not the end of a longer one, nor its start.
        let whole = head.ends_with([' ', ')']) && matches!(tail, Some('(' | '\n' | ' '));
        if !is_func || !whole {
            continue;
        }
        // After the parameter list comes `;` (a declaration) or `{` (the body), each on a
        // line of its own.
        let opens = ptx[at..]
            .lines()
            .map(str::trim)
            .find(|l| *l == ";" || *l == "{");
        if opens == Some("{") {
            return Some((line_start, &ptx[line_start..body_end(ptx, line_start)]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ptx_appends_the_functions_defined_after_the_entries_that_it_calls() {
        // As NVRTC lays a module out: declarations and some functions before the first
        // entry, other functions after it.
        let ptx = "//\n.version 9.0\n.func  (.param .b32 func_retval0) late_a\n(\n\t.param .b64 late_a_param_0\n)\n;\n\
.func early\n(\n)\n{\n\tcall.uni late_c, \n\t(\n\t);\n\tret;\n\n}\n\
.visible .entry other(\n)\n{\n\tcall.uni late_unused, \n\t(\n\t);\n\tret;\n\n}\n\
.visible .entry k_one(\n)\n{\n\t{ // callseq 1, 0\n\tcall.uni (retval0), \n\tlate_a, \n\t(\n\tparam0\n\t);\n\t}\n\
\tcall.uni early, \n\t(\n\t);\n\tret;\n\n}\n\
.func  (.param .b32 func_retval0) late_a(\n\t.param .b64 late_a_param_0\n)\n{\n\tcall.uni late_b, \n\t(\n\t);\n\tret;\n\n}\n\
.func x_late_b\n(\n)\n{\n\tdecoy;\n\n}\n\
.func late_b\n(\n)\n{\n\tret;\n\n}\n\
.func late_c\n(\n)\n{\n\tret;\n\n}\n\
.func late_unused\n(\n)\n{\n\tret;\n\n}\n";
        let out = entry_ptx(ptx, "k_one").unwrap();
        assert!(out.starts_with("//\n.version 9.0\n"), "{out}");
        assert!(out.contains(".visible .entry k_one("), "{out}");
        assert!(!out.contains(".visible .entry other("), "{out}");
        // late_a's body, late_b's through it (not x_late_b's, whose name ends the same),
        // late_c's through early; early's once (the header has it); not late_unused, which
        // only the other entry calls.
        assert!(
            out.contains("late_a(\n\t.param .b64 late_a_param_0\n)\n{\n\tcall.uni late_b"),
            "{out}"
        );
        assert!(out.contains(".func late_b\n(\n)\n{"), "{out}");
        assert!(!out.contains("decoy"), "{out}");
        assert!(out.contains(".func late_c\n(\n)\n{"), "{out}");
        assert_eq!(out.matches(".func early").count(), 1, "{out}");
        assert!(!out.contains(".func late_unused"), "{out}");
        assert_eq!(
            ptx_callees(
                "\t{ // callseq 3, 0\n\tcall.uni (retval0), \n\tf1, \n\tcall g2, (p);\n\tcall %rd4, (x);"
            ),
            ["f1", "g2"]
        );
        assert!(entry_ptx(ptx, "k_none").is_none());
    }

    #[test]
    fn every_kernel_name_is_unique_and_parses_back() {
        let all = KernelId::all();
        let mut names: Vec<String> = all.iter().map(KernelId::name).collect();
        for k in &all {
            assert_eq!(KernelId::parse(&k.name()), Some(*k));
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }

    #[test]
    fn every_kernel_waits_for_the_kernel_before_it_ahead_of_its_work() {
        // A programmatic launch (decode steps on sm_90+) may start a kernel while the one
        // before it runs: griddepcontrol.wait must come before anything that reads or
        // writes activations. The wrapper calls it, or the body does after a prefetch.
        for k in KernelId::all() {
            let src = family_source(k.family());
            let head = format!(" {}({} a) {{ ", k.name(), k.args());
            let at = src.find(&head).expect("a wrapper") + head.len();
            if !k.enters_in_body() {
                assert!(
                    src[at..].starts_with("grid_dep_enter(); "),
                    "{} does not wait first",
                    k.name()
                );
                continue;
            }
            let imp = k.call();
            let imp = &imp[..imp.find('<').unwrap_or(imp.len())];
            let def = src
                .find(&format!("void {imp}("))
                .unwrap_or_else(|| panic!("{imp} not defined"));
            let body = &src[def..def + src[def..].find("\n}\n").expect("a body end")];
            let wait = body.find("grid_dep_enter();").expect("the body waits");
            let before = &body[..wait];
            if matches!(k, KernelId::AttentionSplit { .. }) {
                // Decode attention: the host-written position and the cache rows older than
                // the newest (the kernel before writes the query and the newest row); no load
                // of the query, no partial, ticket or output (pointer offsets are arithmetic).
                for produced in [
                    "S.q",
                    "float*)g.q",
                    "split_partial",
                    "split_stage_row",
                    "split_merge",
                    "atomicAdd",
                    "ticket)[",
                    "g.out)[",
                ] {
                    assert!(
                        !before.contains(produced),
                        "{imp} touches {produced} before it waits"
                    );
                }
                let stage = before
                    .find("split_stage<KV>(")
                    .expect("attention stages before it waits");
                let call = &before[stage..stage + before[stage..].find(';').unwrap()];
                assert!(
                    call.ends_with(", newest)"),
                    "{imp} stages the newest row before it waits: {call}"
                );
                continue;
            }
            if matches!(k, KernelId::Prep) {
                // prep: the L1 prefetch of its norm weights only (no input row, no output).
                for produced in [
                    "block_rms_scale",
                    "stage_q8",
                    "act_in",
                    "x[",
                    "g.xf",
                    "g.q0",
                    "g.qk)",
                ] {
                    assert!(
                        !before.contains(produced),
                        "{imp} touches {produced} before it waits"
                    );
                }
                assert!(before.contains("prep_norm_ahead("), "{imp}: no prefetch");
                continue;
            }
            // Before the wait: only argument arithmetic and the L2 prefetch of weights (no
            // activation, position, output or cache access).
            for shared in [
                "seq[",
                "g.pos",
                "matvec_tile<",
                "matvec_batch_tile<",
                "matvec_batch_warp<",
                "stage_rows<",
                "pair_dot",
                "qkv_store",
                "out[",
            ] {
                assert!(
                    !before.contains(shared),
                    "{imp} touches {shared} before it waits"
                );
            }
        }
    }

    #[test]
    fn every_family_source_has_a_wrapper_per_kernel_and_the_generated_header() {
        for f in Family::ALL {
            let src = family_source(f);
            assert!(src.contains("GENERATED by build.rs"), "{}", f.name());
            for k in KernelId::all().iter().filter(|k| k.family() == f) {
                assert!(
                    src.contains(&format!(" {}({} a)", k.name(), k.args())),
                    "{} has no wrapper in {}",
                    k.name(),
                    f.name()
                );
            }
        }
    }

    #[test]
    fn every_decode_kernel_has_a_batched_twin_in_the_catalogue() {
        let all = KernelId::all();
        let (mut single, mut twins) = (0, 0);
        for k in &all {
            let b = k.batched();
            match k {
                KernelId::Matvec { w, act, epi } => {
                    assert_eq!(
                        b,
                        KernelId::MatvecBatch {
                            w: *w,
                            act: *act,
                            epi: *epi
                        }
                    );
                    single += 1;
                }
                KernelId::Qkv { qk, v, act, kv } => {
                    assert_eq!(
                        b,
                        KernelId::QkvBatch {
                            qk: *qk,
                            v: *v,
                            act: *act,
                            kv: *kv
                        }
                    );
                    single += 1;
                }
                KernelId::MatvecBatch { .. } | KernelId::QkvBatch { .. } => twins += 1,
                _ => assert_eq!(b, *k, "{k} has no batched twin"),
            }
            assert!(all.contains(&b), "{b} is not in the catalogue");
            assert_eq!(
                b.args(),
                k.args(),
                "{k} and its twin take one argument struct"
            );
        }
        assert_eq!(single, twins);
        assert_eq!(
            KernelId::parse("matvec_batch_q4_k_q8_swiglu").map(|k| k.family()),
            Some(Family::MatvecBatch)
        );
    }

    #[test]
    fn batched_matvec_tiles_cover_fewer_rows_per_lane_group_than_the_single_row_tiles() {
        use catalogue::{matvec_batch_tile_rows, matvec_tile_rows};
        // 7B gate/up: 3,584 Q4_K (56 units: 32 lanes a row); SwiGLU keeps 1 row a group.
        assert_eq!(matvec_tile_rows(WType::Q4_K, 3584, 1), 32);
        assert_eq!(matvec_batch_tile_rows(WType::Q4_K, 3584, 1, Epi::Swiglu), 8);
        assert_eq!(matvec_batch_tile_rows(WType::Q4_K, 3584, 1, Epi::Add), 16);
        // 0.5B attn_k rows (896 Q5_0: 28 units, 32 lanes) split 8 ways: one row set a CTA.
        assert_eq!(matvec_batch_tile_rows(WType::Q5_0, 896, 8, Epi::None), 2);
        // Short rows share a warp: 256 Q4_K (4 units) take 4 lanes, 8 groups a warp.
        assert_eq!(
            matvec_batch_tile_rows(WType::Q4_K, 256, 1, Epi::None),
            8 * 2 * 8
        );
    }

    #[test]
    fn batched_matvec_takes_whole_rows_a_warp_for_split_q4_k_rows_that_fill_the_grid() {
        use catalogue::{batch_matvec_whole, matvec_batch_warp_rows};
        assert_eq!(matvec_batch_warp_rows(WType::Q4_K, 3584, Epi::Swiglu), 1);
        assert_eq!(matvec_batch_warp_rows(WType::Q4_K, 18_944, Epi::Add), 2);
        assert_eq!(matvec_batch_warp_rows(WType::Q4_K, 256, Epi::None), 16);
        // The H200's warp slots at 2 CTAs of 8 warps on 132 SMs.
        let slots = 2 * 132 * 8;
        let whole = |w, k, rows, epi, ks| batch_matvec_whole(w, Act::Q8, k, rows, epi, ks, slots);
        // 7B: gate+up (18,944 rows), attn_out and down (3,584 rows: 1,792 tasks of 2).
        assert!(whole(WType::Q4_K, 3584, 18_944, Epi::Swiglu, 2));
        assert!(whole(WType::Q4_K, 3584, 3584, Epi::Add, 2));
        assert!(whole(WType::Q4_K, 18_944, 3584, Epi::Add, 4));
        // Not its Q6_K down, nor rows the single-row kernel does not split.
        assert!(!whole(WType::Q6_K, 18_944, 3584, Epi::Add, 4));
        assert!(!whole(WType::Q4_K, 3584, 152_064, Epi::None, 1));
        // 1.5B down: 1,536 rows are 768 tasks, under 3/4 of 2,112 slots.
        assert!(!whole(WType::Q4_K, 8960, 1536, Epi::Add, 4));
        // Rows of fewer than 32 lanes (here 1,024 Q4_K values, 16 units) never go whole,
        // whatever split is asked for.
        assert!(!batch_matvec_whole(
            WType::Q4_K,
            Act::Q8,
            1024,
            1 << 20,
            Epi::Add,
            2,
            slots
        ));
        // f32 semantics keep the CTA tiles.
        assert!(!batch_matvec_whole(
            WType::Q4_K,
            Act::F32,
            3584,
            18_944,
            Epi::Swiglu,
            2,
            slots
        ));
    }

    #[test]
    fn batched_matvec_stages_rows_that_fit_and_sizes_its_shared_memory() {
        use catalogue::{
            MATVEC_BATCH_STAGE_BYTES, batch_matvec_smem, batch_matvec_stage_bytes,
            batch_matvec_stages,
        };
        // 7B gate/up (K 3,584) and its Q6_K logits: 8 rows are staged; the 7B down
        // (K 18,944) not even at 2 rows (and a batch of one takes the single-row kernel);
        // f32 semantics and float weights never.
        assert!(batch_matvec_stages(WType::Q4_K, Act::Q8, 3584, 8));
        assert!(batch_matvec_stages(WType::Q6_K, Act::Q8, 3584, 8));
        assert!(!batch_matvec_stages(WType::Q6_K, Act::Q8, 18944, 2));
        assert!(!batch_matvec_stages(WType::Q4_K, Act::F32, 3584, 8));
        assert!(!batch_matvec_stages(WType::F16, Act::Q8, 3584, 8));
        // The 1.5B's down (K 8,960): up to 3 rows (3 slots a unit), not 4 (5 slots).
        assert!(batch_matvec_stages(WType::Q6_K, Act::Q8, 8960, 3));
        assert!(!batch_matvec_stages(WType::Q6_K, Act::Q8, 8960, 4));
        assert!(batch_matvec_stages(WType::Q5_0, Act::Q8, 896, 8));
        assert!(batch_matvec_stages(WType::Q8_0, Act::Q8, 96, 2));
        // Wide CTAs: the 7B's Q4_K down at 8 rows (213,120 bytes) fits an H200's 227 KiB a
        // CTA (232,448 bytes) but not an RTX 4090's 99 KiB (101,376); its Q6_K rows at 8
        // (255,744 bytes) fit neither.
        use catalogue::batch_matvec_wide;
        assert_eq!(batch_matvec_stage_bytes(WType::Q4_K, 18944, 8), 213_120);
        assert!(batch_matvec_wide(WType::Q4_K, Act::Q8, 18944, 8, 232_448));
        assert!(!batch_matvec_wide(WType::Q4_K, Act::Q8, 18944, 8, 101_376));
        assert!(!batch_matvec_wide(WType::Q6_K, Act::Q8, 18944, 8, 232_448));
        assert!(!batch_matvec_wide(WType::Q4_K, Act::F32, 18944, 8, 232_448));
        // Planes: a Q4_K unit (64 values) is 4 chunks of values and 1 of scales, a Q6_K
        // unit (32) 2 and 1; slots a unit: nb made odd.
        assert_eq!(
            batch_matvec_stage_bytes(WType::Q4_K, 3584, 8),
            5 * 56 * 9 * 16
        );
        assert_eq!(
            batch_matvec_stage_bytes(WType::Q6_K, 3584, 8),
            3 * 112 * 9 * 16
        );
        assert_eq!(
            batch_matvec_stage_bytes(WType::Q6_K, 3584, 3),
            3 * 112 * 3 * 16
        );
        // Partial sums: 8 warps × (sum, up) × lane groups × rows a group × 8 batch rows.
        assert_eq!(
            batch_matvec_smem(WType::Q4_K, 3584, Epi::Swiglu, 8, false),
            8 * 2 * 8 * 4
        );
        assert_eq!(
            batch_matvec_smem(WType::Q4_K, 3584, Epi::Swiglu, 8, true),
            8 * 2 * 8 * 4 + 5 * 56 * 9 * 16
        );
        // 256 Q4_K values (4 units) take 4 lanes: 8 lane groups, 2 rows each.
        assert_eq!(
            batch_matvec_smem(WType::Q4_K, 256, Epi::Add, 2, false),
            8 * 2 * 8 * 2 * 8 * 4
        );
        // The most a staged launch of long rows asks for (one lane group a warp) leaves two
        // CTAs, with their 1 KiB reserved each, in 100 KiB (an RTX 4090's SM).
        let most =
            batch_matvec_smem(WType::Q4_K, 4096, Epi::Add, 8, false) + MATVEC_BATCH_STAGE_BYTES;
        assert!(2 * (most + 1024) <= 100 * 1024);
        // 3 CTAs per SM (80 registers) where the q8 unit loop does not spill at that cap.
        let bounds = |w, act, epi| KernelId::MatvecBatch { w, act, epi }.launch_bounds();
        assert_eq!(bounds(WType::Q6_K, Act::Q8, Epi::Add), Some((256, 3)));
        assert_eq!(bounds(WType::Q5_0, Act::Q8, Epi::None), Some((256, 3)));
        assert_eq!(bounds(WType::Q4_K, Act::Q8, Epi::Swiglu), Some((256, 2)));
        assert_eq!(bounds(WType::Q4_K, Act::Q8, Epi::Add), Some((256, 2)));
        // The whole-row kernels exist for q8 over 64-value units only, at 128 registers a
        // thread: launched as 2 CTAs of 256 threads an SM, or one wide CTA of 512.
        let whole = KernelId::MatvecBatchWhole {
            w: WType::Q4_K,
            epi: Epi::Swiglu,
        };
        assert_eq!(whole.launch_bounds(), Some((512, 1)));
        assert_eq!(whole.name(), "matvec_batch_whole_q4_k_q8_swiglu");
        let all = KernelId::all();
        assert!(all.contains(&whole));
        assert!(!all.contains(&KernelId::MatvecBatchWhole {
            w: WType::Q6_K,
            epi: Epi::Add
        }));
        assert_eq!(bounds(WType::Q6_K, Act::F32, Epi::Add), Some((256, 2)));
        // The tensor-core kernels: q8 Q4_K/Q5_K only; SwiGLU at 128 registers a thread (two
        // CTAs an SM), the plain and residual ones built for one.
        let mma = KernelId::MatvecBatchMma {
            w: WType::Q4_K,
            epi: Epi::Swiglu,
        };
        assert_eq!(mma.name(), "matvec_batch_mma_q4_k_q8_swiglu");
        assert_eq!(mma.launch_bounds(), Some((256, 2)));
        assert!(mma.enters_in_body());
        assert!(all.contains(&mma));
        for w in WType::ALL {
            let has = all.contains(&KernelId::MatvecBatchMma { w, epi: Epi::Add });
            assert_eq!(has, matches!(w, WType::Q4_K | WType::Q5_K), "{w:?}");
        }
    }

    #[test]
    fn batched_matvec_takes_the_tensor_cores_for_q4_k_from_four_or_five_rows_when_the_rows_fit() {
        use catalogue::{batch_matvec_mma, batch_mma_smem};
        let h200 = 227 * 1024;
        // 8 rows or fewer, staged per super-block: 2,208 bytes each, plus the parts.
        assert_eq!(batch_mma_smem(3584), 14 * 2208 + 4096);
        // SwiGLU from 4 rows, the other epilogues from 5.
        for nb in 1..=8 {
            for (epi, least) in [(Epi::Swiglu, 4), (Epi::Add, 5), (Epi::None, 5)] {
                assert_eq!(
                    batch_matvec_mma(WType::Q4_K, Act::Q8, 3584, nb, epi, h200),
                    nb >= least,
                    "{epi:?} at {nb} rows"
                );
            }
        }
        // Not for f32 semantics, not for Q6_K, not when the staged rows exceed the device.
        assert!(!batch_matvec_mma(
            WType::Q4_K,
            Act::F32,
            3584,
            8,
            Epi::None,
            h200
        ));
        assert!(!batch_matvec_mma(
            WType::Q6_K,
            Act::Q8,
            3584,
            8,
            Epi::None,
            h200
        ));
        assert!(batch_matvec_mma(
            WType::Q4_K,
            Act::Q8,
            18944,
            8,
            Epi::Add,
            h200
        ));
        assert!(!batch_matvec_mma(
            WType::Q4_K,
            Act::Q8,
            18944,
            8,
            Epi::Add,
            99 * 1024
        ));
    }

    #[test]
    fn gpu_weight_types_map_to_ggml_types() {
        for w in WType::ALL {
            let t = GgmlType::from_id(w.ggml_id()).expect("a GGML type");
            assert_eq!(WType::of(t), Some(w));
            assert_eq!(t.name().to_ascii_lowercase(), w.name());
        }
        assert_eq!(WType::of(GgmlType::Q2_K), None);
    }
}
