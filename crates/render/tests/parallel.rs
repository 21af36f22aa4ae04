//! Large fleets render on every core, each worker taking the next hosts as it goes
//! (`render::render`). What comes out must not depend on that: the same files as rendering each host
//! in a fleet of its own, and, when hosts cannot be rendered, the error of the first of them in
//! order, whichever worker met it first.

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOsayYpasLjJnFWkbxfFaMF7D0BbAlqNvwqypj1yjbxK carol@example";

/// `n` hosts, numbered from 0; `users` names each host's users.
fn fleet(n: usize, users: impl Fn(usize) -> &'static str) -> String {
    let mut text =
        format!("[fleet]\nstate_version = \"26.05\"\n\n[users.carol]\nssh_keys = [\"{KEY}\"]\n");
    for i in 0..n {
        text.push_str(&format!(
            "\n[hosts.h{i:04}]\nboard = \"rpi4\"\naddress = \"10.0.{}.{}\"\nusers = {}\n\
             [hosts.h{i:04}.containers.web]\nimage = \"nginx:1.27\"\nports = [\"{}:80\"]\n",
            i / 250,
            i % 250 + 1,
            users(i),
            8000 + i
        ));
    }
    text
}

fn load(text: &str) -> model::Fleet {
    model::load_str(text, "fleet.toml")
        .unwrap_or_else(|e| panic!("fleet loads: {e:?}"))
        .fleet
}

#[test]
fn a_fleet_renders_to_the_same_files_as_its_hosts_one_by_one() {
    let n = 300;
    let fleet = load(&fleet(n, |_| "[\"carol\"]"));
    let all = render::render(&fleet, "fleet.toml").expect("renders");
    assert_eq!(all.files.len(), n + 1, "one module per host and the index");
    for name in fleet.hosts.keys() {
        let mut alone = fleet.clone();
        alone.hosts.retain(|other, _| other == name);
        let path = std::path::PathBuf::from(name.as_str()).join("default.nix");
        let one = render::render(&alone, "fleet.toml").expect("renders");
        assert_eq!(
            all.files.get(&path),
            one.files.get(&path),
            "{name} differs when rendered with the others"
        );
    }
}

#[test]
fn of_several_hosts_that_cannot_render_the_first_in_order_is_reported() {
    // Hosts 137 and 263 list users the inventory lacks (check reports this before render runs);
    // workers meet them in either order.
    let text = fleet(300, |i| match i {
        137 => "[\"nobody137\"]",
        263 => "[\"nobody263\"]",
        _ => "[\"carol\"]",
    });
    let fleet = load(&text);
    for _ in 0..20 {
        match render::render(&fleet, "fleet.toml") {
            Err(render::Error::UnknownUser { host, user }) => {
                assert_eq!((host.as_str(), user.as_str()), ("h0137", "nobody137"));
            }
            other => panic!("expected the unknown user of h0137, got {other:?}"),
        }
    }
}
