//! Writes the document printpdf built as a PDF 1.5 file: each stream (fonts, character maps, the
//! page's content) deflated on its own, every other object in one deflated object stream, and a
//! deflated cross-reference stream. lopdf's own writer does the same through `fmt` for every
//! number and byte of a hexadecimal string, compresses with a fresh zlib state per object stream
//! and copies each object first, which together cost a receipt more than laying it out; this
//! writer knows only the object kinds lopdf has and writes them straight into one buffer.

use std::io::Write as _;

use anyhow::{Context as _, anyhow, ensure};
use libdeflater::{CompressionLvl, Compressor};
use lopdf::{Dictionary, Document, Object, ObjectId, StringFormat};

thread_local! {
    /// A compressor and its output buffer per thread, kept between receipts: making a compressor
    /// allocates its tables, and fresh buffers cost fresh pages, each as much as compressing a
    /// receipt's small streams.
    static DEFLATE: std::cell::RefCell<(Compressor, Vec<u8>)> = std::cell::RefCell::new((
        Compressor::new(CompressionLvl::new(LEVEL).unwrap_or_default()),
        Vec::new(),
    ));
}

/// libdeflate's fastest level. Its default (6) makes a receipt about 0.5 KB smaller for a third
/// more time; the receipt stays under WeasyPrint's size either way (`make bench`).
const LEVEL: i32 = 1;

/// Hands `f` the zlib-format deflate (PDF's FlateDecode) of `data`, or `None` when that is not
/// at least 20 bytes smaller and `data` is better kept as it is.
fn with_deflated<R>(data: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> anyhow::Result<R> {
    DEFLATE.with_borrow_mut(|(compressor, buffer)| {
        buffer.resize(compressor.zlib_compress_bound(data.len()), 0);
        let length = compressor.zlib_compress(data, buffer).map_err(|e| anyhow!("deflate: {e:?}"))?;
        Ok(f(Some(&buffer[..length]).filter(|_| length + 20 < data.len())))
    })
}

fn integer(out: &mut Vec<u8>, value: i64) {
    // A Vec cannot fail to take bytes.
    let _ = write!(out, "{value}");
}

fn name(out: &mut Vec<u8>, name: &[u8]) -> anyhow::Result<()> {
    // A name cannot hold a NUL byte, not even as #00 (ISO 32000-1, 7.3.5).
    ensure!(!name.contains(&0), "a PDF name cannot contain a NUL byte");
    out.push(b'/');
    for &byte in name {
        // Delimiters, white space, `#` and bytes outside ! to ~ are written as #xx.
        if b"()<>[]{}/%#".contains(&byte) || !(b'!'..=b'~').contains(&byte) {
            out.extend_from_slice(&[b'#', HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 15)]]);
        } else {
            out.push(byte);
        }
    }
    Ok(())
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn string(out: &mut Vec<u8>, text: &[u8], format: StringFormat) {
    match format {
        StringFormat::Hexadecimal => {
            out.push(b'<');
            for &byte in text {
                out.extend_from_slice(&[HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 15)]]);
            }
            out.push(b'>');
        }
        StringFormat::Literal => {
            out.push(b'(');
            for &byte in text {
                match byte {
                    b'(' | b')' | b'\\' => out.extend_from_slice(&[b'\\', byte]),
                    // A bare carriage return would be read as a line feed.
                    b'\r' => out.extend_from_slice(b"\\r"),
                    _ => out.push(byte),
                }
            }
            out.push(b')');
        }
    }
}

/// Whether a separator must follow `object` before the next token (names, numbers, keywords).
fn needs_separator(object: &Object) -> bool {
    matches!(
        object,
        Object::Null
            | Object::Boolean(_)
            | Object::Integer(_)
            | Object::Real(_)
            | Object::Name(_)
            | Object::Reference(_)
    )
}

fn dictionary(out: &mut Vec<u8>, dict: &Dictionary, skip: &[&[u8]]) -> anyhow::Result<()> {
    out.extend_from_slice(b"<<");
    for (key, value) in dict.iter().filter(|(key, _)| !skip.contains(&key.as_slice())) {
        name(out, key)?;
        if !matches!(value, Object::Name(_) | Object::String(..) | Object::Array(_) | Object::Dictionary(_)) {
            out.push(b' ');
        }
        object(out, value)?;
    }
    out.extend_from_slice(b">>");
    Ok(())
}

fn object(out: &mut Vec<u8>, value: &Object) -> anyhow::Result<()> {
    match value {
        Object::Null => out.extend_from_slice(b"null"),
        Object::Boolean(true) => out.extend_from_slice(b"true"),
        Object::Boolean(false) => out.extend_from_slice(b"false"),
        Object::Integer(value) => integer(out, *value),
        Object::Real(value) => {
            ensure!(value.is_finite(), "a number in the receipt is not finite");
            // Rust writes floats without an exponent, as PDF needs.
            let _ = write!(out, "{value}");
        }
        Object::Name(value) => name(out, value)?,
        Object::String(text, format) => string(out, text, *format),
        Object::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0
                    && needs_separator(&items[i - 1])
                    && !matches!(item, Object::Name(_) | Object::String(..) | Object::Array(_) | Object::Dictionary(_))
                {
                    out.push(b' ');
                }
                object(out, item)?;
            }
            out.push(b']');
        }
        Object::Dictionary(dict) => dictionary(out, dict, &[])?,
        Object::Reference((id, generation)) => {
            let _ = write!(out, "{id} {generation} R");
        }
        Object::Stream(_) => return Err(anyhow!("a stream cannot sit inside another object")),
    }
    Ok(())
}

/// Where an object is: at an offset in the file, or at an index in the object stream.
#[derive(Clone, Copy)]
enum Place {
    Free,
    File(usize),
    InStream(u16),
}

/// The whole file. Streams not yet filtered are deflated when that makes them smaller.
pub fn write(doc: &Document) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(16 * 1024);
    out.extend_from_slice(b"%PDF-1.5\n%\xE2\xE3\xCF\xD3\n");
    // Past every number in use or reserved, so that nothing refers to the new streams by mistake.
    let max_id = doc.objects.keys().map(|(id, _)| *id).max().unwrap_or(0).max(doc.max_id);
    let object_stream_id = max_id + 1;
    let xref_id = max_id + 2;
    let mut places = vec![Place::Free; xref_id as usize + 1];

    let mut packed: Vec<(ObjectId, &Object)> = Vec::new();
    for (&(id, generation), value) in &doc.objects {
        // printpdf numbers every object afresh; generations would need a wider table.
        ensure!(generation == 0, "object {id} has a generation");
        let Object::Stream(stream) = value else {
            packed.push(((id, generation), value));
            continue;
        };
        places[id as usize] = Place::File(out.len());
        let _ = writeln!(out, "{id} 0 obj");
        let mut dict = Vec::new();
        dictionary(&mut dict, &stream.dict, &[b"Length", b"Filter"])?;
        // The dictionary without its closing `>>`, then the filter and length as written.
        let head = &dict[..dict.len() - 2];
        match stream.dict.get(b"Filter") {
            Err(_) if stream.allows_compression => with_deflated(&stream.content, |deflated| {
                out.extend_from_slice(head);
                let content = match deflated {
                    Some(deflated) => {
                        out.extend_from_slice(b"/Filter/FlateDecode");
                        deflated
                    }
                    None => &stream.content,
                };
                let _ = writeln!(out, "/Length {}>>stream", content.len());
                out.extend_from_slice(content);
            })?,
            filter => {
                out.extend_from_slice(head);
                if let Ok(filter) = filter {
                    out.extend_from_slice(b"/Filter");
                    object(&mut out, filter)?;
                }
                let _ = writeln!(out, "/Length {}>>stream", stream.content.len());
                out.extend_from_slice(&stream.content);
            }
        }
        out.extend_from_slice(b"\nendstream\nendobj\n");
    }

    // Every other object goes into one object stream: pairs of number and offset, then the
    // objects themselves.
    let mut header = Vec::new();
    let mut body = Vec::new();
    for (index, ((id, _), value)) in packed.iter().enumerate() {
        places[*id as usize] = Place::InStream(u16::try_from(index).context("too many objects")?);
        let _ = write!(header, "{id} {} ", body.len());
        object(&mut body, value)?;
        body.push(b'\n');
    }
    let first = header.len();
    header.extend_from_slice(&body);
    places[object_stream_id as usize] = Place::File(out.len());
    let count = packed.len();
    with_deflated(&header, |deflated| {
        let (filter, content) = deflated.map_or(("", &header[..]), |d| ("/Filter/FlateDecode", d));
        let _ = writeln!(
            out,
            "{object_stream_id} 0 obj\n<</Type/ObjStm/N {count}/First {first}{filter}/Length {}>>stream",
            content.len()
        );
        out.extend_from_slice(content);
    })?;
    out.extend_from_slice(b"\nendstream\nendobj\n");

    // The cross-reference stream: per object its kind (0 free, 1 in the file, 2 in an object
    // stream), its offset or object stream, and its generation or index (ISO 32000-1, 7.5.8).
    let xref_at = out.len();
    places[xref_id as usize] = Place::File(xref_at);
    let mut rows = Vec::with_capacity(places.len() * 7);
    for place in &places {
        let (kind, field, index) = match *place {
            Place::Free => (0_u8, 0_u32, 0xFFFF_u16),
            Place::File(offset) => (1, u32::try_from(offset).context("the receipt is too large")?, 0),
            Place::InStream(index) => (2, object_stream_id, index),
        };
        rows.push(kind);
        rows.extend_from_slice(&field.to_be_bytes());
        rows.extend_from_slice(&index.to_be_bytes());
    }
    // Of the trailer, the document's catalog, information and identifier; the rest of the
    // cross-reference stream's dictionary is this writer's own.
    ensure!(doc.trailer.get(b"Encrypt").is_err(), "receipts are not encrypted");
    let mut trailer = Dictionary::new();
    for key in [&b"Root"[..], b"Info", b"ID"] {
        if let Ok(value) = doc.trailer.get(key) {
            trailer.set(key, value.clone());
        }
    }
    let mut trailer_bytes = Vec::new();
    dictionary(&mut trailer_bytes, &trailer, &[])?;
    let trailer = trailer_bytes;
    let size = places.len();
    with_deflated(&rows, |deflated| {
        let (filter, content) = deflated.map_or(("", &rows[..]), |d| ("/Filter/FlateDecode", d));
        let _ = write!(out, "{xref_id} 0 obj\n<</Type/XRef/Size {size}/W[1 4 2]");
        out.extend_from_slice(&trailer[2..trailer.len() - 2]);
        let _ = writeln!(out, "{filter}/Length {}>>stream", content.len());
        out.extend_from_slice(content);
    })?;
    let _ = write!(out, "\nendstream\nendobj\nstartxref\n{xref_at}\n%%EOF\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use lopdf::{Stream, dictionary};

    use super::*;

    /// A document with every kind of object lopdf has, including the awkward bytes.
    fn sample() -> Document {
        let mut doc = Document::with_version("1.4");
        let text = Stream::new(dictionary! {}, b"BT /F1 12 Tf (Receipt) Tj ET ".repeat(40));
        let text = doc.add_object(text);
        // Too short to be worth deflating: written as it is, without a filter.
        let short = doc.add_object(Stream::new(dictionary! { "Length1" => 3 }, b"abc".to_vec()));
        let mut fixed = Stream::new(dictionary! {}, b"kept as it is".repeat(10));
        fixed.allows_compression = false;
        let fixed = doc.add_object(fixed);
        let page = doc.add_object(dictionary! {
            "Type" => "Page",
            "Contents" => text,
            "Odd name" => Object::Name(b"a b#c/d(e)\xE9".to_vec()),
            "Literal" => Object::String(b"(nested) back\\slash \r return".to_vec(), StringFormat::Literal),
            "Hex" => Object::String(vec![0, 0x7F, 0xFF], StringFormat::Hexadecimal),
            "Numbers" => vec![Object::Integer(-3), Object::Real(0.25), Object::Real(595.5), Object::Null, true.into()],
            "Nested" => vec![Object::Array(vec![Object::Name(b"A".to_vec()), Object::Integer(1)]), dictionary! { "K" => short }.into()],
            "Fixed" => fixed,
            // References and numbers side by side, and keywords as values.
            "Kids" => vec![Object::Reference(short), Object::Reference(fixed), Object::Integer(7), Object::Reference(text)],
            "Flags" => dictionary! { "B" => false, "N" => Object::Null, "R" => short },
        });
        let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => page });
        doc.trailer.set("Root", catalog);
        doc.trailer.set("ID", vec![Object::String(b"id".to_vec(), StringFormat::Hexadecimal); 2]);
        // Only the catalog, information and identifier are the document's to carry over.
        doc.trailer.set("DecodeParms", dictionary! { "Columns" => 4 });
        // A number reserved and never filled is not given to the new streams.
        doc.max_id += 2;
        doc
    }

    #[test]
    fn every_object_reads_back_as_it_was_written() {
        let doc = sample();
        let bytes = write(&doc).unwrap();
        let mut read = Document::load_mem(&bytes).expect("lopdf reads the file back");
        read.decompress();
        for (id, original) in &doc.objects {
            let found = read.get_object(*id).unwrap_or_else(|_| panic!("object {id:?} is missing"));
            match (original, found) {
                (Object::Stream(original), Object::Stream(found)) => {
                    assert_eq!(found.content, original.content, "{id:?}'s content");
                    for (key, value) in original.dict.iter().filter(|(k, _)| k.as_slice() != b"Length") {
                        assert_eq!(found.dict.get(key).ok(), Some(value), "{id:?}'s {}", key.escape_ascii());
                    }
                }
                (original, found) => assert_eq!(found, original, "{id:?}"),
            }
        }
        assert_eq!(read.trailer.get(b"Root").unwrap(), doc.trailer.get(b"Root").unwrap());
        assert!(read.trailer.get(b"DecodeParms").is_err(), "not carried into the cross-reference stream");
        assert_eq!(read.trailer.get(b"ID").unwrap(), doc.trailer.get(b"ID").unwrap());
    }

    #[test]
    fn long_streams_are_deflated_short_and_fixed_ones_are_not_and_the_rest_is_packed() {
        let bytes = write(&sample()).unwrap();
        let raw = Document::load_mem(&bytes).unwrap();
        let filters: Vec<(usize, bool)> = raw
            .objects
            .values()
            .filter_map(|o| o.as_stream().ok())
            .filter(|s| s.dict.get(b"Type").is_err())
            .map(|s| (s.content.len(), s.dict.get(b"Filter").is_ok()))
            .collect();
        assert!(filters.contains(&(3, false)), "the short stream is as it was: {filters:?}");
        assert!(filters.contains(&(130, false)), "the stream that may not be compressed is as it was: {filters:?}");
        assert!(
            filters.iter().any(|(length, deflated)| *deflated && *length < 200),
            "the text is deflated: {filters:?}"
        );
        assert!(bytes.starts_with(b"%PDF-1.5\n"), "object streams need PDF 1.5");
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(text.matches("/Type/ObjStm").count(), 1, "one object stream");
        assert_eq!(text.matches("/Type/XRef").count(), 1, "a cross-reference stream");
        assert!(!text.contains("/Type/Page"), "the page is inside the (deflated) object stream");
    }

    /// lopdf finds objects without checking that they are where the table says; this reads the
    /// table itself: each entry in the file points at its own object, each packed one at its
    /// place in the object stream.
    #[test]
    fn the_cross_reference_stream_points_at_each_object() {
        let doc = sample();
        let bytes = write(&doc).unwrap();
        let read = Document::load_mem(&bytes).unwrap();
        let table = &read.reference_table;
        assert_eq!(table.size, doc.max_id + 3, "every number, the object stream's and its own");
        let containers: Vec<u32> = table
            .entries
            .values()
            .filter_map(|e| match e {
                lopdf::xref::XrefEntry::Compressed { container, .. } => Some(*container),
                _ => None,
            })
            .collect();
        assert!(containers.windows(2).all(|w| w[0] == w[1]), "one object stream");
        let container = *containers.first().expect("objects are packed");
        assert!(container > doc.max_id, "the object stream has a number of its own");
        let mut packed = read.get_object((container, 0)).unwrap().as_stream().unwrap().clone();
        packed.decompress().unwrap();
        let pairs: Vec<u32> = String::from_utf8_lossy(&packed.content)
            .split_whitespace()
            .take(2 * containers.len())
            .step_by(2)
            .map(|n| n.parse().unwrap())
            .collect();
        for id in 1..table.size {
            match table.get(id) {
                Some(lopdf::xref::XrefEntry::Normal { offset, generation: 0 }) => {
                    let at = &bytes[*offset as usize..];
                    assert!(at.starts_with(format!("{id} 0 obj").as_bytes()), "{id} points elsewhere");
                }
                Some(lopdf::xref::XrefEntry::Compressed { index, .. }) => {
                    assert_eq!(pairs[usize::from(*index)], id, "{id}'s place in the object stream");
                }
                Some(lopdf::xref::XrefEntry::Free | lopdf::xref::XrefEntry::UnusableFree) | None => {
                    assert!(!doc.objects.contains_key(&(id, 0)), "{id} is missing from the table");
                }
                Some(other) => panic!("{id}: {other:?}"),
            }
        }
    }
}
