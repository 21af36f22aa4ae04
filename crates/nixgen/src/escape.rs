//! Turning Rust strings into Nix source that means exactly that string.
//!
//! This is the one place where a value becomes Nix text, so it is the one place that has to be right
//! about Nix's lexer. The rules (shared/REFERENCE.md, checked against `nix-instantiate`):
//!
//! - `"…"` strings escape `\`, `"`, newline, CR and tab, and `$` only where it starts `${`.
//! - `''…''` strings are used only for multi-line text whose every line survives Nix's indentation
//!   stripping and nixpkgs-fmt untouched; anything else falls back to `"…"`, which can spell every
//!   value. Inside them `${` is written `''${`, and a `'` is allowed only where it cannot run into
//!   the closing `''` or an escape.
//! - Attribute names are bare where they are identifiers and not keywords, quoted otherwise.
//!
//! Nix strings are C strings underneath and cannot hold NUL, so a NUL byte is an error, never
//! silently dropped or replaced: a value that cannot be written exactly is not written at all.

use crate::Error;

/// Words the Nix lexer reserves; they can't be bare attribute names or variables.
const KEYWORDS: &[&str] = &[
    "assert", "else", "if", "in", "inherit", "let", "or", "rec", "then", "with",
];

/// Whether `name` can be written bare as an attribute name or a variable:
/// `[A-Za-z_][A-Za-z0-9_'-]*` and not a keyword.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '\'' | '-'))
        && !KEYWORDS.contains(&name)
}

/// Rejects values Nix cannot represent.
pub(crate) fn check_no_nul(value: &str, what: &'static str) -> Result<(), Error> {
    match value.find('\0') {
        Some(offset) => Err(Error::Nul {
            what,
            offset,
            value: value.to_owned(),
        }),
        None => Ok(()),
    }
}

/// The content of a `"…"` string (without the quotes) whose value is `value`.
pub(crate) fn double_quoted_content(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `value` is best and safely written as an indented `''…''` string.
///
/// Conservative on purpose: the fallback, a `"…"` string, is always exact.
pub(crate) fn fits_indented(value: &str) -> bool {
    if !value.contains('\n') || value.contains('\r') {
        return false;
    }
    // A `'` next to another `'`, a `$` or the closing delimiter would merge into `''`-escapes.
    let bytes = value.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\'' && matches!(bytes.get(i + 1), None | Some(b'\'') | Some(b'$')) {
            return false;
        }
    }
    let lines: Vec<&str> = value.split('\n').collect();
    let mut min_indent = usize::MAX;
    for line in &lines {
        if line.is_empty() {
            continue;
        }
        // Trailing blanks are invisible in review and the formatter may strip them;
        // a blank-only last line would be dropped by Nix itself.
        if line.ends_with([' ', '\t']) {
            return false;
        }
        min_indent = min_indent.min(line.len() - line.trim_start_matches(' ').len());
    }
    // Nix strips the common indentation; if every line of the value is itself indented, that
    // indentation would be stripped along with ours. Also require some visible text.
    min_indent == 0 && !lines.iter().all(|l| l.is_empty())
}

/// The body of an indented string (between the delimiters) for a value accepted by
/// [`fits_indented`], with content lines at `indent` spaces and the closing delimiter's line at
/// `close_indent`.
pub(crate) fn indented_content(value: &str, indent: usize, close_indent: usize) -> String {
    let mut out = String::with_capacity(value.len() + 16);
    out.push('\n');
    let mut lines = value.split('\n').peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        if last && line.is_empty() {
            // The value ended with a newline: the closing `''` gets its own line.
            out.extend(std::iter::repeat_n(' ', close_indent));
            break;
        }
        if !line.is_empty() {
            out.extend(std::iter::repeat_n(' ', indent));
            out.push_str(&line.replace("${", "''${"));
        }
        if !last {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for ok in [
            "a",
            "rpi-box-01",
            "_x",
            "x'",
            "mkDefault",
            "true",
            "null",
            "A9_-'",
        ] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in [
            "", "1a", "-a", "a.b", "8123/tcp", "my host", "if", "or", "inherit", "é", "a$",
        ] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn double_quoted_escapes_only_what_nix_needs() {
        assert_eq!(double_quoted_content(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(double_quoted_content("${x} $y $"), "\\${x} $y $");
        assert_eq!(double_quoted_content("$${"), "$\\${");
        assert_eq!(double_quoted_content("\n\r\t"), "\\n\\r\\t");
    }

    #[test]
    fn indented_strings_are_chosen_conservatively() {
        assert!(fits_indented("line one\nline two\n"));
        assert!(fits_indented("echo ${HOME}\n  indented\n"));
        assert!(!fits_indented("single line"));
        assert!(!fits_indented("  all\n  indented\n"));
        assert!(!fits_indented("trailing \nspace\n"));
        assert!(!fits_indented("ends with '\n'"));
        assert!(!fits_indented("quote '' inside\n"));
        assert!(!fits_indented("dollar '$\n"));
        assert!(!fits_indented("cr\r\n"));
        assert!(!fits_indented("\n\n"));
    }

    #[test]
    fn indented_layout() {
        assert_eq!(indented_content("a\n b\n", 4, 2), "\n    a\n     b\n  ");
        assert_eq!(indented_content("a\n\nb", 2, 0), "\n  a\n\n  b");
        assert_eq!(indented_content("x ${y}\n", 2, 0), "\n  x ''${y}\n");
    }

    #[test]
    fn nul_is_an_error() {
        let err = check_no_nul("ab\0c", "string").unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
        assert!(check_no_nul("abc", "string").is_ok());
    }
}
