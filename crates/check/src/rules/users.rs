//! Users and their keys: references to users, the deploy user's account and sudo, passwords, keys
//! shared or repeated, and group names.

use std::collections::{BTreeMap, HashMap};

use model::{Path, Sudo, SudoRight, UserName};

use crate::codes::Code;
use crate::context::{Context, host_path, user_path};
use crate::diagnostic::Diagnostic;
use crate::rules::{Family, rules};

/// The users-and-keys family.
pub(crate) const FAMILY: Family = Family {
    name: "users and keys",
    rules: rules![
        user_references,
        deploy_user,
        user_accounts,
        ssh_keys,
        group_names,
        deploy_sudo,
        sudo_accounts,
        empty_passwords,
        passwordless_sudo,
        password_hashes,
        user_ids,
    ],
};

/// `hosts.*.users` and `allow_users` must name users defined in `users`.
fn user_references(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let fleet = ctx.fleet;
    let mut out = Vec::new();
    let known: Vec<&str> = fleet.users.keys().map(UserName::as_str).collect();
    let help_for = |name: &str| {
        if known.is_empty() {
            format!("define it with a `[users.{name}]` table")
        } else {
            format!(
                "define `[users.{name}]`, or use one of: {}",
                known.join(", ")
            )
        }
    };
    for (host_name, host) in &fleet.hosts {
        for (i, user) in host.users.iter().enumerate() {
            if user.is_root() {
                out.push(
                    ctx.at_value(
                        Code::RootInUsers,
                        host_path(host_name).key("users").index(i),
                        "root is not a user to list: it always exists",
                    )
                    .help("remove it; root's keys go in `ssh.root_keys`"),
                );
            } else if !fleet.users.contains_key(user) {
                out.push(
                    ctx.at_value(
                        Code::UnknownUser,
                        host_path(host_name).key("users").index(i),
                        format!("host `{host_name}` lists user `{user}`, which is not defined in `users`"),
                    )
                    .help(help_for(user.as_str())),
                );
            }
        }
        if let Some(allow) = host.ssh.as_ref().and_then(|s| s.allow_users.as_ref()) {
            let base = host_path(host_name).key("ssh").key("allow_users");
            // Only plain names can be checked: a pattern (`admin*`, `ops@10.0.0.*`) may match anyone.
            for (i, user) in allow.iter().enumerate() {
                let Some(name) = user.as_user_name() else {
                    continue;
                };
                let present = name == "root"
                    || host.users.iter().any(|u| u.as_str() == name)
                    || host.deploy.user.as_str() == name;
                if !present {
                    out.push(
                        ctx.at_value(
                            Code::UnknownUser,
                            base.index(i),
                            format!("`allow_users` names `{user}`, which is not a user of host `{host_name}`"),
                        )
                        .help(format!("add `{user}` to `hosts.{host_name}.users`, or remove it here")),
                    );
                }
            }
        }
    }
    if let Some(allow) = &fleet.ssh.allow_users {
        for (i, user) in allow.iter().enumerate() {
            let Some(name) = user.as_user_name() else {
                continue;
            };
            if name != "root" && !fleet.users.contains_key(name) {
                out.push(
                    ctx.at_value(
                        Code::UnknownUser,
                        Path::root().key("ssh").key("allow_users").index(i),
                        format!(
                            "`ssh.allow_users` names `{user}`, which is not defined in `users`"
                        ),
                    )
                    .help(help_for(name)),
                );
            }
        }
    }
    if fleet.users.keys().any(UserName::is_root) {
        let root = UserName::root();
        out.push(
            ctx.at_key(
                Code::RootInUsers,
                user_path(&root),
                "`users.root` cannot be defined here",
            )
            .help("root always exists; put its keys in `ssh.root_keys`"),
        );
    }
    out
}

/// A non-root deploy user must exist on the host and be able to use sudo.
fn deploy_user(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let fleet = ctx.fleet;
    let mut out = Vec::new();
    for (host_name, host) in &fleet.hosts {
        let user = &host.deploy.user;
        if user.is_root() {
            continue;
        }
        let path = host_path(host_name).key("deploy").key("user");
        let Some(account) = fleet.users.get(user) else {
            out.push(
                ctx.at_value(
                    Code::UnknownDeployUser,
                    path,
                    format!(
                        "host `{host_name}` deploys as `{user}`, which is not defined in `users`"
                    ),
                )
                .help(format!(
                    "define `[users.{user}]` with its SSH key and `sudo = \"no-password\"`"
                )),
            );
            continue;
        };
        if !host.users.contains(user) {
            out.push(
                ctx.at_value(
                    Code::DeployUserNotOnHost,
                    path.clone(),
                    format!(
                        "host `{host_name}` deploys as `{user}`, but `{user}` is not in its `users`"
                    ),
                )
                .help(format!("add \"{user}\" to `hosts.{host_name}.users`")),
            );
        }
        if account.sudo.is_none() && !account.groups.iter().any(|g| g == "wheel") {
            out.push(
                ctx.at_value(
                    Code::DeployUserWithoutSudo,
                    path,
                    format!("host `{host_name}` is deployed as `{user}`, which has no sudo rights: deploy could copy the new system but never activate it"),
                )
                .help(format!("set `sudo = \"no-password\"` in `[users.{user}]`")),
            );
        }
    }
    out
}

/// Account settings that contradict each other.
fn user_accounts(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, user) in &ctx.fleet.users {
        let path = user_path(name);
        let sources: Vec<&str> = [
            ("hashed_password", user.hashed_password.is_some()),
            ("hashed_password_file", user.hashed_password_file.is_some()),
            (
                "hashed_password_secret",
                user.hashed_password_secret.is_some(),
            ),
        ]
        .into_iter()
        .filter_map(|(field, set)| set.then_some(field))
        .collect();
        if sources.len() > 1 {
            out.push(
                ctx.at_key(
                    Code::ConflictingPasswords,
                    path.key(sources[0]),
                    format!(
                        "user `{name}` sets {}",
                        sources.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" and ")
                    ),
                )
                .help("keep one; `hashed_password_secret` keeps the hash encrypted in the repository and out of the Nix store"),
            );
        }
        if let Some(hash) = &user.hashed_password
            && !(hash.is_empty() || hash.starts_with('$') || hash == "!" || hash == "*")
        {
            out.push(
                ctx.at_value(
                    Code::PlaintextPassword,
                    path.key("hashed_password"),
                    format!("`hashed_password` of user `{name}` is not a crypt(3) hash; it looks like a plain password"),
                )
                .help("generate a hash with `mkpasswd -m yescrypt` (it starts with `$y$`), and change the leaked password"),
            );
        }
        let has_password = user.hashed_password.is_some()
            || user.hashed_password_file.is_some()
            || user.hashed_password_secret.is_some();
        if user.sudo == Some(Sudo::Password) && !has_password {
            out.push(
                ctx.at_value(
                    Code::SudoWithoutPassword,
                    path.key("sudo"),
                    format!("user `{name}` needs a password for sudo but has none"),
                )
                .help("set `hashed_password_secret` (a hash stored with `pifleet secrets set`) or `hashed_password_file`, or use `sudo = \"no-password\"`"),
            );
        }
    }
    out
}

/// The same key twice in one list is a copy-paste slip; the same key for two accounts means one person is both.
fn ssh_keys(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let fleet = ctx.fleet;
    let mut out = Vec::new();
    let mut lists: Vec<(Path, &Vec<model::SshPublicKey>)> = Vec::new();
    lists.push((
        Path::root().key("ssh").key("root_keys"),
        &fleet.ssh.root_keys,
    ));
    for (name, user) in &fleet.users {
        lists.push((user_path(name).key("ssh_keys"), &user.ssh_keys));
    }
    for (host_name, host) in &fleet.hosts {
        if let Some(keys) = host.ssh.as_ref().and_then(|s| s.root_keys.as_ref()) {
            lists.push((host_path(host_name).key("ssh").key("root_keys"), keys));
        }
    }
    for (path, keys) in &lists {
        // By key material, in one pass: lists can be long, and the check must stay linear.
        let mut first = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            let j = *first.entry(key.key().key_data()).or_insert(i);
            if j != i {
                out.push(
                    ctx.at_value(
                        Code::DuplicateSshKey,
                        path.index(i),
                        format!("`{path}` lists the key {} twice", key.fingerprint()),
                    )
                    .help("remove the repeated entry")
                    .related(
                        path.index(j),
                        ctx.value_span(&path.index(j)),
                        "first listed here",
                    ),
                );
            }
        }
    }
    // Across users (root keys are often the admin's own key, so only user-to-user sharing is reported).
    let mut owner: HashMap<Vec<u8>, (UserName, Path)> = HashMap::new();
    for (name, user) in &fleet.users {
        for (i, key) in user.ssh_keys.iter().enumerate() {
            let id = key.fingerprint().into_bytes();
            let path = user_path(name).key("ssh_keys").index(i);
            match owner.get(&id) {
                Some((other, other_path)) if other != name => out.push(
                    ctx.at_value(
                        Code::SharedSshKey,
                        path,
                        format!(
                            "users `{other}` and `{name}` share the key {}",
                            key.fingerprint()
                        ),
                    )
                    .help("give each account its own key, so access can be revoked per person")
                    .related(
                        other_path.clone(),
                        ctx.value_span(other_path),
                        "also used here",
                    ),
                ),
                Some(_) => {}
                None => {
                    owner.insert(id, (name.clone(), path));
                }
            }
        }
    }
    out
}

/// A non-root deploy user must activate without a password prompt: deploy runs without a terminal,
/// so a sudo that asks for a password stops every activation, whether or not a password exists.
fn deploy_sudo(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for view in &ctx.hosts {
        let Some(account) = view.deploy_account() else {
            continue;
        };
        let (name, user) = (view.name, account.name);
        if account.sudo == SudoRight::WithPassword {
            let path = host_path(name).key("deploy").key("user");
            out.push(
                ctx.at_value(
                    Code::DeploySudoNeedsPassword,
                    path,
                    if account.password.can_type() {
                        format!("host `{name}` is deployed as `{user}`, whose sudo asks for a password: deploy runs without a terminal, so it could not activate the next generation")
                    } else {
                        format!("host `{name}` is deployed as `{user}`, whose sudo asks for a password it does not have (users are immutable, so none can be set on the host): deploy could not activate the next generation")
                    },
                )
                .help(format!("set `sudo = \"no-password\"` in `[users.{user}]`"))
                .related(user_path(user), ctx.key_span(&user_path(user)), "defined here"),
            );
        }
    }
    out
}

/// With `mutableUsers = false`, a sudo user without key or password hash can never log in or use sudo.
fn sudo_accounts(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut unusable: BTreeMap<&UserName, Vec<&str>> = BTreeMap::new();
    for view in &ctx.hosts {
        // Keys may live in home directories there.
        if view.ssh.authorized_keys_in_homedir {
            continue;
        }
        for account in &view.accounts {
            // `sudo = "password"` without a password is `sudo_without_password` already, and a deploy user
            // without a key gets `deploy_user_without_key`.
            let sudoer =
                account.sudo != SudoRight::None && account.user.sudo != Some(Sudo::Password);
            if sudoer
                && account.keys().is_empty()
                && !account.password.can_type()
                && account.name != view.deploy.user
            {
                unusable
                    .entry(account.name)
                    .or_default()
                    .push(view.name.as_str());
            }
        }
    }
    unusable
        .into_iter()
        .map(|(user_name, hosts)| {
            ctx.at_key(
                Code::SudoUserWithoutCredentials,
                user_path(user_name),
                format!("sudo user `{user_name}` has neither an SSH key nor a password hash; users are immutable on {} so the account can never be used, and the admin access it was meant to give is lost", hosts.join(", ")),
            )
            .help(format!("add a key to `users.{user_name}.ssh_keys` or set `hashed_password_secret` (a hash stored with `pifleet secrets set`)"))
        })
        .collect()
}

/// `hashed_password = ""` is an empty password: anyone may log in as that user on the console (and over SSH
/// when password logins are on).
fn empty_passwords(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, user) in &ctx.fleet.users {
        if user.hashed_password.as_deref() == Some("") {
            out.push(
                ctx.at_value(
                    Code::EmptyPassword,
                    user_path(name).key("hashed_password"),
                    format!("user `{name}` has an empty password: anyone can log in as `{name}` without one"),
                )
                .help("set `hashed_password_secret` to a secret holding a yescrypt hash (`mkpasswd -m yescrypt | pifleet secrets set NAME`), or use \"!\" to lock the password"),
            );
        }
    }
    out
}

/// `sudo = "no-password"` is what a deploy user needs; for anyone else it is `wheelNeedsPassword = false`: a
/// stolen key (or any process running as that user) becomes root without further proof.
fn passwordless_sudo(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (host_name, host) in &ctx.fleet.hosts {
        for (i, user_name) in host.users.iter().enumerate() {
            if *user_name == host.deploy.user {
                continue;
            }
            let Some(user) = ctx.fleet.users.get(user_name) else {
                continue;
            };
            if user.sudo == Some(Sudo::NoPassword) {
                let sudo = user_path(user_name).key("sudo");
                out.push(
                    ctx.at_value(
                        Code::PasswordlessSudo,
                        host_path(host_name).key("users").index(i),
                        format!("user `{user_name}` gets root on host `{host_name}` without a password, but is not its deploy user: whoever holds its key (or runs code as it) is root"),
                    )
                    .help(format!("use `sudo = \"password\"` with `hashed_password_secret` for `{user_name}`; only the deploy user needs \"no-password\""))
                    .related(sudo.clone(), ctx.value_span(&sudo), "set here"),
                );
            }
        }
    }
    out
}

/// What shadow-utils accepts: letters, digits, '_', '.', '-', not starting with '-', at most 32 characters.
fn is_group_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Group names go into `users.users.<name>.extraGroups`; NixOS only accepts what shadow-utils does.
fn group_names(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, user) in &ctx.fleet.users {
        for (i, group) in user.groups.iter().enumerate() {
            if !is_group_name(group) {
                out.push(
                    ctx.at_value(
                        Code::InvalidGroup,
                        user_path(name).key("groups").index(i),
                        format!("`{group}` is not a valid group name"),
                    )
                    .help("use letters, digits, '_', '.' and '-' (at most 32), e.g. \"wheel\" or \"docker\""),
                );
            }
        }
    }
    out
}

/// Password hashes: one written into the inventory lands world-readable in the Nix store, a weak
/// scheme falls to a GPU in hours, and a hash file must be a real path on the host.
fn password_hashes(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, user) in &ctx.fleet.users {
        let path = user_path(name);
        // Only real hashes: "!…" and "*" lock the password, "" is `empty_password`, anything else
        // `plaintext_password`.
        let hash = user
            .hashed_password
            .as_deref()
            .filter(|h| h.starts_with('$'));
        if let Some(hash) = hash {
            out.push(
                ctx.at_value(
                    Code::InlinePasswordHash,
                    path.key("hashed_password"),
                    format!("the password hash of `{name}` is written into the inventory, so it ends up world-readable in the Nix store, where anyone on the host can try to crack it"),
                )
                .help("store it encrypted with `pifleet secrets set NAME` and set `hashed_password_secret = \"NAME\"`"),
            );
            if let Some(scheme) = weak_scheme(hash) {
                out.push(
                    ctx.at_value(
                        Code::WeakPasswordHash,
                        path.key("hashed_password"),
                        format!(
                            "the password hash of `{name}` uses {scheme}, which is fast to crack"
                        ),
                    )
                    .help("hash the password again with `mkpasswd -m yescrypt`"),
                );
            }
        }
        if let Some(file) = user.hashed_password_file.as_deref() {
            let why = if !file.starts_with('/') {
                Some("is not an absolute path on the host")
            } else if file.starts_with("/nix/store") {
                Some("is in the Nix store, which every user of the host can read")
            } else {
                None
            };
            if let Some(why) = why {
                out.push(
                    ctx.at_value(
                        Code::InvalidPasswordFile,
                        path.key("hashed_password_file"),
                        format!("`hashed_password_file` of `{name}` ({file}) {why}"),
                    )
                    .help("use an absolute path on the host outside /nix/store, e.g. \"/var/lib/secrets/admin.hash\", readable by root only"),
                );
            }
        }
    }
    out
}

/// The crypt(3) scheme of `hash` when it is weak. (A traditional DES hash has no `$` at all, so
/// `plaintext_password` reports it.)
fn weak_scheme(hash: &str) -> Option<&'static str> {
    (hash.starts_with("$1$") || hash.starts_with("$apr1$")).then_some("MD5-crypt")
}

/// User ids below 1000 belong to root and system services: an account there could own their
/// files, and uid 0 is root itself.
fn user_ids(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, user) in &ctx.fleet.users {
        let Some(uid) = user.uid else {
            continue;
        };
        if !(1000..65534).contains(&uid) {
            let what = match uid {
                0 => "root's id",
                1..=999 => "in the range of system accounts (below 1000)",
                _ => "reserved (65534 is `nobody`, above is invalid)",
            };
            out.push(
                ctx.at_value(
                    Code::InvalidUid,
                    user_path(name).key("uid"),
                    format!("user `{name}` asks for uid {uid}, which is {what}"),
                )
                .help("leave `uid` out (NixOS picks one), or use a number from 1000 to 65533"),
            );
        }
    }
    out
}
