//! `docs/diagnostics.md`, generated from the code catalogue so the page can never list a code
//! with another severity than the one pifleet reports, or miss one.
//!
//! The text around the codes lives in a minijinja template (`templates/diagnostics.md.j2`): the
//! project renders prose that is neither Nix nor TOML from templates, never by gluing strings.

use minijinja::{Environment, context};
use serde::Serialize;

use crate::codes::{Code, Group};

const TEMPLATE: &str = include_str!("../templates/diagnostics.md.j2");

#[derive(Serialize)]
struct CodeDoc {
    name: &'static str,
    severity: &'static str,
    summary: &'static str,
    lang: &'static str,
    example: &'static str,
    fix: &'static str,
}

#[derive(Serialize)]
struct GroupDoc {
    title: &'static str,
    codes: Vec<CodeDoc>,
}

/// The full text of `docs/diagnostics.md`. Fails only if the compiled-in template is broken.
pub fn diagnostics_markdown() -> Result<String, minijinja::Error> {
    let groups: Vec<GroupDoc> = Group::ALL
        .iter()
        .map(|group| GroupDoc {
            title: group.title(),
            codes: Code::ALL
                .iter()
                .map(|c| c.info())
                .filter(|info| info.group == *group)
                .map(|info| CodeDoc {
                    name: info.name,
                    severity: info.severity.as_str(),
                    summary: info.summary,
                    lang: info.example.lang,
                    example: info.example.text,
                    fix: info.fix,
                })
                .collect(),
        })
        .collect();
    let mut env = Environment::new();
    env.set_keep_trailing_newline(true);
    env.template_from_str(TEMPLATE)?.render(context! { groups })
}
