//! The files `render` generates for the edge-case fleets in `tests/cases/` and for the repo's own
//! `fleet.toml`: pinned as insta snapshots (top-level `snapshots/render__<case>.snap`), accepted by
//! `nix-instantiate --parse`, stable under nixpkgs-fmt, and evaluated with real Nix so that every
//! option value is checked against what the model says it should be.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use model::{
    AddressMode, Board, BuildOn, Fleet, Host, HostName, NetworkManagerKind, PermitRootLogin,
    Protocol, Restart, Shell, SshdValue, Sudo,
};
use serde_json::{Value, json};
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
        for (path, text) in &case.output.files {
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
        files.extend(case.output.files.keys().map(|p| root.join(p)));
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

/// Calls every host module with stub `config`/`lib`/`pkgs` and imports every index. `lib`'s
/// overrides return the same shape as nixpkgs' (`{ _type = "override"; priority; content; }`);
/// `pkgs` maps each package name the fleets use to `"pkg:<name>"`, nested by dots. Paths are
/// turned into strings so nothing is copied to the store.
const HARNESS: &str = r#"
let
  mkOverride = priority: content: { _type = "override"; inherit priority content; };
  lib = {
    inherit mkOverride;
    mkForce = mkOverride 50;
    mkDefault = mkOverride 1000;
  };
  names = builtins.fromJSON (builtins.readFile ./packages.json);
  splitDots = s: builtins.filter builtins.isString (builtins.split "[.]" s);
  setPath = path: value:
    if path == [ ] then value
    else { ${builtins.head path} = setPath (builtins.tail path) value; };
  merge = a: b: a // builtins.mapAttrs
    (k: v: if a ? ${k} && builtins.isAttrs v && builtins.isAttrs a.${k} then merge a.${k} v else v)
    b;
  pkgs = builtins.foldl' (acc: n: merge acc (setPath (splitDots n) "pkg:${n}")) { } names;
  evalHost = file:
    let m = import file { config = { }; inherit lib pkgs; };
    in m // (if m ? imports then { imports = map toString m.imports; } else { });
  evalIndex = dir: builtins.mapAttrs
    (name: h: h // { module = toString h.module; moduleExists = builtins.pathExists h.module; })
    (import dir);
  cases = builtins.fromJSON (builtins.readFile ./cases.json);
in
builtins.mapAttrs
  (case: hosts: {
    index = evalIndex (./. + "/${case}/hosts");
    hosts = builtins.listToAttrs (map
      (h: { name = h; value = evalHost (./. + "/${case}/hosts/${h}/default.nix"); })
      hosts);
  })
  cases
"#;

#[test]
fn host_modules_and_index_evaluate_to_the_model() {
    let Some(nix) = support::nix() else { return };
    let cases = support::cases();
    let dir = tempfile::tempdir().expect("temp dir");
    let root = std::fs::canonicalize(dir.path()).expect("canonical temp dir");
    let mut packages = BTreeSet::from(["zsh".to_owned(), "fish".to_owned()]);
    let mut hosts_by_case = BTreeMap::new();
    for case in &cases {
        support::write_tree(&root.join(&case.name).join("hosts"), &case.output);
        for host in case.fleet.hosts.values() {
            packages.extend(host.packages.iter().cloned());
        }
        let hosts: Vec<&str> = case.fleet.hosts.keys().map(HostName::as_str).collect();
        hosts_by_case.insert(case.name.clone(), hosts);
    }
    std::fs::write(
        root.join("packages.json"),
        serde_json::to_string(&packages).expect("json"),
    )
    .expect("write packages.json");
    std::fs::write(
        root.join("cases.json"),
        serde_json::to_string(&hosts_by_case).expect("json"),
    )
    .expect("write cases.json");
    std::fs::write(root.join("eval.nix"), HARNESS).expect("write eval.nix");
    let result = nix.eval_json(&root.join("eval.nix"));

    let mut errors = Vec::new();
    for case in &cases {
        let case_root = root.join(&case.name);
        let got = &result[case.name.as_str()];
        for (name, host) in &case.fleet.hosts {
            let mut check = Check {
                context: format!("{}/{name}", case.name),
                errors: &mut errors,
            };
            let module = &got["hosts"][name.as_str()];
            assert!(module.is_object(), "{}: not evaluated", check.context);
            host_module(&mut check, &case.fleet, name, host, module, &case_root);
            let entry = &got["index"][name.as_str()];
            index_entry(&mut check, &case.fleet, name, host, entry, &case_root);
        }
        let index_hosts: BTreeSet<&str> = got["index"]
            .as_object()
            .expect("index is a set")
            .keys()
            .map(String::as_str)
            .collect();
        let model_hosts: BTreeSet<&str> = case.fleet.hosts.keys().map(HostName::as_str).collect();
        if index_hosts != model_hosts {
            errors.push(format!(
                "{}: index hosts {index_hosts:?} != model hosts {model_hosts:?}",
                case.name
            ));
        }
    }
    assert!(
        errors.is_empty(),
        "{} wrong option value(s):\n{}",
        errors.len(),
        errors.join("\n")
    );
}

/// Collects mismatches so one run reports all of them.
struct Check<'a> {
    context: String,
    errors: &'a mut Vec<String>,
}

impl Check<'_> {
    /// The value at `path` must be `want` (`None`: the option must not be set).
    fn at(&mut self, value: &Value, path: &[&str], want: Option<Value>) {
        let got = get(value, path);
        if got != want.as_ref() {
            self.errors.push(format!(
                "{}: {}: got {}, want {}",
                self.context,
                path.join("."),
                got.map_or("(unset)".into(), Value::to_string),
                want.map_or("(unset)".into(), |v| v.to_string()),
            ));
        }
    }

    /// The attribute names of the set at `path` must be exactly `want` (an unset set has none).
    fn keys<'k>(&mut self, value: &Value, path: &[&str], want: impl IntoIterator<Item = &'k str>) {
        let got: BTreeSet<&str> = get(value, path)
            .and_then(Value::as_object)
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let want: BTreeSet<&str> = want.into_iter().collect();
        if got != want {
            self.errors.push(format!(
                "{}: names under {}: got {got:?}, want {want:?}",
                self.context,
                path.join(".")
            ));
        }
    }

    fn fail(&mut self, message: String) {
        self.errors.push(format!("{}: {message}", self.context));
    }
}

fn get<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

/// `Some(list of strings)`, or `None` for an empty list (the renderer leaves those out).
fn strings_or_unset<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Option<Value> {
    let list: Vec<Value> = items.into_iter().map(|s| Value::from(s.as_ref())).collect();
    (!list.is_empty()).then_some(Value::Array(list))
}

fn override_of(priority: u32, content: Value) -> Value {
    json!({ "_type": "override", "priority": priority, "content": content })
}

fn host_module(
    check: &mut Check<'_>,
    fleet: &Fleet,
    name: &HostName,
    host: &Host,
    m: &Value,
    case_root: &Path,
) {
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
    ];
    for key in m.as_object().expect("module is a set").keys() {
        if !TOP_LEVEL.contains(&key.as_str()) {
            check.fail(format!("unexpected top-level option `{key}`"));
        }
    }

    // Imports: `hardware.nix` next to the module when `hardware_config` is set, then the modules,
    // relative to the inventory, i.e. the repository root two levels above the module.
    let hardware = host.hardware_config.then(|| {
        case_root
            .join("hosts")
            .join(name.as_str())
            .join("hardware.nix")
            .display()
            .to_string()
    });
    let imports: Vec<String> = hardware
        .into_iter()
        .chain(host.modules.iter().map(|p| {
            case_root
                .join(p.trim_start_matches("./"))
                .display()
                .to_string()
        }))
        .collect();
    check.at(m, &["imports"], strings_or_unset(&imports));

    // Identity.
    check.at(m, &["networking", "hostName"], Some(name.as_str().into()));
    check.at(
        m,
        &["time", "timeZone"],
        Some(fleet.time_zone_of(host).into()),
    );
    check.at(
        m,
        &["i18n", "defaultLocale"],
        Some(fleet.fleet.locale.as_str().into()),
    );
    check.at(
        m,
        &["system", "stateVersion"],
        Some(fleet.state_version_of(host).as_str().into()),
    );
    check.keys(m, &["time"], ["timeZone"]);
    check.keys(m, &["i18n"], ["defaultLocale"]);
    check.keys(m, &["system"], ["stateVersion"]);

    users(check, fleet, host, m);
    ssh(check, fleet, host, m);
    network(check, name, host, m);
    firewall(check, fleet, name, host, m);
    containers(check, fleet, name, m);

    // Packages, in the inventory's order.
    check.at(
        m,
        &["environment", "systemPackages"],
        strings_or_unset(host.packages.iter().map(|p| format!("pkg:{p}"))),
    );
    check.keys(
        m,
        &["environment"],
        (!host.packages.is_empty()).then_some("systemPackages"),
    );

    nix_settings(check, fleet, host, m);

    // Swap.
    let swap = &host.swap;
    let zram = swap.zram.then(|| {
        let mut z = json!({ "enable": true });
        if let Some(p) = swap.zram_percent {
            z["memoryPercent"] = p.into();
        }
        z
    });
    check.at(m, &["zramSwap"], zram);
    check.at(
        m,
        &["swapDevices"],
        swap.file_size_mb
            .map(|size| json!([{ "device": "/var/lib/swapfile", "size": size }])),
    );

    // Monitoring.
    let mon = &host.monitoring;
    check.at(
        m,
        &["services", "prometheus", "exporters", "node"],
        mon.node_exporter.then(|| {
            json!({ "enable": true, "port": mon.node_exporter_port.get(), "openFirewall": false })
        }),
    );
    let mut services = vec!["openssh"];
    if mon.node_exporter {
        services.push("prometheus");
    }
    check.keys(m, &["services"], services);
}

fn users(check: &mut Check<'_>, fleet: &Fleet, host: &Host, m: &Value) {
    check.at(m, &["users", "mutableUsers"], Some(false.into()));
    let policy = fleet.effective_ssh(host);
    let root_keys = policy.permit_root_login != PermitRootLogin::No && !policy.root_keys.is_empty();
    let mut names: Vec<&str> = host.users.iter().map(|u| u.as_str()).collect();
    if root_keys {
        names.push("root");
    }
    check.keys(m, &["users", "users"], names);
    check.keys(m, &["users"], ["mutableUsers", "users"]);

    let mut nopasswd = BTreeSet::new();
    for user_name in &host.users {
        let user = &fleet.users[user_name];
        let u = user_name.as_str();
        let at = |field: &[&'static str]| -> Vec<&str> {
            let mut p = vec!["users", "users", u];
            p.extend_from_slice(field);
            p
        };
        check.at(m, &at(&["isNormalUser"]), Some(true.into()));
        check.at(m, &at(&["isSystemUser"]), None);
        check.at(
            m,
            &at(&["description"]),
            user.description.as_deref().map(Value::from),
        );
        check.at(m, &at(&["uid"]), user.uid.map(Value::from));
        // The model's groups, plus wheel for sudo; each once.
        let mut want: BTreeSet<&str> = user.groups.iter().map(String::as_str).collect();
        if user.sudo.is_some() {
            want.insert("wheel");
        }
        let got: Vec<&str> = get(m, &at(&["extraGroups"]))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let got_set: BTreeSet<&str> = got.iter().copied().collect();
        if got_set != want || got.len() != got_set.len() {
            check.fail(format!(
                "{u}: extraGroups {got:?}, want each of {want:?} once"
            ));
        }
        check.at(
            m,
            &at(&["openssh", "authorizedKeys", "keys"]),
            strings_or_unset(user.ssh_keys.iter().map(|k| k.as_str())),
        );
        check.at(
            m,
            &at(&["hashedPassword"]),
            user.hashed_password.as_deref().map(Value::from),
        );
        check.at(
            m,
            &at(&["hashedPasswordFile"]),
            user.hashed_password_file.as_deref().map(Value::from),
        );
        let shell = match user.shell {
            Shell::Bash => None,
            Shell::Zsh => Some("pkg:zsh".into()),
            Shell::Fish => Some("pkg:fish".into()),
        };
        check.at(m, &at(&["shell"]), shell);
        if user.sudo == Some(Sudo::NoPassword) {
            nopasswd.insert(u);
        }
    }
    if root_keys {
        check.keys(m, &["users", "users", "root"], ["openssh"]);
        check.at(
            m,
            &[
                "users",
                "users",
                "root",
                "openssh",
                "authorizedKeys",
                "keys",
            ],
            strings_or_unset(policy.root_keys.iter().map(|k| k.as_str())),
        );
    }

    let shell_used = |s: Shell| {
        host.users
            .iter()
            .any(|u| fleet.users[u].shell == s)
            .then(|| json!({ "enable": true }))
    };
    check.at(m, &["programs", "zsh"], shell_used(Shell::Zsh));
    check.at(m, &["programs", "fish"], shell_used(Shell::Fish));

    // sudo: wheel needs a password; NOPASSWD exactly for the no-password users.
    check.at(
        m,
        &["security", "sudo", "wheelNeedsPassword"],
        Some(true.into()),
    );
    let mut got_nopasswd = BTreeSet::new();
    let rules = get(m, &["security", "sudo", "extraRules"]);
    if nopasswd.is_empty() && rules.is_some() {
        check.fail(format!(
            "extraRules set without no-password users: {rules:?}"
        ));
    }
    for rule in rules.and_then(Value::as_array).into_iter().flatten() {
        let commands = rule["commands"].as_array().cloned().unwrap_or_default();
        let all_nopasswd = !commands.is_empty()
            && commands.iter().all(|c| {
                c["command"] == "ALL"
                    && c["options"]
                        .as_array()
                        .is_some_and(|o| o.contains(&"NOPASSWD".into()))
            });
        if !all_nopasswd {
            check.fail(format!("unexpected sudo rule {rule}"));
        }
        for u in rule["users"].as_array().into_iter().flatten() {
            got_nopasswd.insert(u.as_str().unwrap_or("(not a string)"));
        }
    }
    if got_nopasswd != nopasswd {
        check.fail(format!(
            "NOPASSWD users {got_nopasswd:?}, want {nopasswd:?}"
        ));
    }
}

fn ssh(check: &mut Check<'_>, fleet: &Fleet, host: &Host, m: &Value) {
    let policy = fleet.effective_ssh(host);
    let o = |field: &[&'static str]| -> Vec<&'static str> {
        let mut p = vec!["services", "openssh"];
        p.extend_from_slice(field);
        p
    };
    check.at(m, &o(&["enable"]), Some(policy.enable.into()));
    check.at(m, &o(&["ports"]), Some(json!([policy.port.get()])));
    check.at(m, &o(&["openFirewall"]), Some(policy.open_firewall.into()));
    check.at(
        m,
        &o(&["authorizedKeysInHomedir"]),
        Some(policy.authorized_keys_in_homedir.into()),
    );
    check.keys(
        m,
        &o(&[]),
        [
            "enable",
            "ports",
            "openFirewall",
            "authorizedKeysInHomedir",
            "settings",
        ],
    );

    // sshd settings: booleans where sshd takes yes/no, the enum as a string, and extra settings
    // merged in unless they would replace a first-class one.
    let mut want = serde_json::Map::new();
    for (key, value) in &policy.extra_settings {
        let value = match value {
            SshdValue::Bool(b) => Value::from(*b),
            SshdValue::Int(i) => Value::from(*i),
            SshdValue::String(s) => Value::from(s.as_str()),
        };
        want.insert(key.clone(), value);
    }
    want.entry("X11Forwarding").or_insert(false.into());
    want.insert(
        "PasswordAuthentication".into(),
        policy.password_authentication.into(),
    );
    want.insert(
        "KbdInteractiveAuthentication".into(),
        policy.kbd_interactive_authentication.into(),
    );
    want.insert(
        "PermitRootLogin".into(),
        policy.permit_root_login.as_sshd().into(),
    );
    let allow = policy
        .allow_users
        .as_ref()
        .expect("effective_ssh derives allow_users");
    want.insert(
        "AllowUsers".into(),
        allow.iter().map(|u| Value::from(u.as_str())).collect(),
    );
    if !policy.deny_users.is_empty() {
        want.insert(
            "DenyUsers".into(),
            policy
                .deny_users
                .iter()
                .map(|u| Value::from(u.as_str()))
                .collect(),
        );
    }
    check.at(m, &o(&["settings"]), Some(Value::Object(want)));
    for key in [
        "PasswordAuthentication",
        "KbdInteractiveAuthentication",
        "X11Forwarding",
    ] {
        if !get(m, &o(&["settings", key])).is_some_and(Value::is_boolean) {
            check.fail(format!("services.openssh.settings.{key} must be a boolean"));
        }
    }
}

fn network(check: &mut Check<'_>, name: &HostName, host: &Host, m: &Value) {
    let net = &host.network;
    let nm = net.manager == NetworkManagerKind::NetworkManager;
    let mut keys = vec!["hostName", "firewall"];
    if nm {
        keys.push("networkmanager");
        check.at(
            m,
            &["networking", "networkmanager", "enable"],
            Some(true.into()),
        );
        // NetworkManager sets useDHCP itself; setting it too is a conflict.
        check.at(m, &["networking", "useDHCP"], None);
        check.at(m, &["networking", "useNetworkd"], None);
    } else {
        keys.extend(["useNetworkd", "useDHCP"]);
        check.at(m, &["networking", "useNetworkd"], Some(true.into()));
        check.at(
            m,
            &["networking", "useDHCP"],
            Some((net.mode == AddressMode::Dhcp).into()),
        );
    }
    if net.mode == AddressMode::Static {
        // The model's default: end0 on a Pi 4, wlan0 on a Zero 2 W (Wi-Fi only), else eth0.
        let interface = net.interface.as_deref().unwrap_or(match host.board {
            Board::Rpi4 => "end0",
            Board::Zero2w => "wlan0",
            _ => "eth0",
        });
        // NetworkManager must leave a statically configured interface alone.
        check.at(
            m,
            &["networking", "networkmanager", "unmanaged"],
            nm.then(|| serde_json::json!([interface])),
        );
        if let Some(cidr) = &net.address {
            keys.push("interfaces");
            let family = if cidr.address.is_ipv4() {
                "ipv4"
            } else {
                "ipv6"
            };
            check.keys(m, &["networking", "interfaces"], [interface]);
            check.keys(m, &["networking", "interfaces", interface], [family]);
            check.at(
                m,
                &["networking", "interfaces", interface, family, "addresses"],
                Some(json!([{ "address": cidr.address.to_string(), "prefixLength": cidr.prefix }])),
            );
        }
        if let Some(gateway) = &net.gateway {
            let option = match gateway.0 {
                IpAddr::V4(_) => "defaultGateway",
                IpAddr::V6(_) => "defaultGateway6",
            };
            keys.push(option);
            check.at(
                m,
                &["networking", option],
                Some(json!({ "address": gateway.to_string(), "interface": interface })),
            );
        }
    }
    if !net.dns.is_empty() {
        keys.push("nameservers");
    }
    check.at(
        m,
        &["networking", "nameservers"],
        strings_or_unset(net.dns.iter().map(ToString::to_string)),
    );

    match (&host.wifi, nm) {
        (None, _) => {
            check.at(m, &["networking", "wireless"], None);
            check.at(m, &["networking", "networkmanager", "ensureProfiles"], None);
        }
        (Some(wifi), false) => {
            keys.push("wireless");
            let mut networks = serde_json::Map::new();
            networks.insert(
                wifi.ssid.clone(),
                json!({ "pskRaw": format!("ext:{}", wifi.psk_name) }),
            );
            check.at(
                m,
                &["networking", "wireless"],
                Some(json!({
                    "enable": true,
                    "secretsFile": wifi.secrets_file,
                    "networks": networks,
                })),
            );
        }
        (Some(wifi), true) => {
            // NetworkManager cannot run alongside networking.wireless.
            check.at(m, &["networking", "wireless"], None);
            let profile = format!("{name}-wifi");
            let ep = |rest: &[&'static str]| {
                let mut p = vec!["networking", "networkmanager", "ensureProfiles"];
                p.extend_from_slice(rest);
                p
            };
            check.keys(m, &ep(&[]), ["environmentFiles", "profiles"]);
            check.at(
                m,
                &ep(&["environmentFiles"]),
                Some(json!([wifi.secrets_file])),
            );
            check.keys(m, &ep(&["profiles"]), [profile.as_str()]);
            let mut profile_path = ep(&["profiles"]);
            profile_path.push(profile.as_str());
            check.at(
                m,
                &profile_path,
                Some(json!({
                    "connection": { "id": wifi.ssid, "type": "wifi" },
                    "wifi": { "ssid": wifi.ssid, "mode": "infrastructure" },
                    "wifi-security": { "key-mgmt": "wpa-psk", "psk": format!("${}", wifi.psk_name) },
                    "ipv4": { "method": "auto" },
                    "ipv6": { "method": "auto" },
                })),
            );
        }
    }
    check.keys(m, &["networking"], keys);
}

fn firewall(check: &mut Check<'_>, fleet: &Fleet, name: &HostName, host: &Host, m: &Value) {
    let mut tcp: BTreeSet<u16> = host
        .firewall
        .allowed_tcp_ports
        .iter()
        .map(|p| p.get())
        .collect();
    let mut udp: BTreeSet<u16> = host
        .firewall
        .allowed_udp_ports
        .iter()
        .map(|p| p.get())
        .collect();
    for hc in fleet.containers_of(name) {
        if hc.container.open_firewall {
            // Ports bound to loopback stay closed: the firewall could not make them reachable.
            for port in hc
                .container
                .ports
                .iter()
                .filter(|p| !p.host_ip.is_some_and(|ip| ip.is_loopback()))
            {
                match port.protocol {
                    Protocol::Tcp => tcp.insert(port.host_port),
                    Protocol::Udp => udp.insert(port.host_port),
                };
            }
        }
    }
    if host.monitoring.node_exporter && host.monitoring.open_firewall {
        tcp.insert(host.monitoring.node_exporter_port.get());
    }
    let mut want = json!({ "enable": host.firewall.enable });
    if !tcp.is_empty() {
        want["allowedTCPPorts"] = json!(tcp.into_iter().collect::<Vec<_>>());
    }
    if !udp.is_empty() {
        want["allowedUDPPorts"] = json!(udp.into_iter().collect::<Vec<_>>());
    }
    check.at(m, &["networking", "firewall"], Some(want));
}

fn containers(check: &mut Check<'_>, fleet: &Fleet, name: &HostName, m: &Value) {
    let containers = fleet.containers_of(name);
    if containers.is_empty() {
        check.at(m, &["virtualisation"], None);
        check.at(m, &["systemd"], None);
        return;
    }
    check.at(
        m,
        &["virtualisation", "docker"],
        Some(json!({ "enable": true, "autoPrune": { "enable": true } })),
    );
    check.at(
        m,
        &["virtualisation", "oci-containers", "backend"],
        Some("docker".into()),
    );
    check.keys(m, &["virtualisation"], ["docker", "oci-containers"]);
    check.keys(
        m,
        &["virtualisation", "oci-containers", "containers"],
        containers.iter().map(|c| c.name.as_str()),
    );
    let mut restarted = Vec::new();
    for hc in &containers {
        let c = &hc.container;
        let cname = hc.name.as_str();
        let mut want = json!({ "image": c.image.to_string(), "autoStart": c.auto_start });
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                want[key] = value;
            }
        };
        put(
            "ports",
            strings_or_unset(c.ports.iter().map(ToString::to_string)),
        );
        put(
            "volumes",
            strings_or_unset(c.volumes.iter().map(|v| v.as_str())),
        );
        put(
            "environment",
            (!c.environment.is_empty()).then(|| json!(c.environment)),
        );
        put("environmentFiles", strings_or_unset(&c.environment_files));
        put("cmd", c.command.as_ref().map(|cmd| json!(cmd)));
        put("entrypoint", c.entrypoint.as_deref().map(Value::from));
        put("user", c.user.as_deref().map(Value::from));
        put(
            "dependsOn",
            strings_or_unset(c.depends_on.iter().map(|d| d.as_str())),
        );
        put("labels", (!c.labels.is_empty()).then(|| json!(c.labels)));
        let mut options = c.extra_options.clone();
        if c.privileged {
            options.push("--privileged".into());
        }
        put("extraOptions", strings_or_unset(&options));
        check.at(
            m,
            &["virtualisation", "oci-containers", "containers", cname],
            Some(want),
        );
        let privileged_flag = get(
            m,
            &[
                "virtualisation",
                "oci-containers",
                "containers",
                cname,
                "extraOptions",
            ],
        )
        .and_then(Value::as_array)
        .is_some_and(|o| o.contains(&"--privileged".into()));
        if privileged_flag != c.privileged {
            check.fail(format!(
                "{cname}: --privileged in extraOptions is {privileged_flag}, privileged = {}",
                c.privileged
            ));
        }

        // Restart policy: systemd's, on the unit oci-containers creates, forced over its "always".
        let unit = format!("docker-{cname}");
        let policy = match c.restart {
            Restart::Always => None,
            Restart::OnFailure => Some("on-failure"),
            Restart::No => Some("no"),
        };
        check.at(
            m,
            &[
                "systemd",
                "services",
                unit.as_str(),
                "serviceConfig",
                "Restart",
            ],
            policy.map(|p| override_of(50, p.into())),
        );
        if policy.is_some() {
            restarted.push(unit);
        }
    }
    check.keys(
        m,
        &["systemd", "services"],
        restarted.iter().map(String::as_str),
    );
}

fn nix_settings(check: &mut Check<'_>, fleet: &Fleet, host: &Host, m: &Value) {
    let settings = &fleet.fleet.nix;
    check.at(
        m,
        &["nix", "settings", "experimental-features"],
        settings.flakes.then(|| json!(["nix-command", "flakes"])),
    );
    let trusted: Vec<&str> = get(m, &["nix", "settings", "trusted-users"])
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut want: BTreeSet<&str> = BTreeSet::from(["root", host.deploy.user.as_str()]);
    want.extend(settings.trusted_users.iter().map(String::as_str));
    let got: BTreeSet<&str> = trusted.iter().copied().collect();
    if got != want || got.len() != trusted.len() {
        check.fail(format!(
            "nix.settings.trusted-users {trusted:?}, want each of {want:?} once"
        ));
    }
    check.at(
        m,
        &["nix", "gc"],
        settings.gc.enable.then(|| {
            json!({
                "automatic": true,
                "dates": settings.gc.dates,
                "options": format!("--delete-older-than {}", settings.gc.delete_older_than),
            })
        }),
    );
}

fn index_entry(
    check: &mut Check<'_>,
    fleet: &Fleet,
    name: &HostName,
    host: &Host,
    entry: &Value,
    case_root: &Path,
) {
    let system = host.board.system();
    let want = json!({
        "system": system,
        "board": host.board.as_str(),
        "module": case_root.join("hosts").join(name.as_str()).display().to_string(),
        "moduleExists": true,
        // The board profiles in nix/boards/ lay out the aarch64 SD image for every aarch64 board.
        "sdImage": system == "aarch64-linux",
        "nixosHardware": host.nixos_hardware,
        // Cross-compiling only means anything for aarch64 hosts built on x86_64.
        "crossCompile": system == "aarch64-linux" && fleet.cross_compiles(host),
        "tags": host.tags.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "deploy": {
            "address": host.address.as_str(),
            "user": host.deploy.user.as_str(),
            "port": fleet.deploy_port(host),
            "buildOn": match host.deploy.build_on {
                BuildOn::Workstation => "local",
                BuildOn::Target => "target",
            },
        },
    });
    check.at(entry, &[], Some(want));
}
