//! Contracts: machine-readable invariants with tolerance bands (`contracts/*.toml`), read by
//! the tests that check them, by `graphrun diff` and listed by `graphrun contracts`.
//!
//! A contract file holds `contract` (its name, equal to the file stem), `invariant` (prose),
//! `tests` (the `file::function` names of the tests that check it) and `bands`: numbers, or
//! tables of bands nested by key. The files are embedded in the binary at build time, so
//! `graphrun` works from any directory; `GRAPHRUN_CONTRACTS=DIR` (or a file given to
//! `graphrun diff --contract`) overrides them.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/contracts.rs"));

/// A band: a number, or a table of bands by key.
#[derive(Clone, Debug, PartialEq)]
pub enum Band {
    Value(f64),
    Table(BTreeMap<String, Band>),
}

impl<'de> Deserialize<'de> for Band {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Band, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Band;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number or a table of bands")
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<Band, E> {
                Ok(Band::Value(v))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<Band, E> {
                Ok(Band::Value(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<Band, E> {
                Ok(Band::Value(v as f64))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Band, A::Error> {
                let mut t = BTreeMap::new();
                while let Some((k, v)) = m.next_entry::<String, Band>()? {
                    t.insert(k, v);
                }
                Ok(Band::Table(t))
            }
        }
        d.deserialize_any(V)
    }
}

/// The file layout, checked field by field (unknown fields are errors).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    contract: String,
    invariant: String,
    tests: Vec<String>,
    bands: BTreeMap<String, Band>,
}

#[derive(Clone, Debug)]
pub struct Contract {
    pub name: String,
    pub invariant: String,
    pub tests: Vec<String>,
    pub bands: BTreeMap<String, Band>,
    /// Where it was read: a path, or `built-in contracts/<name>.toml`.
    pub source: String,
}

impl Contract {
    /// Parses contract text; errors name `source`, the line and column, and what was
    /// expected.
    pub fn parse(text: &str, source: &str) -> Result<Contract> {
        let f: File =
            toml::from_str(text).map_err(|e| Error::invalid(format!("contract {source}: {e}")))?;
        Ok(Contract {
            name: f.contract,
            invariant: f.invariant.trim().to_string(),
            tests: f.tests,
            bands: f.bands,
            source: source.to_string(),
        })
    }

    /// The band at a key path (`["nmse", "q8", "matmul"]`), if present.
    pub fn get(&self, path: &[&str]) -> Option<&Band> {
        let (first, rest) = path.split_first()?;
        rest.iter()
            .try_fold(self.bands.get(*first)?, |b, k| match b {
                Band::Table(t) => t.get(*k),
                Band::Value(_) => None,
            })
    }

    /// A numeric band that must exist (an error names the contract and the key).
    pub fn band(&self, key: &str) -> Result<f64> {
        match self.get(&key.split('.').collect::<Vec<_>>()) {
            Some(Band::Value(v)) => Ok(*v),
            _ => Err(Error::invalid(format!(
                "contract `{}` ({}) has no numeric band `{key}`",
                self.name, self.source
            ))),
        }
    }

    /// Every numeric band's key path (`nmse.q8.matmul`), sorted.
    pub fn leaf_keys(&self) -> Vec<String> {
        fn walk(prefix: &str, b: &Band, out: &mut Vec<String>) {
            match b {
                Band::Value(_) => out.push(prefix.to_string()),
                Band::Table(t) => {
                    for (k, v) in t {
                        walk(&format!("{prefix}.{k}"), v, out);
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (k, v) in &self.bands {
            walk(k, v, &mut out);
        }
        out
    }

    /// The bands as JSON (for `--json` outputs).
    pub fn bands_json(&self) -> serde_json::Value {
        fn conv(b: &Band) -> serde_json::Value {
            match b {
                Band::Value(v) => serde_json::json!(v),
                Band::Table(t) => t.iter().map(|(k, v)| (k.clone(), conv(v))).collect(),
            }
        }
        self.bands
            .iter()
            .map(|(k, v)| (k.clone(), conv(v)))
            .collect()
    }
}

/// `GRAPHRUN_CONTRACTS`, when set: a folder whose `*.toml` replace the built-in contracts.
pub fn override_dir() -> Option<PathBuf> {
    std::env::var_os("GRAPHRUN_CONTRACTS").map(PathBuf::from)
}

pub fn load_file(path: &Path) -> Result<Contract> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let c = Contract::parse(&text, &path.display().to_string())?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if c.name != stem {
        return Err(Error::invalid(format!(
            "{}: contract `{}` must be named after its file (`{stem}`)",
            path.display(),
            c.name
        )));
    }
    Ok(c)
}

/// The contract `name`: from `GRAPHRUN_CONTRACTS` when set, else the built-in copy.
pub fn load(name: &str) -> Result<Contract> {
    if let Some(d) = override_dir() {
        return load_file(&d.join(format!("{name}.toml")));
    }
    let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name).ok_or_else(|| {
        Error::invalid(format!(
            "no contract `{name}` (built-in: {})",
            BUILTIN.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
        ))
    })?;
    Contract::parse(text, &format!("built-in contracts/{name}.toml"))
}

/// Every contract, sorted by name.
pub fn all() -> Result<Vec<Contract>> {
    if let Some(d) = override_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
            .map_err(|e| Error::io(&d, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        return files.iter().map(|p| load_file(p)).collect();
    }
    BUILTIN.iter().map(|(n, _)| load(n)).collect()
}

/// The recorded test statuses shown by `graphrun contracts`: the built-in copy of
/// `evidence/contracts-status.json` (as of the build).
pub fn builtin_status() -> &'static str {
    BUILTIN_STATUS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_bands_and_reports_bad_ones_precisely() {
        let c = Contract::parse(
            "contract = \"x\"\ninvariant = \"\"\"\n two\n\"\"\"\ntests = [\"a::b\"]\n[bands]\ntop = 1.5\n[bands.nmse.q8]\nmatmul = 1e-10\ndefault = 2\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.invariant, "two");
        assert_eq!(c.band("top").unwrap(), 1.5);
        assert_eq!(c.band("nmse.q8.matmul").unwrap(), 1e-10);
        assert_eq!(c.band("nmse.q8.default").unwrap(), 2.0);
        assert_eq!(
            c.leaf_keys(),
            ["nmse.q8.default", "nmse.q8.matmul", "top"].map(String::from)
        );
        assert!(c.band("nmse.q8").is_err());
        // A string where a band belongs, and an unknown field: both named with the line.
        let e = Contract::parse(
            "contract = \"x\"\ninvariant = \"\"\ntests = []\n[bands]\ntop = \"wide\"\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("a number or a table of bands") && e.contains("line 5"),
            "{e}"
        );
        let e = Contract::parse(
            "contract = \"x\"\ninvariant = \"\"\ntests = []\nband = 1\n[bands]\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field") && e.contains("band"), "{e}");
    }

    #[test]
    fn every_built_in_contract_parses_and_is_named_after_its_file() {
        let all = all().unwrap();
        assert_eq!(all.len(), BUILTIN.len());
        for (c, (stem, _)) in all.iter().zip(BUILTIN) {
            assert_eq!(c.name, *stem, "{}", c.source);
        }
    }
}
