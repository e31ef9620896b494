//! Business profiles and runtime settings: YAML files (and the embedded demo profiles) →
//! validated `Profile`. Owns every rule about what a valid profile is, and reports violations
//! with file:line:column and the field path. Nothing outside this module parses profile YAML.

pub(crate) mod locate;
mod profile;
pub mod templates;
mod validate;
mod yaml;

pub use profile::*;

use std::path::{Path, PathBuf};

/// The demo beauty salon, embedded in the binary (`bot serve` with no configuration).
pub const DEMO_SALON_YAML: &str = include_str!("../../fixtures/salon.yaml");
/// The demo clinic, embedded in the binary.
pub const DEMO_CLINIC_YAML: &str = include_str!("../../fixtures/clinic.yaml");

/// A profile that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `file:line:column: field.path: message`
    #[error("{file}:{line}:{column}: {field}: {message}")]
    Invalid {
        file: String,
        line: u32,
        column: u32,
        field: String,
        message: String,
    },
}

impl ConfigError {
    /// An `Invalid` error at a 1-based line and column (0 when unknown) of `file`.
    fn invalid(
        file: &str,
        (line, column): (u64, u64),
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            file: file.to_string(),
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Load and validate a profile file.
pub fn load(path: &Path) -> Result<Profile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    load_str(&text, &path.display().to_string())
}

/// Validate profile YAML; `file` names it in errors.
pub fn load_str(yaml: &str, file: &str) -> Result<Profile, ConfigError> {
    let raw: yaml::RawProfile =
        serde_saphyr::from_str(yaml).map_err(|e| locate::yaml_error(&e, yaml, file))?;
    validate::profile(raw, file)
}

/// The embedded demo salon.
pub fn demo_salon() -> Profile {
    load_str(DEMO_SALON_YAML, "fixtures/salon.yaml")
        .unwrap_or_else(|e| panic!("embedded demo salon is invalid: {e}"))
}

/// The embedded demo clinic.
pub fn demo_clinic() -> Profile {
    load_str(DEMO_CLINIC_YAML, "fixtures/clinic.yaml")
        .unwrap_or_else(|e| panic!("embedded demo clinic is invalid: {e}"))
}
