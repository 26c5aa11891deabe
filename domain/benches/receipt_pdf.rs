//! Receipt rendering speed and size: the median time to draw one receipt with printpdf, against
//! WeasyPrint (from PyPI) rendering the same receipt from HTML in the same run. Targets: no
//! larger than WeasyPrint's PDF of the same receipt, and at least 150 times faster.
//!
//! `make bench` runs it (`cargo bench -p domain --bench receipt_pdf`); it needs the Python
//! interpreter with WeasyPrint in `REMIT_BENCH_PYTHON` and writes the sample receipt and its HTML
//! twin to `target/bench/`.

use std::{path::PathBuf, process::Command, time::Instant};

use chrono::{TimeZone as _, Utc};
use domain::receipts::pdf::{Fonts, Kind, ReceiptContent, lot_items, render};

/// Enough runs to span about a second, so that a moment's load elsewhere moves the median little.
const RUNS: usize = 3000;
const WEASYPRINT_RUNS: usize = 40;
const SPEEDUP_TARGET: f64 = 150.0;

fn content() -> ReceiptContent {
    ReceiptContent {
        kind: Kind::Receipt,
        number: "2026-000042".into(),
        seller: "Northwind Auctions".into(),
        items: lot_items(
            "Northwind Auctions",
            "Autumn fine art and antiques",
            "17",
            "Victorian walnut mantel clock with brass dial and eight-day movement, c. 1880; restored case, \
             original key and pendulum.",
            "ada.lovelace@example.com",
        ),
        amount: 42_500,
        currency: "usd".into(),
        paid_at: Utc.with_ymd_and_hms(2026, 12, 3, 14, 5, 0).unwrap(),
        issued_at: Utc.with_ymd_and_hms(2026, 12, 3, 14, 5, 2).unwrap(),
        payment_reference: "pi_3QxbAqLkdIwHu7ix0f8W2Ztm".into(),
        verification_code: "7KQ2-M9XD-4HTB".into(),
        verify_url: "https://remit.example/receipts/verify".into(),
        livemode: true,
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The same receipt as HTML and CSS, set in the same two DejaVu faces, for WeasyPrint.
fn html(c: &ReceiptContent, font_dir: &std::path::Path) -> String {
    let font = |file: &str| format!("file://{}", font_dir.join(file).display());
    let row = |label: &str, value: &str| format!("<tr><th>{label}</th><td>{}</td></tr>", escape(value));
    format!(
        r#"<!DOCTYPE html><html><head><meta charset="utf-8"><title>Receipt {number}</title><style>
@font-face {{ font-family: Receipt; src: url("{regular}"); font-weight: normal; }}
@font-face {{ font-family: Receipt; src: url("{bold}"); font-weight: bold; }}
@page {{ size: A4; margin: 0; }}
body {{ font-family: Receipt; margin: 0; color: #1a1a1a; font-size: 10.5pt; }}
.band {{ height: 12mm; background: #edf2fc; }}
main {{ padding: 8mm 20mm; }}
header {{ display: flex; justify-content: space-between; align-items: baseline; }}
h1 {{ font-size: 22pt; margin: 0; }}
.tenant {{ font-size: 13pt; font-weight: bold; }}
.muted {{ color: #666; font-size: 9pt; }}
hr {{ border: 0; border-top: 0.6pt solid #ccc; margin: 5mm 0; }}
.amount {{ font-size: 24pt; font-weight: bold; }}
.paid {{ display: flex; justify-content: space-between; align-items: baseline; }}
table {{ border-collapse: collapse; }}
th {{ text-align: left; font-weight: normal; color: #666; width: 50mm; padding: 1mm 0; vertical-align: top; }}
td {{ padding: 1mm 0; }}
.code {{ font-size: 14pt; font-weight: bold; }}
footer {{ position: absolute; bottom: 15mm; left: 20mm; right: 20mm; color: #666; font-size: 8pt; }}
</style></head><body><div class="band"></div><main>
<header><h1>Receipt</h1><span class="tenant">{tenant}</span></header>
<header><span class="muted">No. {number}</span><span class="muted">Payments by Remit</span></header>
<hr><div class="muted">AMOUNT PAID</div>
<div class="paid"><span class="amount">{amount}</span><span>{paid}</span></div><hr>
<table>{rows}</table><hr>
<div class="muted">VERIFICATION CODE</div><div class="code">{code}</div>
<div class="muted">Check that this receipt is genuine at {verify}</div>
<footer><div>{tenant} received this payment through Stripe. Remit keeps a copy of this receipt; its SHA-256 is on record.</div>
<div>{issued}</div></footer></main></body></html>"#,
        regular = font("DejaVuSans.ttf"),
        bold = font("DejaVuSans-Bold.ttf"),
        number = escape(&c.number),
        tenant = escape(&c.seller),
        amount = domain::money::format_minor(c.amount, &c.currency),
        paid = c.paid_at.format("Paid %-d %B %Y, %H:%M UTC"),
        rows = c
            .items
            .iter()
            .map(|i| row(i.label, &i.value))
            .chain([
                row("Paid with", "Card, through Stripe Checkout"),
                row("Payment reference", &c.payment_reference),
                row("Currency", &c.currency.to_uppercase()),
            ])
            .collect::<String>(),
        code = escape(&c.verification_code),
        verify = escape(&c.verify_url),
        issued = c.issued_at.format("Issued %-d %B %Y, %H:%M UTC"),
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) { (values[mid - 1] + values[mid]) / 2.0 } else { values[mid] }
}

fn main() {
    let font_dir =
        PathBuf::from(std::env::var("RECEIPT_FONT_DIR").unwrap_or_else(|_| "/usr/share/fonts/truetype/dejavu".into()));
    let fonts = Fonts::load(&font_dir).expect("the receipt fonts load");
    let content = content();
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&out).expect("target/bench can be made");

    for _ in 0..20 {
        render(&fonts, &content).expect("a receipt renders");
    }
    let mut times = Vec::with_capacity(RUNS);
    let mut pdf = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        pdf = render(&fonts, &content).expect("a receipt renders");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let ours = median(times);
    std::fs::write(out.join("receipt.pdf"), &pdf).expect("the sample receipt is written");
    let html_path = out.join("receipt.html");
    std::fs::write(&html_path, html(&content, &font_dir)).expect("the HTML receipt is written");

    let python = std::env::var("REMIT_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench_weasyprint.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(&html_path)
        .arg(WEASYPRINT_RUNS.to_string())
        .arg(out.join("receipt-weasyprint.pdf"))
        .output()
        .unwrap_or_else(|e| panic!("could not run {python} (WeasyPrint; `make bench` installs it): {e}"));
    assert!(output.status.success(), "WeasyPrint failed: {}", String::from_utf8_lossy(&output.stderr));
    let theirs: serde_json::Value = serde_json::from_slice(&output.stdout).expect("the WeasyPrint script prints JSON");
    let weasy_ms = theirs["median_ms"].as_f64().expect("median_ms");
    let weasy_bytes = theirs["bytes"].as_u64().expect("bytes");
    let speedup = weasy_ms / ours;

    println!(
        "receipt PDF: printpdf median {ours:.3} ms over {RUNS} ({} bytes); WeasyPrint {} median {weasy_ms:.1} ms over \
         {WEASYPRINT_RUNS} ({weasy_bytes} bytes); {speedup:.0}x faster (target >= {SPEEDUP_TARGET}x), size target <= \
         WeasyPrint's",
        pdf.len(),
        theirs["version"].as_str().unwrap_or("?"),
    );
    let mut failed = false;
    if speedup < SPEEDUP_TARGET {
        eprintln!("receipt PDF: below the speed target");
        failed = true;
    }
    if pdf.len() as u64 > weasy_bytes {
        eprintln!("receipt PDF: larger than WeasyPrint's");
        failed = true;
    }
    if failed {
        std::process::exit(1);
    }
}
