//! Checks shared by every text people send: no control characters where a line is expected,
//! and never NUL (PostgreSQL cannot store it in text; the request would otherwise fail late).

use crate::error::{Error, Result};

/// Refuses control characters in `value` (line breaks and tabs are allowed when `multiline`),
/// naming `field` in the 422.
pub fn plain_text(value: &str, field: &'static str, multiline: bool) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::invalid(field, "Remove the NUL character (\\0): text cannot contain it."));
    }
    let refused = |c: char| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t'));
    if value.chars().any(refused) {
        return Err(Error::invalid(field, "Remove the control characters from this text."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_and_control_characters_are_refused_with_the_field_named() {
        assert!(plain_text("Lot 17", "lot", false).is_ok());
        assert!(plain_text("two\nlines", "description", true).is_ok());
        for (value, multiline) in [("a\0b", true), ("two\nlines", false), ("bell\u{7}", true), ("del\u{7f}", false)] {
            let err = plain_text(value, "lot", multiline).unwrap_err();
            assert_eq!((err.status(), err.field()), (422, Some("lot")), "{value:?}");
        }
    }
}
