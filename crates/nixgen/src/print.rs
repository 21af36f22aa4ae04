//! Lowering [`Expr`] into an rnix syntax tree, with the layout written out as tokens.
//!
//! Layout is data here, as in alejandra: every space and newline is a whitespace token emitted
//! through [`Printer::ws`] or [`Printer::newline`], so the tree prints losslessly and the text is
//! exactly what was built. The layout is nixpkgs-fmt's own canonical one (one binding or element
//! per line, two-space indent), so formatting the result again is a no-op; the tests hold that.

use rnix::{NixLanguage, SyntaxKind, SyntaxKind::*};
use rowan::{GreenNode, GreenNodeBuilder, Language, NodeCache};

use crate::Error;
use crate::escape::{self, is_identifier};
use crate::expr::{AttrPath, AttrSet, Entry, Expr, Repr};

const INDENT: usize = 2;

pub(crate) struct Printer<'cache> {
    builder: GreenNodeBuilder<'cache>,
    /// Indentation of the line currently being written.
    indent: usize,
}

impl<'cache> Printer<'cache> {
    /// A printer interning its tokens and nodes in `cache`. One cache serves every file a thread
    /// prints: the host modules of a fleet share most of their tokens (`=`, `;`, indentation,
    /// option names), so most are found rather than allocated and hashed again.
    pub(crate) fn new(cache: &'cache mut NodeCache) -> Self {
        Self {
            builder: GreenNodeBuilder::with_cache(cache),
            indent: 0,
        }
    }

    /// A whole file: header comments, the expression, a final newline.
    pub(crate) fn file(mut self, header: &[String], expr: &Expr) -> Result<GreenNode, Error> {
        self.start(NODE_ROOT);
        for line in comment_lines(header)? {
            self.token(TOKEN_COMMENT, &line);
            self.ws("\n");
        }
        self.expr(expr)?;
        self.ws("\n");
        self.finish();
        Ok(self.builder.finish())
    }

    fn start(&mut self, kind: SyntaxKind) {
        self.builder.start_node(NixLanguage::kind_to_raw(kind));
    }

    fn finish(&mut self) {
        self.builder.finish_node();
    }

    fn token(&mut self, kind: SyntaxKind, text: &str) {
        self.builder.token(NixLanguage::kind_to_raw(kind), text);
    }

    fn ws(&mut self, text: &str) {
        self.token(TOKEN_WHITESPACE, text);
    }

    /// A line break followed by the indentation of the next line.
    fn newline(&mut self, indent: usize) {
        let mut text = String::with_capacity(indent + 1);
        text.push('\n');
        text.extend(std::iter::repeat_n(' ', indent));
        self.ws(&text);
    }

    fn expr(&mut self, expr: &Expr) -> Result<(), Error> {
        match &expr.0 {
            Repr::Null => self.ident_node("null"),
            Repr::Bool(b) => self.ident_node(if *b { "true" } else { "false" }),
            Repr::Int(i) => self.int(*i),
            Repr::Str(s) => self.string(s, "string")?,
            Repr::Path(p) => self.path(p)?,
            Repr::Var(name) => {
                check_identifier(name)?;
                self.ident_node(name);
            }
            Repr::Select(base, path) => {
                self.start(NODE_SELECT);
                self.operand(base, Position::SelectBase)?;
                self.token(TOKEN_DOT, ".");
                self.attrpath(path)?;
                self.finish();
            }
            Repr::Apply(function, argument) => {
                self.start(NODE_APPLY);
                self.operand(function, Position::Function)?;
                self.ws(" ");
                self.operand(argument, Position::Argument)?;
                self.finish();
            }
            Repr::List(items) => self.list(items)?,
            Repr::Attrs(set) => self.attrset(set)?,
            Repr::With(scope, body) => {
                self.start(NODE_WITH);
                self.token(TOKEN_WITH, "with");
                self.ws(" ");
                self.operand(scope, Position::Argument)?;
                self.token(TOKEN_SEMICOLON, ";");
                self.ws(" ");
                self.expr(body)?;
                self.finish();
            }
            Repr::LetIn(bindings, body) => {
                self.start(NODE_LET_IN);
                self.token(TOKEN_LET, "let");
                self.bindings(bindings)?;
                self.newline(self.indent);
                self.token(TOKEN_IN, "in");
                self.newline(self.indent);
                self.expr(body)?;
                self.finish();
            }
            Repr::Function(param, body) => {
                check_identifier(param)?;
                self.start(NODE_LAMBDA);
                self.start(NODE_IDENT_PARAM);
                self.ident_node(param);
                self.finish();
                self.token(TOKEN_COLON, ":");
                self.ws(" ");
                self.expr(body)?;
                self.finish();
            }
            Repr::Lambda(formals, body) => {
                self.start(NODE_LAMBDA);
                self.start(NODE_PATTERN);
                self.token(TOKEN_L_BRACE, "{");
                self.ws(" ");
                for formal in formals {
                    check_identifier(formal)?;
                    self.start(NODE_PAT_ENTRY);
                    self.ident_node(formal);
                    self.finish();
                    self.token(TOKEN_COMMA, ",");
                    self.ws(" ");
                }
                self.token(TOKEN_ELLIPSIS, "...");
                self.ws(" ");
                self.token(TOKEN_R_BRACE, "}");
                self.finish();
                self.token(TOKEN_COLON, ":");
                self.newline(self.indent);
                self.expr(body)?;
                self.finish();
            }
        }
        Ok(())
    }

    /// An expression in a position that binds tighter than it may: wrap it in parentheses.
    fn operand(&mut self, expr: &Expr, position: Position) -> Result<(), Error> {
        let needs_parens = match (&expr.0, position) {
            // Negative integers carry their own parentheses.
            (Repr::Int(_), _) => false,
            (Repr::Apply(..), Position::Function) => false,
            (Repr::Select(..), Position::Function | Position::Argument) => false,
            (
                Repr::Apply(..)
                | Repr::With(..)
                | Repr::LetIn(..)
                | Repr::Lambda(..)
                | Repr::Function(..),
                _,
            ) => true,
            _ => false,
        };
        if needs_parens {
            self.start(NODE_PAREN);
            self.token(TOKEN_L_PAREN, "(");
            self.expr(expr)?;
            self.token(TOKEN_R_PAREN, ")");
            self.finish();
            Ok(())
        } else {
            self.expr(expr)
        }
    }

    fn ident_node(&mut self, name: &str) {
        self.start(NODE_IDENT);
        self.token(TOKEN_IDENT, name);
        self.finish();
    }

    fn int(&mut self, value: i64) {
        if value >= 0 {
            self.literal_int(&value.to_string());
            return;
        }
        self.start(NODE_PAREN);
        self.token(TOKEN_L_PAREN, "(");
        if value == i64::MIN {
            // 9223372036854775808 does not fit in a Nix integer literal: (-9223372036854775807 - 1).
            self.start(NODE_BIN_OP);
            self.negative(&i64::MAX.to_string());
            self.ws(" ");
            self.token(TOKEN_SUB, "-");
            self.ws(" ");
            self.literal_int("1");
            self.finish();
        } else {
            self.negative(&value.unsigned_abs().to_string());
        }
        self.token(TOKEN_R_PAREN, ")");
        self.finish();
    }

    fn negative(&mut self, digits: &str) {
        self.start(NODE_UNARY_OP);
        self.token(TOKEN_SUB, "-");
        self.literal_int(digits);
        self.finish();
    }

    fn literal_int(&mut self, digits: &str) {
        self.start(NODE_LITERAL);
        self.token(TOKEN_INTEGER, digits);
        self.finish();
    }

    fn string(&mut self, value: &str, what: &'static str) -> Result<(), Error> {
        self.string_as(value, what, escape::fits_indented(value))
    }

    /// A string, indented (`''…''`) or not. Attribute names must not be: Nix's grammar only allows
    /// `"…"` there, although rnix accepts both.
    fn string_as(&mut self, value: &str, what: &'static str, indented: bool) -> Result<(), Error> {
        escape::check_no_nul(value, what)?;
        self.start(NODE_STRING);
        if indented {
            self.token(TOKEN_STRING_START, "''");
            let content = escape::indented_content(value, self.indent + INDENT, self.indent);
            self.token(TOKEN_STRING_CONTENT, &content);
            self.token(TOKEN_STRING_END, "''");
        } else {
            self.token(TOKEN_STRING_START, "\"");
            if !value.is_empty() {
                self.token(TOKEN_STRING_CONTENT, &escape::double_quoted_content(value));
            }
            self.token(TOKEN_STRING_END, "\"");
        }
        self.finish();
        Ok(())
    }

    fn path(&mut self, path: &str) -> Result<(), Error> {
        escape::check_no_nul(path, "path")?;
        if path.starts_with('/') || path.starts_with('~') || path.starts_with('<') {
            return Err(Error::NotRelative {
                path: path.to_owned(),
            });
        }
        let segments: Vec<&str> = path
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        let literal_ok = segments.iter().all(|s| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'))
        });
        if segments.is_empty() {
            self.path_literal("./.");
        } else if literal_ok {
            let prefix = if segments[0] == ".." { "" } else { "./" };
            self.path_literal(&format!("{prefix}{}", segments.join("/")));
        } else {
            // `./. + "/a b.nix"` is the path `a b.nix` next to this file.
            self.start(NODE_PAREN);
            self.token(TOKEN_L_PAREN, "(");
            self.start(NODE_BIN_OP);
            self.path_literal("./.");
            self.ws(" ");
            self.token(TOKEN_ADD, "+");
            self.ws(" ");
            self.string(&format!("/{}", segments.join("/")), "path")?;
            self.finish();
            self.token(TOKEN_R_PAREN, ")");
            self.finish();
        }
        Ok(())
    }

    fn path_literal(&mut self, text: &str) {
        self.start(NODE_PATH_REL);
        self.token(TOKEN_PATH_REL, text);
        self.finish();
    }

    fn attrpath(&mut self, path: &AttrPath) -> Result<(), Error> {
        if path.0.is_empty() {
            return Err(Error::EmptyAttrPath);
        }
        self.start(NODE_ATTRPATH);
        for (i, segment) in path.0.iter().enumerate() {
            if i > 0 {
                self.token(TOKEN_DOT, ".");
            }
            if is_identifier(segment) {
                self.ident_node(segment);
            } else {
                self.string_as(segment, "attribute name", false)?;
            }
        }
        self.finish();
        Ok(())
    }

    fn list(&mut self, items: &[Expr]) -> Result<(), Error> {
        self.start(NODE_LIST);
        self.token(TOKEN_L_BRACK, "[");
        let inline = items.is_empty() || (items.len() == 1 && items[0].is_atom());
        if inline {
            self.ws(" ");
            for item in items {
                self.operand(item, Position::ListItem)?;
                self.ws(" ");
            }
        } else {
            let outer = self.indent;
            self.indent += INDENT;
            for item in items {
                self.newline(self.indent);
                self.operand(item, Position::ListItem)?;
            }
            self.indent = outer;
            self.newline(outer);
        }
        self.token(TOKEN_R_BRACK, "]");
        self.finish();
        Ok(())
    }

    fn attrset(&mut self, set: &AttrSet) -> Result<(), Error> {
        self.start(NODE_ATTR_SET);
        self.token(TOKEN_L_BRACE, "{");
        if set.is_empty() {
            self.ws(" ");
        } else {
            self.bindings(set)?;
            self.newline(self.indent);
        }
        self.token(TOKEN_R_BRACE, "}");
        self.finish();
        Ok(())
    }

    /// The bindings of a set or `let`, one per line, one level deeper than the current line.
    fn bindings(&mut self, set: &AttrSet) -> Result<(), Error> {
        let outer = self.indent;
        self.indent += INDENT;
        let mut seen = std::collections::HashSet::new();
        let mut blank_pending = false;
        for entry in &set.entries {
            match entry {
                Entry::Blank => blank_pending = true,
                Entry::Comment(text) => {
                    for line in comment_lines(std::slice::from_ref(text))? {
                        self.line_break(&mut blank_pending);
                        self.token(TOKEN_COMMENT, &line);
                    }
                }
                Entry::Binding(path, value) => {
                    if !seen.insert(path) {
                        return Err(Error::DuplicateAttr {
                            path: path.0.join("."),
                        });
                    }
                    self.line_break(&mut blank_pending);
                    self.start(NODE_ATTRPATH_VALUE);
                    self.attrpath(path)?;
                    self.ws(" ");
                    self.token(TOKEN_ASSIGN, "=");
                    if matches!(value.0, Repr::LetIn(..)) {
                        // nixpkgs-fmt puts a `let` value on its own, deeper line.
                        let line = self.indent;
                        self.indent += INDENT;
                        self.newline(self.indent);
                        self.expr(value)?;
                        self.indent = line;
                    } else {
                        self.ws(" ");
                        self.expr(value)?;
                    }
                    self.token(TOKEN_SEMICOLON, ";");
                    self.finish();
                }
            }
        }
        self.indent = outer;
        Ok(())
    }

    /// The break before an entry: one whitespace token, as the parser would make it.
    fn line_break(&mut self, blank_pending: &mut bool) {
        let mut text = String::with_capacity(self.indent + 2);
        if std::mem::take(blank_pending) {
            text.push('\n');
        }
        text.push('\n');
        text.extend(std::iter::repeat_n(' ', self.indent));
        self.ws(&text);
    }
}

#[derive(Debug, Clone, Copy)]
enum Position {
    SelectBase,
    Function,
    Argument,
    ListItem,
}

fn check_identifier(name: &str) -> Result<(), Error> {
    if is_identifier(name) {
        Ok(())
    } else {
        escape::check_no_nul(name, "identifier")?;
        Err(Error::NotIdentifier {
            name: name.to_owned(),
        })
    }
}

/// `# `-prefixed comment lines. Nix ends a comment at LF or CR, so both split lines here:
/// nothing in a comment can escape into code.
pub(crate) fn comment_lines(texts: &[String]) -> Result<Vec<String>, Error> {
    let mut lines = Vec::new();
    for text in texts {
        escape::check_no_nul(text, "comment")?;
        for line in text.split(['\n', '\r']) {
            let line = line.trim_end();
            lines.push(if line.is_empty() {
                "#".to_owned()
            } else {
                format!("# {line}")
            });
        }
    }
    Ok(lines)
}
