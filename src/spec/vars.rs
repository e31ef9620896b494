//! Captured values: `${name}` in a spec string is replaced by a value captured earlier in the
//! same dialog run (or set by `with:` on an include). The `${...}` form cannot be confused with
//! anything a bot or a client writes ("1 500 ₽", "{date}", "$5"); `$${` is a literal `${`.
//! A bare `$` or `{` is always literal text.

use std::collections::BTreeMap;

/// Values captured so far in one run of a dialog.
pub type Vars = BTreeMap<String, String>;

/// One piece of a string with references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    Literal(std::borrow::Cow<'a, str>),
    Var(&'a str),
}

pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Split `s` into literal text and `${name}` references; an error names a malformed reference.
pub fn pieces(s: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        literal.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            literal.push_str("${");
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let Some(close) = inner.find('}') else {
                return Err(format!(
                    "unclosed ${{ in {s:?} (write $${{ for a literal ${{)"
                ));
            };
            let name = &inner[..close];
            if !is_name(name) {
                return Err(format!(
                    "bad variable name ${{{name}}} in {s:?} (letters, digits and _; write $${{ for a literal ${{)"
                ));
            }
            if !literal.is_empty() {
                out.push(Piece::Literal(std::mem::take(&mut literal).into()));
            }
            out.push(Piece::Var(name));
            rest = &inner[close + 1..];
        } else {
            literal.push('$');
            rest = after;
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        out.push(Piece::Literal(literal.into()));
    }
    Ok(out)
}

/// The variable names `s` refers to (empty when `s` is malformed: `pieces` reports that).
pub fn refs(s: &str) -> Vec<&str> {
    pieces(s)
        .map(|p| {
            p.into_iter()
                .filter_map(|p| match p {
                    Piece::Var(v) => Some(v),
                    Piece::Literal(_) => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `s` with every `${name}` replaced by its value.
pub fn interpolate(s: &str, vars: &Vars) -> Result<String, String> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    for piece in pieces(s)? {
        match piece {
            Piece::Literal(l) => out.push_str(&l),
            Piece::Var(name) => match vars.get(name) {
                Some(v) => out.push_str(v),
                None => return Err(format!("${{{name}}} has not been captured yet")),
            },
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars::from([("booking".to_string(), "042".to_string())])
    }

    #[test]
    fn replaces_references_and_keeps_prices_and_braces() {
        assert_eq!(
            interpolate("Запись №${booking}: 1 500 ₽ {date} $5", &vars()).as_deref(),
            Ok("Запись №042: 1 500 ₽ {date} $5")
        );
        assert_eq!(
            interpolate("$${booking}", &vars()).as_deref(),
            Ok("${booking}")
        );
    }

    #[test]
    fn unknown_and_malformed_references_are_errors() {
        assert!(interpolate("${nope}", &vars()).is_err());
        assert!(pieces("${boo").is_err());
        assert!(pieces("${1x}").is_err());
        assert_eq!(refs("a ${x} b ${y_2}"), vec!["x", "y_2"]);
    }
}
