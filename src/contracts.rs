//! Contracts: machine-readable invariants with tolerance bands (`contracts/*.yaml`), read by
//! the tests that check them and listed by `graphrun contracts`.
//!
//! A contract file holds `contract` (its name), `invariant` (prose), `tests` (the
//! `file::function` names of the tests that check it) and `bands` (named numbers). The YAML
//! accepted is the small subset these files use: nested mappings by indentation, `- ` lists,
//! plain/quoted scalars, `>`/`|` block scalars and `#` comments.

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Contract {
    pub name: String,
    pub invariant: String,
    pub tests: Vec<String>,
    pub bands: Map<String, Value>,
    pub path: PathBuf,
}

impl Contract {
    /// A band that must exist (a missing key is an error naming the contract and the key).
    pub fn band(&self, key: &str) -> Result<f64> {
        self.bands.get(key).and_then(Value::as_f64).ok_or_else(|| {
            Error::invalid(format!(
                "contract `{}` ({}) has no numeric band `{key}`",
                self.name,
                self.path.display()
            ))
        })
    }

    /// A nested band table (e.g. per-op bands): `bands.<key>` as a map.
    pub fn table(&self, key: &str) -> Result<&Map<String, Value>> {
        self.bands
            .get(key)
            .and_then(Value::as_object)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "contract `{}` ({}) has no band table `{key}`",
                    self.name,
                    self.path.display()
                ))
            })
    }
}

/// The repository's `contracts/` folder: `GRAPHRUN_CONTRACTS` when set, else the source
/// tree's (when it still exists), else `./contracts` (a binary copied next to a checkout).
pub fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os("GRAPHRUN_CONTRACTS") {
        return PathBuf::from(d);
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts");
    if src.is_dir() {
        src
    } else {
        PathBuf::from("contracts")
    }
}

pub fn load_file(path: &Path) -> Result<Contract> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let v = yaml::parse(&text).map_err(|e| Error::invalid(format!("{}: {e}", path.display())))?;
    let field = |k: &str| {
        v.get(k)
            .ok_or_else(|| Error::invalid(format!("{}: missing `{k}`", path.display())))
    };
    Ok(Contract {
        name: field("contract")?.as_str().unwrap_or_default().to_string(),
        invariant: field("invariant")?
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_string(),
        tests: field("tests")?
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        bands: field("bands")?.as_object().cloned().unwrap_or_default(),
        path: path.to_path_buf(),
    })
}

/// Loads `contracts/<name>.yaml`.
pub fn load(name: &str) -> Result<Contract> {
    load_file(&dir().join(format!("{name}.yaml")))
}

/// All contracts, sorted by file name.
pub fn all() -> Result<Vec<Contract>> {
    let d = dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
        .map_err(|e| Error::io(&d, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files.iter().map(|p| load_file(p)).collect()
}

pub mod yaml {
    //! The YAML subset parser (see the module docs above).
    use serde_json::{Map, Value};

    struct Line<'a> {
        indent: usize,
        text: &'a str,
        no: usize,
    }

    pub fn parse(text: &str) -> Result<Value, String> {
        let lines: Vec<Line> = text
            .lines()
            .enumerate()
            .filter_map(|(no, l)| {
                let body = strip_comment(l);
                let t = body.trim_end();
                (!t.trim().is_empty()).then(|| Line {
                    indent: t.len() - t.trim_start().len(),
                    text: t.trim_start(),
                    no: no + 1,
                })
            })
            .collect();
        let mut i = 0;
        let v = block(&lines, &mut i, 0)?;
        if i < lines.len() {
            return Err(format!("line {}: unexpected indentation", lines[i].no));
        }
        Ok(v)
    }

    fn strip_comment(l: &str) -> &str {
        let mut in_q: Option<char> = None;
        for (i, c) in l.char_indices() {
            match (c, in_q) {
                ('"' | '\'', None) => in_q = Some(c),
                (q, Some(o)) if q == o => in_q = None,
                ('#', None) if i == 0 || l[..i].ends_with(' ') => return &l[..i],
                _ => {}
            }
        }
        l
    }

    fn block(lines: &[Line], i: &mut usize, indent: usize) -> Result<Value, String> {
        if *i >= lines.len() {
            return Ok(Value::Null);
        }
        if lines[*i].text.starts_with("- ") || lines[*i].text == "-" {
            let mut out = Vec::new();
            while *i < lines.len() && lines[*i].indent == indent && lines[*i].text.starts_with('-')
            {
                let item = lines[*i].text[1..].trim_start();
                if item.is_empty() {
                    *i += 1;
                    let ind = lines.get(*i).map_or(indent + 2, |l| l.indent);
                    out.push(block(lines, i, ind)?);
                } else if item.contains(": ") || item.ends_with(':') {
                    return Err(format!(
                        "line {}: mappings inside lists are not supported",
                        lines[*i].no
                    ));
                } else {
                    out.push(scalar(item));
                    *i += 1;
                }
            }
            return Ok(Value::Array(out));
        }
        let mut map = Map::new();
        while *i < lines.len() && lines[*i].indent == indent {
            let l = &lines[*i];
            let (k, rest) = l
                .text
                .split_once(':')
                .ok_or_else(|| format!("line {}: expected `key: value`", l.no))?;
            let key = unquote(k.trim());
            let rest = rest.trim();
            *i += 1;
            let v = if rest == ">" || rest == "|" {
                let mut parts = Vec::new();
                while *i < lines.len() && lines[*i].indent > indent {
                    parts.push(lines[*i].text);
                    *i += 1;
                }
                Value::String(parts.join(if rest == ">" { " " } else { "\n" }))
            } else if rest.is_empty() {
                match lines.get(*i) {
                    Some(n)
                        if n.indent > indent
                            || (n.indent == indent && n.text.starts_with("- ")) =>
                    {
                        let ind = n.indent;
                        block(lines, i, ind)?
                    }
                    _ => Value::Null,
                }
            } else if rest.starts_with('[') {
                let inner = rest.trim_start_matches('[').trim_end_matches(']');
                Value::Array(
                    inner
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(scalar)
                        .collect(),
                )
            } else {
                scalar(rest)
            };
            map.insert(key, v);
        }
        Ok(Value::Object(map))
    }

    fn unquote(s: &str) -> String {
        let b = s.as_bytes();
        if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
            s[1..s.len() - 1].to_string()
        } else {
            s.to_string()
        }
    }

    fn scalar(s: &str) -> Value {
        let s = s.trim();
        if s.starts_with('"') || s.starts_with('\'') {
            return Value::String(unquote(s));
        }
        match s {
            "true" => return Value::Bool(true),
            "false" => return Value::Bool(false),
            "null" | "~" => return Value::Null,
            _ => {}
        }
        if let Ok(i) = s.parse::<i64>() {
            return Value::from(i);
        }
        if let Ok(f) = s.parse::<f64>() {
            return Value::from(f);
        }
        Value::String(s.to_string())
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn parses_the_contract_subset() {
            let v = super::parse(
                "contract: x  # name\ninvariant: >\n  two\n  lines\ntests:\n  - a::b\n  - c::d\nbands:\n  top: 1.5\n  per_op:\n    matmul: 1e-10\n    'rms_norm': 2\n  list: [1, 2]\n",
            )
            .unwrap();
            assert_eq!(v["contract"], "x");
            assert_eq!(v["invariant"], "two lines");
            assert_eq!(v["tests"][1], "c::d");
            assert_eq!(v["bands"]["per_op"]["matmul"].as_f64(), Some(1e-10));
            assert_eq!(v["bands"]["per_op"]["rms_norm"], 2);
            assert_eq!(v["bands"]["list"][1], 2);
        }
    }
}
