//! Shared by the render tests: the edge-case fleets under `tests/cases/`, and running the real Nix
//! (Debian's nix-bin 2.8), as in `crates/nixgen/tests/support`.
//!
//! Tests that need Nix call [`nix`]: when `nix-instantiate` is missing it skips with a loud message
//! on a developer machine, and fails when `PIFLEET_REQUIRE_NIX=1` (set by `scripts/test`, so CI
//! never skips).

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;

use model::Fleet;
use render::Output;

/// One edge-case fleet, loaded and rendered.
pub struct Case {
    /// The folder name under `tests/cases/` (`example` for the repo's own `fleet.toml`).
    pub name: String,
    /// The typed inventory.
    pub fleet: Fleet,
    /// What `render` made of it.
    pub output: Output,
}

/// The crate's directory.
pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's example fleet.
pub fn example_fleet_path() -> PathBuf {
    manifest_dir().join("../../fleet.toml")
}

/// Loads (every case must load cleanly) and renders `fleet.toml` text.
pub fn load_and_render(name: &str, text: &str) -> Case {
    load_and_render_as(name, text, "fleet.toml")
}

/// Like [`load_and_render`], for an inventory named `file` (`fleet.json` reads JSON).
pub fn load_and_render_as(name: &str, text: &str, file: &str) -> Case {
    let loaded = match model::load_str(text, file) {
        Ok(loaded) => loaded,
        Err(model::LoadError::Invalid(invalid)) => panic!(
            "case {name}: fleet.toml does not load:\n{:#?}",
            invalid.problems
        ),
        Err(e) => panic!("case {name}: {e}"),
    };
    let output = render::render(&loaded.fleet, "fleet.toml")
        .unwrap_or_else(|e| panic!("case {name}: render failed: {e}"));
    Case {
        name: name.to_owned(),
        fleet: loaded.fleet,
        output,
    }
}

/// Every folder of `tests/cases/`, by name, then the repo's example fleet as `example`.
pub fn cases() -> Vec<Case> {
    let dir = manifest_dir().join("tests/cases");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/cases exists")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    let mut out: Vec<Case> = names
        .iter()
        .map(|name| {
            let path = dir.join(name).join("fleet.toml");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            load_and_render(name, &text)
        })
        .collect();
    let example = std::fs::read_to_string(example_fleet_path()).expect("the repo's fleet.toml");
    out.push(load_and_render("example", &example));
    out
}

/// Writes every file of `output` under `root`, creating directories.
pub fn write_tree(root: &Path, output: &Output) {
    for (path, text) in &output.files {
        let target = root.join(path);
        std::fs::create_dir_all(target.parent().expect("a parent")).expect("create dir");
        std::fs::write(&target, text).expect("write file");
    }
}

/// A handle proving Nix is available.
pub struct Nix {
    _private: (),
}

/// `Some(Nix)` when `nix-instantiate` runs; `None` (skip) or a panic (CI) otherwise.
pub fn nix() -> Option<Nix> {
    let works = Command::new("nix-instantiate")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !works {
        if std::env::var_os("PIFLEET_REQUIRE_NIX").is_some_and(|v| v == "1") {
            panic!(
                "nix-instantiate is required (PIFLEET_REQUIRE_NIX=1) but not found: apt-get install nix-bin"
            );
        }
        eprintln!("SKIPPING: nix-instantiate not found; install nix-bin to run this test");
        return None;
    }
    Some(Nix { _private: () })
}

impl Nix {
    /// `nix-instantiate --eval --strict --json` of a file, parsed.
    pub fn eval_json(&self, file: &Path) -> serde_json::Value {
        let out = run(Command::new("nix-instantiate")
            // Evaluation never needs the store: the dummy store keeps parallel tests off its lock.
            .args(["--store", "dummy://", "--eval", "--strict", "--json"])
            .arg(file));
        serde_json::from_slice(&out).expect("nix printed JSON")
    }

    /// `nix-instantiate --parse` of every file in one call; all must parse.
    pub fn parse_all(&self, files: &[PathBuf]) {
        if files.is_empty() {
            return;
        }
        run(Command::new("nix-instantiate")
            .args(["--store", "dummy://", "--parse"])
            .args(files)
            .stdout(std::process::Stdio::null()));
    }
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("run nix-instantiate");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Calls every host module with stub `config`/`lib`/`pkgs` and imports every index. `lib`'s
/// overrides return the same shape as nixpkgs' (`{ _type = "override"; priority; content; }`), and
/// `lib.getName` is nixpkgs' own. A function cannot become JSON, so the unfree predicate is replaced
/// by what it does: `{ accepts = [ … ]; }`, the probe packages (`unfree-probes.json`, each as
/// nixpkgs builds it, with a `pname`, and as an older one, with only a versioned `name`) it allows;
/// `pkgs` maps each package name the fleets use to `"pkg:<name>"`, nested by dots. Paths are
/// turned into strings relative to the case's directory, so the result does not depend on where
/// the temporary directory is, and nothing is copied to the store.
pub const HARNESS: &str = r#"
let
  mkOverride = priority: content: { _type = "override"; inherit priority content; };
  lib = {
    inherit mkOverride;
    mkForce = mkOverride 50;
    mkDefault = mkOverride 1000;
    # nixpkgs' lib.getName.
    getName = x:
      let parse = drv: (builtins.parseDrvName drv).name; in
      if builtins.isString x then parse x else x.pname or (parse x.name);
  };
  probes = builtins.concatMap
    (n: [ { pname = n; version = "1.0"; name = "${n}-1.0"; } { name = "${n}-2.0"; } ])
    (builtins.fromJSON (builtins.readFile ./unfree-probes.json));
  unfree = m:
    if m ? nixpkgs && m.nixpkgs ? config && m.nixpkgs.config ? allowUnfreePredicate then {
      nixpkgs = m.nixpkgs // {
        config = m.nixpkgs.config // {
          allowUnfreePredicate.accepts =
            map (p: p.name) (builtins.filter m.nixpkgs.config.allowUnfreePredicate probes);
        };
      };
    } else { };
  names = builtins.fromJSON (builtins.readFile ./packages.json);
  splitDots = s: builtins.filter builtins.isString (builtins.split "[.]" s);
  setPath = path: value:
    if path == [ ] then value
    else { ${builtins.head path} = setPath (builtins.tail path) value; };
  merge = a: b: a // builtins.mapAttrs
    (k: v: if a ? ${k} && builtins.isAttrs v && builtins.isAttrs a.${k} then merge a.${k} v else v)
    b;
  pkgs = builtins.foldl' (acc: n: merge acc (setPath (splitDots n) "pkg:${n}")) { } names;
  root = toString ./.;
  relative = case: p:
    let
      s = toString p;
      prefix = "${root}/${case}/";
      n = builtins.stringLength prefix;
    in
    if builtins.substring 0 n s == prefix then builtins.substring n (builtins.stringLength s) s else s;
  # agenix's default: a secret decrypts to `/run/agenix/<name>` (age.secrets.<name>.path).
  config.age.secrets = builtins.listToAttrs (map
    (n: { name = n; value = { path = "/run/agenix/${n}"; }; })
    (builtins.fromJSON (builtins.readFile ./secrets.json)));
  # Paths become strings relative to the case: nothing is copied to the store.
  evalHost = case: file:
    let
      m = import file { inherit config lib pkgs; };
      imports = if m ? imports then { imports = map (relative case) m.imports; } else { };
      age = if m ? age then {
        age = m.age // {
          secrets = builtins.mapAttrs (n: s: s // { file = relative case s.file; }) m.age.secrets;
        };
      } else { };
    in
    m // imports // age // unfree m;
  evalIndex = case: dir: builtins.mapAttrs
    (name: h: h // { module = relative case h.module; moduleExists = builtins.pathExists h.module; })
    (import dir);
  cases = builtins.fromJSON (builtins.readFile ./cases.json);
in
builtins.mapAttrs
  (case: hosts: {
    index = evalIndex case (./. + "/${case}/hosts");
    hosts = builtins.listToAttrs (map
      (h: { name = h; value = evalHost case (./. + "/${case}/hosts/${h}/default.nix"); })
      hosts);
  })
  cases
"#;

/// Writes every case under a temporary directory and evaluates [`HARNESS`] over them: one
/// `nix-instantiate` for all, returning `{ <case> = { index; hosts.<host> = module; }; }`.
pub fn eval_cases(nix: &Nix, cases: &[Case]) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = std::fs::canonicalize(dir.path()).expect("canonical temp dir");
    let mut packages = std::collections::BTreeSet::from(["zsh".to_owned(), "fish".to_owned()]);
    let mut secrets = std::collections::BTreeSet::new();
    // Names a predicate must refuse: near misses of the names fleets allow.
    let mut probes =
        std::collections::BTreeSet::from(["steam".to_owned(), "unrar-free".to_owned()]);
    let mut hosts_by_case = std::collections::BTreeMap::new();
    for case in cases {
        write_tree(&root.join(&case.name).join("hosts"), &case.output);
        for host in case.fleet.hosts.values() {
            packages.extend(host.packages.iter().cloned());
        }
        secrets.extend(case.fleet.secret_readers().keys().map(|s| s.to_string()));
        probes.extend(case.fleet.fleet.allow_unfree.iter().map(|p| p.to_string()));
        let hosts: Vec<&str> = case.fleet.hosts.keys().map(|h| h.as_str()).collect();
        hosts_by_case.insert(case.name.clone(), hosts);
    }
    let packages = serde_json::to_string(&packages).expect("json");
    let hosts_by_case = serde_json::to_string(&hosts_by_case).expect("json");
    std::fs::write(root.join("packages.json"), packages).expect("write packages.json");
    let secrets = serde_json::to_string(&secrets).expect("json");
    std::fs::write(root.join("secrets.json"), secrets).expect("write secrets.json");
    std::fs::write(root.join("cases.json"), hosts_by_case).expect("write cases.json");
    let probes = serde_json::to_string(&probes).expect("json");
    std::fs::write(root.join("unfree-probes.json"), probes).expect("write unfree-probes.json");
    std::fs::write(root.join("eval.nix"), HARNESS).expect("write eval.nix");
    nix.eval_json(&root.join("eval.nix"))
}

/// Renders the inventory `text` and evaluates its host modules and index with real Nix.
pub fn eval_fleet(nix: &Nix, text: &str) -> serde_json::Value {
    let case = load_and_render("inline", text);
    let mut all = eval_cases(nix, std::slice::from_ref(&case));
    all["inline"].take()
}
