//! `render::tree`: bringing an output directory in line with the rendered files without losing
//! anyone's work, and the drift test for the repo's committed `hosts/`.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use render::Output;
use render::tree::{Action, ConflictKind, Error, plan};

/// A small fleet with the given hosts (numbered addresses) and time zone.
fn fleet_text(hosts: &[&str], time_zone: &str) -> String {
    let mut text = format!(
        r#"[fleet]
state_version = "26.05"
time_zone = "{time_zone}"

[users.carol]
ssh_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOsayYpasLjJnFWkbxfFaMF7D0BbAlqNvwqypj1yjbxK carol@example"]
"#
    );
    for (i, host) in hosts.iter().enumerate() {
        text.push_str(&format!(
            "\n[hosts.{host}]\nboard = \"rpi4\"\naddress = \"10.0.0.{}\"\nusers = [\"carol\"]\n",
            i + 10
        ));
    }
    text
}

fn rendered(hosts: &[&str], time_zone: &str) -> Output {
    support::load_and_render("tree", &fleet_text(hosts, time_zone)).output
}

/// Every regular file under `root`, relative, with its bytes.
fn snapshot_dir(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root").to_owned();
                out.push((rel, std::fs::read(&path).expect("read file")));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn conflicts(result: Result<render::tree::Plan, Error>) -> Vec<(PathBuf, ConflictKind)> {
    match result {
        Err(Error::Conflicts(list)) => list.into_iter().map(|c| (c.path, c.kind)).collect(),
        Err(other) => panic!("expected conflicts, got {other}"),
        Ok(plan) => panic!("expected conflicts, got a plan: {:?}", plan.steps()),
    }
}

/// Puts a generated file's header over a hand-written body: what a hand edit looks like.
fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read");
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("write");
}

#[test]
fn first_apply_writes_every_file_and_a_second_plan_is_clean() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("hosts");
    let output = rendered(&["alpha", "beta"], "UTC");

    let first = plan(&root, &output, false).expect("plan into a missing directory");
    assert!(!first.is_clean());
    assert!(first.steps().iter().all(|s| s.action == Action::Create));
    let summary = first.apply().expect("apply");
    assert_eq!(
        (summary.written, summary.unchanged, summary.removed),
        (3, 0, 0)
    );
    assert_eq!(summary.to_string(), "3 written, 0 unchanged, 0 removed");
    for (path, text) in &output.files {
        assert_eq!(
            std::fs::read_to_string(root.join(path)).expect("written"),
            *text,
            "{}",
            path.display()
        );
    }
    // Only the rendered files: no temporary files left behind.
    let on_disk: Vec<PathBuf> = snapshot_dir(&root).into_iter().map(|(p, _)| p).collect();
    let want: Vec<PathBuf> = output.files.keys().cloned().collect();
    assert_eq!(on_disk, want);

    // Age the files, then plan and apply again: nothing may be rewritten.
    let old = SystemTime::now() - Duration::from_secs(3600 * 24);
    for path in output.files.keys() {
        let file = std::fs::File::options()
            .write(true)
            .open(root.join(path))
            .expect("open");
        file.set_modified(old).expect("set mtime");
    }
    let second = plan(&root, &output, false).expect("plan");
    assert!(second.is_clean(), "{:?}", second.steps());
    assert_eq!(second.diff(), "");
    let summary = second.apply().expect("apply");
    assert_eq!(
        (summary.written, summary.unchanged, summary.removed),
        (0, 3, 0)
    );
    for path in output.files.keys() {
        let modified = std::fs::metadata(root.join(path))
            .and_then(|m| m.modified())
            .expect("mtime");
        assert_eq!(modified, old, "{} was rewritten", path.display());
    }
}

#[test]
fn a_file_edited_by_hand_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("hosts");
    let before = rendered(&["alpha", "beta"], "UTC");
    plan(&root, &before, false)
        .expect("plan")
        .apply()
        .expect("apply");
    let edited = root.join("alpha/default.nix");
    edit(
        &edited,
        "time.timeZone = \"UTC\";",
        "time.timeZone = \"Asia/Tokyo\";",
    );
    assert_eq!(
        render::provenance(&std::fs::read_to_string(&edited).expect("read")),
        render::Provenance::Edited
    );
    let disk = snapshot_dir(&root);

    // The fleet changed too, so every file would be updated: none may be.
    let after = rendered(&["alpha", "beta"], "Europe/Amsterdam");
    let found = conflicts(plan(&root, &after, false));
    assert_eq!(found, vec![(edited.clone(), ConflictKind::EditedByHand)]);
    let message = match plan(&root, &after, false) {
        Err(e) => e.to_string(),
        Ok(_) => unreachable!(),
    };
    assert!(
        message.contains("alpha/default.nix") && message.contains("--force"),
        "{message}"
    );
    assert_eq!(snapshot_dir(&root), disk, "a refused plan wrote something");

    // An edit that happens to match the new rendering is not a conflict: nothing to overwrite.
    std::fs::write(&edited, &after.files[Path::new("alpha/default.nix")]).expect("write");
    let plan_ok = plan(&root, &after, false).expect("the file already has the new content");
    let alpha = plan_ok
        .steps()
        .iter()
        .find(|s| s.path == Path::new("alpha/default.nix"))
        .expect("step");
    assert_eq!(alpha.action, Action::Unchanged);
}

#[test]
fn a_foreign_file_at_a_generated_path_is_refused_even_with_force() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("hosts");
    let output = rendered(&["alpha", "beta"], "UTC");
    plan(&root, &output, false)
        .expect("plan")
        .apply()
        .expect("apply");
    let foreign = root.join("beta/default.nix");
    std::fs::write(&foreign, "{ ... }: { networking.hostName = \"beta\"; }\n").expect("write");
    let edited = root.join("alpha/default.nix");
    edit(&edited, "isNormalUser = true;", "isNormalUser = false;");
    let disk = snapshot_dir(&root);

    let mut found = conflicts(plan(&root, &output, false));
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        found,
        vec![
            (edited.clone(), ConflictKind::EditedByHand),
            (foreign.clone(), ConflictKind::NotGenerated),
        ]
    );
    // With force, the edited file would be overwritten, but the foreign one never is.
    let found = conflicts(plan(&root, &output, true));
    assert_eq!(found, vec![(foreign.clone(), ConflictKind::NotGenerated)]);
    assert_eq!(snapshot_dir(&root), disk, "a refused plan wrote something");

    // Once the foreign file is moved away, force overwrites the edited one.
    std::fs::remove_file(&foreign).expect("remove");
    let forced = plan(&root, &output, true).expect("plan with force");
    let summary = forced.apply().expect("apply");
    assert_eq!(
        (summary.written, summary.unchanged, summary.removed),
        (2, 1, 0)
    );
    for (path, text) in &output.files {
        assert_eq!(
            std::fs::read_to_string(root.join(path)).expect("read"),
            *text
        );
    }
}

#[test]
fn without_force_a_foreign_file_of_the_index_is_refused_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("hosts");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::write(root.join("default.nix"), "{ }\n").expect("write");
    let output = rendered(&["alpha"], "UTC");
    assert_eq!(
        conflicts(plan(&root, &output, false)),
        vec![(root.join("default.nix"), ConflictKind::NotGenerated)]
    );
    assert_eq!(
        conflicts(plan(&root, &output, true)),
        vec![(root.join("default.nix"), ConflictKind::NotGenerated)]
    );
    assert!(
        !root.join("alpha").exists(),
        "a refused plan wrote something"
    );
}

#[test]
fn hosts_that_left_are_removed_but_hand_written_files_stay() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("hosts");
    let before = rendered(&["alpha", "beta", "gamma"], "UTC");
    plan(&root, &before, false)
        .expect("plan")
        .apply()
        .expect("apply");
    let hardware = root.join("beta/hardware.nix");
    std::fs::write(&hardware, "{ ... }: { }\n").expect("write hardware.nix");
    // A directory with someone else's default.nix is not a host pifleet generated.
    std::fs::create_dir_all(root.join("notes")).expect("mkdir");
    std::fs::write(root.join("notes/default.nix"), "{ }\n").expect("write notes");

    let after = rendered(&["alpha"], "UTC");
    let steps = plan(&root, &after, false).expect("plan");
    let mut removed: Vec<&Path> = steps
        .steps()
        .iter()
        .filter(|s| s.action == Action::Remove)
        .map(|s| s.path.as_path())
        .collect();
    removed.sort();
    assert_eq!(
        removed,
        vec![
            Path::new("beta/default.nix"),
            Path::new("gamma/default.nix")
        ]
    );
    let diff = steps.diff();
    assert!(
        diff.contains(&format!(
            "--- a/{}/gamma/default.nix\n+++ /dev/null\n",
            root.display()
        )),
        "{diff}"
    );
    let summary = steps.apply().expect("apply");
    assert_eq!(
        (summary.written, summary.unchanged, summary.removed),
        (1, 1, 2)
    );
    assert!(
        !root.join("gamma").exists(),
        "an emptied host directory stays"
    );
    assert!(!root.join("beta/default.nix").exists());
    assert_eq!(
        std::fs::read_to_string(&hardware).expect("hardware.nix kept"),
        "{ ... }: { }\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("notes/default.nix")).expect("notes kept"),
        "{ }\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("default.nix")).expect("index"),
        after.files[Path::new("default.nix")]
    );
    assert!(plan(&root, &after, false).expect("plan").is_clean());
}

#[test]
fn a_removed_host_whose_module_was_edited_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("hosts");
    let before = rendered(&["alpha", "beta"], "UTC");
    plan(&root, &before, false)
        .expect("plan")
        .apply()
        .expect("apply");
    let edited = root.join("beta/default.nix");
    edit(
        &edited,
        "users.mutableUsers = false;",
        "users.mutableUsers = true;",
    );
    let disk = snapshot_dir(&root);
    let after = rendered(&["alpha"], "UTC");
    assert_eq!(
        conflicts(plan(&root, &after, false)),
        vec![(edited.clone(), ConflictKind::EditedByHand)]
    );
    assert_eq!(snapshot_dir(&root), disk);
    let summary = plan(&root, &after, true)
        .expect("force")
        .apply()
        .expect("apply");
    assert_eq!(summary.removed, 1);
    assert!(!root.join("beta").exists());
}

#[test]
fn diff_is_unified_with_a_and_b_headers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("hosts");
    plan(&root, &rendered(&["alpha"], "UTC"), false)
        .expect("plan")
        .apply()
        .expect("apply");
    let changed = plan(
        &root,
        &rendered(&["alpha", "delta"], "Europe/Lisbon"),
        false,
    )
    .expect("plan");
    assert_eq!(changed.summary().written, 3);
    let diff = changed.diff();
    let shown = root.display();
    assert!(
        diff.contains(&format!(
            "--- a/{shown}/alpha/default.nix\n+++ b/{shown}/alpha/default.nix\n@@ "
        )),
        "{diff}"
    );
    assert!(
        diff.contains("\n-  time.timeZone = \"UTC\";\n+  time.timeZone = \"Europe/Lisbon\";\n"),
        "{diff}"
    );
    // The digest line changes with the body.
    assert!(diff.contains("\n-# pifleet-digest: sha256:"), "{diff}");
    // A new host's module is created from nothing.
    assert!(
        diff.contains(&format!("--- /dev/null\n+++ b/{shown}/delta/default.nix\n")),
        "{diff}"
    );
    // Unchanged lines far from the change are not shown: three lines of context.
    assert!(
        !diff.contains("\n   users.mutableUsers = false;\n"),
        "{diff}"
    );
}

/// The committed `hosts/` must be what `fleet.toml` renders to.
#[test]
fn committed_hosts_match_the_example_fleet() {
    let repo = support::manifest_dir().join("../..");
    let text = std::fs::read_to_string(support::example_fleet_path()).expect("fleet.toml");
    let output = support::load_and_render("example", &text).output;
    let hosts_dir = repo.join("hosts");
    let drift = plan(&hosts_dir, &output, false).unwrap_or_else(|e| {
        panic!("hosts/ cannot be regenerated as it is: {e}\nFix it, then run `cargo run -p pifleet -- gen`.")
    });
    assert!(
        drift.is_clean(),
        "hosts/ is stale: fleet.toml renders differently. Run `cargo run -p pifleet -- gen` and commit \
         hosts/.\n{}",
        drift.diff()
    );
}
