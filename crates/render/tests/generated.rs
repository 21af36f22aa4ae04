//! The files `render` generates for the edge-case fleets in `tests/cases/` and for the repo's own
//! `fleet.toml`: pinned as insta snapshots (top-level `snapshots/render__<case>.snap`), accepted by
//! `nix-instantiate --parse`, stable under nixpkgs-fmt, and evaluated with real Nix, the evaluated
//! option values pinned as reviewed snapshots too.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use support::Case;

fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings
}

/// Every generated file of a case, each after a `==> path <==` line.
fn snapshot_text(case: &Case) -> String {
    let mut out = String::new();
    for (path, text) in &case.output.files {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("==> {} <==\n", path.display()));
        out.push_str(text);
    }
    out
}

/// The generated Nix files of a case (`known_hosts` is the one that is not Nix).
fn nix_files(case: &Case) -> impl Iterator<Item = (&PathBuf, &String)> {
    case.output
        .files
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "nix"))
}

#[test]
fn every_case_is_snapshotted() {
    let cases = support::cases();
    assert!(cases.len() >= 12, "the cases folder went missing");
    settings().bind(|| {
        for case in &cases {
            insta::assert_snapshot!(format!("render__{}", case.name), snapshot_text(case));
        }
    });
}

#[test]
fn every_case_renders_a_module_per_host_and_the_index() {
    for case in support::cases() {
        let mut want: BTreeSet<PathBuf> = case
            .fleet
            .hosts
            .keys()
            .map(|h| PathBuf::from(h.as_str()).join("default.nix"))
            .collect();
        want.insert(PathBuf::from("default.nix"));
        if case.fleet.hosts.values().any(|h| h.host_key.is_some()) {
            want.insert(PathBuf::from("known_hosts"));
        }
        let got: BTreeSet<PathBuf> = case.output.files.keys().cloned().collect();
        assert_eq!(got, want, "case {}: the set of generated files", case.name);
        for (path, text) in &case.output.files {
            assert_eq!(
                render::provenance(text),
                render::Provenance::Generated,
                "case {}: {} must carry a valid header",
                case.name,
                path.display()
            );
            assert!(
                text.starts_with(&format!("{}fleet.toml. ", render::MARKER)),
                "case {}: {} header must name the source",
                case.name,
                path.display()
            );
        }
    }
}

#[test]
fn rendering_is_deterministic() {
    for case in support::cases() {
        let again = render::render(&case.fleet, "fleet.toml").expect("renders");
        assert_eq!(
            again, case.output,
            "case {}: same model, same bytes",
            case.name
        );
    }
}

#[test]
fn every_file_is_a_fixed_point_of_nixpkgs_fmt() {
    for case in support::cases() {
        for (path, text) in nix_files(&case) {
            let formatted = nixgen::format(text);
            assert!(
                formatted == *text,
                "case {}: {} changes under nixpkgs-fmt:\n{}",
                case.name,
                path.display(),
                similar::TextDiff::from_lines(text.as_str(), formatted.as_str())
                    .unified_diff()
                    .header("rendered", "formatted")
            );
        }
    }
}

#[test]
fn every_file_parses_with_nix() {
    let Some(nix) = support::nix() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut files = Vec::new();
    for case in support::cases() {
        let root = dir.path().join(&case.name);
        support::write_tree(&root, &case.output);
        files.extend(nix_files(&case).map(|(p, _)| root.join(p)));
    }
    assert!(
        files.len() > 30,
        "expected every case's files, got {}",
        files.len()
    );
    nix.parse_all(&files);
}

// ---------------------------------------------------------------------------------------------
// Evaluation with real Nix.

/// Top-level options a generated host module may set. A new section must be added here on purpose.
const TOP_LEVEL: &[&str] = &[
    "imports",
    "networking",
    "time",
    "i18n",
    "system",
    "users",
    "programs",
    "security",
    "services",
    "virtualisation",
    "systemd",
    "environment",
    "nix",
    "zramSwap",
    "swapDevices",
    "age",
    "console",
    "boot",
    "fileSystems",
    "nixpkgs",
];

/// Every host module and index of every case, evaluated by real Nix (stub `lib`/`pkgs`, see
/// `support::HARNESS`), pinned as reviewed JSON snapshots (`snapshots/render-eval__<case>.snap`).
/// The expectations are the literal option values in those files, never recomputed from the model:
/// a change in what a host gets shows up as a reviewed diff of option values. The literal,
/// per-rule expectations live in `tests/options.rs`.
#[test]
fn host_modules_and_index_evaluate_as_pinned() {
    let Some(nix) = support::nix() else { return };
    let cases = support::cases();
    let evaluated = support::eval_cases(&nix, &cases);
    settings().bind(|| {
        for case in &cases {
            let got = &evaluated[case.name.as_str()];
            for (host, module) in got["hosts"].as_object().expect("hosts evaluated") {
                for key in module.as_object().expect("a module is a set").keys() {
                    assert!(
                        TOP_LEVEL.contains(&key.as_str()),
                        "{}/{host}: unexpected top-level option `{key}`",
                        case.name
                    );
                }
            }
            let index_hosts: BTreeSet<&str> = got["index"]
                .as_object()
                .expect("index is a set")
                .keys()
                .map(String::as_str)
                .collect();
            let model_hosts: BTreeSet<&str> = case.fleet.hosts.keys().map(|h| h.as_str()).collect();
            assert_eq!(
                index_hosts, model_hosts,
                "{}: the index lists every host",
                case.name
            );
            let pretty = serde_json::to_string_pretty(got).expect("json");
            insta::assert_snapshot!(format!("render-eval__{}", case.name), pretty);
        }
    });
}
