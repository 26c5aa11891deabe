//! Every Tailwind class used in app/ must compile to a rule that applies to it, with values
//! that make sense: this is what keeps the UI from silently losing its styling.

use std::{collections::BTreeSet, path::Path};

fn app_stylesheet() -> (BTreeSet<String>, style::Stylesheet) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let classes = style::scan_classes(&root.join("app/src")).unwrap();
    let base = std::fs::read_to_string(root.join("style/base.css")).unwrap();
    let sheet = style::build(&base, &classes);
    (classes, sheet)
}

#[test]
fn the_app_uses_classes() {
    let (classes, _) = app_stylesheet();
    // A scanner that found nothing would make every other test here pass vacuously.
    assert!(classes.len() > 50, "only {} classes found", classes.len());
    assert!(classes.contains("md:grid-cols-3"));
}

#[test]
fn every_class_produces_a_rule_for_itself() {
    let (classes, sheet) = app_stylesheet();
    assert!(sheet.unsupported.is_empty(), "tailwind-rs has no rule for: {:?}", sheet.unsupported);
    for class in &classes {
        let selector = format!(".{}", style::escape_selector(class));
        let found = sheet.css.match_indices(&selector).any(|(i, _)| {
            let after = &sheet.css[i + selector.len()..];
            after.starts_with(" {") || after.starts_with(':')
        });
        assert!(found, "no rule selects {class}");
    }
}

#[test]
fn every_custom_property_used_is_defined() {
    let (_, sheet) = app_stylesheet();
    let (used, defined) = style::custom_properties(&sheet.css);
    let missing: Vec<_> = used.difference(&defined).collect();
    assert!(missing.is_empty(), "base.css must define {missing:?}");
}

#[test]
fn colours_are_not_black_by_accident() {
    // tailwind-rs maps palettes it does not know (slate, indigo, amber, …) to #000000.
    let (classes, _) = app_stylesheet();
    let generator = tailwind_rs_core::CssGenerator::new();
    for class in classes.iter().filter(|c| !c.ends_with("-black")) {
        let utility = class.rsplit(':').next().unwrap();
        if let Ok(properties) = generator.class_to_properties(utility) {
            for p in properties {
                assert!(!p.value.contains("#000000"), "{class} compiles to {}: {}", p.name, p.value);
            }
        }
    }
}

#[test]
fn utilities_tailwind_rs_gets_wrong_are_not_used() {
    // space-x/space-y compile to margins on the element itself rather than between children.
    let (classes, _) = app_stylesheet();
    let wrong: Vec<_> = classes.iter().filter(|c| c.contains("space-x-") || c.contains("space-y-")).collect();
    assert!(wrong.is_empty(), "use flex with gap instead of {wrong:?}");
}

#[test]
fn the_primary_button_is_blue_with_white_text() {
    // ui::BUTTON is written on its own line inside tw!(…); its classes must still be compiled.
    let (classes, sheet) = app_stylesheet();
    for class in ["bg-blue-600", "text-white", "hover:bg-blue-700"] {
        assert!(classes.contains(class), "{class} was not found in app/src");
        let selector = format!(".{} {{", style::escape_selector(class));
        let selector = if class.starts_with("hover:") { selector.replace(" {", ":hover {") } else { selector };
        assert!(sheet.css.contains(&selector), "no rule {selector}");
    }
}
