//! The SSH server a host will run: the fleet policy with the host's overrides applied, and the
//! exact `services.openssh.settings` that follow from it.
//!
//! This is the one place that decides how the settings pifleet owns and the user's extra settings
//! (checked against [`crate::sshd`]'s keyword table, which also says which keywords pifleet owns)
//! combine, how a keyword is compared (sshd keywords are case-insensitive, so pifleet's rule is
//! too), and which default settings the generated module adds. The renderer writes [`SshView::settings`] as it is; the checks read the
//! same fields, so they can never disagree about what sshd will be told.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::names::{Port, SshPublicKey, UserName, UserPattern};
use crate::sshd::{Setting, SettingError, SettingValue, check_setting};
use crate::types::{Fleet, Host, PermitRootLogin, SshOverride, SshPolicy, SshdValue};

/// A field of the SSH policy that a host can override (`hosts.<name>.ssh.<field>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SshField {
    /// `enable`.
    Enable,
    /// `port`.
    Port,
    /// `permit_root_login`.
    PermitRootLogin,
    /// `password_authentication`.
    PasswordAuthentication,
    /// `kbd_interactive_authentication`.
    KbdInteractiveAuthentication,
    /// `root_keys`.
    RootKeys,
    /// `allow_users`.
    AllowUsers,
    /// `deny_users`.
    DenyUsers,
    /// `open_firewall`.
    OpenFirewall,
    /// `authorized_keys_in_homedir`.
    AuthorizedKeysInHomedir,
}

impl SshField {
    /// The field's name in `fleet.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            SshField::Enable => "enable",
            SshField::Port => "port",
            SshField::PermitRootLogin => "permit_root_login",
            SshField::PasswordAuthentication => "password_authentication",
            SshField::KbdInteractiveAuthentication => "kbd_interactive_authentication",
            SshField::RootKeys => "root_keys",
            SshField::AllowUsers => "allow_users",
            SshField::DenyUsers => "deny_users",
            SshField::OpenFirewall => "open_firewall",
            SshField::AuthorizedKeysInHomedir => "authorized_keys_in_homedir",
        }
    }

    /// Whether the host's override sets this field.
    fn set_in(self, o: &SshOverride) -> bool {
        match self {
            SshField::Enable => o.enable.is_some(),
            SshField::Port => o.port.is_some(),
            SshField::PermitRootLogin => o.permit_root_login.is_some(),
            SshField::PasswordAuthentication => o.password_authentication.is_some(),
            SshField::KbdInteractiveAuthentication => o.kbd_interactive_authentication.is_some(),
            SshField::RootKeys => o.root_keys.is_some(),
            SshField::AllowUsers => o.allow_users.is_some(),
            SshField::DenyUsers => o.deny_users.is_some(),
            SshField::OpenFirewall => o.open_firewall.is_some(),
            SshField::AuthorizedKeysInHomedir => o.authorized_keys_in_homedir.is_some(),
        }
    }
}

/// Where the value of an effective setting comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `hosts.<name>.ssh`.
    Host,
    /// The fleet-wide `[ssh]` table, as written there or as its default.
    Fleet,
}

/// Settings the generated module adds unless `extra_settings` gives the keyword (in any case).
const DEFAULT_SSHD_SETTINGS: &[(&str, bool)] = &[("X11Forwarding", false)];

/// One entry of `extra_settings` after the fleet's and the host's tables are merged.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtraSetting<'a> {
    /// The keyword as the winning table spells it.
    pub keyword: &'a str,
    /// Its value.
    pub value: &'a SshdValue,
    /// Which table it came from.
    pub origin: Origin,
    /// The setting as sshd will read it, or why it cannot be written (`check` reports it; the
    /// renderer leaves it out).
    pub checked: Result<Setting<'a>, SettingError>,
}

impl<'a> ExtraSetting<'a> {
    /// The checked setting, if it is one pifleet writes.
    pub fn setting(&self) -> Option<&Setting<'a>> {
        self.checked.as_ref().ok()
    }
}

/// The SSH server of one host, after defaults, overrides and derivations.
#[derive(Debug, Clone)]
pub struct SshView<'a> {
    /// sshd runs (`services.openssh.enable`).
    pub enable: bool,
    /// The port sshd listens on.
    pub port: Port,
    /// `services.openssh.openFirewall`.
    pub open_firewall: bool,
    /// `PermitRootLogin`.
    pub permit_root_login: PermitRootLogin,
    /// `PasswordAuthentication`.
    pub password_authentication: bool,
    /// `KbdInteractiveAuthentication`.
    pub kbd_interactive_authentication: bool,
    /// `services.openssh.authorizedKeysInHomedir`: keys in `~/.ssh/authorized_keys` count too.
    pub authorized_keys_in_homedir: bool,
    /// Root's keys from the inventory (installed only when root may log in, see [`SshView::root_keys_installed`]).
    pub root_keys: &'a [SshPublicKey],
    /// `AllowUsers`: explicit, or derived from the host's users, its deploy user, and root when root may log in.
    pub allow_users: Vec<Cow<'a, UserPattern>>,
    /// `DenyUsers`.
    pub deny_users: &'a [UserPattern],
    /// `extra_settings` of the fleet and the host, merged (the host wins; keywords compared without case),
    /// sorted by keyword.
    pub extra: Vec<ExtraSetting<'a>>,
    /// Whether `allow_users` was written (by the fleet or the host) rather than derived.
    pub allow_users_explicit: bool,
    overrides: Option<&'a SshOverride>,
}

impl<'a> SshView<'a> {
    /// The policy in force on `host`.
    pub(crate) fn new(fleet: &'a Fleet, host: &'a Host) -> Self {
        let base: &SshPolicy = &fleet.ssh;
        let o = host.ssh.as_ref();
        let pick = |host: Option<bool>, fleet: bool| host.unwrap_or(fleet);
        let permit_root_login = o
            .and_then(|o| o.permit_root_login)
            .unwrap_or(base.permit_root_login);
        let explicit_allow = o
            .and_then(|o| o.allow_users.as_deref())
            .or(base.allow_users.as_deref());
        let allow_users = match explicit_allow {
            Some(list) => list.iter().map(Cow::Borrowed).collect(),
            None => derived_allow_users(host, permit_root_login),
        };
        Self {
            enable: pick(o.and_then(|o| o.enable), base.enable),
            port: o.and_then(|o| o.port).unwrap_or(base.port),
            open_firewall: pick(o.and_then(|o| o.open_firewall), base.open_firewall),
            permit_root_login,
            password_authentication: pick(
                o.and_then(|o| o.password_authentication),
                base.password_authentication,
            ),
            kbd_interactive_authentication: pick(
                o.and_then(|o| o.kbd_interactive_authentication),
                base.kbd_interactive_authentication,
            ),
            authorized_keys_in_homedir: pick(
                o.and_then(|o| o.authorized_keys_in_homedir),
                base.authorized_keys_in_homedir,
            ),
            root_keys: o
                .and_then(|o| o.root_keys.as_deref())
                .unwrap_or(&base.root_keys),
            allow_users,
            deny_users: o
                .and_then(|o| o.deny_users.as_deref())
                .unwrap_or(&base.deny_users),
            extra: merge_extra(&base.extra_settings, o.map(|o| &o.extra_settings)),
            allow_users_explicit: explicit_allow.is_some(),
            overrides: o,
        }
    }

    /// Whether the effective value of `field` comes from the host's override or the fleet policy.
    pub fn origin(&self, field: SshField) -> Origin {
        if self.overrides.is_some_and(|o| field.set_in(o)) {
            Origin::Host
        } else {
            Origin::Fleet
        }
    }

    /// Whether root's keys from the inventory end up in `users.users.root`: root may log in and has keys.
    pub fn root_keys_installed(&self) -> bool {
        self.permit_root_login != PermitRootLogin::No && !self.root_keys.is_empty()
    }

    /// Whether `user` may pass `AllowUsers` (some entry's user part matches it; where the login
    /// comes from is not known here).
    pub fn allows(&self, user: &str) -> bool {
        self.allow_users.iter().any(|p| p.may_match(user))
    }

    /// Whether `DenyUsers` surely shuts `user` out, from wherever it logs in.
    pub fn denies(&self, user: &str) -> bool {
        self.deny_users.iter().any(|p| p.surely_matches(user))
    }

    /// Whether `user` passes `AllowUsers` and `DenyUsers`.
    pub fn admits(&self, user: &str) -> bool {
        self.allows(user) && !self.denies(user)
    }

    /// Whether sshd accepts a password (or keyboard-interactive) login at all.
    pub fn accepts_passwords(&self) -> bool {
        self.password_authentication || self.kbd_interactive_authentication
    }

    /// The merged extra setting for `keyword` (compared without case), if any.
    pub fn extra(&self, keyword: &str) -> Option<&ExtraSetting<'a>> {
        self.extra
            .iter()
            .find(|s| s.keyword.eq_ignore_ascii_case(keyword))
    }

    /// The value of the valid extra setting `keyword`, as sshd will read it.
    pub fn extra_value(&self, keyword: &str) -> Option<&SettingValue<'a>> {
        self.extra(keyword)
            .and_then(ExtraSetting::setting)
            .map(|s| &s.value)
    }

    /// `services.openssh.settings` exactly as the generated module writes it, in order: the settings
    /// pifleet manages, its defaults unless overridden, then the extra settings it does not manage.
    pub fn settings(&self) -> Vec<(Cow<'a, str>, SettingValue<'a>)> {
        let mut out: Vec<(Cow<'a, str>, SettingValue<'a>)> = vec![
            (
                "PasswordAuthentication".into(),
                SettingValue::Bool(self.password_authentication),
            ),
            (
                "KbdInteractiveAuthentication".into(),
                SettingValue::Bool(self.kbd_interactive_authentication),
            ),
            (
                "PermitRootLogin".into(),
                SettingValue::Str(self.permit_root_login.as_sshd().into()),
            ),
            (
                "AllowUsers".into(),
                SettingValue::List(
                    self.allow_users
                        .iter()
                        .map(|u| match u {
                            Cow::Borrowed(u) => Cow::Borrowed(u.as_str()),
                            Cow::Owned(u) => Cow::Owned(u.as_str().to_owned()),
                        })
                        .collect(),
                ),
            ),
        ];
        if !self.deny_users.is_empty() {
            out.push((
                "DenyUsers".into(),
                SettingValue::List(self.deny_users.iter().map(|u| u.as_str().into()).collect()),
            ));
        }
        for (keyword, value) in DEFAULT_SSHD_SETTINGS {
            if self.extra(keyword).is_none() {
                out.push(((*keyword).into(), SettingValue::Bool(*value)));
            }
        }
        for setting in self.extra.iter().filter_map(ExtraSetting::setting) {
            out.push((setting.keyword.name.into(), setting.value.clone()));
        }
        out
    }
}

/// The derived `AllowUsers`: the host's users, its deploy user, and root when root may log in.
fn derived_allow_users(
    host: &Host,
    permit_root_login: PermitRootLogin,
) -> Vec<Cow<'_, UserPattern>> {
    let mut users: Vec<&UserName> = host.users.iter().collect();
    if !host.deploy.user.is_root() && !host.users.contains(&host.deploy.user) {
        users.push(&host.deploy.user);
    }
    let root = UserName::root();
    if permit_root_login != PermitRootLogin::No {
        users.push(&root);
    }
    users.sort();
    users.dedup();
    users
        .into_iter()
        .map(|u| Cow::Owned(UserPattern::from(u.clone())))
        .collect()
}

/// The fleet's extra settings with the host's over them. Keywords are compared without case, as sshd
/// does: a host's `maxauthtries` replaces the fleet's `MaxAuthTries` instead of becoming a second line.
fn merge_extra<'a>(
    fleet: &'a BTreeMap<String, SshdValue>,
    host: Option<&'a BTreeMap<String, SshdValue>>,
) -> Vec<ExtraSetting<'a>> {
    let mut merged: BTreeMap<String, ExtraSetting<'a>> = BTreeMap::new();
    let tables = std::iter::once((fleet, Origin::Fleet)).chain(host.map(|h| (h, Origin::Host)));
    for (table, origin) in tables {
        for (keyword, value) in table {
            merged.insert(
                keyword.to_ascii_lowercase(),
                ExtraSetting {
                    keyword,
                    value,
                    origin,
                    checked: check_setting(keyword, value),
                },
            );
        }
    }
    let mut out: Vec<ExtraSetting<'a>> = merged.into_values().collect();
    // In the order the generated module writes them: by the spelling it writes.
    let written = |s: &ExtraSetting<'a>| s.setting().map_or(s.keyword, |s| s.keyword.name);
    out.sort_by(|a, b| written(a).cmp(written(b)));
    out
}
