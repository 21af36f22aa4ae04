//! Changing one string in a hand-written Nix file: `pifleet init` sets the `pifleet` input's URL in
//! the fleet template's `flake.nix`.
//!
//! The file is the template's own text, with its comments and layout, so it is not rebuilt: the
//! one string literal at an attribute path is replaced by a literal this crate prints (escaped like
//! every other value), and the result must parse cleanly and read back as the value asked for. No
//! value reaches the file as Nix source text.

use rnix::ast;
use rowan::ast::AstNode as _;

use crate::{Error, Expr};

/// Why a string could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// The file does not parse.
    #[error("the Nix file does not parse: {0}")]
    Parse(String),
    /// No binding at that path, or more than one.
    #[error("the Nix file has {count} bindings of `{path}` (expected exactly one)")]
    Binding {
        /// The dotted path.
        path: String,
        /// How many were found.
        count: usize,
    },
    /// The binding's value is not a plain string literal.
    #[error("`{path}` is not a plain string in the Nix file")]
    NotString {
        /// The dotted path.
        path: String,
    },
    /// The value cannot be a Nix string.
    #[error(transparent)]
    Value(#[from] Error),
    /// The edited text did not read back as asked: a bug, never written.
    #[error("internal error: the edited Nix file does not read `{path}` back as set ({detail})")]
    Verify {
        /// The dotted path.
        path: String,
        /// What went wrong.
        detail: String,
    },
}

/// `text` with the string bound at `path` (e.g. `["inputs", "pifleet", "url"]`, however the
/// bindings are nested: `inputs.pifleet.url = …` or `inputs = { pifleet = { url = …; }; }`)
/// replaced by `value`. Everything else is kept byte for byte.
pub fn set_string(text: &str, path: &[&str], value: &str) -> Result<String, EditError> {
    let dotted = path.join(".");
    let string = string_at(text, path, &dotted)?;
    let literal = crate::render_expr(&Expr::string(value))?;
    let literal = literal.trim_end();
    let range = string.syntax().text_range();
    let (start, end) = (usize::from(range.start()), usize::from(range.end()));
    let edited = format!("{}{literal}{}", &text[..start], &text[end..]);
    let back = string_at(&edited, path, &dotted).map_err(|e| EditError::Verify {
        path: dotted.clone(),
        detail: e.to_string(),
    })?;
    let read = literal_value(&back).ok_or_else(|| EditError::Verify {
        path: dotted.clone(),
        detail: "it is no longer a plain string".to_owned(),
    })?;
    if read != value {
        return Err(EditError::Verify {
            path: dotted,
            detail: format!("read back {read:?}"),
        });
    }
    Ok(edited)
}

/// The string literal bound at `path`; exactly one binding must match.
fn string_at(text: &str, path: &[&str], dotted: &str) -> Result<ast::Str, EditError> {
    let parsed = rnix::Root::parse(text);
    if let Some(err) = parsed.errors().first() {
        return Err(EditError::Parse(err.to_string()));
    }
    let root = parsed.syntax();
    let found: Vec<ast::AttrpathValue> = root
        .descendants()
        .filter_map(ast::AttrpathValue::cast)
        .filter(|binding| full_path(binding).is_some_and(|p| p == path))
        .collect();
    let [binding] = found.as_slice() else {
        return Err(EditError::Binding {
            path: dotted.to_owned(),
            count: found.len(),
        });
    };
    match binding.value() {
        Some(ast::Expr::Str(string)) if literal_value(&string).is_some() => Ok(string),
        _ => Err(EditError::NotString {
            path: dotted.to_owned(),
        }),
    }
}

/// The names from the outermost attribute set down to `binding`, when every step is a plain name
/// in a chain of attribute sets (a binding inside a `let` or a function body has none).
fn full_path(binding: &ast::AttrpathValue) -> Option<Vec<String>> {
    let mut names = own_names(binding)?;
    let mut node = binding.syntax().parent()?;
    loop {
        let set = ast::AttrSet::cast(node.clone())?;
        match set.syntax().parent().and_then(ast::AttrpathValue::cast) {
            Some(outer) => {
                let mut outer_names = own_names(&outer)?;
                outer_names.append(&mut names);
                names = outer_names;
                node = outer.syntax().parent()?;
            }
            // The outermost set: the file's body or a function's result (`outputs = … : { … }`
            // has its own, which is not reached from `inputs`).
            None => {
                let parent = set.syntax().parent();
                let top = parent
                    .as_ref()
                    .is_none_or(|p| ast::Root::can_cast(p.kind()));
                return top.then_some(names);
            }
        }
        if ast::Root::can_cast(node.kind()) {
            return Some(names);
        }
    }
}

/// A binding's own attribute names (`a.b` in `a.b = …`), when each is a plain identifier.
fn own_names(binding: &ast::AttrpathValue) -> Option<Vec<String>> {
    binding
        .attrpath()?
        .attrs()
        .map(|attr| match attr {
            ast::Attr::Ident(ident) => Some(ident.ident_token()?.text().to_owned()),
            _ => None,
        })
        .collect()
}

/// The value of a string literal without interpolations.
fn literal_value(string: &ast::Str) -> Option<String> {
    let mut out = String::new();
    for part in string.normalized_parts() {
        match part {
            ast::InterpolPart::Literal(text) => out.push_str(&text),
            ast::InterpolPart::Interpolation(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAKE: &str = r#"{
  description = "x";
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs";
    pifleet = {
      # Where you get pifleet from.
      url = "git+https://example.invalid/pifleet";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };
  outputs = { self, pifleet }: { url = "not this"; };
}
"#;

    #[test]
    fn sets_one_string_and_keeps_the_rest() {
        let edited = set_string(
            FLAKE,
            &["inputs", "pifleet", "url"],
            "git+file:///home/me/pifleet",
        )
        .expect("edit");
        assert_eq!(
            edited,
            FLAKE.replace(
                "git+https://example.invalid/pifleet",
                "git+file:///home/me/pifleet"
            )
        );
        // Dotted bindings count too.
        let edited = set_string(FLAKE, &["inputs", "nixpkgs", "url"], "path:/x").expect("edit");
        assert!(edited.contains("nixpkgs.url = \"path:/x\";"), "{edited}");
    }

    #[test]
    fn values_are_escaped_never_spliced() {
        let nasty = "x\"; evil = import /etc/passwd; y = \"${toString 1}\\";
        let edited = set_string(FLAKE, &["inputs", "pifleet", "url"], nasty).expect("edit");
        // Still one string: no binding `evil` appeared, and the value reads back (checked inside).
        assert!(matches!(
            set_string(&edited, &["evil"], "x"),
            Err(EditError::Binding { count: 0, .. })
        ));
        assert!(edited.contains(r#"\${toString 1}"#), "{edited}");
    }

    #[test]
    fn refuses_what_it_cannot_edit() {
        assert!(matches!(
            set_string(FLAKE, &["inputs", "agenix", "url"], "x"),
            Err(EditError::Binding { count: 0, .. })
        ));
        assert!(matches!(
            set_string(FLAKE, &["inputs", "pifleet"], "x"),
            Err(EditError::NotString { .. })
        ));
        assert!(matches!(
            set_string("{ a = ", &["a"], "x"),
            Err(EditError::Parse(_))
        ));
        assert!(matches!(
            set_string(FLAKE, &["inputs", "pifleet", "url"], "a\0b"),
            Err(EditError::Value(Error::Nul { .. }))
        ));
    }
}
