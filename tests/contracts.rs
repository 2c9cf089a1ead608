//! Contracts are executable data: every test a contract names exists, every contract file
//! parses with the required fields and is named after its file, every band is read by the
//! code that judges with it, and the binary carries the contracts wherever it runs.

mod common;

#[test]
fn every_contract_names_existing_tests() {
    let all = graphrun::contracts::all().unwrap();
    assert!(!all.is_empty());
    for c in all {
        assert!(
            !c.name.is_empty() && !c.invariant.is_empty(),
            "{}: empty name or invariant",
            c.source
        );
        assert!(!c.tests.is_empty(), "contract {} names no test", c.name);
        for t in &c.tests {
            let (file, func) = t
                .split_once("::")
                .unwrap_or_else(|| panic!("contract {}: test `{t}` is not file::function", c.name));
            let path = common::repo_path(&format!("tests/{file}.rs"));
            let src = std::fs::read_to_string(&path).unwrap_or_else(|_| {
                panic!("contract {}: {} does not exist", c.name, path.display())
            });
            let decl = format!("fn {func}(");
            let at = src.find(&decl).unwrap_or_else(|| {
                panic!(
                    "contract {}: no test `{func}` in {}",
                    c.name,
                    path.display()
                )
            });
            let before = &src[..at];
            let attr = before
                .rfind("#[test]")
                .unwrap_or_else(|| panic!("contract {}: `{func}` is not a #[test]", c.name));
            assert!(
                !before[attr..].contains("\nfn "),
                "contract {}: `{func}` is not a #[test]",
                c.name
            );
        }
    }
}

#[test]
fn every_contract_is_named_after_its_file() {
    for e in std::fs::read_dir(common::repo_path("contracts")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let c = graphrun::contracts::load_file(&p).unwrap();
            assert_eq!(
                Some(c.name.as_str()),
                p.file_stem().and_then(|s| s.to_str())
            );
        }
    }
}

/// The trace contracts' keys are checked against `graphrun diff`'s lookup (unit test in
/// src/diff/contract.rs); the others are read by name in the tests they list: every key
/// segment must appear there as a string literal.
#[test]
fn every_band_of_the_other_contracts_is_read_by_its_tests() {
    for c in graphrun::contracts::all().unwrap() {
        if c.name.starts_with("trace_") {
            continue;
        }
        let src: String = c
            .tests
            .iter()
            .map(|t| t.split("::").next().unwrap())
            .map(|f| std::fs::read_to_string(common::repo_path(&format!("tests/{f}.rs"))).unwrap())
            .collect();
        for key in c.leaf_keys() {
            for seg in key.split('.') {
                assert!(
                    src.contains(&format!("\"{seg}")) || src.contains(&format!("{seg}\"")),
                    "contract {}: band `{key}` is not read by any of its tests ({})",
                    c.name,
                    c.tests.join(", ")
                );
            }
        }
    }
}

/// A copy of the binary in an empty directory, away from the checkout, still lists the
/// contracts and judges two traces with them (they are built in).
#[test]
fn the_binary_carries_its_contracts_to_any_directory() {
    let d = common::scratch("away");
    let bin = d.join("graphrun");
    std::fs::copy(common::bin(), &bin).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&bin)
            .args(args)
            .current_dir(&d)
            .env_remove("GRAPHRUN_CONTRACTS")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["contracts", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = v["contracts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["contract"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "gpu_parity",
            "reference",
            "trace_cross_semantics",
            "trace_exact",
            "trace_same_semantics"
        ]
    );
    let (code, _, err) = run(&["synth", "--preset", "tiny", "-o", "m.gguf"]);
    assert_eq!(code, 0, "{err}");
    for (dir, act) in [("a", "q8"), ("b", "q8"), ("c", "f32")] {
        let (code, _, err) = run(&[
            "trace", "m.gguf", "-p", "hello", "--interp", "--act", act, "--decode", "2", "-o", dir,
        ]);
        assert_eq!(code, 0, "{err}");
    }
    let (code, out, err) = run(&["diff", "a", "b"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("built-in contracts/trace_exact.toml"), "{out}");
    let (code, out, _) = run(&["diff", "c", "a"]);
    assert!(code == 0 || code == 1);
    assert!(out.contains("trace_cross_semantics"), "{out}");
    let _ = std::fs::remove_dir_all(&d);
}
