//! Replays, on stable, every input of the sidecar's fuzz corpora (`fuzz/corpus/<target>/`,
//! kept minimized with `cargo fuzz cmin`) and every input that ever crashed one of
//! its targets (`fuzz/regressions/<target>/`) through the same code as the targets
//! (`fairgate_sidecar::fuzz`): none may panic or break an invariant. The core's
//! targets are replayed by the core's own `tests/fuzz_corpus.rs`.

use std::path::PathBuf;

type Target = fn(&[u8]) -> Result<(), String>;

const TARGETS: [(&str, Target); 3] = [
    ("sidecar_config", fairgate_sidecar::fuzz::config),
    ("promtext", fairgate_sidecar::fuzz::promtext),
    ("fleet_poll", fairgate_sidecar::fuzz::fleet_poll),
];

/// The files of `fuzz/<dir>/<target>/`, read.
fn inputs(dir: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(dir)
        .join(target);
    std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let bytes = std::fs::read(&path).ok()?;
            Some((path, bytes))
        })
        .collect()
}

#[test]
fn every_sidecar_corpus_and_regression_input_passes_its_target() {
    let mut replayed = 0;
    for (name, target) in TARGETS {
        let corpus = inputs("corpus", name);
        assert!(!corpus.is_empty(), "fuzz/corpus/{name} is empty or missing");
        let regressions = inputs("regressions", name);
        for (path, bytes) in corpus.iter().chain(&regressions) {
            if let Err(broken) = target(bytes) {
                panic!("{}: {broken}", path.display());
            }
            replayed += 1;
        }
    }
    eprintln!("{replayed} sidecar fuzz inputs replayed");
}
