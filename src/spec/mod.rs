//! Dialog specs: the YAML format people write reference dialogs in (`format`), reading and
//! checking it with precise errors (`load`) into runnable dialogs (`model`), answer matching
//! (`matcher`, `vars`), replaying a dialog against the engine with a virtual clock and a
//! throw-away booking store (`replay`) or over HTTP against a running `bot serve` (`remote`),
//! running every variation path and judging it (`runner`), and the reports made of the
//! results (`coverage`, `junit`).
//! No terminal output here: `cli::test` renders tables and progress.

pub mod coverage;
pub mod format;
pub mod junit;
pub mod load;
pub mod matcher;
pub mod model;
pub mod remote;
pub mod replay;
pub mod runner;
pub mod vars;

use std::fmt;
use std::path::PathBuf;

/// A spec that cannot be run: where and why.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `file:line:column: field.path: message`
    #[error("{}", Located { file, line: *line, column: *column, path, message })]
    Invalid {
        file: String,
        line: u32,
        column: u32,
        path: String,
        message: String,
    },
}

struct Located<'a> {
    file: &'a str,
    line: u32,
    column: u32,
    path: &'a str,
    message: &'a str,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(self.message)
    }
}

impl SpecError {
    /// An error at the position of a spanned value.
    pub fn at<T>(file: &str, at: &serde_saphyr::Spanned<T>, path: &str, message: &str) -> Self {
        SpecError::Invalid {
            file: file.to_string(),
            line: at.referenced.line() as u32,
            column: at.referenced.column() as u32,
            path: path.to_string(),
            message: message.to_string(),
        }
    }
}
