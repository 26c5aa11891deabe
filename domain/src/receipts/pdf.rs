//! The receipt, and the credit note drawn by the same code, as a one-page A4 PDF, drawn with
//! printpdf. The two faces it uses (DejaVu Sans and DejaVu Sans Bold) are read once at start:
//! they lose their hinting (`sfnt`) and allsorts cuts them down to the scripts receipts are set
//! in. Each receipt then embeds only the glyphs it draws, put together from those outlines
//! (`sfnt::Outlines::subset`), so it carries a few kilobytes of font rather than the whole face,
//! and hands printpdf the subset's glyphs and widths as they are rather than a font to parse.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    sync::Arc,
};

use allsorts::{
    binary::read::ReadScope,
    font_data::FontData,
    subset::{CmapTarget, SubsetProfile},
    tag,
};
use anyhow::{Context as _, anyhow};
use chrono::{DateTime, Utc};
use printpdf::{
    Color, FontId, FontMetrics, FontType, Greyscale, Line, LinePoint, Mm, OffsetDateTime, Op, PaintMode, ParsedFont,
    PdfDocument, PdfFontHandle, PdfFontMetricsStub, PdfPage, PdfSaveOptions, Point, Pt, Rect, Rgb, TextItem,
};
use sha2::{Digest as _, Sha256};

use super::sfnt::{Metrics, Outlines, strip_hinting};

mod file;
use crate::money::format_minor;

const PAGE_WIDTH: f32 = 210.0;
const PAGE_HEIGHT: f32 = 297.0;
const LEFT: f32 = 20.0;
const RIGHT: f32 = PAGE_WIDTH - 20.0;
const VALUE_COLUMN: f32 = 70.0;
const BODY_SIZE: f32 = 10.5;
/// Long descriptions are wrapped to at most this many lines.
const DESCRIPTION_LINES: usize = 4;

/// The scripts a receipt is set in: Latin (with Vietnamese), Greek and Cyrillic, with the
/// punctuation, currency and letter-like symbols around them. Scripts that need shaping or
/// right-to-left layout are left out: without a shaper they would print wrongly.
const COVERED: [(u32, u32); 11] = [
    (0x0020, 0x024F),
    (0x02B0, 0x02FF),
    (0x0370, 0x03FF),
    (0x0400, 0x052F),
    (0x1E00, 0x1EFF),
    (0x2000, 0x206F),
    (0x20A0, 0x20CF),
    (0x2100, 0x214F),
    (0x2150, 0x218F),
    (0x2190, 0x21FF),
    (0xFFFD, 0xFFFD),
];

/// Cuts `bytes` down to `glyph_ids` with allsorts, keeping the tables a PDF reads (no names, no
/// PostScript table).
fn subset(bytes: &[u8], glyph_ids: &[u16]) -> anyhow::Result<Vec<u8>> {
    let font = ReadScope::new(bytes).read::<FontData<'_>>().map_err(|e| anyhow!("font: {e}"))?;
    let provider = font.table_provider(0).map_err(|e| anyhow!("font tables: {e}"))?;
    let tables = SubsetProfile::Custom(vec![tag::CMAP, tag::HEAD, tag::HHEA, tag::HMTX, tag::MAXP, tag::OS_2]);
    allsorts::subset::subset(&provider, glyph_ids, &tables, CmapTarget::Unicode)
        .map_err(|e| anyhow!("could not subset the font: {e:?}"))
}

/// One face, read once at start, cut down to the scripts receipts are set in and without its
/// hinting: its outlines (each receipt's subset is put together from them) and the characters
/// it draws.
struct Face {
    outlines: Outlines,
    metrics: Metrics,
    postscript_name: String,
    glyphs: BTreeMap<u32, u16>,
}

impl Face {
    fn load(path: &Path) -> anyhow::Result<Self> {
        let full =
            std::fs::read(path).with_context(|| format!("could not read the receipt font {}", path.display()))?;
        let parsed = ParsedFont::from_bytes(&full, 0, &mut Vec::new())
            .ok_or_else(|| anyhow!("{} is not a TrueType font", path.display()))?;
        let covered: BTreeSet<u16> = parsed
            .codepoint_to_glyph
            .iter()
            .filter(|(c, g)| **g != 0 && COVERED.iter().any(|(from, to)| (*from..=*to).contains(*c)))
            .map(|(_, g)| *g)
            .collect();
        if covered.len() < 95 {
            return Err(anyhow!("{} does not cover the Latin alphabet", path.display()));
        }
        let glyph_ids: Vec<u16> = std::iter::once(0).chain(covered).collect();
        let bytes = subset(&full, &glyph_ids)
            .and_then(|cut| strip_hinting(&cut))
            .with_context(|| format!("{}", path.display()))?;
        let glyphs = ParsedFont::from_bytes(&bytes, 0, &mut Vec::new())
            .ok_or_else(|| anyhow!("the cut-down {} does not parse", path.display()))?
            .codepoint_to_glyph;
        let postscript_name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(|s| s.chars().filter(char::is_ascii_alphanumeric).collect())
            .unwrap_or_else(|| "Font".to_owned());
        let outlines = Outlines::read(&bytes)?;
        Ok(Self { metrics: outlines.metrics()?, outlines, postscript_name, glyphs })
    }

    fn draws(&self, c: char) -> bool {
        self.glyphs.contains_key(&u32::from(c))
    }

    /// The face reduced to the glyphs of `chars` (and .notdef), ready to embed.
    fn subset(&self, chars: &BTreeSet<char>) -> anyhow::Result<ParsedFont> {
        let used: Vec<(u32, u16)> = chars
            .iter()
            .filter_map(|c| self.glyphs.get(&u32::from(*c)).map(|g| (u32::from(*c), *g)))
            .filter(|(_, g)| *g != 0)
            .collect();
        // A subset is named with a six-letter tag (ISO 32000-1, 9.6.4), here taken from its glyphs.
        let digest = Sha256::digest(used.iter().flat_map(|(_, g)| g.to_be_bytes()).collect::<Vec<u8>>());
        let tag: String = digest.iter().take(6).map(|b| char::from(b'A' + b % 26)).collect();
        let subset = self.outlines.subset(&used)?;
        let m = &self.metrics;
        Ok(ParsedFont {
            original_bytes: subset.bytes,
            font_index: 0,
            font_name: Some(format!("{tag}+{}", self.postscript_name)),
            codepoint_to_glyph: subset.glyphs.into_iter().collect(),
            glyph_widths: (0..).zip(subset.advances).collect(),
            units_per_em: m.units_per_em,
            font_metrics: FontMetrics { ascent: m.ascent, descent: m.descent },
            font_type: FontType::TrueType,
            pdf_font_metrics: PdfFontMetricsStub {
                units_per_em: m.units_per_em,
                x_min: m.bounding_box[0],
                y_min: m.bounding_box[1],
                x_max: m.bounding_box[2],
                y_max: m.bounding_box[3],
                caret_slope_rise: m.caret_slope.0,
                caret_slope_run: m.caret_slope.1,
                us_weight_class: m.weight_class,
            },
        })
    }
}

/// The receipt faces, loaded once per process and shared.
#[derive(Clone)]
pub struct Fonts(Arc<[Face; 2]>);

impl std::fmt::Debug for Fonts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Fonts").field(&self.0[0].postscript_name).field(&self.0[1].postscript_name).finish()
    }
}

impl Fonts {
    /// Reads `DejaVuSans.ttf` and `DejaVuSans-Bold.ttf` from `dir` (Debian's fonts-dejavu-core).
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let regular = Face::load(&dir.join("DejaVuSans.ttf"))?;
        let bold = Face::load(&dir.join("DejaVuSans-Bold.ttf"))?;
        Ok(Self(Arc::new([regular, bold])))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Weight {
    Regular = 0,
    Bold = 1,
}

/// What a document is: a receipt for a payment, or a credit note for a refund of one.
#[derive(Debug, Clone)]
pub enum Kind {
    Receipt,
    CreditNote {
        /// The number of the receipt this note corrects.
        receipt_number: String,
        /// The tenant's words.
        reason: String,
    },
}

/// Everything printed on a receipt or a credit note. For a credit note, `amount` is the
/// refund's, `paid_at` when it was refunded and `payment_reference` Stripe's refund id.
#[derive(Debug, Clone)]
pub struct ReceiptContent {
    pub kind: Kind,
    pub number: String,
    /// Who received the payment (the tenant for a lot, the consultant for a fee), in the heading
    /// and the footer.
    pub seller: String,
    /// What was paid for and by whom, as labelled rows printed in order (see [`Item`]).
    pub items: Vec<Item>,
    pub amount: i64,
    pub currency: String,
    pub paid_at: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
    /// Stripe's id of the payment.
    pub payment_reference: String,
    pub verification_code: String,
    pub verify_url: String,
    pub livemode: bool,
}

/// One labelled row of a receipt's details; an empty value is left out.
#[derive(Debug, Clone)]
pub struct Item {
    pub label: &'static str,
    pub value: String,
    /// Long values are wrapped to at most this many lines.
    pub lines: usize,
}

impl Item {
    pub fn new(label: &'static str, value: impl Into<String>) -> Self {
        Item { label, value: value.into(), lines: 2 }
    }

    /// A row that may run to the description's length.
    pub fn long(label: &'static str, value: impl Into<String>) -> Self {
        Item { label, value: value.into(), lines: DESCRIPTION_LINES }
    }
}

/// The rows of a won lot's receipt or credit note.
pub fn lot_items(tenant: &str, auction: &str, lot: &str, description: &str, buyer_email: &str) -> Vec<Item> {
    vec![
        Item::new("Sold by", tenant),
        Item::new("Auction", auction),
        Item::new("Lot", lot),
        Item::long("Description", description),
        Item::new("Buyer", buyer_email),
    ]
}

/// A piece of text at a place on the page; `x` is its left edge, or its right edge when
/// `right_aligned`.
struct Text {
    weight: Weight,
    size: f32,
    x: f32,
    y: f32,
    right_aligned: bool,
    gray: f32,
    content: String,
}

struct Layout {
    texts: Vec<Text>,
    rules: Vec<f32>,
}

impl Layout {
    fn text(&mut self, weight: Weight, size: f32, x: f32, y: f32, content: impl Into<String>) {
        self.texts.push(Text { weight, size, x, y, right_aligned: false, gray: 0.1, content: content.into() });
    }

    fn muted(&mut self, size: f32, x: f32, y: f32, content: impl Into<String>) {
        self.texts.push(Text {
            weight: Weight::Regular,
            size,
            x,
            y,
            right_aligned: false,
            gray: 0.4,
            content: content.into(),
        });
    }

    fn right(&mut self, weight: Weight, size: f32, x: f32, y: f32, content: impl Into<String>) {
        self.texts.push(Text { weight, size, x, y, right_aligned: true, gray: 0.1, content: content.into() });
    }
}

/// Splits `text` into lines of at most `max` characters at spaces (a long word is cut).
fn wrap(text: &str, max: usize, lines: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_owned();
        while word.chars().count() > max {
            let head: String = word.chars().take(max).collect();
            word = word.chars().skip(max).collect();
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            out.push(head);
        }
        if current.chars().count() + word.chars().count() + usize::from(!current.is_empty()) > max {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&word);
    }
    if !current.is_empty() {
        out.push(current);
    }
    if out.len() > lines {
        out.truncate(lines);
        if let Some(last) = out.last_mut() {
            last.push('…');
        }
    }
    out
}

fn layout(content: &ReceiptContent) -> Layout {
    let credit = match &content.kind {
        Kind::Receipt => None,
        Kind::CreditNote { receipt_number, reason } => Some((receipt_number, reason)),
    };
    let mut l = Layout { texts: Vec::new(), rules: Vec::new() };
    let top = PAGE_HEIGHT - 25.0;
    l.text(Weight::Bold, 22.0, LEFT, top, if credit.is_some() { "Credit note" } else { "Receipt" });
    l.right(Weight::Bold, 13.0, RIGHT, top + 1.0, content.seller.clone());
    l.muted(9.0, LEFT, top - 8.0, format!("No. {}", content.number));
    l.right(Weight::Regular, 9.0, RIGHT, top - 8.0, "Payments by Remit");
    let mut y = top - 16.0;
    if !content.livemode {
        let what = if credit.is_some() { "TEST REFUND" } else { "TEST PAYMENT" };
        l.text(Weight::Bold, 10.0, LEFT, y, format!("{what}: made in test mode; no money was moved."));
        y -= 8.0;
    }
    l.rules.push(y);
    y -= 10.0;

    l.muted(9.0, LEFT, y, if credit.is_some() { "AMOUNT REFUNDED" } else { "AMOUNT PAID" });
    l.text(Weight::Bold, 24.0, LEFT, y - 11.0, format_minor(content.amount, &content.currency));
    let when = if credit.is_some() { "Refunded %-d %B %Y, %H:%M UTC" } else { "Paid %-d %B %Y, %H:%M UTC" };
    l.right(Weight::Regular, BODY_SIZE, RIGHT, y - 11.0, content.paid_at.format(when).to_string());
    y -= 24.0;
    l.rules.push(y);
    y -= 9.0;

    let row = |l: &mut Layout, y: &mut f32, label: &str, values: Vec<String>| {
        l.muted(BODY_SIZE, LEFT, *y, label);
        for value in values {
            l.text(Weight::Regular, BODY_SIZE, VALUE_COLUMN, *y, value);
            *y -= 6.0;
        }
        *y -= 2.0;
    };
    if let Some((receipt_number, reason)) = credit {
        row(&mut l, &mut y, "Corrects receipt", vec![format!("No. {receipt_number}")]);
        row(&mut l, &mut y, "Reason", wrap(reason, 60, DESCRIPTION_LINES));
    }
    for item in content.items.iter().filter(|i| !i.value.trim().is_empty()) {
        row(&mut l, &mut y, item.label, wrap(&item.value, 60, item.lines));
    }
    if credit.is_some() {
        row(&mut l, &mut y, "Refunded to", vec!["The card paid with, through Stripe".to_owned()]);
        row(&mut l, &mut y, "Refund reference", vec![content.payment_reference.clone()]);
    } else {
        row(&mut l, &mut y, "Paid with", vec!["Card, through Stripe Checkout".to_owned()]);
        row(&mut l, &mut y, "Payment reference", vec![content.payment_reference.clone()]);
    }
    row(&mut l, &mut y, "Currency", vec![content.currency.to_uppercase()]);
    y -= 2.0;
    l.rules.push(y);
    y -= 10.0;

    let document = if credit.is_some() { "credit note" } else { "receipt" };
    l.muted(9.0, LEFT, y, "VERIFICATION CODE");
    l.text(Weight::Bold, 14.0, LEFT, y - 7.0, content.verification_code.clone());
    l.muted(9.0, LEFT, y - 14.0, format!("Check that this {document} is genuine at {}", content.verify_url));

    let footer = 22.0;
    let did = if credit.is_some() { "refunded this amount" } else { "received this payment" };
    l.muted(
        8.0,
        LEFT,
        footer,
        format!(
            "{} {did} through Stripe. Remit keeps a copy of this {document}; its SHA-256 is on record.",
            content.seller
        ),
    );
    l.muted(8.0, LEFT, footer - 5.0, content.issued_at.format("Issued %-d %B %Y, %H:%M UTC").to_string());
    l
}

/// Text a face cannot draw is shown as `?` rather than as an empty box.
fn drawable(face: &Face, text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).map(|c| if face.draws(c) { c } else { '?' }).collect()
}

fn width(font: &ParsedFont, size: f32, text: &str) -> f32 {
    let units: u32 = text
        .chars()
        .map(|c| font.lookup_glyph_index(u32::from(c)).and_then(|g| font.get_glyph_width(g)).map_or(0, u32::from))
        .sum();
    // Font units to points, then points to millimetres.
    units as f32 / f32::from(font.units_per_em) * size * 25.4 / 72.0
}

fn gray(level: f32) -> Color {
    Color::Greyscale(Greyscale { percent: level, icc_profile: None })
}

/// Draws the receipt. Deterministic but for the times it states.
pub fn render(fonts: &Fonts, content: &ReceiptContent) -> anyhow::Result<Vec<u8>> {
    let mut layout = layout(content);
    for text in &mut layout.texts {
        text.content = drawable(&fonts.0[text.weight as usize], &text.content);
    }
    let title = match content.kind {
        Kind::Receipt => "Receipt",
        Kind::CreditNote { .. } => "Credit note",
    };
    let mut doc = PdfDocument::new(&format!("{title} {} — {}", content.number, content.seller));
    let issued = OffsetDateTime::from_unix_timestamp(content.issued_at.timestamp()).map_err(|e| anyhow!("{e}"))?;
    doc.metadata.info.creation_date = issued;
    doc.metadata.info.modification_date = issued;
    doc.metadata.info.metadata_date = issued;
    doc.metadata.info.author = content.seller.clone();
    doc.metadata.info.creator = "Remit".into();
    doc.metadata.info.producer = "Remit (printpdf)".into();

    let mut faces: Vec<(FontId, ParsedFont)> = Vec::with_capacity(2);
    for weight in [Weight::Regular, Weight::Bold] {
        let chars: BTreeSet<char> =
            layout.texts.iter().filter(|t| t.weight == weight).flat_map(|t| t.content.chars()).collect();
        let subset = fonts.0[weight as usize].subset(&chars)?;
        faces.push((doc.add_font(&subset), subset));
    }

    let mut ops = Vec::with_capacity(layout.texts.len() * 6 + layout.rules.len() * 3 + 4);
    // A light band behind the header.
    ops.push(Op::SetFillColor { col: Color::Rgb(Rgb { r: 0.93, g: 0.95, b: 0.99, icc_profile: None }) });
    ops.push(Op::DrawRectangle {
        rectangle: Rect {
            x: Mm(0.0).into(),
            y: Mm(PAGE_HEIGHT - 12.0).into(),
            width: Mm(PAGE_WIDTH).into(),
            height: Mm(12.0).into(),
            mode: Some(PaintMode::Fill),
            winding_order: None,
        },
    });
    ops.push(Op::SetOutlineColor { col: gray(0.8) });
    ops.push(Op::SetOutlineThickness { pt: Pt(0.6) });
    for y in &layout.rules {
        ops.push(Op::DrawLine {
            line: Line {
                points: vec![
                    LinePoint { p: Point::new(Mm(LEFT), Mm(*y)), bezier: false },
                    LinePoint { p: Point::new(Mm(RIGHT), Mm(*y)), bezier: false },
                ],
                is_closed: false,
            },
        });
    }
    // All text is one text object: the font and the colour are set when they change, and each
    // piece's position is given from the one before (`Td` moves from the last line's start).
    ops.push(Op::StartTextSection);
    let (mut font_now, mut gray_now, mut at) = (None, None, Point::new(Mm(0.0), Mm(0.0)));
    // Grouped by face, size and colour, so each is set as few times as possible.
    let mut texts: Vec<&Text> = layout.texts.iter().collect();
    texts.sort_by_key(|t| (t.weight as u8, t.size.to_bits(), t.gray.to_bits()));
    for text in texts {
        let (id, font) = &faces[text.weight as usize];
        let x = if text.right_aligned { text.x - width(font, text.size, &text.content) } else { text.x };
        if font_now != Some((text.weight, text.size.to_bits())) {
            ops.push(Op::SetFont { font: PdfFontHandle::External(id.clone()), size: Pt(text.size) });
            font_now = Some((text.weight, text.size.to_bits()));
        }
        if gray_now != Some(text.gray.to_bits()) {
            ops.push(Op::SetFillColor { col: gray(text.gray) });
            gray_now = Some(text.gray.to_bits());
        }
        let here = Point::new(Mm(x), Mm(text.y));
        ops.push(Op::SetTextCursor { pos: Point { x: Pt(here.x.0 - at.x.0), y: Pt(here.y.0 - at.y.0) } });
        at = here;
        ops.push(Op::ShowText { items: vec![TextItem::Text(text.content.clone())] });
    }
    ops.push(Op::EndTextSection);
    let page = PdfPage::new(Mm(PAGE_WIDTH), Mm(PAGE_HEIGHT), ops);
    let mut warnings = Vec::new();
    // printpdf's own compression uses zlib's slowest level, which costs more than the rest of
    // the receipt together; `file` deflates the streams with libdeflate instead.
    let options = PdfSaveOptions { optimize: false, ..PdfSaveOptions::default() };
    let pdf = doc.with_pages(vec![page]).to_lopdf_document(&options, &mut warnings);
    let bytes = file::write(&pdf).context("could not write the receipt")?;
    if bytes.len() < 1000 {
        return Err(anyhow!("printpdf produced no document ({warnings:?})"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_words_and_limits_lines() {
        assert_eq!(wrap("a Victorian mantel clock", 12, 4), ["a Victorian", "mantel clock"]);
        assert_eq!(wrap("abcdefghij", 4, 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("one two three four", 3, 2), ["one", "two…"]);
        assert!(wrap("   ", 10, 2).is_empty());
    }
}
