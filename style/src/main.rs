//! `build-css <app source dir> <base.css> <output.css>`: writes Remit's stylesheet and fails if
//! a class used in the app has no rule.

use std::{
    fs,
    path::{Path, PathBuf},
    process::ExitCode,
};

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [app_src, base, out] = args.as_slice() else {
        eprintln!("usage: build-css <app source dir> <base.css> <output.css>");
        return ExitCode::FAILURE;
    };
    match run(app_src, base, out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("build-css: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(app_src: &Path, base: &Path, out: &Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let classes = style::scan_classes(app_src)?;
    let base_css = fs::read_to_string(base).with_context(|| format!("reading {}", base.display()))?;
    let sheet = style::build(&base_css, &classes);
    if !sheet.unsupported.is_empty() {
        anyhow::bail!("tailwind-rs has no rule for: {}", sheet.unsupported.join(", "));
    }
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(out, &sheet.css).with_context(|| format!("writing {}", out.display()))?;
    println!("build-css: {} classes, {} bytes -> {}", classes.len(), sheet.css.len(), out.display());
    Ok(())
}
