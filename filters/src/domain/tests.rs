//! Tests for [`super`]: one unit test per rule and per kind of bad input, property tests
//! against an independent evaluator that follows Odoo's own `normalize_domain`, and the
//! hit-ratio measurement of the issue (a replayed workload with shuffled operands).

use std::cmp::Ordering;
use std::collections::HashSet;

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;

fn canonical(domain: Value) -> Value {
    canonicalise(&domain).expect("a well-formed domain")
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

#[test]
fn implicit_and_becomes_explicit_and_sorted() {
    let out = canonical(json!([["b", "=", 1], ["a", "=", 2]]));
    assert_eq!(out, json!(["&", ["a", "=", 2], ["b", "=", 1]]));
}

#[test]
fn every_and_shape_gives_one_form() {
    let (a, b, c) = (
        json!(["a", "=", 1]),
        json!(["b", "=", 1]),
        json!(["c", "=", 1]),
    );
    let expected = json!(["&", "&", a, b, c]);
    for domain in [
        json!([a, b, c]),
        json!([c, b, a]),
        json!(["&", a, "&", b, c]),
        json!(["&", "&", c, a, b]),
        json!(["&", b, a, c]),
        json!([b, "&", c, a]),
    ] {
        assert_eq!(canonical(domain.clone()), expected, "{domain}");
    }
}

#[test]
fn or_operands_are_sorted_and_flattened() {
    let out = canonical(json!([
        "|",
        ["c", "=", 1],
        "|",
        ["b", "=", 1],
        ["a", "=", 1]
    ]));
    assert_eq!(
        out,
        json!(["|", "|", ["a", "=", 1], ["b", "=", 1], ["c", "=", 1]])
    );
}

#[test]
fn nothing_moves_across_operators() {
    // ['|', A, B, C] is (A OR B) AND C: C must stay out of the OR.
    let out = canonical(json!(["|", ["z", "=", 1], ["y", "=", 1], ["a", "=", 1]]));
    // (Keys compare as JSON text: a node, starting with `"`, sorts before a term, `[`.)
    assert_eq!(
        out,
        json!(["&", "|", ["y", "=", 1], ["z", "=", 1], ["a", "=", 1]])
    );
    // An OR inside an AND is not flattened into it.
    let out = canonical(json!([
        "&",
        "|",
        ["a", "=", 1],
        ["b", "=", 1],
        "|",
        ["c", "=", 1],
        ["d", "=", 1]
    ]));
    assert_eq!(
        out,
        json!([
            "&",
            "|",
            ["a", "=", 1],
            ["b", "=", 1],
            "|",
            ["c", "=", 1],
            ["d", "=", 1]
        ])
    );
}

#[test]
fn not_stays_a_prefix_over_its_operand() {
    let out = canonical(json!([
        "!",
        "&",
        ["b", "=", 1],
        ["a", "=", 1],
        ["c", "=", 1]
    ]));
    assert_eq!(
        out,
        json!(["&", "!", "&", ["a", "=", 1], ["b", "=", 1], ["c", "=", 1]])
    );
    // `!!` is not simplified.
    let out = canonical(json!(["!", "!", ["a", "=", 1]]));
    assert_eq!(out, json!(["!", "!", ["a", "=", 1]]));
}

#[test]
fn legacy_not_equal_is_respelled_outside_negations_only() {
    assert_eq!(canonical(json!([["a", "<>", 1]])), json!([["a", "!=", 1]]));
    // Under a `!`, Odoo negates `!=` into `=` but keeps `NOT (a <> v)`: they differ on NULLs.
    assert_eq!(
        canonical(json!(["!", ["a", "<>", 1]])),
        json!(["!", ["a", "<>", 1]])
    );
    assert_eq!(
        canonical(json!(["!", "|", ["a", "<>", 1], ["b", "<>", 1]])),
        json!(["!", "|", ["a", "<>", 1], ["b", "<>", 1]])
    );
    // A sub-domain starts afresh: the `!` turns `any` into `not any`, not the leaves inside.
    assert_eq!(
        canonical(json!(["!", ["line_ids", "any", [["a", "<>", 1]]]])),
        json!(["!", ["line_ids", "any", [["a", "!=", 1]]]])
    );
}

#[test]
fn operators_keep_their_spelling_and_other_cases_are_refused() {
    for op in [
        "=",
        "!=",
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
    ] {
        let domain = json!([["a", op, 1]]);
        assert_eq!(canonical(domain.clone()), domain, "{op}");
        assert_eq!(Op::from_spelling(op).map(Op::as_str), Some(op));
    }
    for op in [
        "IN", "Like", "NOT IN", "not  in", "==", "", "inselect", "not_in",
    ] {
        assert_eq!(canonicalise(&json!([["a", op, 1]])), None, "{op}");
        assert!(matches!(
            parse(&json!([["a", op, 1]])),
            Err(DomainError::UnknownOperator { index: 0 })
        ));
    }
}

#[test]
fn values_are_never_touched() {
    let domain = json!([
        ["state", "in", ["sale", "draft", "cancel", "draft"]],
        ["partner_id", "=", [3, 1]],
        ["active", "in", true],
        ["x", "=", {"b": 1, "a": [2, 1]}],
        ["name", "ilike", "  Mixed CASE  "]
    ]);
    let out = canonical(domain.clone());
    let leaves: HashSet<String> = out
        .as_array()
        .unwrap()
        .iter()
        .filter(|token| token.is_array())
        .map(|leaf| leaf.to_string())
        .collect();
    for leaf in domain.as_array().unwrap() {
        assert!(leaves.contains(&leaf.to_string()), "{leaf} lost");
    }
}

#[test]
fn identical_siblings_are_merged_others_are_kept() {
    assert_eq!(
        canonical(json!([["a", "=", 1], ["a", "=", 1]])),
        json!([["a", "=", 1]])
    );
    assert_eq!(
        canonical(json!(["|", ["a", "=", 1], ["a", "=", 1.0]])),
        json!(["|", ["a", "=", 1.0], ["a", "=", 1]])
    );
    // A collapse that puts an OR under an OR is flattened again (idempotence).
    let or_cd = json!(["|", ["c", "=", 1], ["d", "=", 1]]);
    let domain = json!([
        "|",
        ["a", "=", 1],
        "&",
        or_cd[0],
        or_cd[1],
        or_cd[2],
        or_cd[0],
        or_cd[1],
        or_cd[2]
    ]);
    let out = canonical(domain);
    assert_eq!(
        out,
        json!(["|", "|", ["a", "=", 1], ["c", "=", 1], ["d", "=", 1]])
    );
    assert_eq!(canonical(out.clone()), out);
}

#[test]
fn special_leaves_and_the_empty_domain_keep_their_form() {
    assert_eq!(canonical(json!([])), json!([]));
    assert_eq!(canonical(json!([[1, "=", 1]])), json!([[1, "=", 1]]));
    assert_eq!(canonical(json!([[0, "=", 1]])), json!([[0, "=", 1]]));
    assert_eq!(parse(&json!([])), Ok(Domain::And(vec![])));
    assert_eq!(parse(&json!([[1, "=", 1]])), Ok(Domain::True));
    assert_eq!(
        canonical(json!([["b", "=", 1], [0, "=", 1]])),
        json!(["&", ["b", "=", 1], [0, "=", 1]])
    );
    // `any` with an empty sub-domain stays `[]`.
    assert_eq!(
        canonical(json!([["line_ids", "any", []]])),
        json!([["line_ids", "any", []]])
    );
}

#[test]
fn any_sub_domains_are_canonicalised() {
    let out = canonical(json!([
        ["z", "=", 1],
        [
            "line_ids",
            "not any",
            [["qty", ">", 2], ["product_id.name", "ilike", "x"]]
        ]
    ]));
    assert_eq!(
        out,
        json!([
            "&",
            [
                "line_ids",
                "not any",
                ["&", ["product_id.name", "ilike", "x"], ["qty", ">", 2]]
            ],
            ["z", "=", 1]
        ])
    );
}

#[test]
fn to_json_keeps_the_order_parse_read() {
    let domain = json!(["&", "&", ["b", "=", 1], ["a", "=", 1], "!", ["c", "<>", 1]]);
    assert_eq!(parse(&domain).unwrap().to_json(), domain);
    let implicit = json!([["b", "=", 1], ["a", "=", 1]]);
    assert_eq!(
        parse(&implicit).unwrap().to_json(),
        json!(["&", ["b", "=", 1], ["a", "=", 1]])
    );
    // Hand-built trees with empty nodes still serialise to valid domains.
    let odd = Domain::Or(vec![Domain::And(vec![]), Domain::Or(vec![])]);
    assert_eq!(odd.to_json(), json!(["|", [1, "=", 1], [0, "=", 1]]));
    assert_eq!(Domain::Or(vec![]).to_json(), json!([[0, "=", 1]]));
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_input_is_refused() {
    type Check = fn(&DomainError) -> bool;
    let cases: Vec<(Value, Check)> = vec![
        (json!({"a": 1}), |e| *e == DomainError::NotAList),
        (json!("[('a','=',1)]"), |e| *e == DomainError::NotAList),
        (json!(null), |e| *e == DomainError::NotAList),
        (json!(["&", ["a", "=", 1]]), |e| {
            *e == DomainError::MissingOperand { index: 0 }
        }),
        (json!(["|"]), |e| {
            *e == DomainError::MissingOperand { index: 0 }
        }),
        (json!(["!"]), |e| {
            *e == DomainError::MissingOperand { index: 0 }
        }),
        (json!([["a", "=", 1], "!"]), |e| {
            *e == DomainError::MissingOperand { index: 1 }
        }),
        (json!(["and", ["a", "=", 1]]), |e| {
            *e == DomainError::UnknownToken { index: 0 }
        }),
        (json!([7]), |e| *e == DomainError::NotATerm { index: 0 }),
        (json!([null]), |e| *e == DomainError::NotATerm { index: 0 }),
        (json!([{"a": "="}]), |e| {
            *e == DomainError::NotATerm { index: 0 }
        }),
        (json!([["a", "="]]), |e| {
            matches!(e, DomainError::BadTerm { index: 0, .. })
        }),
        (json!([["a", "=", 1, 2]]), |e| {
            matches!(e, DomainError::BadTerm { .. })
        }),
        (json!([[]]), |e| matches!(e, DomainError::BadTerm { .. })),
        (json!([["", "=", 1]]), |e| {
            matches!(e, DomainError::BadTerm { .. })
        }),
        (json!([[null, "=", 1]]), |e| {
            matches!(e, DomainError::BadTerm { .. })
        }),
        (json!([[["a"], "=", 1]]), |e| {
            matches!(e, DomainError::BadTerm { .. })
        }),
        (json!([["a", 1, 1]]), |e| {
            matches!(e, DomainError::BadTerm { .. })
        }),
        (json!([[1, "=", 2]]), |e| {
            matches!(e, DomainError::BadTerm { .. })
        }),
        (json!([[1, "!=", 1]]), |e| {
            matches!(e, DomainError::BadTerm { .. })
        }),
        (json!([[2, "=", 1]]), |e| {
            matches!(e, DomainError::BadTerm { .. })
        }),
        (json!([[1.0, "=", 1]]), |e| {
            matches!(e, DomainError::BadTerm { .. })
        }),
        (json!([[true, "=", 1]]), |e| {
            matches!(e, DomainError::BadTerm { .. })
        }),
        (json!([["a", "IN", [1]]]), |e| {
            *e == DomainError::UnknownOperator { index: 0 }
        }),
        (
            json!([["l", "any", 3]]),
            |e| matches!(e, DomainError::SubDomain { index: 0, source } if **source == DomainError::NotAList),
        ),
        (
            json!([["b", "=", 1], ["l", "any", ["&", ["a", "=", 1]]]]),
            |e| matches!(e, DomainError::SubDomain { index: 1, .. }),
        ),
    ];
    for (domain, expected) in cases {
        let error = parse(&domain).expect_err("ill-formed");
        assert!(expected(&error), "{domain}: {error:?}");
        assert_eq!(canonicalise(&domain), None, "{domain}");
        assert!(!error.to_string().is_empty());
    }
}

fn leaf(i: usize) -> Value {
    json!([format!("f{}", i % 7), "=", i])
}

#[test]
fn ten_thousand_negations_do_not_overflow() {
    let mut tokens: Vec<Value> = vec![json!("!"); 10_000];
    tokens.push(leaf(1));
    let domain = Value::Array(tokens);
    assert_eq!(parse(&domain), Err(DomainError::TooDeep));
    assert_eq!(canonicalise(&domain), None);
}

#[test]
fn depth_limit_is_exact() {
    for (nots, ok) in [(MAX_DEPTH - 1, true), (MAX_DEPTH, false)] {
        let mut tokens: Vec<Value> = vec![json!("!"); nots];
        tokens.push(leaf(1));
        let domain = Value::Array(tokens);
        assert_eq!(canonicalise(&domain).is_some(), ok, "{nots}");
        if ok {
            assert_eq!(canonicalise(&domain), Some(domain));
        }
    }
}

#[test]
fn ten_thousand_alternating_operators_are_refused() {
    let mut tokens = Vec::new();
    for i in 0..10_000 {
        tokens.push(json!(if i % 2 == 0 { "&" } else { "|" }));
        tokens.push(leaf(i));
    }
    tokens.push(leaf(10_000));
    let domain = Value::Array(tokens);
    assert_eq!(parse(&domain), Err(DomainError::TooDeep));
    assert_eq!(canonicalise(&domain), None);
}

#[test]
fn long_same_operator_chains_are_flattened_not_refused() {
    let n = 10_000;
    let leaves: Vec<Value> = (0..=n).map(leaf).collect();
    // Left-leaning, as `expression.AND` builds: & & & ... A B C ...
    let mut left: Vec<Value> = vec![json!("&"); n];
    left.extend(leaves.iter().cloned());
    // Right-leaning: & A & B & C ... Z
    let mut right = Vec::new();
    for item in &leaves[..n] {
        right.push(json!("&"));
        right.push(item.clone());
    }
    right.push(leaves[n].clone());
    // Implicit.
    let implicit = leaves.clone();
    let expected = canonical(Value::Array(left.clone()));
    assert_eq!(expected.as_array().unwrap().len(), 2 * n + 1);
    assert_eq!(canonical(Value::Array(right)), expected);
    assert_eq!(canonical(Value::Array(implicit)), expected);
    match parse(&Value::Array(left)) {
        Ok(Domain::And(children)) => assert_eq!(children.len(), n + 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn deeply_nested_any_is_refused() {
    let mut domain = json!([["a", "=", 1]]);
    for _ in 0..200 {
        domain = json!([["line_ids", "any", domain]]);
    }
    assert!(matches!(parse(&domain), Err(DomainError::SubDomain { .. })));
    assert_eq!(canonicalise(&domain), None);
}

// ---------------------------------------------------------------------------------------------
// An independent reference: Odoo's normalize_domain, then a stack evaluation over one record.
// ---------------------------------------------------------------------------------------------

type Record = Map<String, Value>;

enum Token<'a> {
    And,
    Or,
    Not,
    Term(&'a Value),
}

/// Odoo's `normalize_domain`: reads forward, inserts `&` in front whenever a complete
/// expression is followed by more tokens. `None` where Odoo raises.
fn normalize(domain: &[Value]) -> Option<Vec<Token<'_>>> {
    let mut result = Vec::new();
    let mut expected = 1i64;
    for token in domain {
        if expected == 0 {
            result.insert(0, Token::And);
            expected = 1;
        }
        match token {
            Value::String(s) if s == "&" => {
                expected += 1;
                result.push(Token::And)
            }
            Value::String(s) if s == "|" => {
                expected += 1;
                result.push(Token::Or)
            }
            Value::String(s) if s == "!" => result.push(Token::Not),
            Value::Array(_) => {
                expected -= 1;
                result.push(Token::Term(token))
            }
            // Odoo counts them as terms and fails later in check_leaf.
            _ => return None,
        }
    }
    (expected == 0).then_some(result)
}

/// The domain's value on `record`, `None` where Odoo raises. Evaluates every leaf (no
/// short-circuit), so an invalid leaf anywhere gives `None`, as in Odoo.
fn eval(domain: &Value, record: &Record) -> Option<bool> {
    let tokens = domain.as_array()?;
    if tokens.is_empty() {
        return Some(true);
    }
    let mut stack = Vec::new();
    for token in normalize(tokens)?.iter().rev() {
        let value = match token {
            Token::And => {
                let (a, b) = (stack.pop()?, stack.pop()?);
                a && b
            }
            Token::Or => {
                let (a, b) = (stack.pop()?, stack.pop()?);
                a || b
            }
            Token::Not => !stack.pop()?,
            Token::Term(term) => eval_leaf(term, record)?,
        };
        stack.push(value);
    }
    (stack.len() == 1).then(|| stack[0])
}

fn eval_leaf(term: &Value, record: &Record) -> Option<bool> {
    let [left, op, right] = term.as_array()?.as_slice() else {
        return None;
    };
    let op = op.as_str()?;
    if left.is_number() {
        return match (left.as_u64(), op, right.as_u64()) {
            (Some(1), "=", Some(1)) if left.is_u64() && right.is_u64() => Some(true),
            (Some(0), "=", Some(1)) if left.is_u64() && right.is_u64() => Some(false),
            _ => None,
        };
    }
    let path = left.as_str().filter(|path| !path.is_empty())?;
    let field = record.get(path).unwrap_or(&Value::Null);
    let text = field.as_str();
    Some(match op {
        "=" => field == right,
        "!=" | "<>" => field != right,
        "<" => matches!(compare(field, right), Some(Ordering::Less)),
        "<=" => matches!(
            compare(field, right),
            Some(Ordering::Less | Ordering::Equal)
        ),
        ">" => matches!(compare(field, right), Some(Ordering::Greater)),
        ">=" => matches!(
            compare(field, right),
            Some(Ordering::Greater | Ordering::Equal)
        ),
        "=?" => matches!(right, Value::Null | Value::Bool(false)) || field == right,
        "in" | "child_of" | "parent_of" => right.as_array()?.contains(field),
        "not in" => !right.as_array()?.contains(field),
        "like" => like(text, &format!("%{}%", right.as_str()?), false),
        "not like" => !like(text, &format!("%{}%", right.as_str()?), false),
        "ilike" => like(text, &format!("%{}%", right.as_str()?), true),
        "not ilike" => !like(text, &format!("%{}%", right.as_str()?), true),
        "=like" => like(text, right.as_str()?, false),
        "=ilike" => like(text, right.as_str()?, true),
        "any" | "not any" => {
            // Validate the sub-domain even when there is nothing to run it on.
            eval(right, &Record::new())?;
            let mut found = false;
            for line in field.as_array().map(Vec::as_slice).unwrap_or_default() {
                found |= eval(right, line.as_object()?)?;
            }
            found == (op == "any")
        }
        _ => return None,
    })
}

/// The order of two numbers or two strings; `None` (no relation holds) otherwise.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// SQL `LIKE` with `%` and `_`; `None` text (not a string) never matches.
fn like(text: Option<&str>, pattern: &str, fold: bool) -> bool {
    let Some(text) = text else { return false };
    let (text, pattern): (Vec<char>, Vec<char>) = if fold {
        (
            text.to_lowercase().chars().collect(),
            pattern.to_lowercase().chars().collect(),
        )
    } else {
        (text.chars().collect(), pattern.chars().collect())
    };
    // matches[j]: pattern[..i] matches text[..j].
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

#[test]
fn the_reference_evaluator_follows_odoo() {
    let record: Record = json!({"a": 1, "b": "Abc"}).as_object().unwrap().clone();
    // ['|', A, B, C] is (A OR B) AND C.
    let t = json!(["a", "=", 1]);
    let f = json!(["a", "=", 2]);
    assert_eq!(eval(&json!(["|", t, f, f]), &record), Some(false));
    assert_eq!(eval(&json!(["|", f, f, t]), &record), Some(false));
    assert_eq!(eval(&json!(["|", t, f, t]), &record), Some(true));
    assert_eq!(eval(&json!([["b", "ilike", "BC"]]), &record), Some(true));
    assert_eq!(eval(&json!([["b", "=like", "A_c"]]), &record), Some(true));
    assert_eq!(eval(&json!([["b", "like", "bc"]]), &record), Some(true));
    assert_eq!(eval(&json!([["b", "like", "BC"]]), &record), Some(false));
    assert_eq!(eval(&json!(["&", t]), &record), None);
    assert_eq!(eval(&json!([]), &record), Some(true));
}

// ---------------------------------------------------------------------------------------------
// Random logical queries, and random ways of writing each of them.
// ---------------------------------------------------------------------------------------------

/// A logical query: what the client means, before choosing an order and a bracketing.
#[derive(Debug, Clone)]
enum Tree {
    Term(String, &'static str, Value),
    True,
    False,
    And(Vec<Tree>),
    Or(Vec<Tree>),
    Not(Box<Tree>),
    Any(&'static str, Box<Tree>),
}

/// splitmix64: a deterministic stream for choosing orders and bracketings. With
/// `syntax: false`, only operand orders vary: the top-level AND is implicit, nodes are written
/// `& & A B C` (as `expression.AND` and the web client write them) and `!=` keeps its spelling.
struct Dice {
    state: u64,
    syntax: bool,
}

impl Dice {
    fn new(seed: u64) -> Dice {
        Dice {
            state: seed,
            syntax: true,
        }
    }

    fn orders_only(seed: u64) -> Dice {
        Dice {
            state: seed,
            syntax: false,
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
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

/// Writes `tree` as a domain: operands shuffled, a random binary bracketing for each node, the
/// top-level AND sometimes implicit, `!=` sometimes spelled `<>` where that means the same.
fn write(tree: &Tree, dice: &mut Dice) -> Value {
    match tree {
        Tree::And(children) if !dice.syntax || dice.below(2) == 0 => {
            let mut parts: Vec<Vec<Value>> = children
                .iter()
                .map(|child| write_tokens(child, dice, false))
                .collect();
            dice.shuffle(&mut parts);
            Value::Array(parts.concat())
        }
        _ => Value::Array(write_tokens(tree, dice, false)),
    }
}

fn write_tokens(tree: &Tree, dice: &mut Dice, negated: bool) -> Vec<Value> {
    match tree {
        Tree::Term(path, op, value) => {
            let op = match *op {
                "!=" | "<>" if !negated && dice.syntax => ["!=", "<>"][dice.below(2)],
                op => op,
            };
            vec![json!([path, op, value])]
        }
        Tree::True => vec![json!([1, "=", 1])],
        Tree::False => vec![json!([0, "=", 1])],
        Tree::Not(operand) => {
            let mut tokens = vec![json!("!")];
            tokens.extend(write_tokens(operand, dice, true));
            tokens
        }
        Tree::Any(op, sub) => vec![json!(["lines", op, write(sub, dice)])],
        Tree::And(children) | Tree::Or(children) => {
            let token = if matches!(tree, Tree::And(_)) {
                "&"
            } else {
                "|"
            };
            let mut parts: Vec<Vec<Value>> = children
                .iter()
                .map(|child| write_tokens(child, dice, negated))
                .collect();
            dice.shuffle(&mut parts);
            bracket(token, parts, dice)
        }
    }
}

/// A random binary bracketing of `parts` under `token`.
fn bracket(token: &str, mut parts: Vec<Vec<Value>>, dice: &mut Dice) -> Vec<Value> {
    if parts.len() <= 1 {
        return parts.pop().unwrap_or_else(|| vec![json!([1, "=", 1])]);
    }
    let split = if dice.syntax {
        1 + dice.below(parts.len() - 1)
    } else {
        parts.len() - 1
    };
    let right = parts.split_off(split);
    let mut tokens = vec![json!(token)];
    tokens.extend(bracket(token, parts, dice));
    tokens.extend(bracket(token, right, dice));
    tokens
}

const OPS: &[&str] = &[
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

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0i64..4).prop_map(Value::from),
        prop::sample::select(vec!["", "a", "ab", "B", "ba", "%a", "a_"]).prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ]
}

fn term() -> impl Strategy<Value = Tree> {
    (
        prop::sample::select(vec!["a", "b", "c", "n"]),
        prop::sample::select(OPS),
        scalar(),
        prop::collection::vec(scalar(), 0..4),
        prop::sample::select(vec!["", "a", "b", "A", "%", "_b"]),
    )
        .prop_map(|(path, op, value, list, text)| {
            let value = match op {
                "in" | "not in" => Value::Array(list),
                "like" | "not like" | "ilike" | "not ilike" | "=like" | "=ilike" => {
                    Value::from(text)
                }
                _ => value,
            };
            Tree::Term(path.to_owned(), op, value)
        })
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![8 => term(), 1 => Just(Tree::True), 1 => Just(Tree::False)];
    leaf.prop_recursive(5, 40, 4, |inner| {
        prop_oneof![
            3 => prop::collection::vec(inner.clone(), 2..5).prop_map(Tree::And),
            3 => prop::collection::vec(inner.clone(), 2..5).prop_map(Tree::Or),
            2 => inner.clone().prop_map(|t| Tree::Not(Box::new(t))),
            1 => (prop::sample::select(vec!["any", "not any"]), inner)
                .prop_map(|(op, t)| Tree::Any(op, Box::new(t))),
        ]
    })
}

fn record() -> impl Strategy<Value = Record> {
    let fields = || {
        (
            prop::option::of(scalar()),
            prop::option::of(scalar()),
            prop::option::of(scalar()),
        )
    };
    (fields(), prop::collection::vec(fields(), 0..3)).prop_map(|(top, lines)| {
        let to_map = |(a, b, c): (Option<Value>, Option<Value>, Option<Value>)| {
            let mut map = Record::new();
            for (name, value) in [("a", a), ("b", b), ("c", c)] {
                if let Some(value) = value {
                    map.insert(name.to_owned(), value);
                }
            }
            map
        };
        let mut map = to_map(top);
        map.insert(
            "lines".to_owned(),
            Value::Array(
                lines
                    .into_iter()
                    .map(|l| Value::Object(to_map(l)))
                    .collect(),
            ),
        );
        map
    })
}

/// Random token soup, mostly ill-formed: the parser must agree with Odoo on what is well-formed.
fn soup() -> impl Strategy<Value = Value> {
    let token = prop_oneof![
        3 => prop::sample::select(vec!["&", "|", "!"]).prop_map(Value::from),
        6 => term().prop_map(|t| {
            write_tokens(&t, &mut Dice::new(0), false)
                .into_iter()
                .next()
                .unwrap_or(Value::Null)
        }),
        1 => prop::sample::select(vec![
            json!("and"), json!(3), json!(null), json!(["a", "="]), json!(["a", "IN", [1]]),
            json!([1, "=", 1]), json!([0, "=", 1]), json!([1.0, "=", 1]), json!(["", "=", 1]),
            json!(["lines", "any", [["a", "=", 1]]]), json!(["lines", "any", ["&"]]),
            json!(["lines", "not any", 5]),
        ]),
    ];
    prop::collection::vec(token, 0..12).prop_map(Value::Array)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// eval(canonical(d)) == eval(d) on random records; canonical is idempotent; the sort key
    /// is the serialised canonical domain.
    #[test]
    fn canonical_form_is_equivalent_and_idempotent(
        tree in tree(),
        seed in any::<u64>(),
        records in prop::collection::vec(record(), 1..8),
    ) {
        let domain = write(&tree, &mut Dice::new(seed));
        let out = canonicalise(&domain).expect("well-formed by construction");
        for record in &records {
            let before = eval(&domain, record);
            prop_assert!(before.is_some(), "{domain}");
            prop_assert_eq!(eval(&out, record), before, "{} vs {}", domain, out);
        }
        prop_assert_eq!(canonicalise(&out), Some(out.clone()));
        let key = String::from_utf8(canon(parse(&domain).unwrap(), false).unwrap().key).unwrap();
        prop_assert_eq!(format!("[{key}]"), serde_json::to_string(&out).unwrap());
    }

    /// Every order of the operands of every AND/OR node (and every bracketing, implicit
    /// top-level AND, `<>` for `!=` outside negations) gives the same canonical form.
    #[test]
    fn operand_order_does_not_change_the_canonical_form(
        tree in tree(),
        first in any::<u64>(),
        second in any::<u64>(),
    ) {
        let a = write(&tree, &mut Dice::new(first));
        let b = write(&tree, &mut Dice::new(second));
        prop_assert_eq!(canonicalise(&a), canonicalise(&b), "{} vs {}", a, b);
    }

    /// Arbitrary token sequences: no panic; accepted exactly when Odoo's normalize_domain and
    /// leaf checks accept them; and then equivalent.
    #[test]
    fn token_soup_is_accepted_exactly_when_odoo_accepts_it(
        domain in soup(),
        record in record(),
    ) {
        let out = canonicalise(&domain);
        let before = eval(&domain, &record);
        prop_assert_eq!(out.is_some(), before.is_some(), "{}", domain);
        if let Some(out) = out {
            prop_assert_eq!(eval(&out, &record), before, "{} vs {}", domain, out);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hit ratio on a replayed workload with shuffled operands
// ---------------------------------------------------------------------------------------------

/// One realistic list-view query: 2–5 filters, sometimes an OR group, sometimes a negation.
fn realistic_query(dice: &mut Dice) -> Tree {
    let term = |dice: &mut Dice| -> Tree {
        let pick = dice.below(8);
        let n = dice.below(5) as i64 + 1;
        match pick {
            0 => Tree::Term("state".into(), "in", json!(["sale", "done"])),
            1 => Tree::Term("state".into(), "not in", json!(["draft", "cancel"])),
            2 => Tree::Term("user_id".into(), "=", json!(n)),
            3 => Tree::Term(
                "partner_id.country_id.code".into(),
                "=",
                json!(["BE", "FR", "NL"][(n % 3) as usize]),
            ),
            4 => Tree::Term("amount_total".into(), ">", json!(n * 100)),
            5 => Tree::Term("date_order".into(), ">=", json!(format!("2024-0{n}-01"))),
            6 => Tree::Term("company_id".into(), "in", json!([1, n])),
            _ => Tree::Term("name".into(), "ilike", json!(format!("SO0{n}"))),
        }
    };
    let count = 2 + dice.below(4);
    let mut children: Vec<Tree> = (0..count).map(|_| term(dice)).collect();
    if dice.below(3) == 0 {
        let group = (0..2 + dice.below(2)).map(|_| term(dice)).collect();
        children.push(Tree::Or(group));
    }
    if dice.below(4) == 0 {
        children.push(Tree::Not(Box::new(Tree::Term(
            "invoice_status".into(),
            "!=",
            json!("invoiced"),
        ))));
    }
    Tree::And(children)
}

#[test]
fn shuffled_workload_hit_ratio() {
    let mut dice = Dice::orders_only(0x00B1_D6EC_0EE5);
    let mut queries = Vec::new();
    let mut seen = HashSet::new();
    while queries.len() < 50 {
        let query = realistic_query(&mut dice);
        let key = canonicalise(&write(&query, &mut dice)).unwrap().to_string();
        if seen.insert(key) {
            queries.push(query);
        }
    }
    let total = 2000;
    let (mut raw, mut canonical_keys) = (HashSet::new(), HashSet::new());
    for _ in 0..total {
        let query = &queries[dice.below(queries.len())];
        let domain = write(query, &mut dice);
        canonical_keys.insert(canonicalise(&domain).unwrap().to_string());
        raw.insert(domain.to_string());
    }
    let ratio = |distinct: usize| 1.0 - distinct as f64 / total as f64;
    eprintln!(
        "replayed {total} requests over {} logical queries: raw keys {} (hit ratio {:.1}%), \
         canonical keys {} (hit ratio {:.1}%)",
        queries.len(),
        raw.len(),
        100.0 * ratio(raw.len()),
        canonical_keys.len(),
        100.0 * ratio(canonical_keys.len()),
    );
    assert_eq!(canonical_keys.len(), 50);
    assert!(ratio(canonical_keys.len()) > ratio(raw.len()) + 0.2);
}
