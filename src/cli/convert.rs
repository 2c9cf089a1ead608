//! `graphrun convert` (GGUF → APR) and `graphrun diff-weights`.

use super::common::Progress;
use graphrun::Result;
use graphrun::error::Error;
use graphrun::model::{ModelFile, apr_write};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct ConvertArgs {
    /// Input GGUF file.
    input: PathBuf,
    /// Output APR file (written as `apr import --preserve-q4k` would).
    output: PathBuf,
}

pub fn convert(a: ConvertArgs) -> Result<i32> {
    check_output(&a.output)?;
    let m = ModelFile::open(&a.input)?;
    if !matches!(m.format, graphrun::model::FileFormat::Gguf { .. }) {
        return Err(Error::invalid(format!(
            "{}: convert reads GGUF files only (this is {})",
            m.path,
            m.format.describe()
        )));
    }
    let tmp = a.output.with_extension("apr.partial");
    let f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 22, f);
    let mut last = 0u64;
    let mut progress = Progress::new();
    let line = |done: u64, total: u64| {
        format!(
            "convert: {:>3}% ({} / {} MB)",
            done * 100 / total.max(1),
            done >> 20,
            total >> 20
        )
    };
    let written = apr_write::write_w1(&m, &mut w, |done, total| {
        if done == total {
            progress.done(&line(done, total));
        } else if done - last > total / 20 {
            progress.update(&line(done, total));
            last = done;
        }
    })
    .and_then(|_| w.flush().map_err(|e| Error::io(&tmp, e)));
    drop(w);
    if let Err(e) = written {
        progress.clear();
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &a.output).map_err(|e| Error::io(&a.output, e))?;
    eprintln!(
        "convert: wrote {} ({} tensors)",
        a.output.display(),
        m.tensors.len()
    );
    Ok(0)
}

/// The output must be a file name in an existing directory (checked before converting).
fn check_output(out: &Path) -> Result<()> {
    if out.is_dir() {
        return Err(Error::invalid(format!(
            "{}: is a directory; give the output file name (e.g. {}/model.apr)",
            out.display(),
            out.display()
        )));
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(Error::invalid(format!(
            "{}: the directory {} does not exist",
            out.display(),
            parent.display()
        )));
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct DiffArgs {
    /// First model file (GGUF or APR).
    a: PathBuf,
    /// Second model file (GGUF or APR).
    b: PathBuf,
    /// Print a JSON report instead of text.
    #[arg(long)]
    json: bool,
    /// Also list identical tensors.
    #[arg(long)]
    verbose: bool,
}

#[derive(serde::Serialize)]
struct Row {
    name: String,
    status: &'static str,
    detail: String,
    max_abs: Option<f64>,
    rel_l2: Option<f64>,
}

pub fn diff_weights(a: DiffArgs) -> Result<i32> {
    let (ma, mb) = (ModelFile::open(&a.a)?, ModelFile::open(&a.b)?);
    let mut names: Vec<&str> = ma
        .tensors
        .iter()
        .chain(&mb.tensors)
        .map(|t| t.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut rows = Vec::new();
    for name in names {
        rows.push(match (ma.tensor(name), mb.tensor(name)) {
            (Some(_), None) => row(name, "only_in_a", String::new()),
            (None, Some(_)) => row(name, "only_in_b", String::new()),
            (Some(ta), Some(tb)) => compare(&ma, ta, &mb, tb),
            (None, None) => unreachable!("name came from one of the files"),
        });
    }
    let differing = rows.iter().filter(|r| r.status != "identical").count();
    if a.json {
        let v = serde_json::json!({
            "a": ma.path, "b": mb.path,
            "tensors": rows.len(), "identical": rows.len() - differing, "differing": differing,
            "rows": rows,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        for r in rows.iter().filter(|r| a.verbose || r.status != "identical") {
            println!("{:<32} {:<14} {}", r.name, r.status, r.detail);
        }
        println!(
            "{} tensors compared: {} identical, {} differ",
            rows.len(),
            rows.len() - differing,
            differing
        );
    }
    Ok(if differing == 0 { 0 } else { 1 })
}

fn row(name: &str, status: &'static str, detail: String) -> Row {
    Row {
        name: name.to_string(),
        status,
        detail,
        max_abs: None,
        rel_l2: None,
    }
}

fn compare(
    ma: &ModelFile,
    ta: &graphrun::model::TensorInfo,
    mb: &ModelFile,
    tb: &graphrun::model::TensorInfo,
) -> Row {
    if ta.shape != tb.shape {
        return row(
            &ta.name,
            "shape",
            format!("{:?} vs {:?}", ta.shape, tb.shape),
        );
    }
    if ta.dtype == tb.dtype && ma.tensor_bytes(ta) == mb.tensor_bytes(tb) {
        return row(&ta.name, "identical", String::new());
    }
    let (va, vb) = (ma.dequantize_tensor(ta), mb.dequantize_tensor(tb));
    let (mut max_abs, mut diff2, mut ref2) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in va.iter().zip(&vb) {
        let d = (*x as f64 - *y as f64).abs();
        max_abs = max_abs.max(d);
        diff2 += d * d;
        ref2 += (*x as f64) * (*x as f64);
    }
    let rel = (diff2 / ref2.max(f64::MIN_POSITIVE)).sqrt();
    let status = if ta.dtype != tb.dtype {
        "dtype"
    } else {
        "values"
    };
    Row {
        name: ta.name.clone(),
        status,
        detail: format!(
            "{} vs {}: max_abs {max_abs:.3e} rel_l2 {rel:.3e}",
            ta.dtype, tb.dtype
        ),
        max_abs: Some(max_abs),
        rel_l2: Some(rel),
    }
}
