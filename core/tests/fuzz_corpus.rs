//! Replays, on stable, every input of the fuzz corpora (`fuzz/corpus/<target>/`, kept
//! minimized with `cargo fuzz cmin`) and every input that ever crashed a target
//! (`fuzz/regressions/<target>/`) through the same code as the fuzz targets
//! (`fairgate_core::fuzz`): none may panic or break an invariant.

use std::path::PathBuf;

type Target = fn(&[u8]) -> Result<(), String>;

const TARGETS: [(&str, Target); 9] = [
    ("config", fairgate_core::fuzz::config),
    ("token", fairgate_core::fuzz::token),
    ("policy_claim", fairgate_core::fuzz::policy_claim),
    ("jwks", fairgate_core::fuzz::jwks),
    ("llm_body", fairgate_core::fuzz::llm_body),
    ("sse", fairgate_core::fuzz::sse),
    ("headroom", fairgate_core::fuzz::headroom),
    ("pool_state", fairgate_core::fuzz::pool_state),
    ("fleet_answer", fairgate_core::fuzz::fleet_answer),
];

fn inputs(dir: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(dir)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter_map(|p| std::fs::read(&p).ok().map(|bytes| (p, bytes)))
        .collect()
}

#[test]
fn every_corpus_and_regression_input_passes_its_target() {
    let mut replayed = 0;
    for (name, target) in TARGETS {
        let corpus = inputs("corpus", name);
        assert!(!corpus.is_empty(), "fuzz/corpus/{name} is empty or missing");
        for (path, bytes) in corpus.into_iter().chain(inputs("regressions", name)) {
            if let Err(broken) = target(&bytes) {
                panic!("{}: {broken}", path.display());
            }
            replayed += 1;
        }
    }
    eprintln!("{replayed} fuzz inputs replayed");
}
