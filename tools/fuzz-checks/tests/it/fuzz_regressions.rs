//! Replays every committed fuzz input through its target's check, on stable Rust and without
//! cargo-fuzz: the seeds (`fuzz/seeds/<target>/`) and the inputs that once failed
//! (`fuzz/regressions/<target>/`, see the README's "Fuzzing").

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use fuzz_checks::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files in `dir`, sorted; none if it does not exist. Dotfiles (`.gitkeep`) are skipped.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("reading a fuzz input directory").path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    files
}

fn replay(kind: &str) -> (usize, Vec<String>) {
    let (mut count, mut failures) = (0, Vec::new());
    for (target, check) in TARGETS {
        for file in inputs(&fuzz_dir().join(kind).join(target)) {
            let data = std::fs::read(&file).expect("reading a fuzz input");
            count += 1;
            if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    (count, failures)
}

#[test]
fn every_seed_passes_its_targets_check() {
    let (count, failures) = replay("seeds");
    assert!(count > 0, "no seeds found under {}", fuzz_dir().display());
    assert!(failures.is_empty(), "failing seeds: {failures:#?}");
}

#[test]
fn every_kept_crash_passes_its_targets_check() {
    let (_, failures) = replay("regressions");
    assert!(
        failures.is_empty(),
        "failing regression inputs: {failures:#?}"
    );
}

#[test]
fn every_fuzz_target_and_input_directory_has_a_check() {
    let known: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    let mut names = Vec::new();
    for dir in ["fuzz_targets", "seeds", "regressions"] {
        for entry in std::fs::read_dir(fuzz_dir().join(dir)).expect("reading fuzz/") {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            if !stem.starts_with('.') {
                names.push(format!("{dir}/{stem}"));
            }
        }
    }
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| !known.contains(&n.split_once('/').unwrap().1))
        .collect();
    assert!(
        unknown.is_empty(),
        "no check in fuzz-checks for {unknown:?}"
    );
    for target in &known {
        assert!(
            names.contains(&format!("fuzz_targets/{target}")),
            "{target} has a check but no fuzz target"
        );
    }
}
