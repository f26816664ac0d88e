//! Text from a plugin made safe to print on a terminal: control characters
//! are shown escaped instead of being interpreted, so a message cannot move
//! the cursor, clear the screen, retitle the window (ANSI/OSC sequences),
//! overwrite a line (`\r`), break one into several (`\n`), or reorder what
//! is displayed (bidirectional overrides).
//!
//! Escaped: C0 controls (`\0`, `\t`, `\n`, `\r` by name, others as
//! `\x1b`-style), DEL (`\x7f`), C1 controls (U+0080..U+009F, as `\u{9b}`)
//! and the invisible direction controls U+061C, U+200E, U+200F,
//! U+202A..U+202E and U+2066..U+2069 (as `\u{202e}`). Everything else,
//! including a backslash, is printed as it is. The JSON-lines stream is not
//! escaped this way: it keeps the exact text (JSON escapes what it must).

use std::fmt::{self, Display, Write as _};

/// Displays the wrapped text with control characters escaped.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        let mut clean_from = 0;
        for (at, c) in text.char_indices() {
            if !needs_escape(c) {
                continue;
            }
            f.write_str(&text[clean_from..at])?;
            write_escape(f, c)?;
            clean_from = at + c.len_utf8();
        }
        f.write_str(&text[clean_from..])
    }
}

/// Whether `c` would be interpreted by a terminal rather than shown.
pub fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

fn write_escape(f: &mut fmt::Formatter<'_>, c: char) -> fmt::Result {
    match c {
        '\0' => f.write_str("\\0"),
        '\t' => f.write_str("\\t"),
        '\n' => f.write_str("\\n"),
        '\r' => f.write_str("\\r"),
        '\u{0}'..='\u{7f}' => write!(f, "\\x{:02x}", c as u32),
        _ => write!(f, "\\u{{{:x}}}", c as u32),
    }
}

/// `text` with control characters escaped, as a new string.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let _ = write!(out, "{}", Escaped(text));
    out
}

/// Whether `text` prints as it is.
pub fn is_clean(text: &str) -> bool {
    // Printable ASCII needs no escape: checked a byte at a time first.
    text.bytes().all(|b| (0x20..0x7f).contains(&b)) || !text.chars().any(needs_escape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_not_interpreted() {
        assert_eq!(escape("plain text, tab-free"), "plain text, tab-free");
        assert_eq!(escape("\x1b]0;pwned\x07title"), "\\x1b]0;pwned\\x07title");
        assert_eq!(escape("50%\rdone\n\0"), "50%\\rdone\\n\\0");
        assert_eq!(escape("a\tb\x7f"), "a\\tb\\x7f");
        assert_eq!(escape("\u{9b}2J"), "\\u{9b}2J");
        assert_eq!(escape("user\u{202e}gpj.exe"), "user\\u{202e}gpj.exe");
        assert_eq!(escape("\u{2066}x\u{2069}\u{200f}"), "\\u{2066}x\\u{2069}\\u{200f}");
    }

    #[test]
    fn other_text_is_kept_exactly() {
        for text in ["héllo wörld ✓", "日本語", "back\\slash \\x1b", "emoji 🦀", ""] {
            assert_eq!(escape(text), text);
            assert!(is_clean(text));
        }
        assert!(!is_clean("a\x1bb"));
    }

    #[test]
    fn nothing_escaped_contains_a_control() {
        let every: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let out = escape(&every);
        assert!(is_clean(&out));
        assert!(!out.bytes().any(|b| b == 0x1b || b == b'\r' || b == b'\n' || b == 0));
    }
}
