//! Secrets and host identity: who the secrets are encrypted to, and whether every host that reads
//! one can decrypt it during activation.
//!
//! agenix decrypts `secrets/<name>.age` on the host with its SSH host key, before users are created.
//! A secret that is missing, or not encrypted to the host key, fails that activation, and on a
//! headless Wi-Fi board the first boot never reaches the network; so those are errors, found here
//! from the files' headers (which keys a file is encrypted to can be read without decrypting). A
//! file still encrypted to a host or admin that no longer needs it is a warning to rekey.

use std::collections::{BTreeMap, BTreeSet};

use model::{Holder, HostName, Keyring, Path, SECRETS_DIR, Sealed, SecretName};

use crate::codes::Code;
use crate::context::{Context, host_path, user_path};
use crate::diagnostic::Diagnostic;
use crate::rules::{Family, rules};

/// The secrets family.
pub(crate) const FAMILY: Family = Family {
    name: "secrets",
    rules: rules![admins, host_keys, secret_readers, secret_files],
};

/// `[fleet] admins` must name users with a key age can encrypt to.
fn admins(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, admin) in ctx.fleet.fleet.admins.iter().enumerate() {
        let path = Path::root().key("fleet").key("admins").index(i);
        let Some(user) = ctx.fleet.users.get(admin) else {
            out.push(
                ctx.at_value(
                    Code::UnknownAdmin,
                    path,
                    format!("admin `{admin}` is not defined in `users`"),
                )
                .help(format!(
                    "define `[users.{admin}]` with the admin's SSH keys"
                )),
            );
            continue;
        };
        if !user.ssh_keys.iter().any(|k| k.is_age_recipient()) {
            out.push(
                ctx.at_value(
                    Code::AdminKeyUnsupported,
                    path,
                    format!("admin `{admin}` has no ssh-ed25519 or ssh-rsa key, and age can encrypt only to those"),
                )
                .help(format!("add an ed25519 key to `users.{admin}.ssh_keys` (`ssh-keygen -t ed25519`); ECDSA, security keys and agent-only keys cannot be age recipients"))
                .related(user_path(admin), ctx.key_span(&user_path(admin)), "defined here"),
            );
        }
    }
    out
}

/// A host key must be one age can encrypt to.
fn host_keys(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for view in &ctx.hosts {
        if let Some(key) = view.host_key
            && !key.is_age_recipient()
        {
            let name = view.name;
            out.push(
                ctx.at_value(
                    Code::UnsupportedHostKey,
                    host_path(name).key("host_key"),
                    format!("the host key of `{name}` is {}, which age cannot encrypt secrets to", key.algorithm()),
                )
                .help(format!("record the host's ed25519 key: `pifleet hostkey scan {name}` (running) or `pifleet hostkey new {name}` (before flashing)")),
            );
        }
    }
    out
}

/// A host that reads secrets needs a recorded host key, and the fleet needs admins.
fn secret_readers(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut any = false;
    for view in &ctx.hosts {
        let Some(first) = view.secrets.first() else {
            continue;
        };
        any = true;
        if view.host_key.is_none() {
            let name = view.name;
            out.push(
                ctx.at_key(
                    Code::HostKeyMissing,
                    host_path(name),
                    format!("host `{name}` reads the secret `{}`, but has no `host_key`: agenix decrypts with the host's SSH key, so the secrets cannot be encrypted to it", first.name),
                )
                .help(format!("`pifleet hostkey new {name}` before flashing a new card, or `pifleet hostkey scan {name}` for a running machine; then `pifleet secrets rekey`")),
            );
        }
    }
    if any && ctx.fleet.fleet.admins.is_empty() {
        out.push(
            ctx.at_key(
                Code::SecretsWithoutAdmins,
                Path::root().key("fleet"),
                "hosts read secrets, but `[fleet] admins` names nobody: secrets are encrypted to the admins' keys too, or nobody could ever read or change them again",
            )
            .help("add `admins = [\"<your user>\"]` to `[fleet]`"),
        );
    }
    out
}

/// Every file under `secrets/` is ciphertext; every secret a host reads exists, and each is
/// encrypted to exactly the keys the keyring names: its readers' host keys and the admins'.
fn secret_files(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let Some(base) = ctx.base else {
        return Vec::new();
    };
    let ring = Keyring::of(ctx.fleet);
    let known = known_tags(ctx.fleet);
    let mut out = Vec::new();
    for (name, hosts) in ring.secrets() {
        let sealed = Sealed::Secret(name);
        let file = base.join(sealed.file());
        if !file.exists() {
            out.push(
                ctx.at_value(
                    Code::SecretFileMissing,
                    first_use(ctx, name),
                    format!(
                        "the secret `{name}` (read by {}) has no file {}: activation would fail",
                        join(hosts.iter()),
                        sealed.file()
                    ),
                )
                .help(format!(
                    "write it: `pifleet secrets set {name}` (from standard input, or a prompt)"
                )),
            );
        }
    }
    for (relative, sealed) in files_under(&base.join(SECRETS_DIR)) {
        let shown = format!("{SECRETS_DIR}/{relative}");
        let bytes = match std::fs::read(base.join(&shown)) {
            Ok(bytes) => bytes,
            Err(e) => {
                out.push(
                    ctx.at_key(
                        Code::NotAnAgeFile,
                        Path::root(),
                        format!("{shown} cannot be read: {e}"),
                    )
                    .help("make it readable, or remove it if it is not a secret"),
                );
                continue;
            }
        };
        let in_file = match vault::recipients(&bytes) {
            Ok(found) => found,
            Err(e) => {
                out.push(
                    ctx.at_key(Code::NotAnAgeFile, Path::root(), format!("{shown} is {e}"))
                        .help(format!("if it holds a secret in plain text, move it out of the repository now and change the secret; then write it with `pifleet secrets set`{}", if sealed.is_some() { "" } else { " (only age files belong under secrets/)" })),
                );
                continue;
            }
        };
        let Some(sealed) = sealed else { continue };
        out.extend(compare(ctx, &ring, &known, sealed, &shown, &in_file));
    }
    out
}

/// Where a file's recipients differ from the keyring's.
fn compare(
    ctx: &Context<'_>,
    ring: &Keyring<'_>,
    known: &BTreeMap<vault::Tag, String>,
    sealed: Owned,
    shown: &str,
    in_file: &[vault::FileRecipient],
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let wanted = match &sealed {
        Owned::Secret(name) => ring.recipients(Sealed::Secret(name)),
        Owned::HostKey(host) => ring.recipients(Sealed::HostKey(host)),
    };
    let rekey = match &sealed {
        Owned::Secret(name) => format!("pifleet secrets rekey {name}"),
        Owned::HostKey(host) => format!("pifleet secrets rekey --host-key {host}"),
    };
    let has = |tag: vault::Tag| in_file.iter().any(|r| r.tag == tag);
    let mut admins_missing = Vec::new();
    for wanted_key in &wanted.keys {
        if has(vault::tag_of(wanted_key.key.key())) {
            continue;
        }
        match wanted_key.holder {
            Holder::Host(host) => {
                let Owned::Secret(name) = &sealed else {
                    continue;
                };
                out.push(
                    ctx.at_value(
                        Code::SecretNotEncryptedForHost,
                        host_path(host).key("host_key"),
                        format!("{shown} is not encrypted to the host key of `{host}`, which reads the secret `{name}`: agenix on `{host}` cannot decrypt it, and activation fails"),
                    )
                    .help(format!("re-encrypt it with an admin's key: `{rekey}`")),
                );
            }
            Holder::Admin(user) => admins_missing.push(user),
        }
    }
    admins_missing.dedup();
    let expected: BTreeSet<vault::Tag> = wanted
        .keys
        .iter()
        .map(|k| vault::tag_of(k.key.key()))
        .collect();
    let extra: Vec<String> = in_file
        .iter()
        .filter(|r| !expected.contains(&r.tag))
        .map(|r| {
            known
                .get(&r.tag)
                .cloned()
                .unwrap_or_else(|| format!("an unknown {r}"))
        })
        .collect();
    let place = match &sealed {
        Owned::Secret(name) if !ring.readers(name).is_empty() => first_use(ctx, name),
        _ => Path::root().key("fleet").key("admins"),
    };
    if !admins_missing.is_empty() {
        out.push(
            ctx.at_value(
                Code::SecretNeedsRekey,
                place.clone(),
                format!(
                    "{shown} is not encrypted to admin {}: they cannot read or change it",
                    join(admins_missing.iter().map(|u| format!("`{u}`")))
                ),
            )
            .help(format!("`{rekey}` (run by an admin who can decrypt it)")),
        );
    }
    if !extra.is_empty() {
        out.push(
            ctx.at_value(
                Code::SecretNeedsRekey,
                place,
                format!(
                    "{shown} is still encrypted to {}, which no longer need{} it",
                    join(extra.iter()),
                    if extra.len() == 1 { "s" } else { "" }
                ),
            )
            .help(format!("`{rekey}`; if a key was lost or stolen, also change the secret itself (`pifleet secrets set`), since its holder could read the old value")),
        );
    }
    out
}

/// A file under `secrets/` the keyring knows how to judge (owned names, as read from disk).
enum Owned {
    Secret(SecretName),
    HostKey(HostName),
}

/// Every regular file under `dir` (one level of subdirectories), relative to it, with what it
/// is when its name follows the layout: `NAME.age`, `host-keys/HOST.age`. Hidden files and
/// READMEs are skipped, in name order.
fn files_under(dir: &std::path::Path) -> Vec<(String, Option<Owned>)> {
    let mut out = Vec::new();
    let list = |d: &std::path::Path| -> Vec<(String, bool)> {
        let Ok(entries) = std::fs::read_dir(d) else {
            return Vec::new();
        };
        let mut names: Vec<(String, bool)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let is_dir = e.file_type().ok()?.is_dir();
                let skip = name.starts_with('.') || name.to_ascii_lowercase().starts_with("readme");
                (!skip).then_some((name, is_dir))
            })
            .collect();
        names.sort();
        names
    };
    for (name, is_dir) in list(dir) {
        if is_dir {
            for (inner, inner_dir) in list(&dir.join(&name)) {
                if inner_dir {
                    continue;
                }
                let owned = (name == "host-keys")
                    .then(|| inner.strip_suffix(".age"))
                    .flatten()
                    .and_then(|h| HostName::new(h).ok())
                    .map(Owned::HostKey);
                out.push((format!("{name}/{inner}"), owned));
            }
            continue;
        }
        let owned = name
            .strip_suffix(".age")
            .and_then(|n| SecretName::new(n).ok())
            .map(Owned::Secret);
        out.push((name, owned));
    }
    out
}

/// Who holds each key the fleet knows, by tag, to name the keys a file should no longer have.
fn known_tags(fleet: &model::Fleet) -> BTreeMap<vault::Tag, String> {
    let mut out = BTreeMap::new();
    for (name, user) in &fleet.users {
        for key in &user.ssh_keys {
            out.entry(vault::tag_of(key.key()))
                .or_insert_with(|| format!("a key of user `{name}`"));
        }
    }
    for (name, host) in &fleet.hosts {
        if let Some(key) = &host.host_key {
            out.entry(vault::tag_of(key.key()))
                .or_insert_with(|| format!("the host key of `{name}`"));
        }
    }
    out
}

/// `a, b and c`.
fn join<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let items: Vec<String> = items.map(|i| i.to_string()).collect();
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// Where the inventory first names the secret `name`, for pointing at it.
fn first_use(ctx: &Context<'_>, name: &SecretName) -> Path {
    for (host_name, host) in &ctx.fleet.hosts {
        if let Some(wifi) = &host.wifi
            && wifi.psk_secret.as_ref() == Some(name)
        {
            return host_path(host_name).key("wifi").key("psk_secret");
        }
        for (cname, c) in &host.containers {
            if let Some(i) = c.environment_secrets.iter().position(|s| s == name) {
                let path = host_path(host_name)
                    .key("containers")
                    .key(cname.as_str())
                    .key("environment_secrets")
                    .index(i);
                return path;
            }
        }
    }
    for (cname, c) in &ctx.fleet.containers {
        if let Some(i) = c.environment_secrets.iter().position(|s| s == name) {
            let path = Path::root()
                .key("containers")
                .key(cname.as_str())
                .key("environment_secrets")
                .index(i);
            return path;
        }
    }
    for (user_name, user) in &ctx.fleet.users {
        if user.hashed_password_secret.as_ref() == Some(name) {
            return user_path(user_name).key("hashed_password_secret");
        }
    }
    Path::root()
}
