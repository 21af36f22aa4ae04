//! The expressions pifleet writes, as plain data.
//!
//! These are "stupid constructors" in rust-analyzer's sense: each builds one kind of node and
//! decides nothing about layout or escaping. Values are kept as the Rust strings the caller meant;
//! the printer turns them into Nix (escaping, quoting, layout) when the file is rendered, so no
//! caller ever handles Nix text and no user value can change the structure of the output.
//!
//! Names that must be identifiers (variables, function formals) are checked when rendered: a bad
//! one is an [`Error`](crate::Error), never a panic and never spliced in.

/// A Nix expression under construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr(pub(crate) Repr);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Repr {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Path(String),
    Var(String),
    Select(Box<Expr>, AttrPath),
    Apply(Box<Expr>, Box<Expr>),
    List(Vec<Expr>),
    Attrs(AttrSet),
    With(Box<Expr>, Box<Expr>),
    LetIn(AttrSet, Box<Expr>),
    Lambda(Vec<String>, Box<Expr>),
    Function(String, Box<Expr>),
}

impl Expr {
    /// `null`.
    pub fn null() -> Self {
        Self(Repr::Null)
    }

    /// `true` or `false`.
    pub fn bool(value: bool) -> Self {
        Self(Repr::Bool(value))
    }

    /// An integer; negative ones are parenthesised so they work in lists and as arguments.
    pub fn int(value: i64) -> Self {
        Self(Repr::Int(value))
    }

    /// A string whose Nix value is exactly `value`.
    ///
    /// Multi-line text is written as an indented `''…''` string when that is exact and stable
    /// under nixpkgs-fmt, otherwise as `"…"` with escapes. A NUL byte makes rendering fail.
    pub fn string(value: impl Into<String>) -> Self {
        Self(Repr::Str(value.into()))
    }

    /// A path relative to the file being written, such as `modules/media.nix` or `../x.nix`.
    ///
    /// Written as a path literal (`./modules/media.nix`) when every segment allows it, otherwise
    /// as `./. + "/…"`, which names the same path. Absolute paths are rejected when rendered:
    /// generated files must not depend on the machine that generated them.
    pub fn path(relative: impl Into<String>) -> Self {
        Self(Repr::Path(relative.into()))
    }

    /// A variable reference such as `pkgs`; the name must be an identifier.
    pub fn var(name: impl Into<String>) -> Self {
        Self(Repr::Var(name.into()))
    }

    /// `base.path`, e.g. `pkgs.vim` or `config.networking.hostName`.
    pub fn select(base: Expr, path: impl Into<AttrPath>) -> Self {
        let path = path.into();
        match base.0 {
            // `a.b` then `.c` is the one select `a.b.c`, which is how Nix reads it back.
            Repr::Select(inner, mut prefix) => {
                prefix.0.extend(path.0);
                Self(Repr::Select(inner, prefix))
            }
            other => Self(Repr::Select(Box::new(Self(other)), path)),
        }
    }

    /// Function application `function argument`; the argument is parenthesised where needed.
    pub fn apply(function: Expr, argument: Expr) -> Self {
        Self(Repr::Apply(Box::new(function), Box::new(argument)))
    }

    /// A list.
    pub fn list(items: impl IntoIterator<Item = Expr>) -> Self {
        Self(Repr::List(items.into_iter().collect()))
    }

    /// An attribute set.
    pub fn attrs(set: AttrSet) -> Self {
        Self(Repr::Attrs(set))
    }

    /// `with scope; body`.
    pub fn with(scope: Expr, body: Expr) -> Self {
        Self(Repr::With(Box::new(scope), Box::new(body)))
    }

    /// `let bindings in body`.
    pub fn let_in(bindings: AttrSet, body: Expr) -> Self {
        Self(Repr::LetIn(bindings, Box::new(body)))
    }

    /// A function over an attribute set pattern with `...`: `{ a, b, ... }: body`.
    pub fn lambda<S: Into<String>>(formals: impl IntoIterator<Item = S>, body: Expr) -> Self {
        Self(Repr::Lambda(
            formals.into_iter().map(Into::into).collect(),
            Box::new(body),
        ))
    }

    /// A function of one plain argument, `x: body`, on one line: predicates such as
    /// `pkg: builtins.elem (lib.getName pkg) [ … ]`.
    pub fn function(param: impl Into<String>, body: Expr) -> Self {
        Self(Repr::Function(param.into(), Box::new(body)))
    }

    /// Leaves that may sit alone inside an inline list.
    pub(crate) fn is_atom(&self) -> bool {
        match &self.0 {
            Repr::Null | Repr::Bool(_) | Repr::Int(_) | Repr::Path(_) | Repr::Var(_) => true,
            Repr::Str(s) => !crate::escape::fits_indented(s),
            Repr::Select(base, _) => base.is_atom(),
            _ => false,
        }
    }
}

impl From<bool> for Expr {
    fn from(value: bool) -> Self {
        Self::bool(value)
    }
}

impl From<i64> for Expr {
    fn from(value: i64) -> Self {
        Self::int(value)
    }
}

impl From<u16> for Expr {
    fn from(value: u16) -> Self {
        Self::int(i64::from(value))
    }
}

impl From<u32> for Expr {
    fn from(value: u32) -> Self {
        Self::int(i64::from(value))
    }
}

impl From<&str> for Expr {
    fn from(value: &str) -> Self {
        Self::string(value)
    }
}

impl From<String> for Expr {
    fn from(value: String) -> Self {
        Self::string(value)
    }
}

impl From<&String> for Expr {
    fn from(value: &String) -> Self {
        Self::string(value.as_str())
    }
}

impl From<AttrSet> for Expr {
    fn from(value: AttrSet) -> Self {
        Self::attrs(value)
    }
}

impl From<Vec<Expr>> for Expr {
    fn from(value: Vec<Expr>) -> Self {
        Self::list(value)
    }
}

/// An attribute path such as `services.openssh.enable` or `hosts."my.host"`.
///
/// Each segment is a name as the caller means it; the printer writes it bare or quoted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath(pub(crate) Vec<String>);

impl AttrPath {
    /// A path written in the source code, split on dots: `AttrPath::dotted("services.openssh")`.
    ///
    /// It takes `&'static str` so that it is used for fixed option names; build paths holding
    /// user values with [`AttrPath::key`] and [`AttrPath::then`], which never split.
    pub fn dotted(path: &'static str) -> Self {
        Self(path.split('.').map(str::to_owned).collect())
    }

    /// A one-segment path holding any name, such as a host or container name.
    pub fn key(name: impl Into<String>) -> Self {
        Self(vec![name.into()])
    }

    /// This path with one more segment appended.
    #[must_use]
    pub fn then(mut self, name: impl Into<String>) -> Self {
        self.0.push(name.into());
        self
    }

    /// The segments.
    pub fn segments(&self) -> &[String] {
        &self.0
    }
}

impl From<&'static str> for AttrPath {
    fn from(path: &'static str) -> Self {
        Self::dotted(path)
    }
}

impl<S: Into<String>> FromIterator<S> for AttrPath {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Self(iter.into_iter().map(Into::into).collect())
    }
}

/// An attribute set's bindings and comments, in the order they will be printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttrSet {
    pub(crate) entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    Binding(AttrPath, Expr),
    /// A `#` comment above the next binding; may span lines.
    Comment(String),
    /// An empty line, to separate sections.
    Blank,
}

impl AttrSet {
    /// An empty attribute set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `path = value;`.
    pub fn set(&mut self, path: impl Into<AttrPath>, value: impl Into<Expr>) -> &mut Self {
        self.entries.push(Entry::Binding(path.into(), value.into()));
        self
    }

    /// Builder form of [`AttrSet::set`].
    #[must_use]
    pub fn with(mut self, path: impl Into<AttrPath>, value: impl Into<Expr>) -> Self {
        self.set(path, value);
        self
    }

    /// Adds a comment line (or lines) above whatever comes next.
    pub fn comment(&mut self, text: impl Into<String>) -> &mut Self {
        self.entries.push(Entry::Comment(text.into()));
        self
    }

    /// Adds an empty line, to separate sections.
    pub fn blank(&mut self) -> &mut Self {
        if !self.entries.is_empty() {
            self.entries.push(Entry::Blank);
        }
        self
    }

    /// Whether no binding has been added.
    pub fn is_empty(&self) -> bool {
        !self.entries.iter().any(|e| matches!(e, Entry::Binding(..)))
    }

    /// Number of bindings.
    pub fn len(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e, Entry::Binding(..)))
            .count()
    }
}

impl<K: Into<AttrPath>, V: Into<Expr>> FromIterator<(K, V)> for AttrSet {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut set = Self::new();
        for (k, v) in iter {
            set.set(k, v);
        }
        set
    }
}

/// Frequently needed shapes, built from the constructors above.
pub mod make {
    use super::{AttrPath, Expr};

    /// `lib.<name> value`, e.g. `lib.mkDefault true`.
    pub fn lib_call(name: &'static str, value: Expr) -> Expr {
        Expr::apply(Expr::select(Expr::var("lib"), AttrPath::key(name)), value)
    }

    /// `lib.mkDefault value`.
    pub fn mk_default(value: Expr) -> Expr {
        lib_call("mkDefault", value)
    }

    /// `lib.mkForce value`.
    pub fn mk_force(value: Expr) -> Expr {
        lib_call("mkForce", value)
    }

    /// `import ./path`.
    pub fn import(path: impl Into<String>) -> Expr {
        Expr::apply(Expr::var("import"), Expr::path(path))
    }

    /// `pkgs.a.b` for a dotted package attribute name such as `python3Packages.requests`.
    ///
    /// The name is split on dots because that is how nixpkgs names nested packages; each
    /// segment is quoted where it is not an identifier.
    pub fn package(name: &str) -> Expr {
        Expr::select(Expr::var("pkgs"), name.split('.').collect::<AttrPath>())
    }

    /// Names that `with pkgs;` cannot reach: the module's arguments and Nix's global builtins
    /// are lexical bindings, which take precedence over `with`. The builtins are Nix 2.8's global
    /// scope (a test asks the installed Nix) plus `break`, global since Nix 2.9.
    pub const SHADOWED: &[&str] = &[
        "abort",
        "baseNameOf",
        "break",
        "builtins",
        "config",
        "derivation",
        "derivationStrict",
        "dirOf",
        "false",
        "fetchGit",
        "fetchMercurial",
        "fetchTarball",
        "fetchTree",
        "fromTOML",
        "import",
        "isNull",
        "lib",
        "map",
        "null",
        "pkgs",
        "placeholder",
        "removeAttrs",
        "scopedImport",
        "throw",
        "toString",
        "true",
    ];

    /// `with pkgs; [ a b ]`, falling back to `pkgs.x` selects for names that are not identifiers
    /// (under `with`, a bare name must be one) or that a lexical binding would shadow
    /// (`lib`, `map`, any `__` builtin).
    pub fn packages<'a>(names: impl IntoIterator<Item = &'a str>) -> Expr {
        let items = names.into_iter().map(|name| {
            let mut segments = name.split('.');
            match segments.next() {
                Some(first)
                    if crate::escape::is_identifier(first)
                        && !SHADOWED.contains(&first)
                        && !first.starts_with("__") =>
                {
                    let rest: Vec<&str> = segments.collect();
                    if rest.is_empty() {
                        Expr::var(first)
                    } else {
                        Expr::select(Expr::var(first), rest.into_iter().collect::<AttrPath>())
                    }
                }
                _ => package(name),
            }
        });
        Expr::with(Expr::var("pkgs"), Expr::list(items))
    }

    /// The NixOS module function `{ config, lib, pkgs, ... }: body`.
    pub fn module(body: Expr) -> Expr {
        Expr::lambda(["config", "lib", "pkgs"], body)
    }
}
