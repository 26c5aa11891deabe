//! Compiles the Tailwind utility classes used in `app/` into one stylesheet with tailwind-rs.
//!
//! tailwind-rs turns a utility (`px-4`) into CSS declarations; this crate finds the classes,
//! applies variants (`md:`, `hover:`) itself with correctly escaped selectors, and puts the
//! result after `style/base.css` (reset and theme variables).
//!
//! Classes are found wherever they are written in `app/src` (see `scan_classes`): attributes,
//! `tw!` markers, constants, conditions, `format!` strings.

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

/// A string literal of a Rust source: its text and where it starts.
struct Literal<'s> {
    text: &'s str,
    start: usize,
}

/// The string literals of a Rust source (plain and raw), skipping comments, char literals and
/// byte strings. Escapes are left as they are: class names have none.
fn string_literals(source: &str) -> Vec<Literal<'_>> {
    let bytes = source.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = source[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = source[i + 2..].find("*/").map_or(bytes.len(), |n| i + 2 + n + 2);
            }
            b'\'' => {
                // A char literal ('x', '\n', '\u{..}') or a lifetime ('a): skip only the former.
                let rest = &source[i + 1..];
                let close = if let Some(escaped) = rest.strip_prefix('\\') {
                    escaped.find('\'').map(|n| n + 1)
                } else {
                    rest.char_indices().nth(1).filter(|(_, c)| *c == '\'').map(|(n, _)| n)
                };
                i += close.map_or(1, |n| n + 2);
            }
            b'b' if bytes.get(i + 1) == Some(&b'"') && !is_ident(bytes.get(i.wrapping_sub(1))) => {
                i = skip_quoted(bytes, i + 1);
            }
            b'r' if matches!(bytes.get(i + 1), Some(b'"' | b'#')) && !is_ident(bytes.get(i.wrapping_sub(1))) => {
                let hashes = bytes[i + 1..].iter().take_while(|b| **b == b'#').count();
                if bytes.get(i + 1 + hashes) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let open = i + 2 + hashes;
                let closing = format!("\"{}", "#".repeat(hashes));
                let end = source[open..].find(&closing).map_or(bytes.len(), |n| open + n);
                found.push(Literal { text: &source[open..end], start: i });
                i = end + closing.len();
            }
            b'"' => {
                let end = skip_quoted(bytes, i);
                found.push(Literal { text: &source[i + 1..end.saturating_sub(1).max(i + 1)], start: i });
                i = end;
            }
            _ => i += 1,
        }
    }
    found
}

fn is_ident(byte: Option<&u8>) -> bool {
    byte.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// The index just past the string starting with the quote at `open`.
fn skip_quoted(bytes: &[u8], open: usize) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Whether the literal at `start` is what a class context gives: right after `class=`,
/// `attr:class=`, `class:` or `tw!(` (whitespace and line breaks between them allowed).
fn in_class_context(source: &str, start: usize) -> bool {
    let before = source[..start].trim_end();
    ["class=", "tw!("].iter().any(|marker| before.ends_with(marker))
}

/// Whether `token` has the shape of a Tailwind class (variants, a utility, an opacity).
fn class_shaped(token: &str) -> bool {
    let utility = token.rsplit(':').next().unwrap_or(token);
    let utility = utility.strip_prefix('-').unwrap_or(utility);
    let mut chars = utility.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && utility.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '/' | '.'))
        && token.split(':').all(|part| !part.is_empty())
}

/// The classes used in the Rust sources below `dir`, however they are written: in a class
/// attribute or a `tw!` (on the same line or not), in a constant, in one branch of a condition,
/// or beside a `{}` of `format!`. A literal in a class context counts whole (so a misspelt class
/// fails the build); any other literal counts when every word has a class's shape and at least
/// one of them is a utility tailwind-rs knows.
pub fn scan_classes(dir: &Path) -> anyhow::Result<BTreeSet<String>> {
    let generator = CssGenerator::new();
    let known = |token: &str| {
        parse(token).is_some_and(|p| generator.class_to_properties(p.utility).is_ok_and(|props| !props.is_empty()))
    };
    let mut classes = BTreeSet::new();
    for file in rust_files(dir)? {
        let source = fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        for literal in string_literals(&source) {
            let tokens: Vec<&str> = literal.text.split_whitespace().filter(|t| !t.contains(['{', '}'])).collect();
            if tokens.is_empty() {
                continue;
            }
            let counts = in_class_context(&source, literal.start)
                || (tokens.iter().all(|t| class_shaped(t)) && tokens.iter().any(|t| known(t)));
            if counts {
                classes.extend(tokens.into_iter().map(str::to_owned));
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

    fn scan(source: &str) -> BTreeSet<String> {
        let dir = std::env::temp_dir().join(format!("style-scan-{}-{}", std::process::id(), source.len()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("a.rs"), source).unwrap();
        let classes = scan_classes(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        classes
    }

    fn set(classes: &[&str]) -> BTreeSet<String> {
        classes.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn finds_classes_in_attributes_and_markers() {
        let source = r#"view! { <div class="flex p-4"><A attr:class="text-sm"/></div> } const X: &str = tw!("md:grid hover:bg-slate-100");"#;
        assert_eq!(scan(source), set(&["flex", "p-4", "text-sm", "md:grid", "hover:bg-slate-100"]));
    }

    #[test]
    fn finds_classes_however_they_are_written() {
        let source = r##"
            pub const BUTTON: &str = tw!(
                "inline-flex bg-blue-600 text-white"
            );
            const QUIET: &str = "rounded-md border px-3";
            view! {
                <p class=if ok { "mt-4 bg-green-50" } else { "mt-4 bg-red-50" }>"Payment received"</p>
                <button class=format!("{} w-full", BUTTON)>"Sign in"</button>
                <span class=r#"text-xs"#/>
            }
            // "not-a-class in a comment"
            let status = "paid"; let label = "Sign in"; let c = 'x'; fn f<'a>(x: &'a str) {}
        "##;
        assert_eq!(
            scan(source),
            set(&[
                "inline-flex",
                "bg-blue-600",
                "text-white",
                "rounded-md",
                "border",
                "px-3",
                "mt-4",
                "bg-green-50",
                "bg-red-50",
                "w-full",
                "text-xs"
            ])
        );
    }

    #[test]
    fn a_misspelt_class_in_a_class_attribute_is_kept_to_fail_the_build() {
        let classes = scan(r#"view! { <div class="flx p-4"/> }"#);
        assert!(classes.contains("flx"));
        assert_eq!(build("", &classes).unsupported, vec!["flx".to_owned()]);
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
