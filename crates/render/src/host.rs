//! One host's entry module, `hosts/<name>/default.nix`.
//!
//! The module holds the host's data and nothing else: board profiles, SD image wiring and
//! headless defaults live in the hand-written flake library (`nix/`), which imports this module.
//! Every option set here follows shared/REFERENCE.md ("NixOS option facts"): booleans where
//! sshd settings take booleans, `backend = "docker"` for containers, no `useDHCP` next to
//! NetworkManager, secrets only as file paths.
//!
//! Sections are emitted in a fixed order with a comment each, so a reviewer reading a diff of
//! generated files sees which part of the host changed.

use std::net::IpAddr;

use model::{
    AddressMode, ContainerBackend, HostView, JournalStorage, NetworkManagerKind, Restart, Sealed,
    SettingValue, Shell, SudoRight, TmpStorage, UserName,
};
use nixgen::{AttrPath, AttrSet, Expr, make};

use crate::Error;

/// The entry module of one host, written from its resolved view: every policy decision (which
/// sshd settings, which ports, which containers) was made there, and this module only spells it.
pub(crate) fn module(view: &HostView<'_>) -> Result<Expr, Error> {
    let mut body = AttrSet::new();
    imports(&mut body, view);
    identity(&mut body, view);
    users(&mut body, view)?;
    secrets(&mut body, view);
    ssh(&mut body, view);
    network(&mut body, view);
    firewall(&mut body, view);
    services(&mut body, view);
    containers(&mut body, view);
    packages(&mut body, view);
    nix(&mut body, view);
    upgrades(&mut body, view);
    system(&mut body, view);
    swap(&mut body, view);
    monitoring(&mut body, view);
    Ok(make::module(Expr::attrs(body)))
}

/// `config.age.secrets.<name>.path`: where agenix puts the decrypted secret on the host.
fn secret_path(name: &str) -> Expr {
    Expr::select(
        Expr::var("config"),
        AttrPath::dotted("age.secrets").then(name).then("path"),
    )
}

/// The secrets the host decrypts during activation (agenix, with its SSH host key): the ciphertext
/// from the repository ([`Sealed::file`]), two levels above the entry module; only ciphertext
/// ever reaches the Nix store.
fn secrets(body: &mut AttrSet, view: &HostView<'_>) {
    let files = view.secret_files();
    if files.is_empty() {
        return;
    }
    section(
        body,
        "Secrets: decrypted on the host by agenix with its SSH host key; the store holds ciphertext only",
    );
    for file in files {
        body.set(
            AttrPath::dotted("age.secrets").then(file.name.as_str()),
            AttrSet::new()
                .with(
                    "file",
                    Expr::path(format!("../../{}", Sealed::Secret(file.name).file())),
                )
                .with("owner", file.owner)
                .with("group", file.group)
                .with("mode", file.mode),
        );
    }
}

fn section(body: &mut AttrSet, title: &str) {
    body.blank();
    body.comment(title);
}

fn strings<'a>(items: impl IntoIterator<Item = &'a str>) -> Expr {
    Expr::list(items.into_iter().map(Expr::string))
}

/// The machine's hardware configuration next to the entry module (`hardware_config`, written by
/// `pifleet adopt`, never by `gen`), then the hand-written modules listed in the inventory,
/// relative to the repository root; the entry module sits two levels down, in `hosts/<name>/`.
fn imports(body: &mut AttrSet, view: &HostView<'_>) {
    let host = view.host;
    let hardware = host.hardware_config.then(|| Expr::path("./hardware.nix"));
    let modules = host
        .modules
        .iter()
        .map(|m| Expr::path(format!("../../{}", m.trim_start_matches("./"))));
    let paths: Vec<Expr> = hardware.into_iter().chain(modules).collect();
    if paths.is_empty() {
        return;
    }
    body.set("imports", Expr::list(paths));
}

fn identity(body: &mut AttrSet, view: &HostView<'_>) {
    section(body, "Identity");
    body.set("networking.hostName", view.name.as_str());
    body.set("time.timeZone", view.time_zone);
    body.set("i18n.defaultLocale", view.locale);
    body.set("system.stateVersion", view.state_version.as_str());
    if let Some(keymap) = view.keymap {
        body.set("console.keyMap", keymap.as_str());
    }
}

fn users(body: &mut AttrSet, view: &HostView<'_>) -> Result<(), Error> {
    section(
        body,
        "Users: declared here only; passwords come from hashes or files",
    );
    body.set("users.mutableUsers", false);
    if let Some(user) = view.unknown_users.first() {
        return Err(Error::UnknownUser {
            host: view.name.to_string(),
            user: user.to_string(),
        });
    }
    let mut nopasswd: Vec<&UserName> = Vec::new();
    for account in &view.accounts {
        let user = account.user;
        let mut set = AttrSet::new().with("isNormalUser", true);
        if let Some(description) = &user.description {
            set.set("description", description.as_str());
        }
        if let Some(uid) = user.uid {
            set.set("uid", uid);
        }
        if !account.groups.is_empty() {
            set.set("extraGroups", strings(account.groups.iter().copied()));
        }
        if account.sudo == SudoRight::NoPassword {
            nopasswd.push(account.name);
        }
        match user.shell {
            Shell::Bash => {}
            Shell::Zsh => {
                set.set("shell", make::package("zsh"));
            }
            Shell::Fish => {
                set.set("shell", make::package("fish"));
            }
        }
        if let Some(hash) = &user.hashed_password {
            set.set("hashedPassword", hash.as_str());
        }
        if let Some(secret) = &user.hashed_password_secret {
            set.set("hashedPasswordFile", secret_path(secret.as_str()));
        }
        if let Some(file) = &user.hashed_password_file {
            set.set("hashedPasswordFile", file.as_str());
        }
        if !account.keys().is_empty() {
            set.set(
                "openssh.authorizedKeys.keys",
                strings(account.keys().iter().map(|k| k.as_str())),
            );
        }
        body.set(
            AttrPath::dotted("users.users").then(account.name.as_str()),
            set,
        );
    }
    if view.ssh.root_keys_installed() {
        body.set(
            "users.users.root.openssh.authorizedKeys.keys",
            strings(view.ssh.root_keys.iter().map(|k| k.as_str())),
        );
    }
    let uses = |shell: Shell| view.accounts.iter().any(|a| a.user.shell == shell);
    if uses(Shell::Zsh) {
        body.set("programs.zsh.enable", true);
    }
    if uses(Shell::Fish) {
        body.set("programs.fish.enable", true);
    }
    body.set("security.sudo.wheelNeedsPassword", true);
    if !nopasswd.is_empty() {
        let rule = AttrSet::new()
            .with("users", strings(nopasswd.iter().map(|u| u.as_str())))
            .with(
                "commands",
                Expr::list([Expr::attrs(
                    AttrSet::new()
                        .with("command", "ALL")
                        .with("options", strings(["NOPASSWD"])),
                )]),
            );
        body.set("security.sudo.extraRules", Expr::list([Expr::attrs(rule)]));
    }
    Ok(())
}

fn ssh(body: &mut AttrSet, view: &HostView<'_>) {
    section(
        body,
        "SSH: hardened, keys only unless the inventory says otherwise",
    );
    let policy = &view.ssh;
    let settings: AttrSet = policy
        .settings()
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                SettingValue::Bool(b) => Expr::bool(b),
                SettingValue::Int(i) => Expr::int(i),
                SettingValue::Str(s) => Expr::string(s.as_ref()),
                SettingValue::List(items) => strings(items.iter().map(AsRef::as_ref)),
            };
            (AttrPath::key(key.as_ref()), value)
        })
        .collect();
    body.set(
        "services.openssh",
        AttrSet::new()
            .with("enable", policy.enable)
            .with("ports", Expr::list([Expr::from(policy.port.get())]))
            .with("openFirewall", policy.open_firewall)
            .with("authorizedKeysInHomedir", policy.authorized_keys_in_homedir)
            .with("settings", settings),
    );
}

fn network(body: &mut AttrSet, view: &HostView<'_>) {
    let (name, host) = (view.name, view.host);
    section(body, "Network");
    let net = &host.network;
    let manager = net.manager;
    if manager == NetworkManagerKind::NetworkManager {
        body.set("networking.networkmanager.enable", true);
    } else {
        body.set("networking.useNetworkd", true);
    }
    match net.mode {
        AddressMode::Dhcp => {
            // NetworkManager turns off useDHCP itself; setting it as well would conflict.
            if manager == NetworkManagerKind::Networkd {
                body.set("networking.useDHCP", true);
            }
        }
        AddressMode::Static => {
            if manager == NetworkManagerKind::Networkd {
                body.set("networking.useDHCP", false);
            }
            let interface = net
                .interface
                .as_deref()
                .unwrap_or(host.board.default_interface());
            if manager == NetworkManagerKind::NetworkManager {
                // Otherwise NetworkManager runs DHCP on the interface over the static address.
                body.set("networking.networkmanager.unmanaged", strings([interface]));
            }
            if let Some(cidr) = &net.address {
                let family = if cidr.address.is_ipv4() {
                    "ipv4"
                } else {
                    "ipv6"
                };
                let address = AttrSet::new()
                    .with("address", cidr.address.to_string())
                    .with("prefixLength", i64::from(cidr.prefix));
                body.set(
                    AttrPath::dotted("networking.interfaces")
                        .then(interface)
                        .then(family)
                        .then("addresses"),
                    Expr::list([Expr::attrs(address)]),
                );
            }
            if let Some(gateway) = &net.gateway {
                let option = match gateway.0 {
                    IpAddr::V4(_) => "networking.defaultGateway",
                    IpAddr::V6(_) => "networking.defaultGateway6",
                };
                body.set(
                    AttrPath::dotted(option),
                    AttrSet::new()
                        .with("address", gateway.to_string())
                        .with("interface", interface),
                );
            }
        }
    }
    if !net.dns.is_empty() {
        let dns: Vec<String> = net.dns.iter().map(ToString::to_string).collect();
        body.set(
            "networking.nameservers",
            strings(dns.iter().map(String::as_str)),
        );
    }
    if let Some(wifi) = &host.wifi {
        // The passphrase file: the decrypted secret, or a file the user placed on the host.
        let file = match (&wifi.psk_secret, &wifi.secrets_file) {
            (Some(secret), _) => secret_path(secret.as_str()),
            (None, Some(file)) => Expr::string(file.as_str()),
            (None, None) => return,
        };
        body.comment(
            "Wi-Fi: the passphrase stays in a file on the host that only its reader may read, never in the Nix store",
        );
        if manager == NetworkManagerKind::NetworkManager {
            let profile = AttrSet::new()
                .with(
                    "connection",
                    AttrSet::new()
                        .with("id", wifi.ssid.as_str())
                        .with("type", "wifi"),
                )
                .with(
                    "wifi",
                    AttrSet::new()
                        .with("ssid", wifi.ssid.as_str())
                        .with("mode", "infrastructure"),
                )
                .with(
                    AttrPath::key("wifi-security"),
                    AttrSet::new()
                        .with(AttrPath::key("key-mgmt"), "wpa-psk")
                        .with("psk", format!("${}", wifi.psk_name)),
                )
                .with("ipv4.method", "auto")
                .with("ipv6.method", "auto");
            body.set(
                "networking.networkmanager.ensureProfiles",
                AttrSet::new()
                    .with("environmentFiles", Expr::list([file]))
                    .with(
                        AttrPath::key("profiles").then(format!("{name}-wifi")),
                        profile,
                    ),
            );
        } else {
            body.set(
                "networking.wireless",
                AttrSet::new()
                    .with("enable", true)
                    .with("secretsFile", file)
                    .with(
                        AttrPath::key("networks")
                            .then(wifi.ssid.as_str())
                            .then("pskRaw"),
                        format!("ext:{}", wifi.psk_name),
                    ),
            );
        }
    }
}

fn firewall(body: &mut AttrSet, view: &HostView<'_>) {
    section(
        body,
        "Firewall: on unless the inventory turns it off; SSH is opened by services.openssh",
    );
    let firewall = &view.firewall;
    let mut set = AttrSet::new().with("enable", firewall.enable);
    if !firewall.tcp.is_empty() {
        set.set(
            "allowedTCPPorts",
            Expr::list(firewall.tcp.iter().copied().map(Expr::from)),
        );
    }
    if !firewall.udp.is_empty() {
        set.set(
            "allowedUDPPorts",
            Expr::list(firewall.udp.iter().copied().map(Expr::from)),
        );
    }
    if !firewall.trusted_interfaces.is_empty() {
        set.set(
            "trustedInterfaces",
            strings(firewall.trusted_interfaces.iter().map(String::as_str)),
        );
    }
    if let Some(ping) = firewall.allow_ping {
        set.set("allowPing", ping);
    }
    body.set("networking.firewall", set);
}

/// Tailscale, mDNS, fail2ban and time servers. Ports these services would open themselves are
/// in the firewall section already (the view owns them), so their own `openFirewall` stays off.
fn services(body: &mut AttrSet, view: &HostView<'_>) {
    let host = view.host;
    let fail2ban = view.fail2ban;
    let ntp = host.time.as_ref().filter(|t| !t.ntp_servers.is_empty());
    if view.tailscale.is_none() && !view.mdns && fail2ban.is_none() && ntp.is_none() {
        return;
    }
    section(
        body,
        "Services; the ports they need are opened in the firewall section",
    );
    if let Some(ts) = &view.tailscale {
        let mut set = AttrSet::new()
            .with("enable", true)
            .with("openFirewall", false);
        if let Some(secret) = ts.auth_key_secret {
            set.set("authKeyFile", secret_path(secret.as_str()));
        }
        if let Some(routing) = ts.routing.as_option() {
            set.set("useRoutingFeatures", routing);
        }
        // `up` flags apply when the host first logs in with its key; `set` applies them again at
        // every activation, so a change in the inventory reaches a node that is logged in already.
        // Tags are `up` flags only: `tailscale set` refuses `--advertise-tags` (a node's tags change
        // with a new login, or in the admin console).
        let up = ts.up_flags();
        if !ts.advertise_tags.is_empty() {
            set.comment(
                "Tags at the first login only: `tailscale set` does not take --advertise-tags (retag a logged-in host in the admin console)",
            );
        }
        if !up.is_empty() {
            set.set("extraUpFlags", strings(up.iter().map(String::as_str)));
        }
        let set_flags = ts.set_flags();
        if !set_flags.is_empty() {
            set.set(
                "extraSetFlags",
                strings(set_flags.iter().map(String::as_str)),
            );
        }
        body.set("services.tailscale", set);
    }
    if view.mdns {
        body.set(
            "services.avahi",
            AttrSet::new()
                .with("enable", true)
                .with("nssmdns4", true)
                .with("openFirewall", false)
                .with(
                    "publish",
                    AttrSet::new().with("enable", true).with("addresses", true),
                ),
        );
    }
    if let Some(f) = fail2ban {
        // The module's top-level options; it writes them into the DEFAULT jail itself.
        let mut set = AttrSet::new().with("enable", true);
        if let Some(n) = f.max_retry {
            set.set("maxretry", n);
        }
        if let Some(t) = &f.ban_time {
            set.set("bantime", t.as_str());
        }
        if !f.ignore_ip.is_empty() {
            // The module joins the list with spaces into the DEFAULT jail's `ignoreip` line, after
            // loopback; the checked type holds no space or newline to break that line.
            let ignored: Vec<String> = f.ignore_ip.iter().map(ToString::to_string).collect();
            set.set("ignoreIP", strings(ignored.iter().map(String::as_str)));
        }
        if f.bantime_increment {
            set.set("bantime-increment.enable", true);
        }
        body.set("services.fail2ban", set);
    }
    if let Some(time) = ntp {
        // timesyncd (and chrony or ntpd, if a module swaps them in) read this list.
        body.set(
            "networking.timeServers",
            strings(time.ntp_servers.iter().map(|s| s.as_str())),
        );
    }
}

/// `system.autoUpgrade`: the host pulls its own configuration (`<flake>#<host>`) on a timer.
fn upgrades(body: &mut AttrSet, view: &HostView<'_>) {
    let Some(upgrade) = &view.auto_upgrade else {
        return;
    };
    section(
        body,
        "Upgrades: the host rebuilds itself from the fleet's flake on a timer",
    );
    body.set(
        "system.autoUpgrade",
        AttrSet::new()
            .with("enable", true)
            .with("flake", upgrade.flake.as_str())
            .with("dates", upgrade.settings.dates.as_str())
            .with("allowReboot", upgrade.settings.allow_reboot),
    );
}

/// The kernel command line and what spares the SD card.
fn system(body: &mut AttrSet, view: &HostView<'_>) {
    let host = view.host;
    let storage = host.storage.as_ref();
    let journal = storage.and_then(|s| s.journal);
    let noatime = storage.is_some_and(|s| s.noatime);
    let tmp = storage.and_then(|s| s.tmp);
    if host.kernel_params.is_empty() && journal.is_none() && !noatime && tmp.is_none() {
        return;
    }
    section(body, "System: kernel command line and storage");
    if !host.kernel_params.is_empty() {
        body.set(
            "boot.kernelParams",
            strings(host.kernel_params.iter().map(|p| p.as_str())),
        );
    }
    if let Some(journal) = journal {
        body.set(
            "services.journald.storage",
            match journal {
                JournalStorage::Volatile => "volatile",
                JournalStorage::Persistent => "persistent",
            },
        );
    }
    if noatime {
        // A list: it merges with the options other modules give the root file system.
        body.set(
            AttrPath::dotted("fileSystems").then("/").then("options"),
            strings(["noatime"]),
        );
    }
    if let Some(tmp) = tmp {
        body.set("boot.tmp.useTmpfs", tmp == TmpStorage::Tmpfs);
    }
}

fn containers(body: &mut AttrSet, view: &HostView<'_>) {
    let containers = &view.containers;
    if containers.is_empty() {
        return;
    }
    let backend = view.container_backend;
    match backend {
        ContainerBackend::Docker => {
            section(
                body,
                "Containers, run by Docker through virtualisation.oci-containers",
            );
            body.set(
                "virtualisation.docker",
                AttrSet::new()
                    .with("enable", true)
                    .with("autoPrune.enable", true),
            );
        }
        ContainerBackend::Podman => {
            section(
                body,
                "Containers, run by Podman through virtualisation.oci-containers",
            );
            body.set(
                "virtualisation.podman",
                AttrSet::new()
                    .with("enable", true)
                    .with("autoPrune.enable", true),
            );
        }
    }
    body.set("virtualisation.oci-containers.backend", backend.as_str());
    for hc in containers {
        let c = &hc.container;
        let mut set = AttrSet::new().with("image", c.image.to_string());
        if !c.ports.is_empty() {
            let ports: Vec<String> = c.ports.iter().map(ToString::to_string).collect();
            set.set("ports", strings(ports.iter().map(String::as_str)));
        }
        if !c.volumes.is_empty() {
            set.set("volumes", strings(c.volumes.iter().map(|v| v.as_str())));
        }
        if !c.environment.is_empty() {
            set.set(
                "environment",
                c.environment
                    .iter()
                    .map(|(k, v)| (AttrPath::key(k.as_str()), Expr::string(v.as_str())))
                    .collect::<AttrSet>(),
            );
        }
        if !c.environment_files.is_empty() || !c.environment_secrets.is_empty() {
            let files = c.environment_files.iter().map(|f| Expr::string(f.as_str()));
            let secrets = c
                .environment_secrets
                .iter()
                .map(|s| secret_path(s.as_str()));
            set.set("environmentFiles", Expr::list(files.chain(secrets)));
        }
        if let Some(command) = &c.command {
            set.set("cmd", strings(command.iter().map(String::as_str)));
        }
        if let Some(entrypoint) = &c.entrypoint {
            set.set("entrypoint", entrypoint.as_str());
        }
        if let Some(user) = &c.user {
            set.set("user", user.as_str());
        }
        if !c.depends_on.is_empty() {
            set.set(
                "dependsOn",
                strings(c.depends_on.iter().map(|d| d.as_str())),
            );
        }
        if !c.labels.is_empty() {
            set.set(
                "labels",
                c.labels
                    .iter()
                    .map(|(k, v)| (AttrPath::key(k.as_str()), Expr::string(v.as_str())))
                    .collect::<AttrSet>(),
            );
        }
        let mut options: Vec<&str> = c.extra_options.iter().map(String::as_str).collect();
        if c.privileged {
            options.push("--privileged");
        }
        if !options.is_empty() {
            set.set("extraOptions", strings(options));
        }
        set.set("autoStart", c.auto_start);
        body.set(
            AttrPath::dotted("virtualisation.oci-containers.containers").then(hc.name.as_str()),
            set,
        );
        // oci-containers runs each container as a systemd unit that restarts always; other
        // policies go on the unit, where systemd (not the engine) applies them.
        let policy = match c.restart {
            // systemd never restarts a unit stopped on purpose, so Restart=always already is
            // Docker's unless-stopped.
            Restart::Always | Restart::UnlessStopped => None,
            Restart::OnFailure => Some("on-failure"),
            Restart::No => Some("no"),
        };
        if let Some(policy) = policy {
            body.set(
                AttrPath::dotted("systemd.services")
                    .then(backend.unit(hc.name.as_str()))
                    .then("serviceConfig")
                    .then("Restart"),
                make::mk_force(Expr::string(policy)),
            );
        }
    }
}

fn packages(body: &mut AttrSet, view: &HostView<'_>) {
    let host = view.host;
    if host.packages.is_empty() {
        return;
    }
    section(body, "Packages");
    body.set(
        "environment.systemPackages",
        make::packages(host.packages.iter().map(String::as_str)),
    );
}

fn nix(body: &mut AttrSet, view: &HostView<'_>) {
    section(
        body,
        "Nix: the deploy user must be trusted to receive store paths",
    );
    let nix = &view.nix;
    if nix.flakes {
        body.set(
            "nix.settings.experimental-features",
            strings(["nix-command", "flakes"]),
        );
    }
    body.set(
        "nix.settings.trusted-users",
        strings(nix.trusted_users.iter().copied()),
    );
    if !nix.substituters.is_empty() {
        body.set(
            "nix.settings.substituters",
            strings(nix.substituters.iter().map(|s| s.as_str())),
        );
    }
    if !nix.trusted_public_keys.is_empty() {
        body.set(
            "nix.settings.trusted-public-keys",
            strings(nix.trusted_public_keys.iter().map(|k| k.as_str())),
        );
    }
    if nix.optimise {
        body.set("nix.optimise.automatic", true);
    }
    if !view.allow_unfree.is_empty() {
        // Defined once per host: nixpkgs.config does not merge two predicates, one would win.
        let name = Expr::apply(
            Expr::select(Expr::var("lib"), AttrPath::key("getName")),
            Expr::var("pkg"),
        );
        let elem = Expr::apply(
            Expr::apply(
                Expr::select(Expr::var("builtins"), AttrPath::key("elem")),
                name,
            ),
            strings(view.allow_unfree.iter().map(|p| p.as_str())),
        );
        body.set(
            "nixpkgs.config.allowUnfreePredicate",
            Expr::function("pkg", elem),
        );
    }
    if nix.gc.enable {
        body.set(
            "nix.gc",
            AttrSet::new()
                .with("automatic", true)
                .with("dates", nix.gc.dates.as_str())
                .with(
                    "options",
                    format!("--delete-older-than {}", nix.gc.delete_older_than),
                ),
        );
    }
}

fn swap(body: &mut AttrSet, view: &HostView<'_>) {
    let swap = &view.host.swap;
    if !swap.zram && swap.file_size_mb.is_none() && swap.zram_algorithm.is_none() {
        return;
    }
    section(body, "Swap");
    let mut zram = AttrSet::new();
    if swap.zram {
        zram.set("enable", true);
        if let Some(percent) = swap.zram_percent {
            zram.set("memoryPercent", i64::from(percent));
        }
    }
    // Also without `zram = true`: the Pi 3 and Zero 2 W profiles turn zram on by themselves.
    if let Some(algorithm) = swap.zram_algorithm {
        zram.set("algorithm", algorithm.as_str());
    }
    if !zram.is_empty() {
        body.set("zramSwap", zram);
    }
    if let Some(size) = swap.file_size_mb {
        body.set(
            "swapDevices",
            Expr::list([Expr::attrs(
                AttrSet::new()
                    .with("device", "/var/lib/swapfile")
                    .with("size", size),
            )]),
        );
    }
}

fn monitoring(body: &mut AttrSet, view: &HostView<'_>) {
    let host = view.host;
    if !host.monitoring.node_exporter {
        return;
    }
    section(body, "Monitoring");
    body.set(
        "services.prometheus.exporters.node",
        AttrSet::new()
            .with("enable", true)
            .with("port", host.monitoring.node_exporter_port.get())
            .with("openFirewall", false),
    );
}
