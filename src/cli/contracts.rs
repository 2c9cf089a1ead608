//! `graphrun contracts`: every contract in `contracts/` with its invariant, bands and tests,
//! and each test's status from the last recorded run (`evidence/contracts-status.json`,
//! written by `graphrun contracts --record LOG...` from test logs).

use graphrun::contracts;
use graphrun::{Error, Result};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(
    after_help = "Recording: run the tests with their output saved (scripts/test 2>&1 | tee cpu.log; \
GPU suites on the device write their own logs), then `graphrun contracts --record cpu.log gpu.log`. \
A later log overrides an earlier one for the same test (so a device log replaces the CPU log's \
skipped GPU tests), except that a skip never replaces a pass or a failure."
)]
pub struct Args {
    /// Print JSON (contracts with bands, tests and status).
    #[arg(long)]
    json: bool,
    /// Read test results from these logs (cargo nextest or libtest output) and write the
    /// status file instead of listing.
    #[arg(long, value_name = "LOG", num_args = 1..)]
    record: Vec<PathBuf>,
    /// Status file (default: evidence/contracts-status.json beside contracts/).
    #[arg(long, value_name = "FILE")]
    status: Option<PathBuf>,
}

/// Where statuses are read and recorded: `--status`, else `evidence/` beside
/// `GRAPHRUN_CONTRACTS`, else the source checkout's `evidence/` when it still exists. None:
/// a binary away from any checkout, which shows the copy embedded at build time.
fn status_path(a: &Args) -> Option<PathBuf> {
    if let Some(p) = &a.status {
        return Some(p.clone());
    }
    if let Some(d) = contracts::override_dir() {
        return Some(
            d.parent()
                .unwrap_or(Path::new("."))
                .join("evidence/contracts-status.json"),
        );
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("evidence/contracts-status.json");
    src.exists().then_some(src)
}

/// Result of test `id` (`binary::func`) found in the log `file`: nextest (`PASS [ 1.2s]
/// crate::binary func`, `FAIL ...`; a passing test whose shown output says `SKIP` counts as
/// `skipped`) and libtest (`test func ... ok|FAILED|ignored`, the verdict possibly on a
/// later line when the test printed in between). A libtest line does not name its binary
/// and two suites can have tests of the same name (`real_05b_greedy_tokens_match_the_interpreter`
/// is in gpu_e2e and gpu_persistent), so a libtest log whose file is named after a test
/// binary (`owner`: `gpu_persistent.log`, `gpu_e2e_real.log`, as scripts/gpu-check names
/// them) counts only for that binary; one named otherwise (`gpu.log`) counts for any.
fn scan(log: &str, id: &str, owner: Option<&str>) -> Option<&'static str> {
    let (binary, func) = id.rsplit_once("::").unwrap_or(("", id));
    let libtest_ok = owner.is_none_or(|o| o == binary);
    let lines: Vec<&str> = log.lines().map(str::trim).collect();
    let verdict = |s: &str| match s {
        "ok" => Some("pass"),
        "ignored" => Some("ignored"),
        s if s.starts_with("FAILED") => Some("fail"),
        _ => None,
    };
    let mut found = None;
    for (i, l) in lines.iter().enumerate() {
        let words: Vec<&str> = l.split_whitespace().collect();
        let in_binary = binary.is_empty()
            || words
                .iter()
                .any(|w| *w == binary || w.ends_with(&format!("::{binary}")));
        let names_it = (words.last() == Some(&func) && in_binary)
            || words
                .iter()
                .any(|w| *w == id || w.ends_with(&format!("::{id}")));
        if names_it && l.starts_with("PASS") {
            // Its output (shown for the GPU suites) runs until the next nextest status line.
            let skipped = lines[i + 1..]
                .iter()
                .take_while(|x| !(x.starts_with("PASS") || x.starts_with("FAIL")))
                .any(|x| x.starts_with("SKIP"));
            found = Some(if skipped { "skipped" } else { "pass" });
        } else if names_it
            && ["FAIL", "SIGSEGV", "SIGABRT", "TIMEOUT"]
                .iter()
                .any(|p| l.starts_with(p))
        {
            found = Some("fail");
        }
        if let Some(rest) = l.strip_prefix("test ").filter(|_| libtest_ok) {
            let mut it = rest.split(" ... ");
            if it.next().map(str::trim) == Some(func) {
                let rest = it.next().unwrap_or("").trim();
                // The verdict follows the name, or ends a later line when the test printed
                // in between; a test that passed after printing SKIP first was skipped.
                found = verdict(rest)
                    .or_else(|| {
                        lines[i + 1..].iter().find_map(|x| {
                            verdict(x).or_else(|| x.rsplit(' ').next().and_then(verdict))
                        })
                    })
                    .map(|v| {
                        if v == "pass" && rest.starts_with("SKIP") {
                            "skipped"
                        } else {
                            v
                        }
                    })
                    .or(found);
            }
        }
    }
    found
}

/// The test binary a log file is named after: the longest of `binaries` its file name
/// starts with (`gpu_e2e_real.log` → gpu_e2e), if any.
fn log_owner<'b>(file: &Path, binaries: &'b [String]) -> Option<&'b str> {
    let name = file.file_name()?.to_str()?;
    binaries
        .iter()
        .filter(|b| name.starts_with(b.as_str()))
        .max_by_key(|b| b.len())
        .map(String::as_str)
}

/// The integration test binaries (tests/*.rs of the source checkout, when it is there) and
/// the binaries the contracts name.
fn test_binaries(all: &[contracts::Contract]) -> Vec<String> {
    let mut b: Vec<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "rs"))
                .filter_map(|p| p.file_stem()?.to_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for c in all {
        for t in &c.tests {
            if let Some((bin, _)) = t.rsplit_once("::") {
                b.push(bin.to_string());
            }
        }
    }
    b.sort();
    b.dedup();
    b
}

/// Whether a later log's status `new` replaces the status recorded so far: any result
/// replaces a skip or nothing, and a later result an earlier one, but a skip is no result
/// and never replaces one (a device run without the model file does not undo the run that
/// had it).
fn replaces(prev: Option<&str>, new: &str) -> bool {
    new != "skipped" || matches!(prev, None | Some("skipped"))
}

pub fn run(a: Args) -> Result<i32> {
    let all = contracts::all()?;
    let sp = status_path(&a);
    if !a.record.is_empty() {
        let sp = sp.ok_or_else(|| {
            Error::invalid(
                "--record: no evidence/contracts-status.json to write here (this binary is away from its source checkout); give --status FILE",
            )
        })?;
        let mut tests = Map::new();
        let mut sources = Vec::new();
        let binaries = test_binaries(&all);
        for log in &a.record {
            let text = std::fs::read_to_string(log).map_err(|e| Error::io(log, e))?;
            sources.push(log.display().to_string());
            for c in &all {
                for t in &c.tests {
                    let Some(s) = scan(&text, t, log_owner(log, &binaries)) else {
                        continue;
                    };
                    let prev = tests.get(t).and_then(|v| v["status"].as_str());
                    if replaces(prev, s) {
                        tests.insert(
                            t.clone(),
                            json!({"status": s, "log": log.display().to_string()}),
                        );
                    }
                }
            }
        }
        let commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let v = json!({"recorded_unix": secs, "commit": commit, "logs": sources, "tests": tests});
        std::fs::write(&sp, serde_json::to_string_pretty(&v).expect("json") + "\n")
            .map_err(|e| Error::io(&sp, e))?;
        eprintln!(
            "graphrun: recorded {} test results into {}",
            v["tests"].as_object().map_or(0, |m| m.len()),
            sp.display()
        );
        return Ok(0);
    }
    let (status_text, status_from) = match &sp {
        Some(p) => (
            std::fs::read_to_string(p).unwrap_or_default(),
            p.display().to_string(),
        ),
        None => (
            contracts::builtin_status().to_string(),
            "the copy built into this binary".to_string(),
        ),
    };
    let status: Value = serde_json::from_str(&status_text).unwrap_or(Value::Null);
    let st = |t: &str| -> (String, String) {
        let e = &status["tests"][t];
        (
            e["status"].as_str().unwrap_or("not recorded").to_string(),
            e["log"].as_str().unwrap_or("").to_string(),
        )
    };
    if a.json {
        let list: Vec<Value> = all
            .iter()
            .map(|c| {
                json!({
                    "contract": c.name, "file": c.source,
                    "invariant": c.invariant, "bands": c.bands_json(),
                    "tests": c.tests.iter().map(|t| {
                        let (s, log) = st(t);
                        json!({"test": t, "status": s, "log": log})
                    }).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"status_file": status_from,
                "commit": status["commit"], "recorded_unix": status["recorded_unix"], "contracts": list}))
            .expect("json")
        );
        return Ok(0);
    }
    match status["commit"].as_str() {
        Some(c) => println!(
            "status from {status_from} (recorded at commit {c}, logs: {})\n",
            status["logs"]
                .as_array()
                .map(|l| l
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        ),
        None => println!("no recorded status in {status_from} (see --help for --record)\n"),
    }
    for c in &all {
        let first = c.invariant.split(". ").next().unwrap_or(&c.invariant);
        println!("{}  ({})", c.name, c.source);
        println!("  {}", first.trim_end_matches('.'));
        let bands: Vec<String> = c
            .leaf_keys()
            .iter()
            .map(|k| format!("{k}={}", c.band(k).unwrap_or(f64::NAN)))
            .collect();
        println!("  bands: {}", bands.join("; "));
        for t in &c.tests {
            let (s, log) = st(t);
            println!(
                "  {:<12} {t}{}",
                s,
                if log.is_empty() {
                    String::new()
                } else {
                    format!("  [{log}]")
                }
            );
        }
        println!();
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::{log_owner, replaces, scan};
    use std::path::Path;

    const ID: &str = "gpu_e2e::real_05b_greedy_tokens_match_the_interpreter";

    #[test]
    fn a_libtest_log_counts_only_for_the_binary_it_is_named_after() {
        let log = "running 1 test\ntest real_05b_greedy_tokens_match_the_interpreter ... SKIP: no model\nok\n";
        assert_eq!(scan(log, ID, Some("gpu_e2e")), Some("skipped"));
        let ran = "test real_05b_greedy_tokens_match_the_interpreter ... tokens equal\nok\n";
        assert_eq!(scan(ran, ID, Some("gpu_e2e")), Some("pass"));
        assert_eq!(scan(log, ID, Some("gpu_persistent")), None);
        let failed = "test real_05b_greedy_tokens_match_the_interpreter ... FAILED\n";
        assert_eq!(scan(failed, ID, None), Some("fail"));
    }

    #[test]
    fn a_log_belongs_to_the_longest_binary_name_it_starts_with() {
        let b: Vec<String> = ["gpu_e2e", "gpu_persistent", "serve"]
            .map(String::from)
            .to_vec();
        let owner = |f: &str| log_owner(Path::new(f), &b);
        assert_eq!(owner("out/gpu_e2e_real.log"), Some("gpu_e2e"));
        assert_eq!(
            owner("gpu_persistent_before_test_fix.log"),
            Some("gpu_persistent")
        );
        assert_eq!(owner("gpu.log"), None);
        assert_eq!(owner("test-run-cpu.log"), None);
    }

    #[test]
    fn a_nextest_line_counts_only_for_the_binary_it_names() {
        let other = "PASS [   0.1s] (1/2) graphrun::gpu_persistent real_05b_greedy_tokens_match_the_interpreter\n";
        assert_eq!(scan(other, ID, None), None);
        let mine = "PASS [   0.1s] (2/2) graphrun::gpu_e2e real_05b_greedy_tokens_match_the_interpreter\nSKIP: no GPU\n";
        assert_eq!(scan(mine, ID, None), Some("skipped"));
        let fail =
            "FAIL [   0.1s] (2/2) graphrun::gpu_e2e real_05b_greedy_tokens_match_the_interpreter\n";
        assert_eq!(scan(fail, ID, None), Some("fail"));
    }

    #[test]
    fn a_skip_never_replaces_a_result() {
        assert!(replaces(None, "skipped"));
        assert!(replaces(Some("skipped"), "pass"));
        assert!(replaces(Some("pass"), "fail"));
        assert!(replaces(Some("fail"), "pass"));
        assert!(!replaces(Some("pass"), "skipped"));
        assert!(!replaces(Some("fail"), "skipped"));
    }
}
