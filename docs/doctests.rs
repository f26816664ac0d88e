//! The book (`docs/src`) and the README, checked by `cargo test`.
//!
//! Every Rust block of every chapter and of the README is a doc-test of one
//! of the items below (rustdoc compiles the Markdown file as the item's
//! documentation), compiled against this workspace's `plugin-api` and
//! `loader` and run unless marked `no_run`; a block marked `ignore` is one
//! that only compiles together with another block, and the text says which
//! test builds it (`tests/tests/new_plugin.rs` builds the README's and the
//! book's plugin crates for real). `mdbook test` cannot do this: it compiles
//! blocks without the workspace's crates.
//!
//! The unit tests check what `mdbook build` does not: every chapter is in
//! `SUMMARY.md`, every relative link and `#anchor` of the book and the
//! README leads somewhere, every code block says its language, and the
//! README stays short.

macro_rules! markdown_doctests {
    ($($name:ident => $path:literal,)*) => {
        $(
            #[cfg(doctest)]
            #[doc = include_str!($path)]
            pub struct $name;
        )*
        /// The files whose examples are doc-tests, from this folder.
        #[cfg(test)]
        const DOCTESTED: &[&str] = &[$($path),*];
    };
}

markdown_doctests! {
    Readme => "../README.md",
    Introduction => "src/introduction.md",
    WritingPlugins => "src/writing-plugins.md",
    Workflows => "src/workflows.md",
    Permissions => "src/permissions.md",
    Cli => "src/cli.md",
    Events => "src/events.md",
    Logging => "src/logging.md",
    Report => "src/report.md",
    Backend => "src/backend.md",
    Ray => "src/ray.md",
    Isolation => "src/isolation.md",
    ManifestCache => "src/manifest-cache.md",
    Sandbox => "src/sandbox.md",
    ThreatModel => "src/threat-model.md",
    Secrets => "src/secrets.md",
    Compatibility => "src/compatibility.md",
    Benchmarks => "src/benchmarks.md",
    Architecture => "src/architecture.md",
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::DOCTESTED;

    /// The README's size limit (issue 26): what a newcomer reads first stays
    /// short; reference material goes into the book.
    const README_MAX_BYTES: usize = 12_000;

    /// The languages a fenced block may name. A block without one would be
    /// compiled by rustdoc as Rust and shown by mdBook as plain text.
    const LANGUAGES: &[&str] = &["rust", "toml", "sh", "console", "text", "json"];

    fn docs_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Every chapter file of the book.
    fn chapters() -> Vec<PathBuf> {
        let mut chapters: Vec<PathBuf> = std::fs::read_dir(docs_dir().join("src"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "md"))
            .filter(|path| !path.ends_with("SUMMARY.md"))
            .collect();
        chapters.sort();
        chapters
    }

    /// The Markdown files whose links are checked: the chapters and the README.
    fn documents() -> Vec<PathBuf> {
        let mut documents = chapters();
        documents.push(docs_dir().join("../README.md"));
        documents
    }

    /// The lines of `text` outside fenced code blocks, with their number.
    fn prose_lines(text: &str) -> Vec<(usize, &str)> {
        let mut in_block = false;
        let mut lines = Vec::new();
        for (number, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                in_block = !in_block;
            } else if !in_block {
                lines.push((number + 1, line));
            }
        }
        lines
    }

    /// Inline code spans taken out, so that `[x](y)` inside backticks is no link.
    fn without_code_spans(line: &str) -> String {
        line.split('`').step_by(2).collect::<Vec<_>>().join("")
    }

    /// The targets of the inline links and images of a line, and of its
    /// reference definitions (`[name]: target`).
    fn link_targets(line: &str) -> Vec<String> {
        let line = without_code_spans(line);
        let mut targets: Vec<String> = line
            .split("](")
            .skip(1)
            .filter_map(|rest| rest.split_once(')').map(|(target, _)| target.to_owned()))
            .collect();
        if let Some(definition) = line.trim_start().strip_prefix('[') {
            if let Some((_, target)) = definition.split_once("]: ") {
                targets.push(target.trim().to_owned());
            }
        }
        targets
    }

    /// The anchor mdBook gives a heading: lowercase letters, digits, `_`
    /// and `-` kept, spaces as `-`, everything else dropped.
    fn anchor(heading: &str) -> String {
        without_code_spans_keeping_text(heading)
            .chars()
            .filter_map(|c| {
                if c.is_alphanumeric() || c == '_' || c == '-' {
                    Some(c.to_ascii_lowercase())
                } else if c.is_whitespace() {
                    Some('-')
                } else {
                    None
                }
            })
            .collect()
    }

    /// A heading's text as rendered: code spans keep their text, links
    /// their label.
    fn without_code_spans_keeping_text(heading: &str) -> String {
        let text = heading.replace('`', "");
        match (text.find('['), text.find("](")) {
            (Some(open), Some(middle)) if open < middle => {
                let close = middle + text[middle..].find(')').unwrap_or(text.len() - middle);
                format!("{}{}{}", &text[..open], &text[open + 1..middle], &text[close + 1..])
            }
            _ => text,
        }
    }

    /// The anchors of a Markdown file's headings.
    fn anchors(path: &Path) -> BTreeSet<String> {
        prose_lines(&read(path))
            .into_iter()
            .filter_map(|(_, line)| line.strip_prefix('#'))
            .map(|heading| anchor(heading.trim_start_matches('#').trim()))
            .collect()
    }

    #[test]
    fn every_chapter_is_in_the_summary_and_every_summary_entry_exists() {
        let summary = read(&docs_dir().join("src/SUMMARY.md"));
        let listed: BTreeSet<String> = summary.lines().flat_map(link_targets).collect();
        for chapter in chapters() {
            let name = chapter.file_name().unwrap().to_str().unwrap();
            assert!(listed.contains(name), "{name} is not in docs/src/SUMMARY.md");
        }
        for entry in &listed {
            assert!(
                docs_dir().join("src").join(entry).is_file(),
                "SUMMARY.md names {entry}, which does not exist"
            );
        }
    }

    #[test]
    fn every_chapter_with_examples_is_doctested() {
        for chapter in chapters() {
            let name = format!("src/{}", chapter.file_name().unwrap().to_str().unwrap());
            assert!(
                DOCTESTED.contains(&name.as_str()),
                "{name} is not among the doc-tested files of docs/doctests.rs"
            );
        }
    }

    #[test]
    fn every_relative_link_and_anchor_leads_somewhere() {
        let mut broken = Vec::new();
        for document in documents() {
            let folder = document.parent().unwrap();
            for (number, line) in prose_lines(&read(&document)) {
                for target in link_targets(line) {
                    if target.contains("://") || target.starts_with("mailto:") {
                        continue;
                    }
                    let (file, fragment) = target.split_once('#').unwrap_or((&target, ""));
                    let linked = if file.is_empty() {
                        document.clone()
                    } else {
                        folder.join(file)
                    };
                    let place = format!("{}:{number}: {target}", document.display());
                    if !linked.exists() {
                        broken.push(format!("{place}: no such file"));
                    } else if !fragment.is_empty() && !anchors(&linked).contains(fragment) {
                        broken.push(format!("{place}: no heading with that anchor"));
                    }
                }
            }
        }
        assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    }

    #[test]
    fn every_code_block_names_its_language() {
        let mut unnamed = Vec::new();
        for document in documents() {
            let mut in_block = false;
            for (number, line) in read(&document).lines().enumerate() {
                let Some(info) = line.trim_start().strip_prefix("```") else {
                    continue;
                };
                if !in_block {
                    let language = info.split(',').next().unwrap_or_default().trim();
                    if !LANGUAGES.contains(&language) {
                        unnamed.push(format!("{}:{}: ```{info}", document.display(), number + 1));
                    }
                }
                in_block = !in_block;
            }
        }
        assert!(
            unnamed.is_empty(),
            "code blocks without one of the languages {LANGUAGES:?}:\n{}",
            unnamed.join("\n")
        );
    }

    #[test]
    fn the_readme_stays_short() {
        let size = read(&docs_dir().join("../README.md")).len();
        assert!(
            size <= README_MAX_BYTES,
            "README.md is {size} bytes, over {README_MAX_BYTES}: move reference material into the book"
        );
    }

    #[test]
    fn anchors_are_made_as_mdbook_makes_them() {
        assert_eq!(anchor("Starting one with `loader new`"), "starting-one-with-loader-new");
        assert_eq!(
            anchor("The plugin's stdout and stderr are output"),
            "the-plugins-stdout-and-stderr-are-output"
        );
        assert_eq!(anchor("Releasing 1.N+1"), "releasing-1n1");
    }
}
