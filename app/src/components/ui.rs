//! Shared Tailwind class lists. Class strings that are not written literally in a class attribute are
//! wrapped in `tw!` so that the stylesheet builder (the `style` crate) finds them.

/// Marks a string as Tailwind classes for the stylesheet builder; expands to the string itself.
#[macro_export]
macro_rules! tw {
    ($classes:literal) => {
        $classes
    };
}

pub const CONTAINER: &str = tw!("mx-auto max-w-6xl px-4 py-8");
pub const CARD: &str = tw!("rounded-lg border border-gray-200 bg-white p-6 shadow-sm");
pub const HEADING: &str = tw!("text-2xl font-semibold text-gray-900");
pub const SUBHEADING: &str = tw!("text-lg font-semibold text-gray-900");
pub const MUTED: &str = tw!("text-sm text-gray-500");
pub const LABEL: &str = tw!("block text-sm font-medium text-gray-700");
pub const INPUT: &str = tw!("mt-1 block w-full rounded-md border border-gray-300 bg-white px-3 py-2 text-sm");
pub const BUTTON: &str = tw!(
    "inline-flex items-center justify-center rounded-md bg-blue-600 px-4 py-2 text-sm font-semibold text-white hover:bg-blue-700"
);
pub const BUTTON_QUIET: &str = tw!(
    "inline-flex items-center justify-center rounded-md border border-gray-300 bg-white px-3 py-2 text-sm font-medium text-gray-700 hover:bg-gray-100"
);
pub const LINK: &str = tw!("font-medium text-blue-600 hover:underline");
pub const TABLE: &str = tw!("min-w-full text-left text-sm");
pub const TH: &str = tw!("border-b border-gray-200 px-3 py-2 font-semibold text-gray-600");
pub const TD: &str = tw!("border-b border-gray-100 px-3 py-2");
pub const BADGE: &str =
    tw!("inline-flex items-center rounded-full bg-gray-100 px-2 py-1 text-xs font-medium text-gray-700");
pub const BADGE_OK: &str =
    tw!("inline-flex items-center rounded-full bg-green-100 px-2 py-1 text-xs font-medium text-green-800");
pub const BADGE_HIGH: &str =
    tw!("inline-flex items-center rounded-full bg-red-100 px-2 py-1 text-xs font-medium text-red-800");
pub const BADGE_WAIT: &str =
    tw!("inline-flex items-center rounded-full bg-yellow-100 px-2 py-1 text-xs font-medium text-gray-800");
