//! `render::tree`: bringing an output directory in line with the rendered files without losing
//! anyone's work, and the drift test for the repo's committed `hosts/`.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use render::Output;
use render::tree::{Action, Conflict, ConflictKind, Error, plan};

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

/// Every file under `root`, relative, with its text (lossy, so failures print readably); a symbolic
/// link (never followed) as `-> target`.
fn snapshot_dir(root: &Path) -> Vec<(PathBuf, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let entry = entry.expect("entry");
            let path = entry.path();
            let rel = path.strip_prefix(root).expect("under root").to_owned();
            let kind = entry.file_type().expect("file type");
            if kind.is_symlink() {
                let target = std::fs::read_link(&path).expect("read link");
                out.push((rel, format!("-> {}", target.display())));
            } else if kind.is_dir() {
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                out.push((rel, String::from_utf8_lossy(&bytes).into_owned()));
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
fn known_hosts_goes_when_no_host_has_a_key_but_a_hand_written_one_stays() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("hosts");
    let keyed = fleet_text(&["alpha"], "UTC")
        + "host_key = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOsayYpasLjJnFWkbxfFaMF7D0BbAlqNvwqypj1yjbxK root@alpha\"\n";
    let before = support::load_and_render("tree", &keyed).output;
    assert!(before.files.contains_key(Path::new("known_hosts")));
    plan(&root, &before, false)
        .expect("plan")
        .apply()
        .expect("apply");
    assert!(root.join("known_hosts").exists());

    let after = rendered(&["alpha"], "UTC");
    let steps = plan(&root, &after, false).expect("plan");
    assert_eq!(paths_of(&steps, Action::Remove), [Path::new("known_hosts")]);
    steps.apply().expect("apply");
    assert!(!root.join("known_hosts").exists());
    assert!(plan(&root, &after, false).expect("plan").is_clean());

    // Someone's own file by that name is not pifleet's to remove.
    std::fs::write(root.join("known_hosts"), "alpha ssh-ed25519 AAAA\n").expect("write");
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

/// What `apply` names a temporary file: `.pifleet-gen-`, twelve letters and digits, `.tmp`.
const LEFTOVER: &str = ".pifleet-gen-Q1w2E3r4T5y6.tmp";

/// The paths of the steps with `action`, in plan order.
fn paths_of(plan: &render::tree::Plan, action: Action) -> Vec<&Path> {
    plan.steps()
        .iter()
        .filter(|s| s.action == action)
        .map(|s| s.path.as_path())
        .collect()
}

fn conflicts_of(result: Result<render::tree::Summary, Error>) -> Vec<Conflict> {
    match result {
        Err(Error::Conflicts(list)) => list,
        Err(other) => panic!("expected conflicts, got {other}"),
        Ok(summary) => panic!("expected conflicts, got {summary}"),
    }
}

/// Names of hosts `host-000` … for larger fleets.
fn numbered(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("host-{i:03}")).collect()
}

fn rendered_names(names: &[String], time_zone: &str) -> Output {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    rendered(&names, time_zone)
}

/// What the tree must hold: exactly the rendered files.
fn expected_tree(output: &Output) -> Vec<(PathBuf, String)> {
    output
        .files
        .iter()
        .map(|(path, text)| (path.clone(), text.clone()))
        .collect()
}

#[test]
fn leftover_temporary_files_are_drift_and_the_next_apply_removes_only_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("hosts");
    let output = rendered(&["alpha", "beta"], "UTC");
    plan(&root, &output, false)
        .expect("plan")
        .apply()
        .expect("apply");
    let alpha = &output.files[Path::new("alpha/default.nix")];
    // What a `gen` killed while writing leaves: the start of a module, or nothing at all.
    std::fs::write(root.join("alpha").join(LEFTOVER), &alpha[..200]).expect("write");
    std::fs::write(root.join(".pifleet-gen-000000000000.tmp"), "").expect("write");
    // The name earlier builds used, holding the start of a generated file.
    std::fs::write(root.join("beta/.pifleet-x7Yz9Q.tmp"), &alpha[..40]).expect("write");
    // Not pifleet's: that older name shape holding someone's notes, and near misses of the name.
    let kept = [
        "beta/.pifleet-backup.tmp",
        "alpha/.pifleet-gen-notes.tmp",
        "alpha/.pifleet-gen-Q1w2E3r4T5y6.tmp.bak",
        "alpha/.pifleet-gen-Q1w2E3r4T5y_.tmp",
        "alpha/pifleet-gen-Q1w2E3r4T5y6.tmp",
    ];
    for path in kept {
        std::fs::write(root.join(path), "my notes\n").expect("write");
    }

    let planned = plan(&root, &output, false).expect("plan");
    assert!(!planned.is_clean(), "leftovers are drift");
    assert_eq!(
        paths_of(&planned, Action::Leftover),
        vec![
            Path::new(".pifleet-gen-000000000000.tmp"),
            Path::new("alpha/.pifleet-gen-Q1w2E3r4T5y6.tmp"),
            Path::new("beta/.pifleet-x7Yz9Q.tmp"),
        ]
    );
    assert_eq!(
        planned.summary().to_string(),
        "0 written, 3 unchanged, 0 removed, 3 leftover temporary files removed"
    );
    let diff = planned.diff();
    let shown = root.display();
    assert!(
        diff.contains(&format!(
            "--- a/{shown}/alpha/{LEFTOVER}\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-# Generated by pifleet from fleet.toml."
        )),
        "{diff}"
    );
    // An empty file has no lines to show, but is listed.
    assert!(
        diff.contains(&format!(
            "--- a/{shown}/.pifleet-gen-000000000000.tmp\n+++ /dev/null\n"
        )),
        "{diff}"
    );
    assert!(!diff.contains("notes"), "{diff}");

    let summary = planned.apply().expect("apply");
    assert_eq!(
        summary.to_string(),
        "0 written, 3 unchanged, 0 removed, 3 leftover temporary files removed"
    );
    let mut want: Vec<PathBuf> = ["default.nix", "alpha/default.nix", "beta/default.nix"]
        .into_iter()
        .chain(kept)
        .map(PathBuf::from)
        .collect();
    want.sort();
    let on_disk: Vec<PathBuf> = snapshot_dir(&root).into_iter().map(|(p, _)| p).collect();
    assert_eq!(on_disk, want);
    assert!(plan(&root, &output, false).expect("plan").is_clean());
}

#[test]
fn a_file_edited_between_plan_and_apply_is_left_alone_and_nothing_is_renamed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("hosts");
    plan(&root, &rendered(&["alpha", "beta"], "UTC"), false)
        .expect("plan")
        .apply()
        .expect("apply");
    let after = rendered(&["alpha", "beta"], "Europe/Lisbon");
    let planned = plan(&root, &after, false).expect("plan");
    assert_eq!(
        paths_of(&planned, Action::Update),
        vec![
            Path::new("alpha/default.nix"),
            Path::new("beta/default.nix")
        ]
    );
    // An editor saves alpha's module while `gen` runs.
    let alpha = root.join("alpha/default.nix");
    edit(
        &alpha,
        "time.timeZone = \"UTC\";",
        "time.timeZone = \"Asia/Tokyo\";",
    );
    let disk = snapshot_dir(&root);

    let result = planned.apply();
    let message = result.as_ref().map_err(ToString::to_string).err();
    assert_eq!(
        conflicts_of(result),
        vec![Conflict {
            path: alpha.clone(),
            kind: ConflictKind::ChangedWhileWriting
        }]
    );
    let message = message.expect("an error");
    assert!(
        message.contains(&format!(
            "{}: changed while pifleet was writing the tree",
            alpha.display()
        )),
        "{message}"
    );
    // Not alpha, and not beta either: nothing was renamed, and no temporary file is left.
    assert_eq!(snapshot_dir(&root), disk);
    // The next plan sees the edit for what it is.
    assert_eq!(
        conflicts(plan(&root, &after, false)),
        vec![(alpha, ConflictKind::EditedByHand)]
    );
}

#[test]
fn a_file_that_appears_or_changes_where_apply_creates_or_removes_one_is_left_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("hosts");
    plan(&root, &rendered(&["alpha", "beta"], "UTC"), false)
        .expect("plan")
        .apply()
        .expect("apply");
    let planned = plan(&root, &rendered(&["alpha", "gamma"], "UTC"), false).expect("plan");
    assert_eq!(
        paths_of(&planned, Action::Create),
        vec![Path::new("gamma/default.nix")]
    );
    assert_eq!(
        paths_of(&planned, Action::Remove),
        vec![Path::new("beta/default.nix")]
    );
    // After planning, someone writes gamma's module by hand and edits beta's.
    std::fs::create_dir(root.join("gamma")).expect("mkdir");
    std::fs::write(root.join("gamma/default.nix"), "{ ... }: { }\n").expect("write");
    edit(
        &root.join("beta/default.nix"),
        "users.mutableUsers = false;",
        "users.mutableUsers = true;",
    );
    let disk = snapshot_dir(&root);

    let mut found = conflicts_of(planned.apply());
    found.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(
        found,
        vec![
            Conflict {
                path: root.join("beta/default.nix"),
                kind: ConflictKind::ChangedWhileWriting
            },
            Conflict {
                path: root.join("gamma/default.nix"),
                kind: ConflictKind::ChangedWhileWriting
            },
        ]
    );
    // The index, which did not change, was not renamed either.
    assert_eq!(snapshot_dir(&root), disk);
}

#[test]
fn a_host_directory_that_is_a_link_out_of_the_tree_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("hosts");
    let elsewhere = dir.path().join("elsewhere");
    plan(&root, &rendered(&["alpha", "beta"], "UTC"), false)
        .expect("plan")
        .apply()
        .expect("apply");
    let after = rendered(&["alpha", "beta"], "Europe/Lisbon");
    let link_alpha = || {
        std::fs::rename(root.join("alpha"), &elsewhere).expect("move alpha out");
        std::os::unix::fs::symlink(&elsewhere, root.join("alpha")).expect("link");
    };
    let refused = |result: Result<(), Error>| match result {
        Err(Error::LinkedHostDirectory { path, target }) => {
            assert_eq!((path, target), (root.join("alpha"), elsewhere.clone()));
        }
        Err(other) => panic!("expected LinkedHostDirectory, got {other}"),
        Ok(()) => panic!("a write through a link was not refused"),
    };

    link_alpha();
    let outside = snapshot_dir(&elsewhere);
    let disk = snapshot_dir(&root);
    let message = match plan(&root, &after, false) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("planned through a link"),
    };
    assert!(
        message.starts_with(&format!(
            "{} is a symbolic link (to {}); pifleet writes each host's module into a real directory",
            root.join("alpha").display(),
            elsewhere.display()
        )),
        "{message}"
    );
    assert!(message.contains("has written nothing"), "{message}");
    refused(plan(&root, &after, false).map(drop));

    // A link that appears after planning is refused by apply, before anything is written.
    std::fs::remove_file(root.join("alpha")).expect("unlink");
    std::fs::rename(&elsewhere, root.join("alpha")).expect("move back");
    let planned = plan(&root, &after, false).expect("plan without the link");
    link_alpha();
    refused(planned.apply().map(drop));
    assert_eq!(snapshot_dir(&elsewhere), outside, "wrote through the link");
    assert_eq!(snapshot_dir(&root), disk, "wrote beta or a temporary file");
}

#[test]
fn an_output_directory_that_links_out_of_its_parent_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = dir.path().join("repo");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&repo).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let root = repo.join("hosts");
    std::os::unix::fs::symlink(&outside, &root).expect("link");
    let output = rendered(&["alpha"], "UTC");

    match plan(&root, &output, false) {
        Err(e @ Error::LinkedOutputDirectory { .. }) => {
            assert_eq!(
                e.to_string(),
                format!(
                    "the output directory {} is a symbolic link to {}, outside {}; pifleet does not \
                     write through it, and has written nothing. Give the real directory with \
                     `--out`, or replace the link with a directory.",
                    root.display(),
                    outside.display(),
                    repo.display()
                )
            );
        }
        Err(other) => panic!("expected LinkedOutputDirectory, got {other}"),
        Ok(_) => panic!("planned through a link"),
    }
    assert!(snapshot_dir(&outside).is_empty(), "wrote outside the repo");

    // A link to a directory inside the repository is where the tree lives: gen writes there.
    std::fs::remove_file(&root).expect("unlink");
    std::fs::create_dir_all(repo.join("generated/hosts")).expect("mkdir");
    std::os::unix::fs::symlink("generated/hosts", &root).expect("link");
    let summary = plan(&root, &output, false)
        .expect("plan")
        .apply()
        .expect("apply");
    assert_eq!(summary.to_string(), "2 written, 0 unchanged, 0 removed");
    assert_eq!(
        snapshot_dir(&repo.join("generated/hosts")),
        expected_tree(&output)
    );
}

#[test]
fn apply_writes_exactly_the_rendered_tree_for_a_large_fleet() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("hosts");
    let names = numbered(150);

    let first = rendered_names(&names, "UTC");
    let summary = plan(&root, &first, false)
        .expect("plan")
        .apply()
        .expect("apply");
    assert_eq!(summary.to_string(), "151 written, 0 unchanged, 0 removed");
    assert_eq!(snapshot_dir(&root), expected_tree(&first));

    let second = rendered_names(&names, "Europe/Lisbon");
    let summary = plan(&root, &second, false)
        .expect("plan")
        .apply()
        .expect("apply");
    assert_eq!(summary.to_string(), "150 written, 1 unchanged, 0 removed");
    assert_eq!(snapshot_dir(&root), expected_tree(&second));

    let third = rendered_names(&names[..100], "Europe/Lisbon");
    let summary = plan(&root, &third, false)
        .expect("plan")
        .apply()
        .expect("apply");
    assert_eq!(summary.to_string(), "1 written, 100 unchanged, 50 removed");
    assert_eq!(snapshot_dir(&root), expected_tree(&third));
}

#[test]
fn a_failure_while_writing_leaves_the_old_tree_and_no_temporary_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("hosts");
    let mut names = numbered(100);
    plan(&root, &rendered_names(&names, "UTC"), false)
        .expect("plan")
        .apply()
        .expect("apply");
    // Every module changes (the index too: it lists the new host), and a new host sorts into the
    // middle of them.
    names.push("host-049x".to_owned());
    let planned = plan(&root, &rendered_names(&names, "Europe/Lisbon"), false).expect("plan");
    assert_eq!(
        planned.summary().to_string(),
        "102 written, 0 unchanged, 0 removed"
    );
    assert!(
        planned.summary().written >= 64,
        "large enough to be written by several threads"
    );
    // A file where the new host's directory must go.
    std::fs::write(root.join("host-049x"), "not a directory\n").expect("write");
    let disk = snapshot_dir(&root);

    match planned.apply() {
        Err(e @ Error::Stage { .. }) => {
            let message = e.to_string();
            assert!(
                message.starts_with(&format!(
                    "cannot write {} (nothing was replaced",
                    root.join("host-049x").display()
                )),
                "{message}"
            );
        }
        Err(other) => panic!("expected Stage, got {other}"),
        Ok(summary) => panic!("wrote through a file: {summary}"),
    }
    assert_eq!(
        snapshot_dir(&root),
        disk,
        "the old tree changed, or a temporary file is left"
    );
}

#[test]
fn a_second_writer_is_refused_while_one_holds_the_tree() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("hosts");
    plan(&root, &rendered(&["alpha"], "UTC"), false)
        .expect("plan")
        .apply()
        .expect("apply");
    let planned = plan(&root, &rendered(&["alpha"], "Europe/Lisbon"), false).expect("plan");
    let disk = snapshot_dir(&root);
    // What another `gen`'s apply holds while it writes.
    let held = std::fs::File::open(&root).expect("open");
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).expect("flock");
    match planned.apply() {
        Err(e @ Error::Busy { .. }) => assert_eq!(
            e.to_string(),
            format!(
                "another `pifleet gen` is writing {}; nothing was written. Wait for it to finish, \
                 then run `pifleet gen` again.",
                root.display()
            )
        ),
        Err(other) => panic!("expected Busy, got {other}"),
        Ok(summary) => panic!("wrote while another writer held the tree: {summary}"),
    }
    assert_eq!(snapshot_dir(&root), disk);
    drop(held);
    assert_eq!(
        planned.apply().expect("apply").to_string(),
        "1 written, 1 unchanged, 0 removed"
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
