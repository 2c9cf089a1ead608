//! `graphrun kernels`: the generated CUDA kernel catalogue.

use graphrun::codegen::{self, CHECK_ARCHS};
use graphrun::{Error, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Print the PTX of one kernel.
    #[arg(long, value_name = "NAME")]
    ptx: Option<String>,
    /// Architecture for --ptx (sm_80, sm_89, sm_90, ...).
    #[arg(long, default_value = "sm_90")]
    arch: String,
    /// Compile every kernel family for sm_80, sm_89 and sm_90 with NVRTC (no GPU needed);
    /// exits non-zero on the first failure, printing the NVRTC log.
    #[arg(long)]
    check: bool,
    /// List as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<i32> {
    if a.check {
        let (ma, mi) = codegen::nvrtc_version()?;
        let families: Vec<_> = codegen::families().collect();
        eprintln!(
            "kernels --check: {} kernels in {} families, NVRTC {ma}.{mi}",
            codegen::catalogue().len(),
            families.len()
        );
        for arch in CHECK_ARCHS {
            for (f, _) in &families {
                let t0 = std::time::Instant::now();
                let ptx = codegen::family_ptx(f, arch, true)?;
                let n = codegen::catalogue()
                    .iter()
                    .filter(|(_, fam)| fam == f)
                    .count();
                let entries = ptx.matches(".entry ").count();
                if entries != n {
                    return Err(Error::invalid(format!(
                        "{f} ({arch}): {entries} entries in the PTX, {n} in the catalogue"
                    )));
                }
                eprintln!(
                    "  ok  {arch} {f:<12} {n:>3} kernels  {:>6.1} s",
                    t0.elapsed().as_secs_f64()
                );
            }
        }
        println!(
            "all {} kernels compile for {}",
            codegen::catalogue().len(),
            CHECK_ARCHS.join(", ")
        );
        return Ok(0);
    }
    if let Some(name) = a.ptx {
        let arch = CHECK_ARCHS
            .iter()
            .chain(["sm_75", "sm_86", "sm_87", "sm_100", "sm_120"].iter())
            .find(|x| **x == a.arch)
            .ok_or_else(|| Error::invalid(format!("--arch {}: unknown architecture", a.arch)))?;
        print!("{}", codegen::kernel_ptx(&name, arch)?);
        return Ok(0);
    }
    if a.json {
        let v: Vec<_> = codegen::catalogue()
            .iter()
            .map(|(k, f)| serde_json::json!({"name": k, "family": f}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        for (k, f) in codegen::catalogue() {
            println!("{k:<32} {f}");
        }
        eprintln!("{} kernels", codegen::catalogue().len());
    }
    Ok(0)
}
