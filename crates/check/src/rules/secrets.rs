//! Secrets and host identity: who the secrets are encrypted to, and whether every host that reads
//! one can decrypt it during activation.
//!
//! agenix decrypts `secrets/<name>.age` on the host with its SSH host key, before users are created.
//! A secret that is missing, or not encrypted to the host key, fails that activation, and on a
//! headless Wi-Fi board the first boot never reaches the network; so those are errors, found here
//! from the files' headers (which keys a file is encrypted to can be read without decrypting). A
//! file still encrypted to a host or admin that no longer needs it is a warning to rekey.

use keeper::{Item, Keeper, Owner, Status};
use model::{Path, SecretName};

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
    let keeper = Keeper::new(base, ctx.fleet);
    let mut out = Vec::new();
    for entry in keeper.survey() {
        let file = &entry.file;
        let rekey = match &entry.item {
            Some(Item::Secret(name)) => format!("pifleet secrets rekey {name}"),
            Some(Item::HostKey(host)) => format!("pifleet secrets rekey --host-key {host}"),
            None => String::new(),
        };
        // Where to point: the secret's first use, else the admins who hold it.
        let place = match &entry.item {
            Some(Item::Secret(name)) if !entry.readers.is_empty() => first_use(ctx, name),
            _ => Path::root().key("fleet").key("admins"),
        };
        match &entry.status {
            Status::Current => {}
            Status::Missing => {
                let Some(Item::Secret(name)) = &entry.item else {
                    continue;
                };
                out.push(
                    ctx.at_value(
                        Code::SecretFileMissing,
                        place,
                        format!(
                            "the secret `{name}` (read by {}) has no file {file}: activation would fail",
                            join(entry.readers.iter())
                        ),
                    )
                    .help(format!(
                        "write it: `pifleet secrets set {name}` (from standard input, or a prompt)"
                    )),
                );
            }
            Status::Unreadable(why) => out.push(
                ctx.at_key(Code::NotAnAgeFile, Path::root(), format!("{file} cannot be read: {why}"))
                    .help("make it readable, or remove it if it is not a secret"),
            ),
            Status::NotAge(why) => out.push(
                ctx.at_key(Code::NotAnAgeFile, Path::root(), format!("{file} is {why}"))
                    .help(format!(
                        "if it holds a secret in plain text, move it out of the repository now and change the secret; then write it with `pifleet secrets set`{}",
                        if entry.item.is_some() { "" } else { " (only age files belong under secrets/)" }
                    )),
            ),
            Status::Stale { missing, extra } => {
                for owner in missing {
                    let (Owner::Host(host), Some(Item::Secret(name))) = (owner, &entry.item) else {
                        continue;
                    };
                    out.push(
                        ctx.at_value(
                            Code::SecretNotEncryptedForHost,
                            host_path(host).key("host_key"),
                            format!("{file} is not encrypted to the host key of `{host}`, which reads the secret `{name}`: agenix on `{host}` cannot decrypt it, and activation fails"),
                        )
                        .help(format!("re-encrypt it with an admin's key: `{rekey}`")),
                    );
                }
                let admins: Vec<&Owner> = missing
                    .iter()
                    .filter(|m| matches!(m, Owner::Admin(_)))
                    .collect();
                if !admins.is_empty() {
                    out.push(
                        ctx.at_value(
                            Code::SecretNeedsRekey,
                            place.clone(),
                            format!(
                                "{file} is not encrypted to {}: they cannot read or change it",
                                join(admins.iter())
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
                                "{file} is still encrypted to {}, which no longer need{} it",
                                join(extra.iter()),
                                if extra.len() == 1 { "s" } else { "" }
                            ),
                        )
                        .help(format!("`{rekey}`; if a key was lost or stolen, also change the secret itself (`pifleet secrets set`), since its holder could read the old value")),
                    );
                }
            }
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
