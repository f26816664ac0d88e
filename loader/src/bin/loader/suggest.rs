//! "Did you mean": the known names closest to a mistyped plugin or action
//! name (Jaro-Winkler similarity, from `strsim`).

/// How similar a name must be to be suggested (0 to 1).
const MIN_SIMILARITY: f64 = 0.8;

/// The known names similar to `typed`, most similar first.
pub fn similar_names<'a>(typed: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let typed = typed.to_lowercase();
    let mut scored: Vec<(f64, &str)> = known
        .into_iter()
        .map(|name| (strsim::jaro_winkler(&typed, &name.to_lowercase()), name))
        .filter(|(score, _)| *score >= MIN_SIMILARITY)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().map(|(_, name)| name).collect()
}

/// `did you mean "x"?` or `did you mean "x" or "y"?`, if any name is close.
pub fn did_you_mean<'a>(typed: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let names: Vec<String> = similar_names(typed, known)
        .into_iter()
        .take(2)
        .map(|n| format!("{n:?}"))
        .collect();
    (!names.is_empty()).then(|| format!("did you mean {}?", names.join(" or ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLUGINS: [&str; 3] = ["tabular-trainer", "dataset-exporter", "workflow-trainer"];

    #[test]
    fn a_typo_finds_the_name() {
        assert_eq!(
            did_you_mean("tabular-trainr", PLUGINS).as_deref(),
            Some("did you mean \"tabular-trainer\"?")
        );
        assert_eq!(
            did_you_mean("trian", ["train", "evaluate"]).as_deref(),
            Some("did you mean \"train\"?")
        );
        assert_eq!(
            did_you_mean("TRAIN", ["train"]).as_deref(),
            Some("did you mean \"train\"?")
        );
    }

    #[test]
    fn nothing_close_suggests_nothing() {
        assert_eq!(did_you_mean("zzz", PLUGINS), None);
        assert_eq!(did_you_mean("anything", []), None);
    }

    #[test]
    fn the_closest_comes_first() {
        assert_eq!(
            similar_names("workflow-trainer2", PLUGINS).first(),
            Some(&"workflow-trainer")
        );
    }
}
