//! Compiles the Tailwind utility classes used in `app/` into one stylesheet with tailwind-rs.
//!
//! tailwind-rs turns a utility (`px-4`) into CSS declarations; this crate finds the classes,
//! applies variants (`md:`, `hover:`) itself with correctly escaped selectors, and puts the
//! result after `style/base.css` (reset and theme variables).
//!
//! Classes are found in literal `class="…"` / `attr:class="…"` attributes and in `tw!("…")`
//! calls, which is how class strings elsewhere in the code are marked.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    fs,
    path::Path,
};

use anyhow::Context as _;
use tailwind_rs_core::CssGenerator;

/// The responsive prefixes, in the order their media queries must appear.
const BREAKPOINTS: [(&str, &str); 5] = [
    ("sm", "(min-width: 640px)"),
    ("md", "(min-width: 768px)"),
    ("lg", "(min-width: 1024px)"),
    ("xl", "(min-width: 1280px)"),
    ("2xl", "(min-width: 1536px)"),
];

const STATES: [(&str, &str); 6] = [
    ("hover", ":hover"),
    ("focus", ":focus"),
    ("focus-visible", ":focus-visible"),
    ("active", ":active"),
    ("disabled", ":disabled"),
    ("first", ":first-child"),
];

/// Every Rust file below `dir`, sorted so the output is stable.
fn rust_files(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(rust_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The string literals that follow each occurrence of `marker` in `source`.
fn literals_after<'s>(source: &'s str, marker: &str) -> Vec<&'s str> {
    source
        .match_indices(marker)
        .filter_map(|(at, _)| {
            let rest = &source[at + marker.len()..];
            let rest = rest.strip_prefix('"')?;
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

/// The classes used in the Rust sources below `dir`.
pub fn scan_classes(dir: &Path) -> anyhow::Result<BTreeSet<String>> {
    let mut classes = BTreeSet::new();
    for file in rust_files(dir)? {
        let source = fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        for marker in ["class=", "tw!("] {
            for literal in literals_after(&source, marker) {
                classes.extend(literal.split_whitespace().map(str::to_owned));
            }
        }
    }
    Ok(classes)
}

/// Escapes a class name for use in a CSS selector (`md:grid-cols-3` → `md\:grid-cols-3`).
pub fn escape_selector(class: &str) -> String {
    let mut out = String::with_capacity(class.len() + 4);
    for (i, c) in class.chars().enumerate() {
        let needs_escape = !(c.is_ascii_alphanumeric() || c == '-' || c == '_') || (i == 0 && c.is_ascii_digit());
        if needs_escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A class split into its variants and the utility they apply to.
struct Parsed<'c> {
    media: Option<(usize, &'static str)>,
    pseudo: String,
    utility: &'c str,
}

fn parse(class: &str) -> Option<Parsed<'_>> {
    let mut parts: Vec<&str> = class.split(':').collect();
    let utility = parts.pop()?;
    let mut media = None;
    let mut pseudo = String::new();
    for variant in parts {
        if let Some(i) = BREAKPOINTS.iter().position(|(name, _)| *name == variant) {
            if media.is_some() {
                return None;
            }
            media = Some((i, BREAKPOINTS[i].1));
        } else if let Some((_, p)) = STATES.iter().find(|(name, _)| *name == variant) {
            pseudo.push_str(p);
        } else {
            return None;
        }
    }
    Some(Parsed { media, pseudo, utility })
}

/// The compiled stylesheet and the classes tailwind-rs produced no rule for.
pub struct Stylesheet {
    pub css: String,
    pub unsupported: Vec<String>,
}

/// Compiles `classes` (after `base_css`) into one stylesheet.
pub fn build(base_css: &str, classes: &BTreeSet<String>) -> Stylesheet {
    let generator = CssGenerator::new();
    let mut plain = String::new();
    let mut by_breakpoint: BTreeMap<usize, String> = BTreeMap::new();
    let mut unsupported = Vec::new();

    for class in classes {
        let properties = parse(class).and_then(|p| {
            let props = generator.class_to_properties(p.utility).ok().filter(|props| !props.is_empty())?;
            Some((p, props))
        });
        let Some((parsed, properties)) = properties else {
            unsupported.push(class.clone());
            continue;
        };
        let mut rule = format!(".{}{} {{", escape_selector(class), parsed.pseudo);
        for p in properties {
            let important = if p.important { " !important" } else { "" };
            let _ = write!(rule, " {}: {}{};", p.name, p.value, important);
        }
        rule.push_str(" }\n");
        match parsed.media {
            None => plain.push_str(&rule),
            Some((i, _)) => by_breakpoint.entry(i).or_default().push_str(&rule),
        }
    }

    let mut css = String::from(base_css);
    css.push_str("\n/* Utilities compiled by tailwind-rs from the classes used in app/. */\n");
    css.push_str(&plain);
    for (i, rules) in by_breakpoint {
        let _ = write!(css, "@media {} {{\n{rules}}}\n", BREAKPOINTS[i].1);
    }
    Stylesheet { css, unsupported }
}

/// The custom properties a stylesheet uses (`var(--x)`) and the ones it defines (`--x:`).
pub fn custom_properties(css: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let name_at =
        |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect::<String>();
    let used = css.match_indices("var(--").map(|(i, _)| name_at(&css[i + 4..])).collect();
    let defined = css
        .match_indices("--")
        .filter(|(i, _)| !css[..*i].ends_with("var("))
        .filter_map(|(i, _)| {
            let name = name_at(&css[i..]);
            css[i + name.len()..].trim_start().starts_with(':').then_some(name)
        })
        .collect();
    (used, defined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_classes_in_attributes_and_markers() {
        let source = r#"view! { <div class="flex p-4"><A attr:class="text-sm"/></div> } const X: &str = tw!("md:grid hover:bg-slate-100");"#;
        let dir = std::env::temp_dir().join(format!("style-scan-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("a.rs"), source).unwrap();
        let classes = scan_classes(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        let expected: BTreeSet<String> =
            ["flex", "p-4", "text-sm", "md:grid", "hover:bg-slate-100"].into_iter().map(String::from).collect();
        assert_eq!(classes, expected);
    }

    #[test]
    fn variants_get_escaped_selectors_and_media_queries() {
        let classes: BTreeSet<String> = ["md:flex", "hover:underline", "flex"].into_iter().map(String::from).collect();
        let sheet = build("", &classes);
        assert!(sheet.unsupported.is_empty(), "{:?}", sheet.unsupported);
        assert!(sheet.css.contains(".hover\\:underline:hover {"), "{}", sheet.css);
        assert!(sheet.css.contains("@media (min-width: 768px) {\n.md\\:flex {"), "{}", sheet.css);
    }

    #[test]
    fn unknown_classes_are_reported() {
        let classes: BTreeSet<String> = ["no-such-utility", "weird:flex"].into_iter().map(String::from).collect();
        let sheet = build("", &classes);
        assert_eq!(sheet.unsupported, vec!["no-such-utility".to_owned(), "weird:flex".to_owned()]);
    }

    #[test]
    fn custom_properties_are_told_apart() {
        let (used, defined) = custom_properties(":root { --a: 1px; } .x { width: var(--a); height: var(--b); }");
        assert_eq!(used, BTreeSet::from(["--a".to_owned(), "--b".to_owned()]));
        assert!(defined.contains("--a") && !defined.contains("--b"));
    }
}
