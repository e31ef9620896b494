//! Turns serde-saphyr's errors (unknown key, wrong type, bad YAML…) into the profile error
//! format `file:line:column: field.path: message`. serde reports only a position, so the field
//! path is recovered by walking the YAML events up to that position. Owns no profile rules.

use super::ConfigError;
use serde_saphyr::granit_parser::{Event, Parser};
use serde_saphyr::{DefaultMessageFormatter, Error, Location, MessageFormatter};

/// The profile error for a failed deserialization of `yaml`.
pub(crate) fn yaml_error(err: &Error, yaml: &str, file: &str) -> ConfigError {
    let loc = err.location().unwrap_or(Location::UNKNOWN);
    let (mut line, mut column) = (loc.line(), loc.column());
    let here = node_at(yaml, line, column);
    let path = match &here {
        Some(n) if !n.path.is_empty() => n.path.clone(),
        _ => "(document)".to_string(),
    };
    let (field, message) = match innermost(err) {
        Error::SerdeUnknownField {
            field, expected, ..
        } => (path, unknown_key(field, expected)),
        Error::SerdeMissingField { field, .. } => {
            // serde-saphyr points somewhere inside the mapping that lacks the key; point at
            // the mapping itself (its first key): stable, and where the key belongs.
            let (parent, start) = match &here {
                Some(n) if n.is_mapping => (n.path.clone(), Some(n.start)),
                Some(n) => (n.parent.clone(), n.parent_start),
                None => (String::new(), None),
            };
            if let Some(start) = start {
                (line, column) = start;
            }
            (
                join(&parent, field),
                format!("missing required key {field:?}"),
            )
        }
        Error::DuplicateMappingKey { key, .. } => (
            path,
            match key {
                Some(k) => format!("duplicate key {k:?}"),
                None => "duplicate key".to_string(),
            },
        ),
        Error::Unexpected { expected, .. } => (path, expected_shape(expected)),
        Error::NullIntoString { .. } => (path, "missing value (expected text)".to_string()),
        Error::InvalidScalar { ty, .. } => (path, invalid_scalar(ty)),
        Error::Eof { .. } if yaml.trim().is_empty() => (
            path,
            "the profile is empty (expected a mapping with business, hours, staff, services…)"
                .to_string(),
        ),
        other => (
            path,
            DefaultMessageFormatter.format_message(other).into_owned(),
        ),
    };
    ConfigError::invalid(file, (line, column), field, message)
}

fn unknown_key(field: &str, expected: &[&str]) -> String {
    if expected.is_empty() {
        format!("unknown key {field:?} (expected no keys here)")
    } else {
        format!(
            "unknown key {field:?} (expected one of {})",
            expected.join(", ")
        )
    }
}

/// serde-saphyr names the token it wanted ("mapping start"); integrators want the shape.
fn expected_shape(expected: &str) -> String {
    match expected {
        "mapping start" => "expected a mapping (`key: value` lines or {key: value})".to_string(),
        "sequence start" => "expected a list (`- item` lines or [a, b])".to_string(),
        other => format!("expected {other}"),
    }
}

fn invalid_scalar(ty: &str) -> String {
    match ty {
        "i8" | "i16" | "i32" | "i64" | "i128" | "u8" | "u16" | "u32" | "u64" | "u128" => {
            "expected a whole number".to_string()
        }
        "bool" => "expected true or false".to_string(),
        other => format!("invalid value (expected {other})"),
    }
}

/// The error itself, without the snippet and alias wrappers serde-saphyr adds around it.
fn innermost(err: &Error) -> &Error {
    match err.without_snippet() {
        Error::AliasError { error, .. } => innermost(error),
        other => other,
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// A YAML node as the path finder saw it.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    /// `services[2].price`; a mapping key's own path when the node is a key.
    path: String,
    /// The path of the collection that holds it.
    parent: String,
    is_mapping: bool,
    /// Where the node starts, 1-based line and column.
    start: (u64, u64),
    /// Where the collection holding it starts.
    parent_start: Option<(u64, u64)>,
}

/// One open collection while walking the events.
enum Frame {
    Map {
        path: String,
        start: (u64, u64),
        /// The key whose value comes next; `None` while a key is expected.
        key: Option<String>,
    },
    Seq {
        path: String,
        start: (u64, u64),
        next: usize,
    },
}

/// The last node that starts at or before `line:column` (1-based, as serde-saphyr reports),
/// with its field path. `None` when the text has no node there (or no position was known).
fn node_at(yaml: &str, line: u64, column: u64) -> Option<Node> {
    if line == 0 {
        return None;
    }
    let target = (line, column);
    let mut stack: Vec<Frame> = Vec::new();
    let mut found: Option<Node> = None;
    for item in Parser::new_from_str(yaml) {
        let Ok((event, span)) = item else { break };
        let start = (span.start.line() as u64, span.start.col() as u64 + 1);
        if start > target {
            break;
        }
        // Where this event sits: the collection around it, and its own path (`None` for a
        // mapping key, whose path is only known once the key is read).
        let (parent, parent_start) = match stack.last() {
            Some(Frame::Map { path, start, .. } | Frame::Seq { path, start, .. }) => {
                (path.clone(), Some(*start))
            }
            None => (String::new(), None),
        };
        let slot = match stack.last() {
            Some(Frame::Map {
                path, key: Some(k), ..
            }) => Some(join(path, k)),
            Some(Frame::Map { key: None, .. }) => None,
            Some(Frame::Seq { path, next, .. }) => Some(format!("{path}[{next}]")),
            None => Some(String::new()),
        };
        let node = |path: String, is_mapping: bool| Node {
            path,
            parent: parent.clone(),
            is_mapping,
            start,
            parent_start,
        };
        match event {
            Event::Scalar(value, ..) => {
                let path = slot.clone().unwrap_or_else(|| join(&parent, &value));
                found = Some(node(path, false));
                value_done(&mut stack, slot.is_none().then(|| value.into_owned()));
            }
            Event::Alias(_) | Event::UnresolvedAlias(_) => {
                found = Some(node(slot.clone().unwrap_or_else(|| parent.clone()), false));
                value_done(&mut stack, slot.is_none().then(String::new));
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_mapping = matches!(event, Event::MappingStart(..));
                // A collection used as a mapping key has no useful path; keep the parent's.
                let path = slot.unwrap_or_else(|| parent.clone());
                found = Some(node(path.clone(), is_mapping));
                stack.push(if is_mapping {
                    Frame::Map {
                        path,
                        start,
                        key: None,
                    }
                } else {
                    Frame::Seq {
                        path,
                        start,
                        next: 0,
                    }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                value_done(&mut stack, None);
            }
            _ => {}
        }
    }
    found
}

/// A node ended inside the innermost open collection: a key was read (`Some(key)` while the
/// mapping expected one) or a value finished.
fn value_done(stack: &mut [Frame], key: Option<String>) {
    match stack.last_mut() {
        Some(Frame::Map { key: slot, .. }) => {
            *slot = match (slot.take(), key) {
                (None, Some(k)) => Some(k),
                // A collection used as a key ends: the value comes next under an unnamed key.
                (None, None) => Some(String::new()),
                (Some(_), _) => None,
            };
        }
        Some(Frame::Seq { next, .. }) => *next += 1,
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(yaml: &str, line: u64, column: u64) -> Option<String> {
        node_at(yaml, line, column).map(|n| n.path)
    }

    #[test]
    fn paths_of_keys_values_and_list_items() {
        let yaml = "a:\n  b: 1\n  c:\n    - x\n    - {d: 2, e: [3, 4]}\nf: 5\n";
        assert_eq!(path(yaml, 1, 1).as_deref(), Some("a"));
        assert_eq!(path(yaml, 2, 3).as_deref(), Some("a.b"));
        assert_eq!(path(yaml, 2, 6).as_deref(), Some("a.b"));
        assert_eq!(path(yaml, 4, 7).as_deref(), Some("a.c[0]"));
        assert_eq!(path(yaml, 5, 8).as_deref(), Some("a.c[1].d"));
        assert_eq!(path(yaml, 5, 18).as_deref(), Some("a.c[1].e[0]"));
        assert_eq!(path(yaml, 5, 21).as_deref(), Some("a.c[1].e[1]"));
        assert_eq!(path(yaml, 6, 1).as_deref(), Some("f"));
    }

    #[test]
    fn no_position_no_path() {
        assert_eq!(path("a: 1\n", 0, 0), None);
    }
}
