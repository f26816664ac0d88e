//! "Did you mean": the known field name closest to a mistyped one, for the
//! params errors (an edit distance, so that plugins gain no dependency).

/// `did you mean `x`?` for the known name closest to `typed`, if one is
/// within a third of its length in edits (at least one).
pub(crate) fn did_you_mean<'a>(typed: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let typed_lower = typed.to_lowercase();
    let limit = (typed.chars().count() / 3).max(1);
    known
        .into_iter()
        .map(|name| (edit_distance(&typed_lower, &name.to_lowercase()), name))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| format!("did you mean `{name}`?"))
}

/// Levenshtein distance in characters (insertions, deletions, substitutions).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: [&str; 3] = ["epochs", "learning_rate", "samples"];

    #[test]
    fn a_typo_finds_the_field() {
        assert_eq!(did_you_mean("epoch", FIELDS).as_deref(), Some("did you mean `epochs`?"));
        assert_eq!(
            did_you_mean("EPOCHS", FIELDS).as_deref(),
            Some("did you mean `epochs`?")
        );
        assert_eq!(
            did_you_mean("learning_rte", FIELDS).as_deref(),
            Some("did you mean `learning_rate`?")
        );
    }

    #[test]
    fn nothing_close_suggests_nothing() {
        assert_eq!(did_you_mean("batch", FIELDS), None);
        assert_eq!(did_you_mean("x", []), None);
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
