//! A fast check of the JSON data most events carry: a flat object whose
//! keys and strings are printable ASCII without escapes, such as
//! `{"i":1,"loss":0.25}`. Every text it accepts is JSON that serde_json
//! reads as a `Value` (its numbers are short enough to stay within f64's
//! range), and prints on a terminal as it is; whatever it does not accept
//! is left to serde_json to decide, so it only ever saves work, never
//! changes what is accepted.
//!
//! The shape, with no whitespace anywhere:
//!
//! ```text
//! object := '{' '}' | '{' member (',' member)* '}'
//! member := string ':' (string | number | 'true' | 'false' | 'null')
//! string := '"' (printable ASCII but '"' and '\')* '"'
//! number := '-'? ('0' | [1-9][0-9]*) ('.' [0-9]+)? ([eE] [+-]? [0-9]+)?
//! ```
//!
//! with at most `MAX_INTEGER_DIGITS` digits before a number's point and
//! at most `MAX_EXPONENT_DIGITS` in its exponent.

/// The most digits before a plain number's point: with its exponent, the
/// number stays far below f64's largest (about 1.8e308).
const MAX_INTEGER_DIGITS: usize = 100;

/// The most digits of a plain number's exponent.
const MAX_EXPONENT_DIGITS: usize = 2;

/// Whether `text` is a JSON object of the plain shape (see the module docs).
pub fn is_plain_object(text: &[u8]) -> bool {
    if text.first() != Some(&b'{') {
        return false;
    }
    if text.get(1) == Some(&b'}') {
        return text.len() == 2;
    }
    let mut at = 1;
    loop {
        let Some(key_end) = string_end(text, at) else {
            return false;
        };
        if text.get(key_end) != Some(&b':') {
            return false;
        }
        let Some(value_end) = value_end(text, key_end + 1) else {
            return false;
        };
        match text.get(value_end) {
            Some(b',') => at = value_end + 1,
            Some(b'}') => return value_end + 1 == text.len(),
            _ => return false,
        }
    }
}

/// Where the plain string starting at `at` ends (after its closing quote).
fn string_end(text: &[u8], at: usize) -> Option<usize> {
    if text.get(at) != Some(&b'"') {
        return None;
    }
    let body = &text[at + 1..];
    let len = body
        .iter()
        .position(|&b| !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\')?;
    (body[len] == b'"').then_some(at + 1 + len + 1)
}

/// Where the scalar value starting at `at` ends.
fn value_end(text: &[u8], at: usize) -> Option<usize> {
    let word_end = |word: &[u8]| text[at..].starts_with(word).then_some(at + word.len());
    match text.get(at)? {
        b'"' => string_end(text, at),
        b't' => word_end(b"true"),
        b'f' => word_end(b"false"),
        b'n' => word_end(b"null"),
        _ => number_end(text, at),
    }
}

/// Where the JSON number starting at `at` ends.
fn number_end(text: &[u8], mut at: usize) -> Option<usize> {
    let is_digit = |at: usize| text.get(at).is_some_and(u8::is_ascii_digit);
    let digits_end = |mut at: usize| {
        while is_digit(at) {
            at += 1;
        }
        at
    };
    if text.get(at) == Some(&b'-') {
        at += 1;
    }
    let integer_start = at;
    match text.get(at)? {
        b'0' => at += 1,
        b'1'..=b'9' => at = digits_end(at + 1),
        _ => return None,
    }
    if at - integer_start > MAX_INTEGER_DIGITS {
        return None;
    }
    if text.get(at) == Some(&b'.') {
        if !is_digit(at + 1) {
            return None;
        }
        at = digits_end(at + 1);
    }
    if matches!(text.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(text.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exponent_start = at;
        at = digits_end(at);
        if at == exponent_start || at - exponent_start > MAX_EXPONENT_DIGITS {
            return None;
        }
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether serde_json reads `text` as a `Value` (stricter than checking
    /// it as a `RawValue`).
    fn serde_accepts(text: &[u8]) -> bool {
        std::str::from_utf8(text).is_ok_and(|text| serde_json::from_str::<serde_json::Value>(text).is_ok())
    }

    #[test]
    fn plain_objects_are_accepted() {
        for text in [
            "{}",
            r#"{"i":1,"loss":0.25}"#,
            r#"{"a":-0,"b":-12.5e+3,"c":1E9,"d":"x y~","e":true,"f":false,"g":null,"":""}"#,
            r#"{"n":0.0,"m":10,"k":3e-2}"#,
            format!(r#"{{"a":-{}.5e+99}}"#, "9".repeat(MAX_INTEGER_DIGITS)).as_str(),
        ] {
            assert!(is_plain_object(text.as_bytes()), "{text}");
            assert!(serde_accepts(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn anything_else_is_left_to_serde_json() {
        for text in [
            "",
            "{",
            "[]",
            "{} ",
            " {}",
            "{}}",
            r#"{"a":1}{"#,
            r#"{"a": 1}"#,
            r#"{"a":{"b":1}}"#,
            r#"{"a":[1]}"#,
            r#"{"a":"\n"}"#,
            r#"{"a":"\u0041"}"#,
            "{\"a\":\"\u{e9}\"}",
            "{\"a\":\"\x1f\"}",
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"{"a":+1}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"{"a":1,}"#,
            r#"{,"a":1}"#,
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"{a:1}"#,
            r#"{"a":"b}"#,
            r#"{"a":1e400}"#,
            r#"{"a":1e100}"#,
            format!(r#"{{"a":1{}}}"#, "0".repeat(MAX_INTEGER_DIGITS)).as_str(),
        ] {
            assert!(!is_plain_object(text.as_bytes()), "{text}");
        }
    }

    /// Every text the check accepts, serde_json accepts: mutations of plain
    /// objects (a byte replaced, inserted or removed) are tried by the
    /// hundred thousand.
    #[test]
    fn nothing_serde_json_refuses_is_accepted() {
        const BYTES: &[u8] = b"{}[]\",:-+.eE0123456789999truefalsenul \\xa\x01\x7f\xc3";
        let seeds: [&[u8]; 4] = [
            br#"{"i":1,"loss":0.25}"#,
            br#"{"a":-0.5e-7,"b":"t","c":null,"d":true,"e":false}"#,
            b"{}",
            br#"{"k":10,"s":"","n":-3E+2}"#,
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        for round in 0..200_000 {
            let mut text = seeds[round % seeds.len()].to_vec();
            for _ in 0..1 + random(3) {
                let at = random(text.len() + 1);
                let byte = BYTES[random(BYTES.len())];
                match random(3) {
                    0 if at < text.len() => text[at] = byte,
                    1 if at < text.len() => {
                        text.remove(at);
                    }
                    _ => text.insert(at, byte),
                }
            }
            if is_plain_object(&text) {
                assert!(serde_accepts(&text), "{}", String::from_utf8_lossy(&text));
            }
        }
    }
}
