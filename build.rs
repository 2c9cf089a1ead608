//! Build script: embeds every architecture description in `graph/*.json` (so adding an
//! architecture is adding a file). Kernel generation from `kernels/` joins it with the GPU
//! backend.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
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
    std::fs::write(Path::new(&out).join("archs.rs"), src).unwrap();
}
