//! `allow` entries: silencing a warning needs a reason and a real warning code.

use crate::codes::Code;
use crate::context::{Context, host_path};
use crate::diagnostic::{Diagnostic, Severity};
use crate::rules::{Family, rules};

/// The allow family.
pub(crate) const FAMILY: Family = Family {
    name: "allow",
    rules: rules![allow_entries],
};

/// `allow` entries need a reason and should name a real code.
fn allow_entries(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        for (i, allow) in host.allow.iter().enumerate() {
            let path = host_path(name).key("allow").index(i);
            if allow.reason.trim().is_empty() {
                out.push(
                    ctx.at_value(
                        Code::AllowWithoutReason,
                        path.key("reason"),
                        format!(
                            "`allow` of `{}` on host `{name}` gives no reason",
                            allow.code
                        ),
                    )
                    .help("say why the warning does not apply here; reviewers read it"),
                );
            }
            match Code::from_name(&allow.code) {
                None => out.push(
                    ctx.at_value(
                        Code::UnknownAllowCode,
                        path.key("code"),
                        format!("`{}` is not a pifleet diagnostic code", allow.code),
                    )
                    .help("use a code printed by `pifleet check`, e.g. \"unpinned_image\""),
                ),
                Some(code) if code.severity() == Severity::Error => out.push(
                    ctx.at_value(
                        Code::AllowHasNoEffect,
                        path.key("code"),
                        format!("`{}` is an error; errors cannot be silenced", allow.code),
                    )
                    .help("fix the error instead, and remove this entry"),
                ),
                Some(_) => {}
            }
        }
    }
    out
}
