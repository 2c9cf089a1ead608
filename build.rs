//! Build script:
//! 1. embeds every architecture description in `graph/*.json` (adding an architecture is
//!    adding a file);
//! 2. expands the CUDA kernel catalogue: op family × weight type × activation semantics ×
//!    prologue/epilogue, one `extern "C"` wrapper per concrete kernel around the templates
//!    in `kernels/`, and embeds each family's complete source (headers inlined).
//!    PTX is compiled from these sources at run time through NVRTC and cached on disk
//!    (`src/codegen/`); `graphrun kernels` lists the catalogue.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    archs(&out);
    kernels(&out);
}

fn archs(out: &str) {
    println!("cargo:rerun-if-changed=graph");
    let mut archs: Vec<_> = std::fs::read_dir("graph")
        .expect("graph/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    archs.sort();
    let mut src = String::from(
        "/// (architecture name, JSON description) for every file in graph/.\npub static ARCH_FILES: &[(&str, &str)] = &[\n",
    );
    for p in &archs {
        let name = p.file_stem().unwrap().to_str().unwrap();
        let abs = std::fs::canonicalize(p).unwrap();
        writeln!(
            src,
            "    ({name:?}, include_str!({:?})),",
            abs.display().to_string()
        )
        .unwrap();
        println!("cargo:rerun-if-changed={}", p.display());
    }
    src.push_str("];\n");
    std::fs::write(Path::new(out).join("archs.rs"), src).unwrap();
}

/// Weight types with GPU kernels: (name in kernel names, C++ trait type, GGML id, quantized).
const WTYPES: &[(&str, &str, u32, bool)] = &[
    ("f32", "TF32", 0, false),
    ("f16", "TF16", 1, false),
    ("q4_0", "TQ4_0", 2, true),
    ("q5_0", "TQ5_0", 6, true),
    ("q8_0", "TQ8_0", 8, true),
    ("q4_k", "TQ4_K", 12, true),
    ("q5_k", "TQ5_K", 13, true),
    ("q6_k", "TQ6_K", 14, true),
];

fn acts(quantized: bool) -> &'static [(&'static str, &'static str)] {
    if quantized {
        &[("f32", "ACT_F32"), ("q8", "ACT_Q8")]
    } else {
        &[("f32", "ACT_F32")]
    }
}

struct Kernel {
    name: String,
    family: &'static str,
    args: &'static str,
    call: String,
}

fn catalogue() -> Vec<Kernel> {
    let mut k = Vec::new();
    let mut push = |name: String, family: &'static str, args: &'static str, call: String| {
        k.push(Kernel {
            name,
            family,
            args,
            call,
        })
    };
    for &(w, t, _, q) in WTYPES {
        for &(an, av) in acts(q) {
            for (en, ev) in [
                ("none", "EPI_NONE"),
                ("add", "EPI_ADD"),
                ("swiglu", "EPI_SWIGLU"),
            ] {
                push(
                    format!("matvec_{w}_{an}_{en}"),
                    "matvec",
                    "MatvecArgs",
                    format!("matvec_impl<{t}, {av}, {ev}>"),
                );
            }
            push(
                format!("matmul_{w}_{an}"),
                "matmul",
                "MatmulArgs",
                format!("matmul_impl<{t}, {av}>"),
            );
            if an == "q8" {
                push(
                    format!("mmq_{w}"),
                    "mmq",
                    "MmqArgs",
                    format!("mmq_impl<{t}>"),
                );
            }
        }
        push(
            format!("embedding_{w}"),
            "embedding",
            "EmbArgs",
            format!("embedding_impl<{t}>"),
        );
    }
    for &(wq, tq, _, qq) in WTYPES {
        for &(wv, tv, _, qv) in WTYPES {
            if qq != qv {
                continue;
            }
            for &(an, av) in acts(qq) {
                push(
                    format!("qkv_{wq}_{wv}_{an}"),
                    "matvec",
                    "QkvArgs",
                    format!("qkv_impl<{tq}, {tv}, {av}>"),
                );
            }
        }
    }
    for op in ["bias_add", "add", "mul", "silu", "rms_norm", "scale"] {
        push(
            op.to_string(),
            "elementwise",
            "EltArgs",
            format!("{op}_impl"),
        );
    }
    push("rope".into(), "elementwise", "RopeArgs", "rope_impl".into());
    push(
        "kv_append".into(),
        "elementwise",
        "KvArgs",
        "kv_append_impl".into(),
    );
    push(
        "quantize_q8".into(),
        "quantize",
        "QuantizeArgs",
        "quantize_impl".into(),
    );
    push("prep".into(), "quantize", "PrepArgs", "prep_impl".into());
    push(
        "attention".into(),
        "attention",
        "AttnArgs",
        "attention_impl".into(),
    );
    push(
        "attention_split".into(),
        "attention",
        "AttnSplitArgs",
        "attention_split_impl".into(),
    );
    push(
        "argmax".into(),
        "argmax",
        "ArgmaxArgs",
        "argmax_impl".into(),
    );
    push(
        "read_bandwidth".into(),
        "bandwidth",
        "ReadArgs",
        "read_bw_impl".into(),
    );
    k
}

/// Inlines `#include "x"` of files in kernels/ (each once), so NVRTC needs no include path.
fn inline(path: &Path, seen: &mut Vec<String>, out: &mut String) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    println!("cargo:rerun-if-changed={}", path.display());
    for line in text.lines() {
        let t = line.trim();
        if t == "#pragma once" {
            continue;
        }
        if let Some(rest) = t.strip_prefix("#include \"") {
            let name = rest.trim_end_matches('"').to_string();
            if !seen.contains(&name) {
                seen.push(name.clone());
                inline(&path.parent().unwrap().join(&name), seen, out);
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
}

fn kernels(out: &str) {
    println!("cargo:rerun-if-changed=kernels");
    let cat = catalogue();
    let mut families: Vec<&str> = cat.iter().map(|k| k.family).collect();
    families.sort();
    families.dedup();
    let mut src = String::new();
    writeln!(
        src,
        "/// (family, complete CUDA source) for every kernel family."
    )
    .unwrap();
    writeln!(src, "pub static FAMILY_SOURCES: &[(&str, &str)] = &[").unwrap();
    for f in &families {
        let mut body = String::from("// Generated by build.rs from kernels/. Do not edit.\n");
        let mut seen = Vec::new();
        inline(
            &Path::new("kernels").join(format!("{f}.cu")),
            &mut seen,
            &mut body,
        );
        body.push_str("\n// ---- catalogue wrappers ----\n");
        for k in cat.iter().filter(|k| k.family == *f) {
            // Decode matvecs stream weights: ask for 4 resident CTAs of 256 threads per SM
            // (at most 64 registers a thread) so more loads are in flight. Not for the
            // SwiGLU epilogue: with two weight streams it spills under that cap (7B gate+up
            // 41 -> 51 us on the H100).
            let bounds = if k.name.starts_with("matvec_") && !k.name.ends_with("_swiglu") {
                "__launch_bounds__(256, 4) "
            } else {
                ""
            };
            writeln!(
                body,
                "extern \"C\" __global__ void {bounds}{}({} a) {{ {}(a); }}",
                k.name, k.args, k.call
            )
            .unwrap();
        }
        let file = Path::new(out).join(format!("kernels_{f}.cu"));
        std::fs::write(&file, &body).unwrap();
        writeln!(
            src,
            "    ({f:?}, include_str!({:?})),",
            file.display().to_string()
        )
        .unwrap();
    }
    writeln!(src, "];\n/// (kernel name, family) for every kernel in the catalogue.\npub static KERNELS: &[(&str, &str)] = &[").unwrap();
    for k in &cat {
        writeln!(src, "    ({:?}, {:?}),", k.name, k.family).unwrap();
    }
    src.push_str("];\n");
    std::fs::write(Path::new(out).join("kernels.rs"), src).unwrap();
}
