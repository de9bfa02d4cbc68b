//! Property tests for [`canonicalise`] against a reference that evaluates domains the way Odoo
//! and PostgreSQL do, NULLs included (issue 5, item 2).
//!
//! `tests.rs` checks the canonical form against a two-valued reference that follows Odoo's
//! `normalize_domain`. Two-valued logic cannot see the rewrites that are unsafe *because of*
//! NULLs, so this file adds a reference that models the steps between a domain and the rows it
//! selects:
//!
//! 1. `normalize_domain`: prefix notation, implicit top-level AND, arity checks;
//! 2. `distribute_not` (16; `_tree_not` in 17/18): every `!` is pushed down to the leaves, where
//!    the operators of `TERM_OPERATORS_NEGATION` are negated (`=` ↔ `!=`, `<` ↔ `>=`, `in` ↔
//!    `not in`, `like` ↔ `not like`, ...) and TRUE/FALSE leaves are swapped; any other operator
//!    (`<>`, `=like`, `=?`, ...) keeps a SQL `NOT` over its leaf;
//! 3. `normalize_leaf`: `<>` becomes `!=`, `in` with a bool becomes `=`, `=` with a list `in`;
//! 4. each leaf becomes Odoo's SQL, with its NULL handling: `!=` and `not in` add
//!    `OR x IS NULL`, `= False` is `IS NULL`, a boolean `= False` is `(x IS NULL OR x = FALSE)`,
//!    `like ''` matches NULLs, a type mismatch is an error;
//! 5. SQL's three-valued (Kleene) AND/OR/NOT; a row is selected only when the WHERE clause is
//!    TRUE, and a query that raises selects nothing for anyone (compared as an error).
//!
//! With it, `!` over `flag <> False` (a SQL `NOT (flag = TRUE)`, which drops NULL rows) and `!`
//! over `flag != False` (negated into `flag = False`, which keeps them) differ, as they do in
//! Odoo: the test [`the_evaluator_sees_unsafe_rewrites`] shows the reference catches that
//! respelling, moves across operators, and pulling terms out of a `!`. The properties then
//! hold [`canonicalise`] to: the same selection on every random record, idempotence, the same
//! form for every order and bracketing of the operands of each AND/OR node, and `None` (never
//! a panic) for ill-formed input, whatever JSON it is.
//!
//! `any`/`not any`, `child_of` and `parent_of` need a second model; the reference treats them
//! as errors (on both sides alike), and `tests.rs` covers `any` with its own evaluator.

use std::cmp::Ordering;

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::{canonicalise, parse, MAX_DEPTH};

type Record = Map<String, Value>;

/// SQL truth: `None` is NULL.
type Truth = Option<bool>;

/// The query raises (bad leaf, SQL type error, unsupported operator): no rows, for any record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Raises;

// ---------------------------------------------------------------------------------------------
// The reference: parse as normalize_domain does, distribute negations, evaluate as SQL.
// ---------------------------------------------------------------------------------------------

/// A domain as Odoo's `normalize_domain` reads it: binary operators, leaves untouched.
#[derive(Debug, Clone)]
enum Expr {
    /// `[]`: Odoo's `if not domain` shortcut, TRUE.
    Empty,
    /// `[1, "=", 1]` (true) or `[0, "=", 1]` (false).
    Special(bool),
    Leaf(Term),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

#[derive(Debug, Clone)]
struct Term {
    path: String,
    op: String,
    value: Value,
}

/// The term operators of odoo-protocol.md §6.1, spelled exactly.
const TERM_OPERATORS: &[&str] = &[
    "=",
    "!=",
    "<>",
    "<=",
    "<",
    ">",
    ">=",
    "=?",
    "=like",
    "=ilike",
    "like",
    "not like",
    "ilike",
    "not ilike",
    "in",
    "not in",
    "child_of",
    "parent_of",
    "any",
    "not any",
];

/// Odoo's `TERM_OPERATORS_NEGATION`: what `distribute_not` turns a negated leaf's operator into.
/// `<>`, `=like`, `=ilike`, `=?`, `child_of`, `parent_of` are absent: they keep a SQL `NOT`.
fn negated_operator(op: &str) -> Option<&'static str> {
    Some(match op {
        "<" => ">=",
        ">" => "<=",
        "<=" => ">",
        ">=" => "<",
        "=" => "!=",
        "!=" => "=",
        "in" => "not in",
        "not in" => "in",
        "like" => "not like",
        "not like" => "like",
        "ilike" => "not ilike",
        "not ilike" => "ilike",
        _ => return None,
    })
}

/// Parses a domain the way `normalize_domain` + `check_leaf` accept it, with the exact
/// TRUE/FALSE leaves [`super::parse`] recognises (it refuses `[1.0, "=", 1]`, which Python
/// equates with `TRUE_LEAF`: forwarding such a domain untouched is safe). `Err` where Odoo (or
/// the canonicaliser, by design) refuses the domain.
fn reference_parse(domain: &Value) -> Result<Expr, Raises> {
    let tokens = domain.as_array().ok_or(Raises)?;
    if tokens.is_empty() {
        return Ok(Expr::Empty);
    }
    let mut position = 0;
    let mut result = expression(tokens, &mut position, 0)?;
    // More complete expressions after the first: `normalize_domain` ANDs them.
    while position < tokens.len() {
        let next = expression(tokens, &mut position, 0)?;
        result = Expr::And(Box::new(result), Box::new(next));
    }
    Ok(result)
}

/// One complete expression starting at `tokens[*position]`.
fn expression(tokens: &[Value], position: &mut usize, depth: usize) -> Result<Expr, Raises> {
    // Far beyond anything generated here; only keeps hostile input off the stack's end.
    if depth > 4 * MAX_DEPTH {
        return Err(Raises);
    }
    let token = tokens.get(*position).ok_or(Raises)?;
    *position += 1;
    let mut operand = || expression(tokens, position, depth + 1).map(Box::new);
    Ok(match token {
        Value::String(s) if s == "&" => Expr::And(operand()?, operand()?),
        Value::String(s) if s == "|" => Expr::Or(operand()?, operand()?),
        Value::String(s) if s == "!" => Expr::Not(operand()?),
        Value::Array(term) => leaf(term, depth)?,
        _ => return Err(Raises),
    })
}

/// `check_leaf`: `[path, operator, value]` with a non-empty string path and a known operator,
/// or exactly `[1, "=", 1]` / `[0, "=", 1]`; `any` values must be domains themselves.
fn leaf(term: &[Value], depth: usize) -> Result<Expr, Raises> {
    let [left, op, right] = term else {
        return Err(Raises);
    };
    let op = op.as_str().ok_or(Raises)?;
    if left.is_u64() && op == "=" && right.is_u64() && right.as_u64() == Some(1) {
        return match left.as_u64() {
            Some(1) => Ok(Expr::Special(true)),
            Some(0) => Ok(Expr::Special(false)),
            _ => Err(Raises),
        };
    }
    let path = left
        .as_str()
        .filter(|path| !path.is_empty())
        .ok_or(Raises)?;
    if !TERM_OPERATORS.contains(&op) {
        return Err(Raises);
    }
    if matches!(op, "any" | "not any") {
        let sub = right.as_array().ok_or(Raises)?;
        let mut position = 0;
        while position < sub.len() {
            expression(sub, &mut position, depth + 1)?;
        }
    }
    Ok(Expr::Leaf(Term {
        path: path.to_owned(),
        op: op.to_owned(),
        value: right.clone(),
    }))
}

/// The domain after `distribute_not`: negations only directly over leaves they cannot negate.
#[derive(Debug)]
enum Pushed {
    Const(bool),
    Leaf(Term),
    /// SQL `NOT` over a leaf whose operator has no negation in `TERM_OPERATORS_NEGATION`.
    NotLeaf(Term),
    And(Box<Pushed>, Box<Pushed>),
    Or(Box<Pushed>, Box<Pushed>),
}

/// Odoo 16's `distribute_not` (17/18's `_tree_not` agrees on everything generated here).
fn distribute_not(expr: &Expr, negate: bool) -> Pushed {
    match expr {
        Expr::Empty => Pushed::Const(!negate),
        // TRUE_LEAF and FALSE_LEAF use `=`, which is in the negation table: they are swapped.
        Expr::Special(value) => Pushed::Const(*value != negate),
        Expr::Leaf(term) if !negate => Pushed::Leaf(term.clone()),
        Expr::Leaf(term) => match negated_operator(&term.op) {
            Some(op) => Pushed::Leaf(Term {
                op: op.to_owned(),
                ..term.clone()
            }),
            None => Pushed::NotLeaf(term.clone()),
        },
        Expr::And(a, b) | Expr::Or(a, b) => {
            let (a, b) = (
                Box::new(distribute_not(a, negate)),
                Box::new(distribute_not(b, negate)),
            );
            if matches!(expr, Expr::And(..)) != negate {
                Pushed::And(a, b)
            } else {
                Pushed::Or(a, b)
            }
        }
        Expr::Not(operand) => distribute_not(operand, !negate),
    }
}

/// The column types of the test model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Integer,
    Char,
    Boolean,
    /// A path the model lacks (arbitrary JSON): always NULL, compared with anything.
    Unknown,
}

fn field_type(path: &str) -> Type {
    match path {
        "a" | "b" => Type::Integer,
        "s" => Type::Char,
        "flag" | "flag2" => Type::Boolean,
        _ => Type::Unknown,
    }
}

/// A column value; `None` is NULL.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Int(i64),
    Text(String),
    Bool(bool),
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Int(i) => i.to_string(),
            Cell::Text(s) => s.clone(),
            Cell::Bool(b) => b.to_string(),
        }
    }
}

/// What the row holds: for integer and char columns, JSON `false` and `null` are both NULL
/// (Odoo reads NULL as `False`); a boolean column tells `false` (FALSE) from `null` (NULL).
fn column(record: &Record, path: &str) -> Option<Cell> {
    match (field_type(path), record.get(path)?) {
        (Type::Boolean, Value::Bool(b)) => Some(Cell::Bool(*b)),
        (_, Value::Number(n)) => n.as_i64().map(Cell::Int),
        (_, Value::String(s)) => Some(Cell::Text(s.clone())),
        _ => None,
    }
}

/// Python-falsy right-hand sides that Odoo turns into `IS NULL` tests.
fn unset(value: &Value) -> bool {
    matches!(value, Value::Null | Value::Bool(false))
}

/// The right-hand side as a SQL literal of the column's type; a mismatch makes Postgres raise.
fn literal(ty: Type, value: &Value) -> Result<Cell, Raises> {
    match (ty, value) {
        (Type::Integer | Type::Unknown, Value::Number(n)) => {
            n.as_i64().map(Cell::Int).ok_or(Raises)
        }
        (Type::Char | Type::Unknown, Value::String(s)) => Ok(Cell::Text(s.clone())),
        (Type::Boolean | Type::Unknown, Value::Bool(b)) => Ok(Cell::Bool(*b)),
        _ => Err(Raises),
    }
}

fn compare(x: &Cell, y: &Cell) -> Result<Ordering, Raises> {
    match (x, y) {
        (Cell::Int(a), Cell::Int(b)) => Ok(a.cmp(b)),
        (Cell::Text(a), Cell::Text(b)) => Ok(a.cmp(b)),
        (Cell::Bool(a), Cell::Bool(b)) => Ok(a.cmp(b)),
        _ => Err(Raises),
    }
}

/// SQL `LIKE` / `ILIKE` with `%` and `_`.
fn like(text: &str, pattern: &str, fold: bool) -> bool {
    let fold_case = |s: &str| -> Vec<char> {
        if fold {
            s.to_lowercase().chars().collect()
        } else {
            s.chars().collect()
        }
    };
    let (text, pattern) = (fold_case(text), fold_case(pattern));
    // matches[j]: the pattern read so far matches text[..j].
    let mut matches = vec![false; text.len() + 1];
    matches[0] = true;
    for p in &pattern {
        let mut next = vec![false; text.len() + 1];
        if *p == '%' {
            let mut any = false;
            for j in 0..=text.len() {
                any |= matches[j];
                next[j] = any;
            }
        } else {
            for j in 1..=text.len() {
                next[j] = matches[j - 1] && (*p == '_' || *p == text[j - 1]);
            }
        }
        matches = next;
    }
    matches[text.len()]
}

/// The SQL Odoo generates for one leaf, on one row (after `normalize_leaf`).
fn leaf_sql(term: &Term, record: &Record) -> Result<Truth, Raises> {
    let right = &term.value;
    let mut op = term.op.as_str();
    // normalize_leaf
    if op == "<>" {
        op = "!=";
    }
    if right.is_boolean() && matches!(op, "in" | "not in") {
        op = if op == "in" { "=" } else { "!=" };
    }
    if right.is_array() && matches!(op, "=" | "!=") {
        op = if op == "=" { "in" } else { "not in" };
    }
    let ty = field_type(&term.path);
    let x = column(record, &term.path);
    let is_null = x.is_none();
    Ok(match op {
        "=?" if unset(right) => Some(true),
        "=" | "=?" | "!=" if ty == Type::Boolean && right.is_boolean() => {
            // `flag = True` / `flag != False` select TRUE (NULL stays NULL); the other two are
            // `(flag IS NULL OR flag = FALSE)`.
            let wants_true = (op == "!=") != (right == &Value::Bool(true));
            if wants_true {
                x.map(|cell| cell == Cell::Bool(true))
            } else {
                Some(x != Some(Cell::Bool(true)))
            }
        }
        "=" | "=?" if unset(right) => Some(is_null),
        "!=" if unset(right) => Some(!is_null),
        "=" | "=?" => {
            let value = literal(ty, right)?;
            x.map(|cell| compare(&cell, &value).map(|o| o == Ordering::Equal))
                .transpose()?
        }
        // `(x != v OR x IS NULL)`: NEGATIVE_TERM_OPERATORS with a truthy value add the NULLs.
        "!=" => {
            let value = literal(ty, right)?;
            match x {
                None => Some(true),
                Some(cell) => Some(compare(&cell, &value)? != Ordering::Equal),
            }
        }
        "<" | "<=" | ">" | ">=" => {
            if right.is_null() {
                None
            } else {
                let value = literal(ty, right)?;
                match x {
                    None => None,
                    Some(cell) => {
                        let order = compare(&cell, &value)?;
                        Some(match op {
                            "<" => order == Ordering::Less,
                            "<=" => order != Ordering::Greater,
                            ">" => order == Ordering::Greater,
                            _ => order != Ordering::Less,
                        })
                    }
                }
            }
        }
        "in" | "not in" => {
            let items = right.as_array().ok_or(Raises)?;
            // A False (or None) in the list adds `OR x IS NULL`; for a boolean column False
            // also stays in the list, as FALSE.
            let with_null = items.iter().any(unset);
            let mut found = false;
            let listed = |item: &&Value| !item.is_null() && (ty == Type::Boolean || !unset(item));
            for item in items.iter().filter(listed) {
                let value = literal(ty, item)?;
                if let Some(cell) = &x {
                    found |= compare(cell, &value)? == Ordering::Equal;
                }
            }
            match (op, &x) {
                // Odoo writes an empty `in` as FALSE and an empty `not in` as TRUE.
                _ if items.is_empty() => Some(op == "not in"),
                ("in", None) => with_null.then_some(true),
                ("in", Some(_)) => Some(found),
                // `not in` with a False inside: `(x NOT IN (..) AND x IS NOT NULL)`, else
                // `(x NOT IN (..) OR x IS NULL)`.
                (_, None) => Some(!with_null),
                (_, Some(_)) => Some(!found),
            }
        }
        "like" | "ilike" | "not like" | "not ilike" => {
            let fold = op.contains("ilike");
            let negative = op.starts_with("not");
            let needle = match right {
                Value::String(s) => s.as_str(),
                _ if unset(right) => "",
                _ => return Err(Raises),
            };
            // `(x::text LIKE '%v%')`, plus `OR x IS NULL` for an empty value or a negative
            // operator.
            let add_null = needle.is_empty() || negative;
            match x {
                None => add_null.then_some(true),
                Some(cell) => Some(like(&cell.text(), &format!("%{needle}%"), fold) != negative),
            }
        }
        "=like" | "=ilike" => {
            let pattern = right.as_str().ok_or(Raises)?;
            x.map(|cell| like(&cell.text(), pattern, op == "=ilike"))
        }
        // child_of, parent_of, any, not any: need another model; not modelled.
        _ => return Err(Raises),
    })
}

fn kleene_not(value: Truth) -> Truth {
    value.map(|b| !b)
}

fn kleene_and(a: Truth, b: Truth) -> Truth {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn kleene_or(a: Truth, b: Truth) -> Truth {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

/// The WHERE clause on one row. Every leaf is evaluated (no short-circuit): a leaf that raises
/// anywhere makes the whole query raise, as it does in Postgres.
fn sql(pushed: &Pushed, record: &Record) -> Result<Truth, Raises> {
    Ok(match pushed {
        Pushed::Const(value) => Some(*value),
        Pushed::Leaf(term) => leaf_sql(term, record)?,
        Pushed::NotLeaf(term) => kleene_not(leaf_sql(term, record)?),
        Pushed::And(a, b) => kleene_and(sql(a, record)?, sql(b, record)?),
        Pushed::Or(a, b) => kleene_or(sql(a, record)?, sql(b, record)?),
    })
}

/// Whether Odoo returns `record` for `domain`.
fn selects(domain: &Value, record: &Record) -> Result<bool, Raises> {
    let expr = reference_parse(domain)?;
    let pushed = distribute_not(&expr, false);
    Ok(sql(&pushed, record)? == Some(true))
}

fn record(value: Value) -> Record {
    match value {
        Value::Object(map) => map,
        _ => Record::new(),
    }
}

/// The reference is only worth something if it rejects the rewrites that are not safe.
#[test]
fn the_evaluator_sees_unsafe_rewrites() {
    let null_flag = record(json!({"a": 1}));
    let true_flag = record(json!({"a": 1, "flag": true}));
    // `NOT (flag = TRUE)` drops the NULL row; `flag = False` keeps it.
    let legacy = json!(["!", ["flag", "<>", false]]);
    let respelled = json!(["!", ["flag", "!=", false]]);
    assert_eq!(selects(&legacy, &null_flag), Ok(false));
    assert_eq!(selects(&respelled, &null_flag), Ok(true));
    assert_eq!(canonicalise(&legacy), Some(legacy.clone()));
    // Outside a `!`, `<>` and `!=` agree.
    for row in [&null_flag, &true_flag] {
        assert_eq!(
            selects(&json!([["flag", "<>", false]]), row),
            selects(&json!([["flag", "!=", false]]), row)
        );
    }
    // `!` over `=` is distributed into `!=`, which keeps NULLs: not SQL's NOT.
    let no_b = record(json!({"a": 1}));
    assert_eq!(selects(&json!(["!", ["b", "=", 2]]), &no_b), Ok(true));
    assert_eq!(
        selects(&json!(["!", ["b", "=like", "2"]]), &no_b),
        Ok(false)
    );
    // ['|', A, B, C] is (A OR B) AND C: moving C into the OR changes the answer.
    let (yes, no) = (json!(["a", "=", 1]), json!(["a", "=", 2]));
    let row = record(json!({"a": 1}));
    assert_eq!(selects(&json!(["|", yes, no, yes]), &row), Ok(true));
    assert_eq!(selects(&json!(["|", yes, yes, no]), &row), Ok(false));
    assert_eq!(selects(&json!([yes, "|", no, yes]), &row), Ok(true));
    // Pulling a term out of a negation changes the answer.
    assert_eq!(selects(&json!(["!", "&", yes, no]), &row), Ok(true));
    assert_eq!(selects(&json!(["&", "!", yes, no]), &row), Ok(false));
    // NULL rows: `in` with a False inside matches them, `not in` without one too.
    assert_eq!(selects(&json!([["b", "in", [false, 3]]]), &no_b), Ok(true));
    assert_eq!(selects(&json!([["b", "in", [3]]]), &no_b), Ok(false));
    assert_eq!(selects(&json!([["b", "not in", [3]]]), &no_b), Ok(true));
    assert_eq!(selects(&json!(["!", ["b", "in", [3]]]), &no_b), Ok(true));
    // Type errors raise whatever the row.
    assert_eq!(selects(&json!([["a", "=", "x"]]), &no_b), Err(Raises));
    assert_eq!(
        selects(&json!(["|", ["a", "=", 1], ["s", ">", 3]]), &row),
        Err(Raises)
    );
    // Ill-formed domains raise.
    assert_eq!(selects(&json!(["&", yes]), &row), Err(Raises));
    assert_eq!(selects(&json!([["a", "IN", [1]]]), &row), Err(Raises));
    assert_eq!(selects(&json!([]), &row), Ok(true));
}

// ---------------------------------------------------------------------------------------------
// Random well-formed domains, written in random orders and bracketings.
// ---------------------------------------------------------------------------------------------

/// What a client means, before it picks an order and a bracketing.
#[derive(Debug, Clone)]
enum Tree {
    Leaf(Value),
    True,
    False,
    And(Vec<Tree>),
    Or(Vec<Tree>),
    Not(Box<Tree>),
}

/// splitmix64: deterministic choices of orders and bracketings from a proptest seed.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Merges nested same-kind nodes, so that shuffling permutes every operand of each logical
/// AND/OR node, not only those that happen to share a bracket.
fn flatten(tree: Tree) -> Tree {
    fn gather(kind_and: bool, tree: Tree, out: &mut Vec<Tree>) {
        match tree {
            Tree::And(children) if kind_and => {
                children.into_iter().for_each(|c| gather(true, c, out))
            }
            Tree::Or(children) if !kind_and => {
                children.into_iter().for_each(|c| gather(false, c, out))
            }
            other => out.push(flatten(other)),
        }
    }
    match tree {
        Tree::And(children) => {
            let mut out = Vec::new();
            children.into_iter().for_each(|c| gather(true, c, &mut out));
            Tree::And(out)
        }
        Tree::Or(children) => {
            let mut out = Vec::new();
            children
                .into_iter()
                .for_each(|c| gather(false, c, &mut out));
            Tree::Or(out)
        }
        Tree::Not(operand) => Tree::Not(Box::new(flatten(*operand))),
        leaf => leaf,
    }
}

/// The same logical query with the operands of every AND/OR node in another order.
fn shuffled(tree: &Tree, dice: &mut Dice) -> Tree {
    match tree {
        Tree::And(children) | Tree::Or(children) => {
            let mut children: Vec<Tree> = children.iter().map(|c| shuffled(c, dice)).collect();
            dice.shuffle(&mut children);
            if matches!(tree, Tree::And(_)) {
                Tree::And(children)
            } else {
                Tree::Or(children)
            }
        }
        Tree::Not(operand) => Tree::Not(Box::new(shuffled(operand, dice))),
        leaf => leaf.clone(),
    }
}

/// Writes `tree` in prefix notation, each node with a random binary bracketing; a top-level
/// AND is sometimes left implicit.
fn write(tree: &Tree, dice: &mut Dice) -> Value {
    match tree {
        Tree::And(children) if dice.below(2) == 0 => {
            Value::Array(children.iter().flat_map(|c| tokens(c, dice)).collect())
        }
        _ => Value::Array(tokens(tree, dice)),
    }
}

fn tokens(tree: &Tree, dice: &mut Dice) -> Vec<Value> {
    match tree {
        Tree::Leaf(term) => vec![term.clone()],
        Tree::True => vec![json!([1, "=", 1])],
        Tree::False => vec![json!([0, "=", 1])],
        Tree::Not(operand) => {
            let mut out = vec![json!("!")];
            out.extend(tokens(operand, dice));
            out
        }
        Tree::And(children) | Tree::Or(children) => {
            let token = if matches!(tree, Tree::And(_)) {
                "&"
            } else {
                "|"
            };
            let parts: Vec<Vec<Value>> = children.iter().map(|c| tokens(c, dice)).collect();
            bracket(token, parts, dice)
        }
    }
}

/// A random binary bracketing of `parts`, kept in order.
fn bracket(token: &str, mut parts: Vec<Vec<Value>>, dice: &mut Dice) -> Vec<Value> {
    if parts.len() <= 1 {
        return parts.pop().unwrap_or_else(|| vec![json!([1, "=", 1])]);
    }
    let right = parts.split_off(1 + dice.below(parts.len() - 1));
    let mut out = vec![json!(token)];
    out.extend(bracket(token, parts, dice));
    out.extend(bracket(token, right, dice));
    out
}

const OPERATORS: &[&str] = &[
    "=",
    "!=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "=?",
    "in",
    "not in",
    "like",
    "not like",
    "ilike",
    "not ilike",
    "=like",
    "=ilike",
];

/// A value of the column's type, or a Python-falsy one; now and then one of another type
/// (Postgres then raises, whatever the order).
fn scalar_for(ty: Type) -> BoxedStrategy<Value> {
    let typed = match ty {
        Type::Integer => (0i64..4).prop_map(Value::from).boxed(),
        Type::Char => prop::sample::select(vec!["", "x", "xy", "X", "%x", "x_", "yx"])
            .prop_map(Value::from)
            .boxed(),
        Type::Boolean | Type::Unknown => any::<bool>().prop_map(Value::from).boxed(),
    };
    prop_oneof![
        24 => typed,
        4 => Just(Value::Bool(false)),
        2 => Just(Value::Null),
        1 => prop_oneof![Just(json!(1)), Just(json!("1")), Just(json!(true))],
    ]
    .boxed()
}

fn term() -> impl Strategy<Value = Tree> {
    let field = prop::sample::select(vec!["a", "b", "s", "flag", "flag2"]);
    (field, prop::sample::select(OPERATORS), any::<u8>()).prop_flat_map(|(path, op, shape)| {
        let ty = field_type(path);
        let value: BoxedStrategy<Value> = match op {
            "in" | "not in" if shape % 8 == 0 => any::<bool>().prop_map(Value::from).boxed(),
            "in" | "not in" => prop::collection::vec(scalar_for(ty), 0..4)
                .prop_map(Value::Array)
                .boxed(),
            "=" | "!=" | "<>" if shape % 8 == 0 => prop::collection::vec(scalar_for(ty), 0..3)
                .prop_map(Value::Array)
                .boxed(),
            "like" | "not like" | "ilike" | "not ilike" | "=like" | "=ilike" => prop_oneof![
                8 => prop::sample::select(vec!["", "x", "X", "%", "_", "1", "ru"])
                    .prop_map(Value::from),
                1 => Just(Value::Bool(false)),
            ]
            .boxed(),
            _ => scalar_for(ty),
        };
        value.prop_map(move |value| Tree::Leaf(json!([path, op, value])))
    })
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![10 => term(), 1 => Just(Tree::True), 1 => Just(Tree::False)];
    leaf.prop_recursive(6, 48, 5, |inner| {
        prop_oneof![
            3 => prop::collection::vec(inner.clone(), 2..5).prop_map(Tree::And),
            3 => prop::collection::vec(inner.clone(), 2..5).prop_map(Tree::Or),
            2 => inner.clone().prop_map(|t| Tree::Not(Box::new(t))),
            // Explicit duplicates, and `!!`.
            1 => inner.clone().prop_map(|t| Tree::And(vec![t.clone(), t])),
            1 => inner.clone().prop_map(|t| Tree::Or(vec![t.clone(), t])),
            1 => inner.prop_map(|t| Tree::Not(Box::new(Tree::Not(Box::new(t))))),
        ]
    })
}

/// A column value of the right type, `false` or NULL.
fn cell_for(ty: Type) -> BoxedStrategy<Value> {
    let typed = match ty {
        Type::Integer => (0i64..4).prop_map(Value::from).boxed(),
        Type::Char => prop::sample::select(vec!["", "x", "xy", "X", "ax", "x_", "yx"])
            .prop_map(Value::from)
            .boxed(),
        Type::Boolean | Type::Unknown => any::<bool>().prop_map(Value::from).boxed(),
    };
    prop_oneof![6 => typed, 1 => Just(Value::Bool(false)), 1 => Just(Value::Null)].boxed()
}

/// A row of the test model: every column absent, NULL, `false` or a value.
fn row() -> impl Strategy<Value = Record> {
    let cell = |ty: Type| prop::option::of(cell_for(ty));
    (
        cell(Type::Integer),
        cell(Type::Integer),
        cell(Type::Char),
        cell(Type::Boolean),
        cell(Type::Boolean),
    )
        .prop_map(|(a, b, s, flag, flag2)| {
            let mut map = Record::new();
            for (name, value) in [
                ("a", a),
                ("b", b),
                ("s", s),
                ("flag", flag),
                ("flag2", flag2),
            ] {
                if let Some(value) = value {
                    map.insert(name.to_owned(), value);
                }
            }
            map
        })
}

// ---------------------------------------------------------------------------------------------
// Ill-formed domains, and arbitrary JSON.
// ---------------------------------------------------------------------------------------------

/// One way to break a well-formed domain so that Odoo would refuse it.
#[derive(Debug, Clone)]
enum Break {
    /// An operator with nothing after it.
    Trailing(&'static str),
    /// `&` in front of a single expression: the second operand is missing.
    LeadingAnd,
    /// A token that is neither an operator nor a term, inserted at a position (modulo length).
    Insert(Value, usize),
    /// A leaf (the n-th, modulo their count) replaced by a malformed term.
    BadLeaf(Value, usize),
    /// Not an array at all.
    NotAList(Value),
}

fn breakage() -> impl Strategy<Value = Break> {
    prop_oneof![
        prop::sample::select(vec!["&", "|", "!"]).prop_map(Break::Trailing),
        Just(Break::LeadingAnd),
        (
            prop::sample::select(vec![
                json!(7),
                json!(null),
                json!(true),
                json!({"a": 1}),
                json!("and"),
                json!("&&"),
                json!(""),
                json!("AND"),
                json!(1.5),
            ]),
            any::<usize>()
        )
            .prop_map(|(token, at)| Break::Insert(token, at)),
        (
            prop::sample::select(vec![
                json!(["a", "IN", [1]]),
                json!(["a", "==", 1]),
                json!(["a", "Like", "x"]),
                json!(["a", "not_in", [1]]),
                json!(["a", "", 1]),
                json!(["a", "="]),
                json!(["a", "=", 1, 2]),
                json!([]),
                json!(["", "=", 1]),
                json!([null, "=", 1]),
                json!([2, "=", 1]),
                json!([1, "=", 2]),
                json!([1, "!=", 1]),
                json!([1.0, "=", 1]),
                json!(["a", 1, 1]),
                json!([["a"], "=", 1]),
                json!(["lines", "any", 3]),
                json!(["lines", "any", ["&", ["a", "=", 1]]]),
            ]),
            any::<usize>()
        )
            .prop_map(|(term, at)| Break::BadLeaf(term, at)),
        prop::sample::select(vec![
            json!({"a": 1}),
            json!("[('a','=',1)]"),
            json!(3),
            json!(null),
            json!(true),
        ])
        .prop_map(Break::NotAList),
    ]
}

/// `domain` (a single expression, written with explicit operators) broken by `how`.
fn broken(domain: Value, how: &Break) -> Value {
    let mut tokens = match domain {
        Value::Array(tokens) => tokens,
        other => vec![other],
    };
    match how {
        Break::Trailing(op) => tokens.push(json!(op)),
        Break::LeadingAnd => tokens.insert(0, json!("&")),
        Break::Insert(token, at) => tokens.insert(at % (tokens.len() + 1), token.clone()),
        Break::BadLeaf(term, at) => {
            let leaves: Vec<usize> = (0..tokens.len())
                .filter(|&i| tokens[i].is_array())
                .collect();
            let index = leaves[at % leaves.len()];
            tokens[index] = term.clone();
        }
        Break::NotAList(value) => return value.clone(),
    }
    Value::Array(tokens)
}

/// Arbitrary JSON, biased towards what domains are made of.
fn any_json() -> impl Strategy<Value = Value> {
    let atom = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-2i64..3).prop_map(Value::from),
        prop::sample::select(vec![0.0, 1.0, -1.5, 1e300]).prop_map(Value::from),
        prop::sample::select(vec![
            "&", "|", "!", "a", "flag", "s", "", "=", "!=", "<>", "in", "not in", "IN", "like",
            "=?", "any", "x", "%",
        ])
        .prop_map(Value::from),
    ];
    atom.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            4 => prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            // Three-element arrays look like terms.
            4 => (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| Value::Array(vec![a, b, c])),
            1 => prop::collection::btree_map(
                prop::sample::select(vec!["a", "&", "domain"]).prop_map(str::to_owned),
                inner,
                0..3
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Arbitrary JSON tokens mixed with well-formed terms and operators, as a domain.
fn token_soup() -> impl Strategy<Value = Value> {
    let token = prop_oneof![
        3 => prop::sample::select(vec!["&", "|", "!"]).prop_map(Value::from),
        4 => term().prop_map(|t| match t {
            Tree::Leaf(term) => term,
            _ => json!([1, "=", 1]),
        }),
        2 => any_json(),
    ];
    prop::collection::vec(token, 0..12).prop_map(Value::Array)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// The canonical form selects the same rows as the original, NULLs included, and raises
    /// where it raises; canonicalising it again changes nothing.
    #[test]
    fn canonical_form_selects_the_same_rows(
        tree in tree(),
        seed in any::<u64>(),
        rows in prop::collection::vec(row(), 1..12),
    ) {
        let domain = write(&tree, &mut Dice(seed));
        let out = canonicalise(&domain);
        prop_assert!(out.is_some(), "well-formed by construction: {}", domain);
        let out = out.unwrap_or_default();
        for row in &rows {
            prop_assert_eq!(
                selects(&out, row),
                selects(&domain, row),
                "{} -> {} on {:?}", domain, out, row
            );
        }
        prop_assert_eq!(canonicalise(&out), Some(out.clone()), "not idempotent: {}", domain);
    }

    /// Any order of the operands of every AND/OR node, any bracketing, implicit or explicit
    /// top-level AND: one canonical form (and, as a check on the generator, the same rows).
    #[test]
    fn operand_order_does_not_change_the_canonical_form(
        tree in tree(),
        seeds in any::<[u64; 3]>(),
        rows in prop::collection::vec(row(), 1..4),
    ) {
        let tree = flatten(tree);
        let first = write(&tree, &mut Dice(seeds[0]));
        let other = shuffled(&tree, &mut Dice(seeds[1]));
        let second = write(&other, &mut Dice(seeds[2]));
        prop_assert_eq!(canonicalise(&first), canonicalise(&second), "{} vs {}", first, second);
        for row in &rows {
            prop_assert_eq!(selects(&first, row), selects(&second, row));
        }
    }

    /// Broken domains are refused by `parse` and `canonicalise` alike.
    #[test]
    fn ill_formed_domains_are_refused(tree in tree(), seed in any::<u64>(), how in breakage()) {
        // A single expression, operators explicit (so that a leading `&` lacks an operand).
        let domain = Value::Array(tokens(&tree, &mut Dice(seed)));
        let bad = broken(domain, &how);
        prop_assert!(parse(&bad).is_err(), "{:?}: {}", how, bad);
        prop_assert_eq!(canonicalise(&bad), None, "{:?}: {}", how, bad);
        prop_assert!(reference_parse(&bad).is_err(), "{:?}: {}", how, bad);
    }

    /// Any JSON at all: no panic; accepted exactly when the reference accepts it; when
    /// accepted, equivalent and idempotent.
    #[test]
    fn arbitrary_json_never_panics(
        domain in prop_oneof![any_json(), token_soup()],
        row in row(),
    ) {
        let out = canonicalise(&domain);
        prop_assert_eq!(out.is_some(), reference_parse(&domain).is_ok(), "{}", domain);
        if let Some(out) = out {
            prop_assert_eq!(canonicalise(&out), Some(out.clone()), "{}", domain);
            prop_assert_eq!(selects(&out, &row), selects(&domain, &row), "{} -> {}", domain, out);
        }
    }
}
