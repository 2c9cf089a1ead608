//! `graphrun kernels`: the generated CUDA kernel catalogue.

use graphrun::codegen::{self, CHECK_ARCHS, Family, KernelId};
use graphrun::{Error, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Print the PTX of one kernel (a name from the list).
    #[arg(long, value_name = "NAME")]
    ptx: Option<String>,
    /// Architecture for --ptx (sm_80, sm_86, sm_89, sm_90, ...).
    #[arg(long, default_value = "sm_90")]
    arch: String,
    /// Compile every kernel family for sm_80, sm_86, sm_89 and sm_90 with NVRTC (no GPU
    /// needed), one compile per core at a time; exits non-zero on a failure, printing the
    /// NVRTC log.
    #[arg(long)]
    check: bool,
    /// List as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let all = KernelId::all();
    if a.check {
        let (ma, mi) = codegen::nvrtc_version()?;
        eprintln!(
            "kernels --check: {} kernels in {} families, NVRTC {ma}.{mi}",
            all.len(),
            Family::ALL.len()
        );
        // (architecture, family) jobs over the cores: NVRTC compiles are independent, and
        // the batched matvec family alone takes minutes per architecture.
        let jobs: Vec<(&'static str, Family)> = CHECK_ARCHS
            .iter()
            .flat_map(|arch| Family::ALL.map(|f| (*arch, f)))
            .collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let next = std::sync::atomic::AtomicUsize::new(0);
        let check = |(arch, f): (&'static str, Family)| -> Result<()> {
            let t0 = std::time::Instant::now();
            let (ptx, _) = codegen::family_ptx(f, arch, true, true)?;
            let n = all.iter().filter(|k| k.family() == f).count();
            let entries = ptx.matches(".entry ").count();
            if entries != n {
                return Err(Error::invalid(format!(
                    "kernels/{}.cu ({arch}): {entries} entries in the PTX, {n} in the catalogue",
                    f.name()
                )));
            }
            eprintln!(
                "  ok  {arch} {:<12} {n:>3} kernels  {:>6.1} s",
                f.name(),
                t0.elapsed().as_secs_f64()
            );
            Ok(())
        };
        let results: Vec<Result<()>> = std::thread::scope(|sc| {
            let workers: Vec<_> = (0..threads.min(jobs.len()))
                .map(|_| {
                    sc.spawn(|| {
                        let mut out = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(&job) = jobs.get(i) else { break };
                            let r = check(job);
                            let failed = r.is_err();
                            out.push(r);
                            if failed {
                                // Stop handing out work: the first failure is the answer.
                                next.store(jobs.len(), std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                        out
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("a kernel check thread panicked"))
                .collect()
        });
        for r in results {
            r?;
        }
        println!(
            "all {} kernels compile for {}",
            all.len(),
            CHECK_ARCHS.join(", ")
        );
        return Ok(0);
    }
    if let Some(name) = a.ptx {
        let k = KernelId::parse(&name).ok_or_else(|| {
            Error::invalid(format!(
                "--ptx {name}: no such kernel (`graphrun kernels` lists them)"
            ))
        })?;
        let arch = CHECK_ARCHS
            .iter()
            .chain(["sm_75", "sm_87", "sm_100", "sm_120"].iter())
            .find(|x| **x == a.arch)
            .ok_or_else(|| Error::invalid(format!("--arch {}: unknown architecture", a.arch)))?;
        print!("{}", codegen::kernel_ptx(k, arch)?);
        return Ok(0);
    }
    if a.json {
        let v: Vec<_> = all
            .iter()
            .map(|k| serde_json::json!({"name": k.name(), "family": k.family().name(), "args": k.args()}))
            .collect();
        let doc = serde_json::json!({
            "kernels": v,
            "ptx": codegen::embed_note(),
            "embedded_archs": codegen::embedded_archs(),
            "embedded_sass_archs": codegen::embedded_sass_archs(),
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
    } else {
        for k in &all {
            println!("{:<32} kernels/{}.cu", k.name(), k.family().name());
        }
        eprintln!(
            "{} kernels in {} families; PTX {}",
            all.len(),
            Family::ALL.len(),
            codegen::embed_note()
        );
        if codegen::embedded_archs().is_empty() {
            eprintln!(
                "(compiled with NVRTC at first use on a GPU and cached in {})",
                codegen::cache_dir().display()
            );
        }
    }
    Ok(0)
}
