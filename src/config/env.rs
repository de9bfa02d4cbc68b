//! `${VAR}` and `${VAR:-default}` in scalar values.
//!
//! Interpolation runs on the parsed tree, on scalar *values* only (never on keys), so whatever a
//! variable holds stays one scalar: it cannot add keys, lists or YAML syntax. A plain (unquoted)
//! scalar is typed after interpolation, so `threads: ${THREADS:-2}` is the number 2 and
//! `secret: ${SECRET:-}` is empty (null).
//!
//! - `${VAR}`: the variable's value; an error if it is not set.
//! - `${VAR:-default}`: the default when the variable is unset *or empty* (as in POSIX shells and
//!   docker compose). The default is literal text and cannot contain `}`.
//! - `$${` is a literal `${`; any other `$` is literal.
//! - Names are `[A-Za-z_][A-Za-z0-9_]*`.

use super::yaml::{Kind, Node, Problem};

/// Replaces variables in every scalar value under `node`. Problems are reported at the scalar;
/// a scalar with a problem keeps its text as written, and its position is added to `poisoned`
/// so that errors it causes later are not reported twice.
pub(crate) fn interpolate(
    node: &mut Node,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
    poisoned: &mut Vec<super::yaml::Pos>,
) {
    match &mut node.kind {
        Kind::Scalar(scalar) => {
            if !scalar.text.contains('$') {
                return;
            }
            match expand(&scalar.text, env) {
                Ok(text) => scalar.text = text,
                Err(messages) => {
                    for message in messages {
                        problems.push(Problem::new(node.pos, message));
                    }
                    poisoned.push(node.pos);
                }
            }
        }
        Kind::Seq(items) => {
            for item in items {
                interpolate(item, env, problems, poisoned);
            }
        }
        Kind::Map(entries) => {
            for entry in entries {
                interpolate(&mut entry.value, env, problems, poisoned);
            }
        }
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expands one scalar's text, or returns every problem in it.
pub(crate) fn expand(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(end) = tail.find('}') else {
                errors.push(format!(
                    "unterminated `${{` in `{text}`: write `${{VAR}}` or `${{VAR:-default}}` (or `$${{` for a literal `${{`)"
                ));
                return Err(errors);
            };
            let inner = &tail[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            if !valid_name(name) {
                errors.push(format!(
                    "invalid variable reference `${{{inner}}}`: expected `${{NAME}}` or `${{NAME:-default}}` with NAME made of letters, digits and `_`"
                ));
            } else {
                match (env(name), default) {
                    (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
                    (Some(value), _) => out.push_str(&value),
                    (None, Some(default)) => out.push_str(default),
                    (None, None) => errors.push(format!(
                        "environment variable `{name}` is not set (write `${{{name}:-default}}` to give a default)"
                    )),
                }
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
