//! `graphrun diff A B`: compare two traces node by node under a contract (src/diff).
//! `graphrun diff --live [MODEL] -p P --a SPEC --b SPEC`: run two executors side by side and
//! compare every node as it is produced (src/diff/live.rs).

use super::common::{self, ExecArgs};
use graphrun::diff::live::{self, LiveOptions, LiveSide};
use graphrun::diff::{Side, Trace, diff, html};
use graphrun::graph::Graph;
use graphrun::model::{FileFormat, ModelFile};
use graphrun::trace::check_trace_dir;
use graphrun::{Error, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(after_help = "B is the reference (NMSE = sum((a-b)^2) / sum(b^2)).
Contract chosen when --contract is not given: different activation semantics -> \
trace_cross_semantics; two interpreter traces -> trace_exact; otherwise (GPU vs interpreter, \
fused vs unfused) -> trace_same_semantics. `graphrun contracts` lists them.

--live runs both sides in one process on the same tokens: the prompt, then -n decode steps, \
each side fed A's greedy token (teacher forcing). Every node output of B is compared with A's \
as it is produced; the run stops after the first step with an out-of-band record and writes \
that step (or the last one) as two traces, DIR/a and DIR/b, for `graphrun diff` and --html.
A SPEC is an executor and its options, quoted as one argument: \
`interp` (default) or `gpu`, optionally a model file (default: MODEL), and the executor \
options of `graphrun run`: `--act q8|f32`, `--kv f16|f32`, `--no-fuse` (gpu), `--device N`, \
`--decode-kernel`, `--inject NODE:KIND` (repeatable); the context is sized by the run and \
--threads is given once, outside the SPECs. Examples:
  graphrun diff --live MODEL -p 'def fib(n):' --a 'interp --act f32' --b 'interp --act q8' -n 200
  graphrun diff --live MODEL -p 'def fib(n):' --a 'gpu --act f32' --b 'interp --act f32'
  graphrun diff --live MODEL -p 'def fib(n):' --a 'interp model.apr' --b interp -n 1000

Exit status: 0 every record within band, 1 some record out of band (the last line then reads \
`first divergence: NODE ...`), 2 error.")]
pub struct Args {
    /// Trace directory (or its trace.jsonl) under test; with --live, the model file (default:
    /// the cached 0.5B).
    #[arg(value_name = "A", required_unless_present = "live")]
    a: Option<PathBuf>,
    /// Reference trace directory (or its trace.jsonl).
    #[arg(
        value_name = "B",
        required_unless_present = "live",
        conflicts_with = "live"
    )]
    b: Option<PathBuf>,
    /// Contract whose bands judge the records: a name (`trace_exact`,
    /// `trace_same_semantics`, `trace_cross_semantics`) or a YAML file.
    #[arg(long, value_name = "NAME|FILE")]
    contract: Option<String>,
    /// Print the whole report as JSON (every record's metrics) instead of text.
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML report (per-layer heat map, first divergence; with
    /// --live also the logit NMSE of every step).
    #[arg(long, value_name = "OUT.html")]
    html: Option<PathBuf>,
    /// Run two executors side by side (--a, --b) instead of comparing two traces.
    #[arg(long, requires_all = ["prompt", "spec_a", "spec_b"])]
    live: bool,
    /// --live: the prompt text.
    #[arg(long, short, requires = "live")]
    prompt: Option<String>,
    /// --live: wrap the prompt in the model's chat template (as `run --chat`).
    #[arg(long, requires = "live")]
    chat: bool,
    /// --live: tokenizer for a model file that carries none (a Hugging Face tokenizer.json,
    /// or a GGUF/APR file of the same model); the prompt is tokenized once for both sides.
    #[arg(long, value_name = "FILE", requires = "live")]
    tokenizer: Option<PathBuf>,
    /// --live: the side under test, e.g. 'gpu --act f32' (see below).
    #[arg(long = "a", value_name = "SPEC", requires = "live")]
    spec_a: Option<String>,
    /// --live: the reference side, e.g. 'interp --act f32'.
    #[arg(long = "b", value_name = "SPEC", requires = "live")]
    spec_b: Option<String>,
    /// --live: decode steps after the prompt.
    #[arg(short = 'n', long = "steps", default_value_t = 200, value_name = "N")]
    steps: usize,
    /// --live: directory for the traces of the last compared step (default: graphrun-live
    /// in the temporary directory).
    #[arg(long, short = 'o', value_name = "DIR", requires = "live")]
    out: Option<PathBuf>,
    /// --live: CPU threads for the interpreter (default: all cores).
    #[arg(long, requires = "live")]
    threads: Option<usize>,
}

pub fn run(a: Args) -> Result<i32> {
    if a.live {
        return run_live(a);
    }
    let (pa, pb) = (a.a.as_ref(), a.b.as_ref());
    let (Some(pa), Some(pb)) = (pa, pb) else {
        return Err(Error::invalid("diff needs two traces A and B (or --live)"));
    };
    let ta = Trace::open(pa)?;
    let tb = Trace::open(pb)?;
    let report = diff(&ta, &tb, a.contract.as_deref())?;
    if let Some(p) = &a.html {
        std::fs::write(p, html::render(&report)).map_err(|e| Error::io(p, e))?;
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

// ----- --live ---------------------------------------------------------------------------

/// One SPEC of `--a` / `--b`, parsed with clap from the spec string: the executor options
/// every model-running command takes (`ExecArgs`), plus the executor and model as words.
#[derive(clap::Parser, Debug)]
#[command(
    name = "SPEC",
    no_binary_name = true,
    disable_help_flag = true,
    disable_version_flag = true
)]
struct SpecArgs {
    /// `interp` or `gpu`, and/or a GGUF or APR model file.
    #[arg(value_name = "EXECUTOR|MODEL")]
    words: Vec<String>,
    #[command(flatten)]
    exec: ExecArgs,
}

/// A parsed SPEC: which executor, which model file, and the executor options.
#[derive(Debug)]
struct Spec {
    text: String,
    gpu: bool,
    model: Option<PathBuf>,
    exec: ExecArgs,
}

/// Splits a SPEC like a shell would for plain words: whitespace separates, '...' and "..."
/// group (for paths with spaces).
fn split_words(s: &str) -> std::result::Result<Vec<String>, String> {
    let (mut out, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in s.chars() {
        match (quote, c) {
            (None, '\'' | '"') => (quote, any) = (Some(c), true),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("unterminated {q} quote"));
    }
    if any {
        out.push(cur);
    }
    Ok(out)
}

fn parse_spec(flag: &str, text: &str) -> Result<Spec> {
    let bad = |msg: String| Error::invalid(format!("{flag} `{text}`: {msg}"));
    let words = split_words(text).map_err(bad)?;
    let p = <SpecArgs as clap::Parser>::try_parse_from(&words).map_err(|e| {
        let msg = e.render().to_string();
        let first = msg.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        bad(format!(
            "{} (a SPEC takes interp|gpu, a model file, and the executor options of `graphrun run`: --act q8|f32, --kv f16|f32, --no-fuse, --device N, --inject NODE:KIND, ...)",
            first.trim_start_matches("error: ")
        ))
    })?;
    let (mut executor, mut model): (Option<&str>, Option<PathBuf>) = (None, None);
    for w in &p.words {
        let is_exec = matches!(w.as_str(), "interp" | "gpu");
        if is_exec && executor.is_some() {
            return Err(bad(format!(
                "two executors (`{}` and `{w}`)",
                executor.unwrap_or_default()
            )));
        }
        if is_exec {
            executor = Some(w);
        } else if model.is_some() {
            return Err(bad(format!(
                "`{w}` is not an executor (interp, gpu) and a model file was already given"
            )));
        } else if !Path::new(w).is_file() {
            return Err(bad(format!(
                "`{w}` is neither an executor (interp, gpu) nor an existing model file"
            )));
        } else {
            model = Some(PathBuf::from(w));
        }
    }
    let gpu = executor == Some("gpu");
    let mut exec = p.exec;
    if gpu && exec.interp {
        return Err(bad("two executors (`gpu` and `--interp`)".into()));
    }
    if !gpu && exec.no_fuse {
        return Err(bad("--no-fuse applies to the gpu executor".into()));
    }
    if exec.threads.is_some() {
        return Err(bad(
            "--threads is an option of `diff --live` itself (both sides share the CPU threads)"
                .into(),
        ));
    }
    // The context is sized by the run (prompt + -n), whatever --ctx says.
    exec.interp = !gpu;
    Ok(Spec {
        text: text.to_string(),
        gpu,
        model,
        exec,
    })
}

/// The first difference between two lowered graphs (node names and widths), if any.
fn graph_mismatch(a: &Graph, b: &Graph) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("{} nodes vs {}", a.len(), b.len()));
    }
    a.nodes().zip(b.nodes()).find_map(|((i, x), (_, y))| {
        (x.name != y.name || x.width != y.width).then(|| {
            format!(
                "node {} is `{}` (width {}) vs `{}` (width {})",
                i.0, x.name, x.width, y.name, y.width
            )
        })
    })
}

fn run_live(a: Args) -> Result<i32> {
    let specs = [
        parse_spec("--a", a.spec_a.as_deref().unwrap_or_default())?,
        parse_spec("--b", a.spec_b.as_deref().unwrap_or_default())?,
    ];
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("graphrun-live"));
    for d in [out.clone(), out.join("a"), out.join("b")] {
        check_trace_dir(&d)?;
    }
    let default_model = common::model_path(a.a.clone())?;
    let models: Vec<ModelFile> = specs
        .iter()
        .map(|s| ModelFile::open(s.model.clone().unwrap_or_else(|| default_model.clone())))
        .collect::<Result<_>>()?;
    // One prompt for both sides: tokenized with A's model (or --tokenizer); a B model that
    // carries its own tokenizer must agree.
    let prompt_text = a.prompt.as_deref().unwrap_or_default();
    let ids = |m: &ModelFile, file: Option<&Path>| -> Result<Vec<u32>> {
        let tk = common::tokenizer(m, file)?;
        let template = match a.chat {
            true => Some(common::chat_template(m, file)?),
            false => None,
        };
        common::prompt_ids(&tk, prompt_text, template.as_ref(), None)
    };
    let prompt = ids(&models[0], a.tokenizer.as_deref())?;
    if prompt.is_empty() {
        return Err(Error::invalid(
            "--prompt tokenizes to nothing; give a non-empty prompt",
        ));
    }
    if a.tokenizer.is_none()
        && !models[1].tokenizer.tokens.is_empty()
        && ids(&models[1], None)? != prompt
    {
        return Err(Error::invalid(format!(
            "{} and {} tokenize the prompt differently: not the same model",
            models[0].path, models[1].path
        )));
    }
    let mut graphs = Vec::new();
    for (s, m) in specs.iter().zip(&models) {
        let flag = if graphs.is_empty() { "--a" } else { "--b" };
        graphs.push(
            common::lowered(m, &s.exec)
                .map_err(|e| Error::invalid(format!("{flag} `{}`: {e}", s.text)))?,
        );
    }
    if let Some(why) = graph_mismatch(&graphs[0], &graphs[1]) {
        return Err(Error::invalid(format!(
            "--a and --b run different graphs ({} vs {}): {why}",
            models[0].path, models[1].path
        )));
    }
    let need = prompt.len() + a.steps;
    common::set_threads(a.threads)?;
    let mut sides = Vec::new();
    for ((s, m), g) in specs.iter().zip(&models).zip(graphs) {
        let flag = if sides.is_empty() { "--a" } else { "--b" };
        let mut exec = s.exec.clone();
        exec.ctx = need + 1;
        let mut meta = super::trace::meta_for(m, &g, &exec, &prompt);
        let engine = common::engine_for(m, &exec, g, 1, s.gpu)
            .map_err(|e| Error::invalid(format!("{flag} `{}`: {e}", s.text)))?;
        if need > engine.n_ctx() {
            return Err(Error::invalid(format!(
                "prompt ({} tokens) + -n {} exceed the context size {} of {}",
                prompt.len(),
                a.steps,
                engine.n_ctx(),
                m.path
            )));
        }
        super::trace::set_executor(&mut meta, engine.executor(), &exec);
        let side = Side {
            path: s.text.clone(),
            executor: meta.executor,
            act: meta.act,
            kv: meta.kv,
            format: match m.format {
                FileFormat::Gguf { .. } => "gguf",
                FileFormat::Apr { .. } => "apr",
            }
            .to_string(),
            fused: meta.fused,
            synthetic: meta.synthetic,
            faults: meta.faults.clone(),
            model: m.path.clone(),
        };
        sides.push(LiveSide { engine, side, meta });
    }
    let mut it = sides.into_iter();
    let (Some(mut sa), Some(mut sb)) = (it.next(), it.next()) else {
        unreachable!("two specs give two sides")
    };
    let opts = LiveOptions {
        steps: a.steps,
        contract: a.contract.clone(),
        out,
        progress: true,
    };
    let report = live::run(&mut sa, &mut sb, &prompt, &opts)?;
    if let Some(p) = &a.html {
        std::fs::write(p, html::render_live(&report)).map_err(|e| Error::io(p, e))?;
        eprintln!("graphrun: HTML report written to {}", p.display());
    }
    if a.json {
        let mut v = serde_json::to_value(&report).expect("report serializes");
        v["exit_status"] = report.exit_code().into();
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("report serializes")
        );
    } else {
        print!("{}", report.text());
    }
    Ok(report.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;
    use graphrun::graph::{ActSemantics, KvType};

    #[test]
    fn spec_words_split_like_a_shell() {
        assert_eq!(
            split_words("  gpu --act f32 '/a b/m.apr' ").unwrap(),
            vec!["gpu", "--act", "f32", "/a b/m.apr"]
        );
        assert_eq!(split_words("x\"\"").unwrap(), vec!["x"]);
        assert!(split_words("gpu 'x").is_err());
    }

    #[test]
    fn specs_parse_with_clap_and_bad_ones_name_the_flag() {
        let s = parse_spec(
            "--a",
            "gpu --no-fuse --act f32 --inject blk.0.ffn_up:scale=2",
        )
        .unwrap();
        assert!(s.gpu && s.exec.no_fuse && !s.exec.interp);
        assert_eq!(s.exec.act, ActSemantics::F32);
        assert_eq!(s.exec.inject.len(), 1);
        let s = parse_spec("--b", "").unwrap();
        assert!(!s.gpu && s.exec.interp && s.model.is_none());
        assert_eq!((s.exec.act, s.exec.kv), (ActSemantics::Q8, KvType::F16));
        let s = parse_spec("--b", "interp --kv f32").unwrap();
        assert_eq!(s.exec.kv, KvType::F32);
        for (bad, want) in [
            ("interp --no-fuse", "--no-fuse applies to the gpu"),
            ("interp gpu", "two executors"),
            ("interp --act f16", "--act"),
            (
                "interp --threads 2",
                "--threads is an option of `diff --live`",
            ),
            ("gpu --interp", "two executors"),
            ("interp --frobnicate", "--frobnicate"),
            ("interp --inject nonsense", "NODE:KIND"),
            ("interp /no/such/model.gguf", "neither an executor"),
        ] {
            let e = parse_spec("--b", bad).unwrap_err().to_string();
            assert!(e.contains("--b `") && e.contains(want), "{bad}: {e}");
        }
    }
}
