//! Reading an env file (`--env-file`) with `dotenvy`: `KEY=VALUE` lines,
//! `#` comments, an optional `export `, single quotes (literal), double
//! quotes (with `\n`, `\"`, `\\`, `\$` escapes, may span lines), unquoted
//! values up to a ` #` comment.
//!
//! One deliberate difference from dotenvy: values are never expanded.
//! dotenvy replaces `$NAME` and `${NAME}` with the loader's own environment
//! variable first and only then with a key defined above in the file, so a
//! file could silently copy anything the shell holds into the plugin's
//! environment, past the `--env-prefix` rule. An unescaped `$` outside
//! single quotes is therefore an error naming the file and line, with the
//! fix (`\$` or single quotes); checking that first means dotenvy never
//! substitutes anything.

use std::path::{Path, PathBuf};

/// A file that is not a valid env file, with where and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvFileError {
    #[error("{path}:{line}: {text:?} is not KEY=VALUE")]
    BadLine { path: PathBuf, line: usize, text: String },
    #[error(
        "{path}:{line}: `$` would expand a variable, and env files are read literally; \
         write \\$ for a dollar sign or put the value in single quotes"
    )]
    Expansion { path: PathBuf, line: usize },
}

/// The `KEY=VALUE` pairs of the env file `text` read from `path`, in order.
pub fn parse(path: &Path, text: &str) -> Result<Vec<(String, String)>, EnvFileError> {
    if let Some(line) = first_expansion(text) {
        return Err(EnvFileError::Expansion {
            path: path.to_owned(),
            line,
        });
    }
    let mut pairs = Vec::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok(pair) => pairs.push(pair),
            Err(dotenvy::Error::LineParse(fragment, _)) => {
                let (line, text) = line_of(text, &fragment);
                return Err(EnvFileError::BadLine {
                    path: path.to_owned(),
                    line,
                    text,
                });
            }
            Err(other) => {
                return Err(EnvFileError::BadLine {
                    path: path.to_owned(),
                    line: 1,
                    text: other.to_string(),
                })
            }
        }
    }
    Ok(pairs)
}

/// The 1-based line of the first line holding `fragment` (what dotenvy
/// quotes in an error: the statement, or its value part), and that line.
fn line_of(text: &str, fragment: &str) -> (usize, String) {
    let first_line = fragment.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    text.lines()
        .enumerate()
        .find(|(_, line)| !first_line.is_empty() && line.contains(first_line))
        .map(|(index, line)| (index + 1, line.to_owned()))
        .unwrap_or_else(|| (text.lines().count().max(1), fragment.trim_end().to_owned()))
}

/// Where dotenvy could see a substitution: the 1-based line of the first
/// `$` outside single quotes, comments and backslash escapes. It reads
/// quotes as dotenvy does, so a `$` it lets through is literal to dotenvy.
fn first_expansion(text: &str) -> Option<usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut quote = Quote::None;
    for (index, line) in text.lines().enumerate() {
        if quote == Quote::None && line.trim_start().starts_with('#') {
            continue;
        }
        let mut escaped = false;
        let mut after_space = false;
        for c in line.chars() {
            if escaped {
                escaped = false;
                continue;
            }
            match (quote, c) {
                (Quote::Single, '\'') | (Quote::Double, '"') => quote = Quote::None,
                (Quote::Single, _) => {}
                (_, '\\') => escaped = true,
                (_, '$') => return Some(index + 1),
                (Quote::None, '\'') => quote = Quote::Single,
                (Quote::None, '"') => quote = Quote::Double,
                (Quote::None, '#') if after_space => break,
                _ => {}
            }
            after_space = quote == Quote::None && (c == ' ' || c == '\t');
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Result<Vec<(String, String)>, EnvFileError> {
        parse(Path::new("t.env"), text)
    }

    fn pair(key: &str, value: &str) -> (String, String) {
        (key.to_owned(), value.to_owned())
    }

    #[test]
    fn reads_comments_export_quotes_escapes_and_multi_line_values() {
        let text = "# comment\n\n  export EPOCHS=3\nNAME=\"quoted value\"\nLR='0.1'\nPLAIN=a#b # note\n\
                    LITERAL='$HOME \\n'\nESCAPED=\"cost \\$5\\nnext\"\nMULTI=\"one\ntwo\"\nEMPTY=\n";
        assert_eq!(
            pairs(text).unwrap(),
            vec![
                pair("EPOCHS", "3"),
                pair("NAME", "quoted value"),
                pair("LR", "0.1"),
                pair("PLAIN", "a#b"),
                pair("LITERAL", "$HOME \\n"),
                pair("ESCAPED", "cost $5\nnext"),
                pair("MULTI", "one\ntwo"),
                pair("EMPTY", ""),
            ]
        );
    }

    #[test]
    fn never_expands_a_variable_from_the_loader_or_the_file() {
        for (text, line) in [
            ("A=1\nB=$PATH\n", 2),
            ("A=1\nB=${A}\n", 2),
            ("X=\"in $HOME quotes\"\n", 1),
            ("X=\"multi\nline $HOME\"\n", 2),
            ("X='a'$HOME\n", 1),
            ("X=a\\\\$HOME\n", 1),
        ] {
            assert_eq!(
                pairs(text),
                Err(EnvFileError::Expansion {
                    path: "t.env".into(),
                    line
                }),
                "{text:?}"
            );
        }
        let err = pairs("K=$HOME").unwrap_err().to_string();
        assert!(err.starts_with("t.env:1: `$` would expand"), "{err}");
        assert!(err.contains("write \\$"), "{err}");
        assert_eq!(
            pairs("# $HOME\nK=v # $HOME\nS='it''s $HOME'\n").unwrap(),
            vec![pair("K", "v"), pair("S", "its $HOME")]
        );
    }

    #[test]
    fn a_malformed_line_is_named_by_number_and_text() {
        let err = pairs("OK=1\n\nbroken line\n").unwrap_err();
        assert_eq!(
            err,
            EnvFileError::BadLine {
                path: "t.env".into(),
                line: 3,
                text: "broken line".into()
            }
        );
        assert_eq!(err.to_string(), "t.env:3: \"broken line\" is not KEY=VALUE");
        let unquoted_space = pairs("A=1\nB=two words\n").unwrap_err();
        assert!(
            matches!(unquoted_space, EnvFileError::BadLine { line: 2, .. }),
            "{unquoted_space}"
        );
        let unterminated = pairs("A=1\nB=\"open\n").unwrap_err();
        assert!(
            matches!(unterminated, EnvFileError::BadLine { line: 2, .. }),
            "{unterminated}"
        );
    }
}
