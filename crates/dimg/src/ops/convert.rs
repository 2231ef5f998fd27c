use super::output::AtomicOutput;
use super::{stream, Cancel, Progress};
use crate::container;
use crate::error::Result;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// An output format, by hdiutil's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum OutputFormat {
    /// DVD/CD master: the virtual disk, raw (.cdr, .img, or .iso for a CD).
    Udto,
}

impl FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "UDTO" | "CDR" | "RAW" => Ok(OutputFormat::Udto),
            other => Err(format!(
                "output format {other} is not supported yet (supported: UDTO)"
            )),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ConvertReport {
    pub source: PathBuf,
    pub output: PathBuf,
    pub format: OutputFormat,
    pub bytes: u64,
}

/// Converts the image at `source` to `format` at `output`: streamed with bounded memory,
/// decompression on all cores, output renamed into place only when complete.
pub fn convert(
    source: &Path,
    output: &Path,
    format: OutputFormat,
    overwrite: bool,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<ConvertReport> {
    let opened = container::open(source)?;
    let disk = opened.container.disk();
    let mut out = AtomicOutput::create(source, output, overwrite)?;
    match format {
        OutputFormat::Udto => {
            stream(
                source,
                "Converting",
                &*disk,
                progress,
                cancel,
                |_, block| out.write_all(block),
            )?;
        }
    }
    cancel.check()?;
    out.finish()?;
    Ok(ConvertReport {
        source: source.into(),
        output: output.into(),
        format,
        bytes: disk.size(),
    })
}
