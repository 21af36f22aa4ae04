//! The SSH server: whether the deploy user can still log in after the switch (the heart of the
//! lockout analysis), the deploy port, `extra_settings`, and logins that invite attacks.
//!
//! pifleet deploys with `nixos-rebuild --target-host <deploy user>@<address>` over SSH, so after
//! every switch the deploy user must still reach sshd and be let in with a key. Who can log in is
//! decided once, by the host's resolved view ([`model::HostView::deploy_login`]); this family turns
//! each reason it gives into a diagnostic that points at the setting to change. Every lockout
//! finding is an error (errors cannot be silenced with `allow`).

use model::sshd::{SettingError, check_setting};
use model::{HostView, LoginBlock, Origin, Path, PermitRootLogin, SshField};

use crate::codes::Code;
use crate::context::{Context, host_path, user_path};
use crate::diagnostic::Diagnostic;
use crate::rules::{Family, rules};

/// The SSH family.
pub(crate) const FAMILY: Family = Family {
    name: "ssh",
    rules: rules![
        deploy_login,
        login_methods,
        deploy_port,
        sshd_settings,
        password_login,
        root_login,
    ],
};

/// Every reason the deploy user could not log in with a key after the switch, each at its setting.
fn deploy_login(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for view in &ctx.hosts {
        let Err(blocks) = view.deploy_login() else {
            continue;
        };
        for block in &blocks {
            if let Some(d) = deploy_block(ctx, view, block, &blocks) {
                out.push(d);
            }
        }
    }
    out
}

/// The diagnostic for one reason the deploy user is shut out, or `None` when another rule (or
/// another reason of the same login) already says it.
fn deploy_block(
    ctx: &Context<'_>,
    view: &HostView<'_>,
    block: &LoginBlock,
    all: &[LoginBlock],
) -> Option<Diagnostic> {
    let name = view.name;
    let user = view.deploy.user;
    Some(match block {
        LoginBlock::SshdOff => ctx
            .at_ssh(
                view,
                SshField::Enable,
                Code::SshdDisabled,
                format!("host `{name}` would run no SSH server: after this switch deploy can never connect again, and only a console or a re-flashed card gets you back in"),
            )
            .help("remove `enable = false` (pifleet deploys over SSH); restrict who may log in with `allow_users` instead"),
        LoginBlock::RootLoginOff => ctx
            .at_ssh(
                view,
                SshField::PermitRootLogin,
                Code::RootDeployLoginDisabled,
                format!("host `{name}` is deployed as root, but `permit_root_login = \"no\"`: deploy could not log in after this switch"),
            )
            .help(format!("deploy as a non-root user with `no-password` sudo (`hosts.{name}.deploy = {{ user = \"deploy\" }}`), or set `permit_root_login = \"prohibit-password\"` with `root_keys`")),
        // Nobody at all can log in: `no_login_method` says it once for the host. Root shut out by
        // `permit_root_login = "no"`: `root_deploy_login_disabled` says it.
        LoginBlock::NoKey { .. }
            if !view.has_any_login_method() || all.contains(&LoginBlock::RootLoginOff) =>
        {
            return None;
        }
        LoginBlock::NoKey { .. } if user.is_root() => ctx
            .at_value(
                Code::DeployUserWithoutKey,
                host_path(name).key("deploy").key("user"),
                format!("host `{name}` is deployed as root, but root has no SSH key: deploy could not log in after this switch"),
            )
            .help("add your public key to `ssh.root_keys` (or the host's `ssh.root_keys`), or deploy as a non-root user with `deploy = { user = \"deploy\" }`"),
        LoginBlock::NoKey { .. } => ctx
            .at_value(
                Code::DeployUserWithoutKey,
                host_path(name).key("deploy").key("user"),
                format!("host `{name}` is deployed as `{user}`, which has no SSH key: only keys in the inventory are installed, so deploy could not log in after this switch"),
            )
            .help(format!("add the workstation's public key to `users.{user}.ssh_keys`"))
            .related(user_path(user), ctx.key_span(&user_path(user)), "defined here"),
        // A derived `AllowUsers` lacks the deploy user only for root with root logins off, which
        // `root_deploy_login_disabled` reports.
        LoginBlock::NotAllowed { explicit: false, .. } => return None,
        LoginBlock::NotAllowed { explicit: true, .. } => ctx
            .at_ssh(
                view,
                SshField::AllowUsers,
                Code::DeployUserNotAllowed,
                format!("host `{name}` is deployed as `{user}`, but `allow_users` does not list it: sshd would refuse deploy after this switch"),
            )
            .help(format!("add \"{user}\" to `allow_users`, or leave `allow_users` out to derive it")),
        LoginBlock::Denied => ctx
            .at_ssh(
                view,
                SshField::DenyUsers,
                Code::DeployUserNotAllowed,
                format!("host `{name}` is deployed as `{user}`, but `deny_users` lists it: sshd would refuse deploy after this switch"),
            )
            .help(format!("remove \"{user}\" from `deny_users`")),
        // `unknown_deploy_user` and `deploy_user_not_on_host` (users family) report it.
        LoginBlock::NoAccount => return None,
        LoginBlock::PubkeyAuthOff => at_extra(
            ctx,
            view,
            "PubkeyAuthentication",
            Code::PubkeyAuthenticationDisabled,
            format!("host `{name}` would refuse key logins (`PubkeyAuthentication = false`): deploy logs in with a key, so it could never connect again"),
        )
        .help("remove `PubkeyAuthentication = false`; to restrict who may log in, use `allow_users`"),
        LoginBlock::AuthMethods { value } => at_extra(
            ctx,
            view,
            "AuthenticationMethods",
            Code::AuthenticationMethodsLockout,
            format!("host `{name}`: `AuthenticationMethods = \"{value}\"` asks for more than a key, and deploy (as `{user}`) has nobody to type a password or touch a token"),
        )
        .help("keep a list that is `publickey` alone, e.g. \"publickey publickey,password\", or remove the setting"),
        LoginBlock::Groups { keyword, groups } => at_extra(
            ctx,
            view,
            keyword,
            Code::DeployUserGroupFiltered,
            format!("host `{name}` is deployed as `{user}`, whose groups ({}) `{keyword}` shuts out: sshd would refuse deploy after this switch", groups.join(", ")),
        )
        .help(if *keyword == "AllowGroups" {
            format!("add one of {} to `AllowGroups`", groups.join(", "))
        } else {
            format!("remove {} from `DenyGroups`", groups.join(", "))
        }),
        LoginBlock::Restricted { keyword } => at_extra(
            ctx,
            view,
            keyword,
            Code::DeployLoginRestricted,
            format!("host `{name}`: `{keyword}` applies to every login, the deploy user's too, so nixos-rebuild's commands would never run"),
        )
        .help("remove it; restrict other users with a `Match User` block in a hand-written module"),
        LoginBlock::ZeroLimit { keyword } => at_extra(
            ctx,
            view,
            keyword,
            Code::SshdLimitZero,
            format!("host `{name}`: `{keyword} = 0` admits no login at all, deploy's included"),
        )
        .help("use a positive number, or leave the setting out for sshd's default"),
        LoginBlock::KeyTypes { accepted } => at_extra(
            ctx,
            view,
            "PubkeyAcceptedAlgorithms",
            Code::DeployKeyTypeNotAccepted,
            format!("host `{name}`: `PubkeyAcceptedAlgorithms = \"{accepted}\"` accepts none of the keys `{user}` logs in with"),
        )
        .help("include the deploy keys' algorithms (e.g. \"ssh-ed25519\"), or write `+…` to add to sshd's defaults"),
        LoginBlock::KeysUnusable { why } => ctx
            .at_value(
                Code::DeployKeysUnusable,
                host_path(name).key("deploy").key("user"),
                format!("host `{name}` is deployed as `{user}`, but none of its keys can run deploy's commands: {why}"),
            )
            .help("give the deploy user a key without `command=` (nixos-rebuild runs its own commands) and without a past `expiry-time`"),
        LoginBlock::LockedWithoutPam => at_extra(
            ctx,
            view,
            "UsePAM",
            Code::PamDisabledLocksDeployUser,
            format!("host `{name}`: with `UsePAM = false`, sshd refuses accounts whose password is locked, even for key logins, and `{user}` has no password hash"),
        )
        .help("remove `UsePAM = false`"),
        LoginBlock::AddressFamily { family } => at_extra(
            ctx,
            view,
            "AddressFamily",
            Code::SshAddressFamilyMismatch,
            format!("host `{name}`: sshd would listen on `{family}` addresses only, but deploy connects to {}", view.deploy.address),
        )
        .help("use `AddressFamily = \"any\"`, or deploy to an address of that family"),
    })
}

/// Where the effective extra setting `keyword` of `host` was written, as a path.
fn extra_path(host: &HostView<'_>, keyword: &str) -> Path {
    let Some(setting) = host.ssh.extra(keyword) else {
        return host_path(host.name).key("ssh");
    };
    match setting.origin {
        Origin::Host => host_path(host.name)
            .key("ssh")
            .key("extra_settings")
            .key(setting.keyword),
        Origin::Fleet => Path::root()
            .key("ssh")
            .key("extra_settings")
            .key(setting.keyword),
    }
}

/// A diagnostic at the value of the effective extra setting `keyword` of `host`.
fn at_extra(
    ctx: &Context<'_>,
    host: &HostView<'_>,
    keyword: &str,
    code: Code,
    message: String,
) -> Diagnostic {
    ctx.at_value(code, extra_path(host, keyword), message)
}

/// No password logins and no key for anyone: nobody can log in at all.
fn login_methods(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for view in &ctx.hosts {
        let ssh = &view.ssh;
        // Root keys shut out by `permit_root_login = "no"` on a root deploy: `root_deploy_login_disabled` says it.
        let root_shut_out = view.deploy.user.is_root()
            && ssh.permit_root_login == PermitRootLogin::No
            && !ssh.root_keys.is_empty();
        if ssh.enable && !root_shut_out && !view.has_any_login_method() {
            let name = view.name;
            out.push(
                ctx.at_key(
                    Code::NoLoginMethod,
                    host_path(name),
                    format!("nobody could log in to host `{name}`: password logins are off and no user on it (nor root) has an SSH key"),
                )
                .help("add a public key to the deploy user (`users.<name>.ssh_keys`) or to `ssh.root_keys`; for root, also keep `permit_root_login = \"prohibit-password\"`"),
            );
        }
    }
    out
}

/// `deploy.port` must be the port sshd will listen on: a port change with deploy still on the old port leaves
/// the next deploy knocking on a closed door.
fn deploy_port(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for view in &ctx.hosts {
        let Some(port) = view.host.deploy.port else {
            continue;
        };
        let sshd = view.ssh.port;
        if port != sshd {
            let name = view.name;
            out.push(
                ctx.at_value(
                    Code::DeployPortMismatch,
                    host_path(name).key("deploy").key("port"),
                    format!("host `{name}`: sshd will listen on port {sshd}, but deploy connects to port {port}: after this switch deploy would find nothing listening"),
                )
                .help(format!("set `deploy.port = {sshd}`, or leave `deploy.port` out to follow `ssh.port`")),
            );
        }
    }
    out
}

/// `extra_settings` must be sshd keywords pifleet does not manage, with values of the keyword's type
/// on one line (see [`model::sshd`]).
fn sshd_settings(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let fleet = ctx.fleet;
    let mut out = Vec::new();
    let mut tables = vec![(
        Path::root().key("ssh").key("extra_settings"),
        &fleet.ssh.extra_settings,
    )];
    for (name, host) in &fleet.hosts {
        if let Some(o) = &host.ssh {
            tables.push((
                host_path(name).key("ssh").key("extra_settings"),
                &o.extra_settings,
            ));
        }
    }
    for (base, settings) in tables {
        for (key, value) in settings {
            let Err(error) = check_setting(key, value) else {
                continue;
            };
            let path = base.key(key.as_str());
            let message = format!("`{key}` {error}");
            out.push(match &error {
                SettingError::Owned(instead) => ctx
                    .at_key(Code::SshdSettingConflict, path, message)
                    .help(format!("remove it from `extra_settings` and use {instead}")),
                SettingError::Unknown { suggestion } => ctx
                    .at_key(Code::InvalidSshdSetting, path, message)
                    .help(match suggestion {
                        Some(s) => format!("write `{s}`, or use another keyword from `man sshd_config`"),
                        None => "use a keyword from `man sshd_config`, e.g. MaxAuthTries".to_owned(),
                    }),
                SettingError::Alias(new) => ctx
                    .at_key(Code::InvalidSshdSetting, path, message)
                    .help(format!("rename it to `{new}`")),
                SettingError::Removed | SettingError::Unsupported => ctx
                    .at_key(Code::InvalidSshdSetting, path, message)
                    .help("remove it: sshd would ignore it"),
                SettingError::ControlCharacter => ctx
                    .at_value(Code::InvalidSshdValue, path, message)
                    .help("keep the value on one line; a line break would become an sshd directive of its own"),
                SettingError::Value(_) => ctx
                    .at_value(Code::InvalidSshdValue, path, message)
                    .help("see `man sshd_config` for the values this keyword takes"),
            });
        }
    }
    out
}

/// Password (or keyboard-interactive) logins over SSH invite brute force.
fn password_login(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for view in &ctx.hosts {
        let name = view.name;
        for (field, on) in [
            (
                SshField::PasswordAuthentication,
                view.ssh.password_authentication,
            ),
            (
                SshField::KbdInteractiveAuthentication,
                view.ssh.kbd_interactive_authentication,
            ),
        ] {
            if !on {
                continue;
            }
            let field_name = field.as_str();
            out.push(
                ctx.at_ssh(
                    view,
                    field,
                    Code::PasswordAuthenticationEnabled,
                    format!("host `{name}` accepts SSH logins with a password (`{field_name} = true`): they can be guessed, keys cannot"),
                )
                .help(format!("set `{field_name} = false` and log in with keys (`users.<name>.ssh_keys`)")),
            );
        }
    }
    out
}

/// Root may log in over SSH (with a key): one stolen key is root on the host, and logs only say "root".
fn root_login(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for view in &ctx.hosts {
        let ssh = &view.ssh;
        let root_can =
            (!ssh.root_keys.is_empty() || ssh.authorized_keys_in_homedir) && ssh.admits("root");
        if ssh.permit_root_login == PermitRootLogin::ProhibitPassword && root_can && ssh.enable {
            let name = view.name;
            out.push(
                ctx.at_ssh(
                    view,
                    SshField::PermitRootLogin,
                    Code::RootLoginAllowed,
                    format!("root may log in to host `{name}` over SSH (with a key): a stolen key is root at once, and logs cannot tell who it was"),
                )
                .help("deploy as a non-root user with `sudo = \"no-password\"` and set `permit_root_login = \"no\"`"),
            );
        }
    }
    out
}
