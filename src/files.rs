//! Reading the project's own files, below the modules that read them (the manifest loader and
//! the template renderer both use it; neither imports the other for it).

use crate::error::{Error, Result};
use std::path::Path;

/// A text file of the project: not UTF-8 is bad input that names the file.
pub fn read_text(path: &Path, shown: &str) -> Result<String> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::user(format!("cannot read it: {e}")).at(shown.to_string()))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
        Error::user(format!("not UTF-8 text (byte {at} is not)"))
            .at(format!("{shown}:{line}"))
            .help("save the file as UTF-8")
    })
}
