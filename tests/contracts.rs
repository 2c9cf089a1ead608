//! Contracts are executable data: every test a contract names exists, and every contract
//! file parses with the required fields.

mod common;

#[test]
fn every_contract_names_existing_tests() {
    let all = graphrun::contracts::all().unwrap();
    assert!(!all.is_empty());
    for c in all {
        assert!(
            !c.name.is_empty() && !c.invariant.is_empty(),
            "{}: empty name or invariant",
            c.path.display()
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
