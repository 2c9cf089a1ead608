//! `graphrun diff A B`: compare two traces node by node under a contract (src/diff).

use graphrun::Result;
use graphrun::diff::{Trace, diff, html};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = "B is the reference (NMSE = sum((a-b)^2) / sum(b^2)).
Contract chosen when --contract is not given: different activation semantics -> \
trace_cross_semantics; two interpreter traces -> trace_exact; otherwise (GPU vs interpreter, \
fused vs unfused) -> trace_same_semantics. `graphrun contracts` lists them.
Exit status: 0 every record within band, 1 some record out of band (the last line then reads \
`first divergence: NODE ...`), 2 error.")]
pub struct Args {
    /// Trace directory (or its trace.jsonl) under test.
    a: PathBuf,
    /// Reference trace directory (or its trace.jsonl).
    b: PathBuf,
    /// Contract whose bands judge the records: a name (`trace_exact`,
    /// `trace_same_semantics`, `trace_cross_semantics`) or a YAML file.
    #[arg(long, value_name = "NAME|FILE")]
    contract: Option<String>,
    /// Print the whole report as JSON (every record's metrics) instead of text.
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML report (per-layer heat map, first divergence).
    #[arg(long, value_name = "OUT.html")]
    html: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<i32> {
    let ta = Trace::open(&a.a)?;
    let tb = Trace::open(&a.b)?;
    let report = diff(&ta, &tb, a.contract.as_deref())?;
    if let Some(p) = &a.html {
        std::fs::write(p, html::render(&report)).map_err(|e| graphrun::Error::io(p, e))?;
        eprintln!("graphrun: HTML report written to {}", p.display());
    }
    if a.json {
        let mut v = serde_json::to_value(&report).expect("report serializes");
        v["exit_status"] = report.exit_code().into();
        v["first_divergence_line"] = report.first_line().into();
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("report serializes")
        );
    } else {
        print!("{}", report.text());
    }
    Ok(report.exit_code())
}
