//! Nix syntax for pifleet's generated files, built as rnix syntax trees.
//!
//! Everything pifleet writes in Nix goes through this crate, so it owns the three promises the
//! generated files make:
//!
//! - **Exact values.** Callers hand over Rust values ([`Expr::string`], [`AttrPath::key`], …); the
//!   printer escapes and quotes them. No public function takes Nix source text, so no value from a
//!   fleet file can change the structure of the Nix around it. Strings with a NUL byte, which Nix
//!   cannot represent, are an [`Error::Nul`] rather than being altered.
//! - **Valid syntax.** The tree is built with rowan's `GreenNodeBuilder` using rnix's node kinds,
//!   then the printed text is parsed again with rnix and must give back the identical tree.
//! - **Canonical layout.** The printer writes nixpkgs-fmt's layout itself, so the output is a fixed
//!   point of `nixpkgs_fmt::reformat_string` for every shape pifleet writes (data values, nested
//!   bindings, the module function, `let`, `with` lists); the tests hold that. [`Check::Format`]
//!   runs the formatter anyway as a safety pass. It costs 5–10× the build itself
//!   (`cargo bench -p nixgen`, numbers in `docs/benchmarks.md`), so the default, [`Check::Parse`],
//!   skips it and generation stays fast.

pub mod edit;
mod escape;
mod expr;
mod print;

pub use escape::is_identifier;
pub use expr::{AttrPath, AttrSet, Expr, make};

/// Why a piece of Nix could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Nix strings are NUL-terminated C strings underneath and cannot hold a NUL byte.
    #[error(
        "{what} {value:?} contains a NUL byte (at byte {offset}), which Nix strings cannot hold; remove it"
    )]
    Nul {
        /// What kind of value it was (string, attribute name, path, comment).
        what: &'static str,
        /// Byte offset of the first NUL.
        offset: usize,
        /// The offending value.
        value: String,
    },
    /// A variable or function argument name that is not a Nix identifier.
    #[error(
        "`{name}` is not a Nix identifier (letters, digits, `_`, `'`, `-`, not starting with a digit, not a keyword)"
    )]
    NotIdentifier {
        /// The name.
        name: String,
    },
    /// A path that would make the generated file depend on the machine that wrote it.
    #[error(
        "`{path}` is not a relative path; generated files may only refer to files next to them"
    )]
    NotRelative {
        /// The path.
        path: String,
    },
    /// The same attribute written twice in one set, which Nix rejects.
    #[error("attribute `{path}` is defined twice in the same attribute set")]
    DuplicateAttr {
        /// The dotted path.
        path: String,
    },
    /// An attribute path with no segments.
    #[error("an attribute path needs at least one name")]
    EmptyAttrPath,
    /// The printed text did not read back as the tree that was built: a bug in nixgen.
    #[error(
        "internal error: generated Nix does not read back as built ({detail}); please report this bug"
    )]
    Internal {
        /// What went wrong.
        detail: String,
    },
}

/// How much checking [`File::render`] does after building the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Check {
    /// Re-parse with rnix and require the identical tree. Always on.
    #[default]
    Parse,
    /// Also run nixpkgs-fmt and keep its output (a no-op for trees built here; the tests hold
    /// that, this pass only guards against layout bugs in shapes the tests do not cover).
    Format,
}

/// A whole Nix file: header comment lines and one expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    header: Vec<String>,
    body: Expr,
}

impl File {
    /// A file holding `body`.
    pub fn new(body: Expr) -> Self {
        Self {
            header: Vec::new(),
            body,
        }
    }

    /// Adds header comment lines, printed as `# …` at the top of the file.
    #[must_use]
    pub fn header<S: Into<String>>(mut self, lines: impl IntoIterator<Item = S>) -> Self {
        self.header.extend(lines.into_iter().map(Into::into));
        self
    }

    /// The built syntax tree, verified to be exactly what rnix reads from its text.
    pub fn syntax(&self) -> Result<rnix::SyntaxNode, Error> {
        self.build().map(|(tree, _)| tree)
    }

    /// The file's text.
    pub fn render(&self, check: Check) -> Result<String, Error> {
        let (_, text) = self.build()?;
        match check {
            Check::Parse => Ok(text),
            Check::Format => Ok(format(&text)),
        }
    }

    /// Builds the tree, prints it once, and requires rnix to read that text back as the same tree.
    fn build(&self) -> Result<(rnix::SyntaxNode, String), Error> {
        thread_local! {
            // Bounded by the distinct tokens of what one thread prints; see `Printer::new`.
            static CACHE: std::cell::RefCell<rowan::NodeCache> = Default::default();
        }
        let green = CACHE
            .with_borrow_mut(|cache| print::Printer::new(cache).file(&self.header, &self.body))?;
        // Printed from the green tree directly, into one allocation of the right size: no cursor
        // nodes, and no formatter call per token (`to_string` cost a tenth of `gen`'s CPU).
        let mut text = String::with_capacity(usize::from(green.text_len()));
        push_text(&green, &mut text);
        let built = rnix::SyntaxNode::new_root(green);
        let parsed = rnix::Root::parse(&text);
        if let Some(err) = parsed.errors().first() {
            return Err(Error::Internal {
                detail: format!("rnix reports {err} in:\n{text}"),
            });
        }
        if parsed.syntax().green() != built.green() {
            return Err(Error::Internal {
                detail: first_difference(&built, &parsed.syntax()),
            });
        }
        Ok((built, text))
    }
}

/// Appends the text of `node`'s tokens, in order, to `out`.
fn push_text(node: &rowan::GreenNodeData, out: &mut String) {
    for child in node.children() {
        match child {
            rowan::NodeOrToken::Node(node) => push_text(node, out),
            rowan::NodeOrToken::Token(token) => out.push_str(token.text()),
        }
    }
}

/// Where two trees first differ, in a few lines rather than two full dumps.
fn first_difference(built: &rnix::SyntaxNode, parsed: &rnix::SyntaxNode) -> String {
    let describe = |e: rowan::NodeOrToken<rnix::SyntaxNode, rnix::SyntaxToken>| match e {
        rowan::NodeOrToken::Node(n) => format!("{:?}@{:?}", n.kind(), n.text_range()),
        rowan::NodeOrToken::Token(t) => {
            format!("{:?}@{:?} {:?}", t.kind(), t.text_range(), t.text())
        }
    };
    let mut a = built.descendants_with_tokens();
    let mut b = parsed.descendants_with_tokens();
    loop {
        match (a.next(), b.next()) {
            (Some(x), Some(y)) => {
                let (x, y) = (describe(x), describe(y));
                if x != y {
                    return format!("built {x} where rnix reads {y}");
                }
            }
            (x, y) => {
                return format!(
                    "built {:?} where rnix reads {:?}",
                    x.map(describe),
                    y.map(describe)
                );
            }
        }
    }
}

/// `# `-prefixed comment lines for `lines`, each ending in a newline: the same text a [`File`]
/// header becomes, for callers that put a header above text rendered separately (pifleet's
/// generated-file header carries a digest of the body below it). Line breaks inside a line,
/// LF or CR, start a new comment line, so nothing can escape into code.
pub fn comment_block<S: AsRef<str>>(lines: &[S]) -> Result<String, Error> {
    let owned: Vec<String> = lines.iter().map(|l| l.as_ref().to_owned()).collect();
    let mut out = String::new();
    for line in print::comment_lines(&owned)? {
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

/// Renders a single expression (no header), checked and formatted. Handy for tests and tools.
pub fn render_expr(expr: &Expr) -> Result<String, Error> {
    File::new(expr.clone()).render(Check::Format)
}

/// nixpkgs-fmt's formatting of `text`, which must already be valid Nix.
///
/// nixpkgs-fmt returns invalid input unchanged without an error (shared/REFERENCE.md), which is
/// why only text that has passed [`File::syntax`] comes here.
pub fn format(text: &str) -> String {
    nixpkgs_fmt::reformat_string(text)
}
