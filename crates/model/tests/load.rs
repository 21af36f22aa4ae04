//! Loading end to end: the example fleet, the resolved views the renderer uses, JSON, and error positions.

use model::{Board, ContainerOrigin, LoadError, PermitRootLogin, Protocol};

const EXAMPLE: &str = include_str!("../../../fleet.toml");

fn problems(text: &str, name: &str) -> Vec<model::Problem> {
    match model::load_str(text, name) {
        Ok(_) => panic!("{name} should not load"),
        Err(LoadError::Invalid(invalid)) => invalid.problems,
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn line_col(text: &str, p: &model::Problem) -> (usize, usize) {
    model::SourceFile::new("x", text).line_col(p.span.expect("a span").start)
}

#[test]
fn the_example_fleet_loads_with_the_expected_content() {
    let loaded = model::load_str(EXAMPLE, "fleet.toml").expect("the example fleet is valid");
    let fleet = &loaded.fleet;
    assert_eq!(fleet.fleet.state_version.as_str(), "26.05");
    let names: Vec<&str> = fleet.hosts.keys().map(|h| h.as_str()).collect();
    assert_eq!(names, ["rpi-box-01", "rpi-box-03"]);

    let box1 = &fleet.hosts["rpi-box-01"];
    assert_eq!(box1.board, Board::Rpi4);
    assert_eq!(box1.board.system(), "aarch64-linux");
    assert_eq!(box1.address.as_str(), "192.168.1.41");
    assert_eq!(box1.deploy.user.as_str(), "deploy");

    let view1 = fleet.view("rpi-box-01").expect("host");
    let containers = &view1.containers;
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["homeassistant", "mosquitto"]);
    let ha = &containers[0].container;
    assert_eq!(ha.image.registry.as_deref(), Some("ghcr.io"));
    assert_eq!(ha.image.tag.as_deref(), Some("2026.11.1"));
    assert_eq!(ha.ports[0].host_port, 8123);
    assert_eq!(ha.ports[0].protocol, Protocol::Tcp);
    assert_eq!(ha.environment["TZ"], "Europe/Amsterdam");

    let ssh = &view1.ssh;
    assert_eq!(ssh.permit_root_login, PermitRootLogin::No);
    assert!(!ssh.password_authentication);
    assert!(!ssh.allow_users_explicit);
    let allowed: Vec<&str> = ssh.allow_users.iter().map(|u| u.as_str()).collect();
    assert_eq!(
        allowed,
        ["deploy", "eduardo"],
        "root may not log in, so it is not allowed"
    );
    assert_eq!(view1.deploy.port, 22);
    assert_eq!(view1.deploy.elevation, model::Elevation::Sudo);
    let _ = box1;

    let box3 = &fleet.hosts["rpi-box-03"];
    assert_eq!(box3.board, Board::Rpi3);
    assert!(box3.swap.zram);
    assert_eq!(
        fleet.view("rpi-box-03").expect("host").time_zone,
        "Europe/Amsterdam"
    );

    // Keys keep their text and comment.
    let key = &fleet.users["eduardo"].ssh_keys[0];
    assert_eq!(key.comment(), "eduardo@hhlab");
    assert!(key.as_str().starts_with("ssh-ed25519 AAAA"));
    assert!(key.fingerprint().starts_with("SHA256:"));
}

#[test]
fn host_ssh_overrides_and_fleet_container_placement() {
    let text = r#"
[fleet]
state_version = "26.05"

[ssh]
port = 2222
extra_settings = { MaxAuthTries = 3, X11Forwarding = false }

[hosts.a]
board = "x86_64"
address = "a.example.org"
tags = ["edge"]
ssh = { port = 22, permit_root_login = "no", extra_settings = { MaxAuthTries = 5 } }

[hosts.b]
board = "zero2w"
address = "10.0.0.3"

[containers.exporter]
image = "prom/node-exporter:v1.8.2"
placement = { tags = ["edge"], hosts = ["b"] }
"#;
    let fleet = model::load_str(text, "t.toml").expect("valid").fleet;
    let a = fleet.view("a").expect("host a");
    let ssh = &a.ssh;
    assert_eq!(ssh.port.get(), 22);
    assert_eq!(ssh.origin(model::SshField::Port), model::Origin::Host);
    assert_eq!(ssh.permit_root_login, PermitRootLogin::No);
    let extra: Vec<(&str, &model::SshdValue, model::Origin)> = ssh
        .extra
        .iter()
        .map(|s| (s.keyword, s.value, s.origin))
        .collect();
    assert_eq!(
        extra,
        [
            (
                "MaxAuthTries",
                &model::SshdValue::Int(5),
                model::Origin::Host
            ),
            (
                "X11Forwarding",
                &model::SshdValue::Bool(false),
                model::Origin::Fleet
            ),
        ]
    );
    assert_eq!(a.host.board.system(), "x86_64-linux");
    let b = fleet.view("b").expect("host b");
    assert_eq!(b.ssh.port.get(), 2222);
    assert_eq!(b.ssh.origin(model::SshField::Port), model::Origin::Fleet);
    assert_eq!(b.deploy.port, 2222);
    let allowed: Vec<&str> = b.ssh.allow_users.iter().map(|u| u.as_str()).collect();
    assert_eq!(allowed, ["root"], "root only");
    for view in [&a, &b] {
        assert_eq!(view.containers.len(), 1, "{}", view.name);
        assert_eq!(view.containers[0].origin, ContainerOrigin::Fleet);
    }
}

#[test]
fn json_inventories_load_and_round_trip() {
    let fleet = model::load_str(EXAMPLE, "fleet.toml").expect("valid").fleet;
    let mut json = serde_json::to_value(&fleet).expect("serialise");
    json["$schema"] = "./schema/fleet.schema.json".into();
    let text = serde_json::to_string_pretty(&json).expect("json");
    let again =
        model::load_str(&text, "fleet.json").expect("the serialised fleet is valid JSON input");
    let mut expected = fleet.clone();
    expected.schema = Some("./schema/fleet.schema.json".into());
    assert_eq!(again.fleet, expected);
}

#[test]
fn errors_carry_path_and_exact_position() {
    let text = "[fleet]\nstate_version = \"26.05\"\n\n[hosts.box]\nboard = \"rpi4\"\naddress = \"10.0.0.2\"\n\n[hosts.box.containers.web]\nimage = \"nginx:1.27\"\nports = [\"80:80\", \"8080:99999\"]\n";
    let ps = problems(text, "f.toml");
    assert_eq!(ps.len(), 1, "{ps:?}");
    assert_eq!(ps[0].code.as_str(), "invalid_port");
    assert_eq!(ps[0].path.to_string(), "hosts.box.containers.web.ports[1]");
    assert_eq!(
        line_col(text, &ps[0]),
        (10, 19),
        "the opening quote of the second mapping"
    );
}

#[test]
fn all_problems_are_reported_at_once_in_source_order() {
    let text = "[fleet]\nstate_version = \"26.05\"\nbogus = 1\n\n[hosts.a]\nboard = \"pi\"\naddress = \"1.2.3.4/8\"\n";
    let ps = problems(text, "f.toml");
    let codes: Vec<&str> = ps.iter().map(|p| p.code.as_str()).collect();
    assert_eq!(codes, ["unknown_field", "invalid_value", "invalid_address"]);
    let lines: Vec<usize> = ps.iter().map(|p| line_col(text, p).0).collect();
    assert_eq!(lines, [3, 6, 7]);
}

#[test]
fn positions_inside_inline_tables_arrays_of_tables_and_dotted_keys() {
    // Positions are found in the text only when a problem asks for one (model::SpanMap): each
    // kind of TOML node has to lead there.
    let text = "[fleet]\nstate_version = \"26.05\"\n\n[hosts.box]\nboard = \"rpi4\"\naddress = \"10.0.0.2\"\nnetwork.dns = [\"1.1.1.1\", \"not-an-ip\"]\ncontainers.web = { image = \"nginx:1.27\", ports = [\"8080:99999\"] }\n\n[[hosts.box.deploy.health]]\nunit = \"no spaces.service\"\n";
    let ps = problems(text, "f.toml");
    let found: Vec<(String, (usize, usize))> = ps
        .iter()
        .map(|p| (p.path.to_string(), line_col(text, p)))
        .collect();
    assert_eq!(
        found,
        [
            ("hosts.box.network.dns[1]".to_owned(), (7, 27)),
            ("hosts.box.containers.web.ports[0]".to_owned(), (8, 51)),
            ("hosts.box.deploy.health[0].unit".to_owned(), (11, 8)),
        ],
        "{ps:?}"
    );
}

#[test]
fn a_date_is_a_value_of_the_wrong_type_not_a_private_field() {
    let text = "[fleet]\nstate_version = 2026-05-01\n";
    let ps = problems(text, "f.toml");
    assert_eq!(ps.len(), 1, "{ps:?}");
    assert_eq!(ps[0].path.to_string(), "fleet.state_version");
    assert!(!ps[0].message.contains("$__toml"), "{}", ps[0].message);
    assert!(ps[0].message.contains("2026-05-01"), "{}", ps[0].message);
    assert_eq!(line_col(text, &ps[0]), (2, 17));
}

#[test]
fn syntax_errors_point_at_the_syntax() {
    let text = "[fleet]\nstate_version = \"26.05\"\n[hosts.a]\nboard = rpi4\n";
    let ps = problems(text, "f.toml");
    assert_eq!(ps[0].code.as_str(), "toml_syntax");
    assert_eq!(line_col(text, &ps[0]).0, 4);
}

#[test]
fn json_without_spans_still_has_paths() {
    let text = r#"{"fleet": {"state_version": "26.05"}, "hosts": {"a": {"board": "rpi4", "address": "10.0.0.1", "users": [7]}}}"#;
    let ps = problems(text, "f.json");
    assert_eq!(ps[0].code.as_str(), "wrong_type");
    assert_eq!(ps[0].path.to_string(), "hosts.a.users[0]");
    let at = ps[0].span.expect("JSON errors have spans too");
    assert_eq!(&text[at.start..at.end], "7");
}

#[test]
fn io_errors_are_not_problems() {
    match model::load("/nonexistent/fleet.toml") {
        Err(LoadError::Read(model::ReadError::Io { shown, .. })) => {
            assert_eq!(shown, "/nonexistent/fleet.toml");
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[test]
fn devices_fifos_and_directories_are_refused_before_reading() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("fleet.toml");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(status.success());
    for (path, kind) in [
        (fifo.as_path(), "a FIFO"),
        (std::path::Path::new("/dev/null"), "a character device"),
        (dir.path(), "a directory"),
    ] {
        match model::load(path) {
            Err(LoadError::Read(model::ReadError::NotAFile { kind: got, .. })) => {
                assert_eq!(got, kind, "{}", path.display());
            }
            other => panic!("{}: expected a refusal, got {other:?}", path.display()),
        }
    }
}

#[test]
fn inventories_over_the_cap_are_refused() {
    let big = vec![b'#'; (model::MAX_INVENTORY_BYTES + 1) as usize];
    match model::read_inventory_from(big.as_slice(), "<stdin>") {
        Err(model::ReadError::TooLarge { shown }) => assert_eq!(shown, "<stdin>"),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("fleet.toml");
    std::fs::write(&file, &big).expect("write");
    assert!(matches!(
        model::read_inventory(&file),
        Err(model::ReadError::TooLarge { .. })
    ));
}

#[test]
fn invalid_utf8_has_a_byte_position() {
    let mut bytes = b"[fleet]\nstate_version = \"26.05\"\nname = \"caf".to_vec();
    bytes.push(0xe9); // Latin-1 é
    bytes.extend_from_slice(b"\"\n");
    match model::load_bytes(&bytes, "fleet.toml") {
        Err(LoadError::Invalid(invalid)) => {
            let p = &invalid.problems[0];
            assert_eq!(p.code.as_str(), "invalid_utf8");
            let span = p.span.expect("a position");
            assert_eq!(span.start, 43); // 8 + 24 + 11 bytes before it
            assert_eq!(invalid.source.line_col(span.start), (3, 12));
            assert!(p.message.contains("byte 43 (0xe9)"), "{}", p.message);
        }
        other => panic!("expected invalid_utf8, got {other:?}"),
    }
}

#[test]
fn duplicate_json_keys_are_errors() {
    let text = r#"{ "fleet": { "state_version": "26.05" }, "hosts": { "pi": { "board": "rpi4", "address": "10.0.0.2", "board": "rpi3" } } }"#;
    match model::load_str(text, "fleet.json") {
        Err(LoadError::Invalid(invalid)) => {
            let p = &invalid.problems[0];
            assert_eq!(p.code.as_str(), "duplicate_key");
            assert_eq!(p.path.to_string(), "hosts.pi.board");
            let span = p.span.expect("a position");
            assert_eq!(&text[span.start..span.end], "\"board\"");
            assert_eq!(span.start, text.rfind("\"board\"").expect("twice"));
        }
        other => panic!("expected duplicate_key, got {other:?}"),
    }
}

/// `allow_unfree = true` would allow every unfree licence at once: refused with a message that
/// says why and what to write, pointing at the value.
#[test]
fn allow_unfree_takes_names_not_true() {
    let text = "[fleet]\nstate_version = \"26.05\"\nallow_unfree = true\n";
    let p = problems(text, "fleet.toml");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].code, model::ProblemCode::WrongType);
    assert!(p[0].message.contains("names"), "{}", p[0].message);
    assert!(
        p[0].help
            .as_deref()
            .is_some_and(|h| h.contains("[\"unrar\"]")),
        "{:?}",
        p[0].help
    );
    assert_eq!(line_col(text, &p[0]), (3, 16));
}

/// A Tailscale key written into the inventory is refused with its own code, not "unknown field",
/// and a key pasted where the secret's name goes is refused by `check` (see crates/check).
#[test]
fn an_inline_tailscale_auth_key_is_refused() {
    let text = "[fleet]\nstate_version = \"26.05\"\n\n[hosts.pi]\nboard = \"rpi4\"\naddress = \"10.0.0.2\"\ntailscale = { auth_key = \"tskey-auth-kXXX\" }\n";
    let p = problems(text, "fleet.toml");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].code, model::ProblemCode::PlaintextAuthKey);
    assert!(
        !p[0].message.contains("tskey-auth-kXXX"),
        "{}",
        p[0].message
    );
    assert_eq!(line_col(text, &p[0]).0, 7);
}

/// Grammars checked while loading, each error pointing at the value written.
#[test]
fn system_strings_are_checked_where_written() {
    let cases = [
        (
            "kernel_params = [\"quiet splash\"]",
            model::ProblemCode::InvalidKernelParam,
        ),
        ("keymap = \"de latin1\"", model::ProblemCode::InvalidKeymap),
        (
            "auto_upgrade = { flake = \"fleet\" }",
            model::ProblemCode::InvalidFlakeRef,
        ),
        (
            "auto_upgrade = { flake = \"github:a/b\", dates = \"daily;x\" }",
            model::ProblemCode::InvalidCalendar,
        ),
        (
            "fail2ban = { ban_time = \"forever\" }",
            model::ProblemCode::InvalidDuration,
        ),
        (
            "tailscale = { advertise_routes = [\"10.1.2.3/8\"] }",
            model::ProblemCode::InvalidCidr,
        ),
        (
            "time = { ntp_servers = [\"ntp:123\"] }",
            model::ProblemCode::InvalidAddress,
        ),
        (
            "tailscale = { advertise_tags = [\"server\"] }",
            model::ProblemCode::InvalidTailscaleTag,
        ),
        (
            "tailscale = { advertise_tags = [\"tag:a,tag:b\"] }",
            model::ProblemCode::InvalidTailscaleTag,
        ),
        (
            "fail2ban = { ignore_ip = [\"home.lan\"] }",
            model::ProblemCode::InvalidIp,
        ),
        (
            "fail2ban = { ignore_ip = [\"10.0.0.0/33\"] }",
            model::ProblemCode::InvalidIp,
        ),
        (
            "swap = { zram_algorithm = \"xz\" }",
            model::ProblemCode::InvalidValue,
        ),
        (
            "storage = { journal = \"auto\" }",
            model::ProblemCode::InvalidValue,
        ),
        (
            "container_backend = \"lxc\"",
            model::ProblemCode::InvalidValue,
        ),
    ];
    for (line, code) in cases {
        let text = format!(
            "[fleet]\nstate_version = \"26.05\"\n\n[hosts.pi]\nboard = \"rpi4\"\naddress = \"10.0.0.2\"\n{line}\n"
        );
        let p = problems(&text, "fleet.toml");
        assert_eq!(p.len(), 1, "{line}: {p:?}");
        assert_eq!(p[0].code, code, "{line}: {p:?}");
        assert_eq!(line_col(&text, &p[0]).0, 7, "{line}: {p:?}");
    }
}
