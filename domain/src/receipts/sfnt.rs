//! Takes the hinting out of a TrueType face: the instructions each glyph carries (and the
//! tables they run in). A PDF viewer draws an embedded face at any size without them, as
//! WeasyPrint's receipts are drawn, and they are a third or more of a hinted face's glyph data,
//! which every receipt would otherwise carry. Outlines, metrics and the character map stay as
//! they were. Each receipt's subset is then put together from the outlines read once (`Outlines`).

use anyhow::{Context as _, anyhow, ensure};

/// Tables that only serve the instructions.
const HINTING_TABLES: [&[u8; 4]; 5] = [b"fpgm", b"prep", b"cvt ", b"hdmx", b"LTSH"];

/// Composite glyph flags (OpenType `glyf`).
const ARG_1_AND_2_ARE_WORDS: u16 = 0x0001;
const WE_HAVE_A_SCALE: u16 = 0x0008;
const MORE_COMPONENTS: u16 = 0x0020;
const WE_HAVE_AN_X_AND_Y_SCALE: u16 = 0x0040;
const WE_HAVE_A_TWO_BY_TWO: u16 = 0x0080;
const WE_HAVE_INSTRUCTIONS: u16 = 0x0100;

fn u16_at(data: &[u8], at: usize) -> anyhow::Result<u16> {
    data.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or_else(|| anyhow!("truncated at {at}"))
}

fn u32_at(data: &[u8], at: usize) -> anyhow::Result<u32> {
    data.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| anyhow!("truncated at {at}"))
}

/// The face's tables, by tag, in the order of its table directory.
fn tables(font: &[u8]) -> anyhow::Result<Vec<([u8; 4], &[u8])>> {
    let count = usize::from(u16_at(font, 4)?);
    (0..count)
        .map(|i| {
            let record = 12 + i * 16;
            let tag: [u8; 4] = font.get(record..record + 4).context("table directory")?.try_into()?;
            let offset = u32_at(font, record + 8)? as usize;
            let length = u32_at(font, record + 12)? as usize;
            let data = font.get(offset..offset + length).with_context(|| format!("table {}", tag.escape_ascii()))?;
            Ok((tag, data))
        })
        .collect()
}

/// A table of the face by tag.
fn table<'a>(tables: &[([u8; 4], &'a [u8])], tag: &[u8; 4]) -> anyhow::Result<&'a [u8]> {
    tables.iter().find(|(t, _)| t == tag).map(|(_, d)| *d).with_context(|| format!("no {} table", tag.escape_ascii()))
}

/// Where each glyph's bytes are in `glyf`, from `loca` (short or long, as `head` says).
fn glyph_ranges(tables: &[([u8; 4], &[u8])]) -> anyhow::Result<Vec<std::ops::Range<usize>>> {
    let (head, maxp, loca) = (table(tables, b"head")?, table(tables, b"maxp")?, table(tables, b"loca")?);
    let glyf = table(tables, b"glyf")?;
    let long = u16_at(head, 50)? == 1;
    let offset = |i: usize| -> anyhow::Result<usize> {
        Ok(if long { u32_at(loca, i * 4)? as usize } else { usize::from(u16_at(loca, i * 2)?) * 2 })
    };
    (0..usize::from(u16_at(maxp, 4)?))
        .map(|i| {
            let range = offset(i)?..offset(i + 1)?;
            ensure!(range.start <= range.end && range.end <= glyf.len(), "glyph {i} is out of bounds");
            Ok(range)
        })
        .collect()
}

/// One glyph without its instructions.
fn strip_glyph(glyph: &[u8]) -> anyhow::Result<Vec<u8>> {
    if glyph.is_empty() {
        return Ok(Vec::new());
    }
    let contours = i16::from_be_bytes([glyph[0], *glyph.get(1).context("glyph header")?]);
    if contours >= 0 {
        // Header, the contours' end points, then the instructions' length and the instructions.
        let length_at = 10 + 2 * contours as usize;
        let instructions = usize::from(u16_at(glyph, length_at)?);
        let outline = glyph.get(length_at + 2 + instructions..).context("glyph outline")?;
        let mut out = Vec::with_capacity(length_at + 2 + outline.len());
        out.extend_from_slice(&glyph[..length_at]);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(outline);
        return Ok(out);
    }
    // A composite: its components, the last one saying whether instructions follow.
    let mut out = glyph.get(..10).context("glyph header")?.to_vec();
    let mut at = 10;
    loop {
        let flags = u16_at(glyph, at)?;
        let mut length = 4 + if flags & ARG_1_AND_2_ARE_WORDS != 0 { 4 } else { 2 };
        if flags & WE_HAVE_A_SCALE != 0 {
            length += 2;
        } else if flags & WE_HAVE_AN_X_AND_Y_SCALE != 0 {
            length += 4;
        } else if flags & WE_HAVE_A_TWO_BY_TWO != 0 {
            length += 8;
        }
        let component = glyph.get(at..at + length).context("glyph component")?;
        out.extend_from_slice(&(flags & !WE_HAVE_INSTRUCTIONS).to_be_bytes());
        out.extend_from_slice(&component[2..]);
        at += length;
        if flags & MORE_COMPONENTS == 0 {
            return Ok(out);
        }
    }
}

/// The face with no hinting: each glyph's instructions and the hinting tables removed, `maxp`
/// saying so, and the glyphs' offsets rewritten (long `loca`).
pub fn strip_hinting(font: &[u8]) -> anyhow::Result<Vec<u8>> {
    ensure!(u32_at(font, 0)? == 0x0001_0000, "not a TrueType face");
    let tables = tables(font)?;
    let (head, maxp, glyf) = (table(&tables, b"head")?, table(&tables, b"maxp")?, table(&tables, b"glyf")?);
    let ranges = glyph_ranges(&tables)?;

    let mut new_glyf = Vec::with_capacity(glyf.len());
    let mut new_loca = Vec::with_capacity((ranges.len() + 1) * 4);
    for (i, range) in ranges.into_iter().enumerate() {
        let glyph = &glyf[range];
        new_loca.extend_from_slice(&u32::try_from(new_glyf.len())?.to_be_bytes());
        new_glyf.extend_from_slice(&strip_glyph(glyph).with_context(|| format!("glyph {i}"))?);
        // Glyphs start on even offsets.
        if new_glyf.len() % 2 == 1 {
            new_glyf.push(0);
        }
    }
    new_loca.extend_from_slice(&u32::try_from(new_glyf.len())?.to_be_bytes());

    let mut new_head = head.to_vec();
    new_head[50..52].copy_from_slice(&1_u16.to_be_bytes());
    // checkSumAdjustment is for the whole file; a PDF reader does not check it.
    new_head[8..12].copy_from_slice(&[0; 4]);
    let mut new_maxp = maxp.to_vec();
    if new_maxp.len() >= 32 {
        // maxSizeOfInstructions.
        new_maxp[26..28].copy_from_slice(&[0, 0]);
    }

    let kept: Vec<([u8; 4], Vec<u8>)> = tables
        .iter()
        .filter(|(tag, _)| !HINTING_TABLES.contains(&tag))
        .map(|(tag, data)| {
            let data = match tag {
                b"glyf" => new_glyf.clone(),
                b"loca" => new_loca.clone(),
                b"head" => new_head.clone(),
                b"maxp" => new_maxp.clone(),
                _ => data.to_vec(),
            };
            (*tag, data)
        })
        .collect();
    Ok(write(kept))
}

fn checksum(data: &[u8]) -> u32 {
    data.chunks(4).fold(0_u32, |sum, chunk| {
        let mut word = [0_u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        sum.wrapping_add(u32::from_be_bytes(word))
    })
}

/// A TrueType file of `tables` (sorted by tag, each on a four-byte boundary).
fn write(mut tables: Vec<([u8; 4], Vec<u8>)>) -> Vec<u8> {
    tables.sort_by_key(|(tag, _)| *tag);
    let count = tables.len() as u16;
    let power = if count == 0 { 0 } else { 1_u16 << (15 - count.leading_zeros()) };
    let mut out = Vec::new();
    out.extend_from_slice(&0x0001_0000_u32.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&(power * 16).to_be_bytes());
    out.extend_from_slice(&(power.max(1).trailing_zeros() as u16).to_be_bytes());
    out.extend_from_slice(&(count * 16 - power * 16).to_be_bytes());
    let mut offset = 12 + tables.len() * 16;
    for (tag, data) in &tables {
        out.extend_from_slice(tag);
        out.extend_from_slice(&checksum(data).to_be_bytes());
        out.extend_from_slice(&(offset as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        offset += data.len().div_ceil(4) * 4;
    }
    for (_, data) in &tables {
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(4) * 4, 0);
    }
    out
}

/// The ids of the glyphs a composite glyph is made of, and where each id sits in it.
fn components(glyph: &[u8]) -> anyhow::Result<Vec<(usize, u16)>> {
    let mut found = Vec::new();
    if glyph.len() < 10 || i16::from_be_bytes([glyph[0], glyph[1]]) >= 0 {
        return Ok(found);
    }
    let mut at = 10;
    loop {
        let flags = u16_at(glyph, at)?;
        found.push((at + 2, u16_at(glyph, at + 2)?));
        at += 4 + if flags & ARG_1_AND_2_ARE_WORDS != 0 { 4 } else { 2 };
        if flags & WE_HAVE_A_SCALE != 0 {
            at += 2;
        } else if flags & WE_HAVE_AN_X_AND_Y_SCALE != 0 {
            at += 4;
        } else if flags & WE_HAVE_A_TWO_BY_TWO != 0 {
            at += 8;
        }
        if flags & MORE_COMPONENTS == 0 {
            return Ok(found);
        }
    }
}

/// A face read once (without hinting) so that each receipt's subset is put together from its
/// parts rather than parsed again: the glyphs' outlines and metrics, and the tables a subset
/// copies.
pub struct Outlines {
    glyf: Vec<u8>,
    /// Each glyph's bytes in `glyf`.
    glyphs: Vec<std::ops::Range<usize>>,
    /// Advance width and left side bearing of each glyph.
    hmtx: Vec<[u8; 4]>,
    head: Vec<u8>,
    hhea: Vec<u8>,
    maxp: Vec<u8>,
    /// OS/2's weight class (100–900), 0 without the table.
    weight_class: u16,
}

/// What a PDF font descriptor states about a face, in font units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metrics {
    pub units_per_em: u16,
    /// The bounding box of all glyphs: x min, y min, x max, y max.
    pub bounding_box: [i16; 4],
    pub ascent: i16,
    pub descent: i16,
    /// The caret's slope (rise, run): upright is (1, 0).
    pub caret_slope: (i16, i16),
    pub weight_class: u16,
}

/// A face cut down to some characters, ready to embed in a PDF as a CIDFontType2 program
/// (ISO 32000-1, 9.9: such a program needs no character map, text names glyphs by id).
pub struct Subset {
    pub bytes: Vec<u8>,
    /// Each character asked for and its glyph id in the subset.
    pub glyphs: Vec<(u32, u16)>,
    /// Advance widths by glyph id in the subset, in font units.
    pub advances: Vec<u16>,
}

impl Outlines {
    pub fn read(font: &[u8]) -> anyhow::Result<Self> {
        let tables = tables(font)?;
        let get = |tag: &[u8; 4]| table(&tables, tag);
        let (head, hhea, maxp, glyf, hmtx) =
            (get(b"head")?, get(b"hhea")?, get(b"maxp")?, get(b"glyf")?, get(b"hmtx")?);
        let glyphs = glyph_ranges(&tables)?;
        let count = glyphs.len();
        // Glyphs past the last full metric share its advance and have their own bearing.
        let full = usize::from(u16_at(hhea, 34)?).clamp(1, count.max(1));
        let hmtx = (0..count)
            .map(|i| {
                let advance = u16_at(hmtx, 4 * i.min(full - 1))?;
                let bearing =
                    if i < full { u16_at(hmtx, 4 * i + 2)? } else { u16_at(hmtx, 4 * full + 2 * (i - full))? };
                let [a, b] = advance.to_be_bytes();
                let [c, d] = bearing.to_be_bytes();
                Ok([a, b, c, d])
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            glyf: glyf.to_vec(),
            glyphs,
            hmtx,
            head: head.to_vec(),
            hhea: hhea.to_vec(),
            maxp: maxp.to_vec(),
            weight_class: get(b"OS/2").and_then(|os2| u16_at(os2, 4)).unwrap_or(0),
        })
    }

    pub fn metrics(&self) -> anyhow::Result<Metrics> {
        let signed = |table: &[u8], at: usize| u16_at(table, at).map(|v| v as i16);
        Ok(Metrics {
            units_per_em: u16_at(&self.head, 18)?,
            bounding_box: [
                signed(&self.head, 36)?,
                signed(&self.head, 38)?,
                signed(&self.head, 40)?,
                signed(&self.head, 42)?,
            ],
            ascent: signed(&self.hhea, 4)?,
            descent: signed(&self.hhea, 6)?,
            caret_slope: (signed(&self.hhea, 18)?, signed(&self.hhea, 20)?),
            weight_class: self.weight_class,
        })
    }

    /// A face of only the glyphs of `chars` (character, glyph id in this face), numbered from 1
    /// in the characters' order after `.notdef`, with the glyphs composites are made of. It has
    /// no character map (or OS/2 table): the PDF names glyphs by id and states the metrics.
    pub fn subset(&self, chars: &[(u32, u16)]) -> anyhow::Result<Subset> {
        let mut order: Vec<u16> = vec![0];
        let mut new_id: std::collections::HashMap<u16, u16> = std::collections::HashMap::from([(0, 0)]);
        let mut add = |old: u16, order: &mut Vec<u16>| -> anyhow::Result<u16> {
            ensure!(usize::from(old) < self.glyphs.len(), "no glyph {old} in the face");
            Ok(*new_id.entry(old).or_insert_with(|| {
                order.push(old);
                (order.len() - 1) as u16
            }))
        };
        let mut map = Vec::with_capacity(chars.len());
        for (c, old) in chars {
            map.push((*c, add(*old, &mut order)?));
        }
        // Composites pull in their parts (which may be composites themselves).
        let mut next = 1;
        while next < order.len() {
            let glyph = &self.glyf[self.glyphs[usize::from(order[next])].clone()];
            for (_, part) in components(glyph)? {
                add(part, &mut order)?;
            }
            next += 1;
        }

        let mut glyf = Vec::new();
        let mut loca = Vec::with_capacity((order.len() + 1) * 4);
        let mut hmtx = Vec::with_capacity(order.len() * 4);
        let mut advances = Vec::with_capacity(order.len());
        for old in &order {
            loca.extend_from_slice(&u32::try_from(glyf.len())?.to_be_bytes());
            let start = glyf.len();
            glyf.extend_from_slice(&self.glyf[self.glyphs[usize::from(*old)].clone()]);
            for (at, part) in components(&glyf[start..])? {
                let id = new_id.get(&part).copied().context("a component was not taken")?;
                glyf[start + at..start + at + 2].copy_from_slice(&id.to_be_bytes());
            }
            if glyf.len() % 2 == 1 {
                glyf.push(0);
            }
            let metric = self.hmtx[usize::from(*old)];
            hmtx.extend_from_slice(&metric);
            advances.push(u16::from_be_bytes([metric[0], metric[1]]));
        }
        loca.extend_from_slice(&u32::try_from(glyf.len())?.to_be_bytes());
        let count = u16::try_from(order.len())?.to_be_bytes();
        let mut hhea = self.hhea.clone();
        hhea[34..36].copy_from_slice(&count);
        let mut maxp = self.maxp.clone();
        maxp[4..6].copy_from_slice(&count);

        let tables = vec![
            (*b"glyf", glyf),
            (*b"head", self.head.clone()),
            (*b"hhea", hhea),
            (*b"hmtx", hmtx),
            (*b"loca", loca),
            (*b"maxp", maxp),
        ];
        Ok(Subset { bytes: write(tables), glyphs: map, advances })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simple_glyph_keeps_its_outline_without_instructions() {
        // One contour ending at point 2, three bytes of instructions, then the outline.
        let glyph = [0, 1, 0, 0, 0, 0, 0, 10, 0, 10, 0, 2, 0, 3, 0xB0, 0x01, 0x2F, 1, 1, 1, 5, 5, 5];
        assert_eq!(strip_glyph(&glyph).unwrap(), [0, 1, 0, 0, 0, 0, 0, 10, 0, 10, 0, 2, 0, 0, 1, 1, 1, 5, 5, 5]);
    }

    #[test]
    fn a_composite_keeps_its_components_and_drops_its_instructions() {
        let mut glyph = vec![0xFF, 0xFF, 0, 0, 0, 0, 0, 10, 0, 10];
        // Word arguments with a scale, more to come; then byte arguments, with instructions.
        glyph.extend_from_slice(&(ARG_1_AND_2_ARE_WORDS | WE_HAVE_A_SCALE | MORE_COMPONENTS).to_be_bytes());
        glyph.extend_from_slice(&[0, 7, 0, 1, 0, 2, 0x40, 0]);
        glyph.extend_from_slice(&WE_HAVE_INSTRUCTIONS.to_be_bytes());
        glyph.extend_from_slice(&[0, 8, 3, 4]);
        glyph.extend_from_slice(&[0, 2, 0xB0, 0x01]);
        let stripped = strip_glyph(&glyph).unwrap();
        assert_eq!(stripped.len(), glyph.len() - 4, "the instructions and their length are gone");
        assert_eq!(u16_at(&stripped, 20).unwrap(), 0, "the last component no longer announces instructions");
        assert_eq!(&stripped[22..26], &[0, 8, 3, 4]);
    }

    #[test]
    fn dejavu_loses_its_hinting_and_keeps_every_glyph() {
        let Ok(font) = std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf") else {
            panic!("fonts-dejavu-core is needed for this test (`make test` installs it)");
        };
        let stripped = strip_hinting(&font).unwrap();
        assert!(stripped.len() * 20 < font.len() * 19, "{} → {} bytes", font.len(), stripped.len());
        let names = |f: &[u8]| tables(f).unwrap().into_iter().map(|(t, _)| t).collect::<Vec<_>>();
        assert!(!names(&stripped).contains(b"fpgm") && !names(&stripped).contains(b"prep"));
        let before = printpdf::ParsedFont::from_bytes(&font, 0, &mut Vec::new()).unwrap();
        let after = printpdf::ParsedFont::from_bytes(&stripped, 0, &mut Vec::new()).unwrap();
        assert_eq!(after.codepoint_to_glyph, before.codepoint_to_glyph);
        assert_eq!(after.glyph_widths, before.glyph_widths);
        for c in ['A', 'é', 'Ω', 'Ж', '€'] {
            let g = before.lookup_glyph_index(u32::from(c)).unwrap();
            assert_eq!(after.get_glyph_width(g), before.get_glyph_width(g), "{c}");
        }
        assert_eq!(strip_hinting(&stripped).unwrap(), stripped, "stripping twice changes nothing");
    }

    #[test]
    fn a_subset_keeps_the_characters_it_was_asked_for_and_the_parts_of_composites() {
        let font = std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").unwrap();
        let stripped = strip_hinting(&font).unwrap();
        let face = printpdf::ParsedFont::from_bytes(&stripped, 0, &mut Vec::new()).unwrap();
        // "é" is a composite of "e" and the accent in DejaVu; "€" and "Ж" are outside Latin.
        let chars: Vec<(u32, u16)> =
            "Aé€Жab ".chars().map(|c| (u32::from(c), face.lookup_glyph_index(u32::from(c)).unwrap())).collect();
        let whole = Outlines::read(&stripped).unwrap();
        let subset = whole.subset(&chars).unwrap();
        let new_id = |c: u32| subset.glyphs.iter().find(|(mapped, _)| *mapped == c).map(|(_, g)| *g);
        let outlines = Outlines::read(&subset.bytes).unwrap();
        assert_eq!(outlines.glyphs.len(), subset.advances.len(), "one advance per glyph");
        for (c, old) in &chars {
            let new = new_id(*c).unwrap_or_else(|| panic!("{c:x} is mapped"));
            assert_eq!(Some(subset.advances[usize::from(new)]), face.get_glyph_width(*old), "{c:x}");
            assert_eq!(outlines.hmtx[usize::from(new)], whole.hmtx[usize::from(*old)], "{c:x}");
        }
        assert_eq!(new_id(u32::from('z')), None, "nothing else is mapped");
        let e_acute = new_id(u32::from('é')).unwrap();
        let parts = components(&outlines.glyf[outlines.glyphs[usize::from(e_acute)].clone()]).unwrap();
        assert!(!parts.is_empty(), "é is still a composite");
        assert!(parts.iter().all(|(_, id)| usize::from(*id) < outlines.glyphs.len()), "its parts are in the subset");
        let names: Vec<[u8; 4]> = tables(&subset.bytes).unwrap().into_iter().map(|(t, _)| t).collect();
        assert!(!names.contains(b"cmap") && !names.contains(b"OS/2"), "a PDF's CID font needs neither");
        // The weight class was OS/2's, which the subset leaves out; the PDF states it instead.
        assert_eq!(Metrics { weight_class: 400, ..outlines.metrics().unwrap() }, whole.metrics().unwrap());
        assert!(subset.bytes.len() < 4_000, "{} bytes", subset.bytes.len());
    }
}
