//! Odoo domains: parsing, and a canonical form that raises cache hit rates
//! (odoo-protocol.md §6).
//!
//! Clients send the same logical query with its terms in different orders (the web client
//! appends facets in click order, scripts build lists by hand). Odoo compiles any order to the
//! same result set and, as §6.3 shows, to the same plan, so the order only splits the cache.
//! [`canonicalise`] rewrites a domain into one spelling per logical query:
//!
//! - **flatten** nested same-operator nodes (`&` in `&`, `|` in `|`), including the implicit
//!   top-level AND, as Odoo 17/18 do themselves (`_tree_from_domain` / `_tree_and` / `_tree_or`);
//! - **sort** the operands of every AND and OR node by their serialised JSON (a total,
//!   deterministic order), then **drop duplicate operands** whose serialisations are identical;
//! - **spell `<>` as `!=`**, except under a `!` (see below);
//! - re-serialise in prefix notation with **explicit binary operators** (`n - 1` copies of `&` or
//!   `|` before `n` operands), terms as JSON arrays.
//!
//! # Why each rewrite is safe
//!
//! Odoo turns a domain into one SQL boolean expression (16: `expression.parse`; 17/18: through
//! `domain_combine_anies`). SQL's three-valued AND and OR are associative, commutative and
//! idempotent, so flattening, reordering and de-duplicating the operands of one node keep the
//! result for every row, NULLs included; whole operand subtrees move, never across an operator
//! (§6.2). The ORM steps before SQL do not look at order either: the `active` injection scans every
//! item, `is_false` folds the tree with min/max, 17/18 merge `any` nodes per AND/OR node (a
//! multiset, which flattening leaves as Odoo's own `_tree_and`/`_tree_or` build it). Leaves are
//! kept byte for byte: paths (dotted or not, valid or not), operators and values, including the
//! order of `in` lists. `any`/`not any` sub-domains are canonicalised by the same rules, since
//! they are domains on the comodel.
//!
//! `<>` is what Odoo's `normalize_leaf` turns into `!=`, but only once the leaf reaches the
//! parser. Before that, a `!` above the leaf is distributed (16: `distribute_not`; 17/18:
//! `_tree_not`) onto `!=` (it becomes `=`) but not onto `<>`, which stays under a SQL `NOT`. The
//! two differ on NULLs: `NOT (bool_field = TRUE)` drops NULL rows, `bool_field = FALSE` keeps
//! them. So `<>` is rewritten only where no `!` is above it in its own domain.
//!
//! # What is not done, and why
//!
//! - Operators are not lowercased: Odoo's `is_leaf` compares the spelling case-sensitively, so
//!   `IN` is an error in Odoo and lowercasing would turn the error into an answer. Any spelling
//!   outside the list of §6.1 makes the domain ill-formed here.
//! - Negations are not pushed inward and `!!` is not removed (`!` stays a prefix over its one
//!   operand); `=`-with-a-list and `in`-with-a-bool are not respelled; TRUE/FALSE leaves are not
//!   simplified away; `[]` is never swapped for `[[1, "=", 1]]` (Odoo has `if not domain`
//!   shortcuts).
//! - TRUE/FALSE leaves are recognised only as exactly `[1, "=", 1]` and `[0, "=", 1]`. Python
//!   also equates `[1.0, "=", 1]` or `[true, "=", 1]` with them; such domains are refused here,
//!   and therefore forwarded untouched.
//!
//! # Remaining, accepted differences (§6.2)
//!
//! Odoo raises on the first bad leaf it meets, and custom `_search` methods of non-stored fields
//! run once per leaf in parse order (once per distinct leaf, after de-duplication). A domain
//! that makes Odoo raise therefore still raises, but may raise a different error; the SQL text
//! changes order. Results never change. Echoes of the domain in answers (`read_group`'s
//! `__domain`) show the canonical spelling when it is forwarded.
//!
//! # Bad input
//!
//! [`parse`] refuses anything that is not well-formed (not an array, unknown tokens or
//! operators, wrong arity, non-array terms, a non-array `any` value) or nests deeper than
//! [`MAX_DEPTH`] after flattening; [`canonicalise`] then answers `None` and the caller forwards
//! the original untouched, letting Odoo give its own error. Parsing is iterative and every
//! recursive walk is bounded by [`MAX_DEPTH`], so no input overflows the stack or panics.

use std::collections::VecDeque;

use serde_json::Value;

#[cfg(test)]
mod tests;

/// How deep a domain tree may nest once same-operator chains are flattened, counting `!`, AND/OR
/// nodes and `any` sub-domains. Real domains nest a handful of levels; the bound keeps every
/// recursive walk (canonicalisation, serialisation, drop) far from the stack's end.
pub const MAX_DEPTH: usize = 64;

/// A domain parsed from Odoo's prefix notation into a tree, so that the operands of each AND/OR
/// node can be reordered as whole subtrees (odoo-protocol.md §6.2).
///
/// [`parse`] flattens same-operator chains, so AND nodes have no AND children and OR nodes no OR
/// children, and every AND/OR node it builds has at least two operands, except the empty domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Domain {
    /// Odoo's `TRUE_LEAF`, written `[1, "=", 1]`: kept as a leaf because Odoo's shortcuts
    /// (`is_false`, `_tree_and`) recognise exactly that spelling.
    True,
    /// Odoo's `FALSE_LEAF`, written `[0, "=", 1]`.
    False,
    /// A term `[path, operator, value]`.
    Leaf(Leaf),
    /// The conjunction of its operands. `And(vec![])` is the empty domain `[]` (true), kept apart
    /// from [`Domain::True`] so that it is written back as `[]`.
    And(Vec<Domain>),
    /// The disjunction of its operands (`Or(vec![])` would be false and is written as
    /// `FALSE_LEAF`; [`parse`] never builds it).
    Or(Vec<Domain>),
    /// The negation of its one operand, Odoo's unary prefix `!`.
    Not(Box<Domain>),
}

/// One term of a domain, `[path, operator, value]`: the unit a rewrite must never alter, except
/// for the spelling of `<>` (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// The field path, possibly dotted (`partner_id.country_id.code`); never empty. It is not
    /// checked against any model: BridgeCore has no schema, and a bad path makes Odoo raise in
    /// any order.
    pub path: String,
    /// The term operator, spelled as Odoo accepts it.
    pub op: Op,
    /// The right-hand side: a JSON value, or a sub-domain for `any` / `not any`.
    pub value: Operand,
}

/// The right-hand side of a term. `any`/`not any` take a domain on the comodel, which is
/// canonicalised like the outer one; every other operator takes a value that is never touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// A value, kept exactly as sent (lists keep their order).
    Value(Value),
    /// The sub-domain of `any` / `not any` (17/18).
    Domain(Box<Domain>),
}

/// The term operators of odoo-protocol.md §6.1, with their exact spellings: Odoo's `is_leaf`
/// compares spellings case-sensitively, so nothing else is a term operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<>`, the legacy spelling of `!=`: kept apart because Odoo treats it as `!=` only after
    /// distributing negations (see the module documentation).
    NeLegacy,
    /// `<=`
    Le,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `=?` (true when the value is unset, `=` otherwise)
    EqIfSet,
    /// `=like`
    EqLike,
    /// `=ilike`
    EqIlike,
    /// `like`
    Like,
    /// `not like`
    NotLike,
    /// `ilike`
    Ilike,
    /// `not ilike`
    NotIlike,
    /// `in`
    In,
    /// `not in`
    NotIn,
    /// `child_of`
    ChildOf,
    /// `parent_of`
    ParentOf,
    /// `any` (17/18): the value is a sub-domain.
    Any,
    /// `not any` (17/18): the value is a sub-domain.
    NotAny,
}

impl Op {
    /// The operator spelled exactly `spelling`, or `None`: unknown and differently-cased
    /// spellings are errors in Odoo, so they are not guessed at.
    pub fn from_spelling(spelling: &str) -> Option<Op> {
        Some(match spelling {
            "=" => Op::Eq,
            "!=" => Op::Ne,
            "<>" => Op::NeLegacy,
            "<=" => Op::Le,
            "<" => Op::Lt,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "=?" => Op::EqIfSet,
            "=like" => Op::EqLike,
            "=ilike" => Op::EqIlike,
            "like" => Op::Like,
            "not like" => Op::NotLike,
            "ilike" => Op::Ilike,
            "not ilike" => Op::NotIlike,
            "in" => Op::In,
            "not in" => Op::NotIn,
            "child_of" => Op::ChildOf,
            "parent_of" => Op::ParentOf,
            "any" => Op::Any,
            "not any" => Op::NotAny,
            _ => return None,
        })
    }

    /// The spelling written back to Odoo.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::NeLegacy => "<>",
            Op::Le => "<=",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::EqIfSet => "=?",
            Op::EqLike => "=like",
            Op::EqIlike => "=ilike",
            Op::Like => "like",
            Op::NotLike => "not like",
            Op::Ilike => "ilike",
            Op::NotIlike => "not ilike",
            Op::In => "in",
            Op::NotIn => "not in",
            Op::ChildOf => "child_of",
            Op::ParentOf => "parent_of",
            Op::Any => "any",
            Op::NotAny => "not any",
        }
    }
}

/// Why a JSON value is not a domain BridgeCore can rewrite safely. The caller forwards such
/// domains untouched and lets Odoo answer; messages name positions, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The domain (or an `any` value) is not a JSON array.
    #[error("a domain must be a JSON array")]
    NotAList,
    /// A string token that is not `&`, `|` or `!`.
    #[error("token {index} is a string but not `&`, `|` or `!`")]
    UnknownToken {
        /// Position of the token in its domain.
        index: usize,
    },
    /// A token that is neither an operator string nor a term array.
    #[error("token {index} is neither an operator nor a term")]
    NotATerm {
        /// Position of the token in its domain.
        index: usize,
    },
    /// A term array that is not `[path, operator, value]` with a non-empty string path (or the
    /// exact TRUE/FALSE leaf).
    #[error("term {index}: {reason}")]
    BadTerm {
        /// Position of the term in its domain.
        index: usize,
        /// What is wrong, in words.
        reason: &'static str,
    },
    /// A term operator outside §6.1's list (including other letter cases).
    #[error("term {index}: unknown term operator")]
    UnknownOperator {
        /// Position of the term in its domain.
        index: usize,
    },
    /// `&`, `|` or `!` without enough operands after it.
    #[error("operator at token {index} lacks operands")]
    MissingOperand {
        /// Position of the operator in its domain.
        index: usize,
    },
    /// The tree nests deeper than [`MAX_DEPTH`] after flattening.
    #[error("the domain nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// The sub-domain of an `any` / `not any` term is not well-formed.
    #[error("term {index}: sub-domain: {source}")]
    SubDomain {
        /// Position of the term in its domain.
        index: usize,
        /// What is wrong with the sub-domain.
        source: Box<DomainError>,
    },
    /// A path or value could not be serialised for the sort key (not expected from JSON input).
    #[error("cannot serialise a term: {0}")]
    Serialise(String),
}

/// Parses a JSON domain in Odoo's syntax (odoo-protocol.md §6.1) into a tree.
///
/// Consecutive top-level expressions are ANDed (Odoo's `normalize_domain`); `&` and `|` are
/// binary, `!` unary; `[1, "=", 1]` and `[0, "=", 1]` are [`Domain::True`] and
/// [`Domain::False`]; `[]` is `And(vec![])`; the values of `any`/`not any` are parsed as
/// sub-domains. Same-operator chains are flattened while parsing, in linear time, as Odoo 17/18
/// do. Iterative, and refuses trees deeper than [`MAX_DEPTH`]: never a stack overflow.
pub fn parse(domain: &Value) -> Result<Domain, DomainError> {
    parse_within(domain, MAX_DEPTH).map(|(domain, _)| domain)
}

/// Methods whose first positional parameter (or `domain` keyword) is a search domain: where
/// cache keys and forwarded calls use the canonical form.
pub fn takes_domain(method: &str) -> bool {
    matches!(
        method,
        "search"
            | "search_read"
            | "search_count"
            | "search_fetch"
            | "web_search_read"
            | "read_group"
            | "web_read_group"
    )
}

/// The canonical form of a JSON domain (see the module documentation), or `None` when the
/// input is not well-formed or a rewrite cannot be proven safe: the caller then forwards (and
/// keys on) the original untouched. Equivalent to the input for every record, idempotent, and
/// the same for every order of the operands of each AND/OR node.
pub fn canonicalise(domain: &Value) -> Option<Value> {
    let tree = parse(domain).ok()?;
    let canonical = canon(tree, false).ok()?;
    Some(canonical.domain.into_json())
}

impl Domain {
    /// The domain in Odoo's prefix notation: `n - 1` copies of `&` (or `|`) before `n` operands,
    /// `!` before its operand, terms as `[path, operator, value]` arrays. Explicit operators make
    /// the output independent of Odoo's implicit-AND rule. `And(vec![])` is `[]` at the top
    /// (and TRUE_LEAF as an operand); `Or(vec![])` is FALSE_LEAF.
    pub fn to_json(&self) -> Value {
        self.clone().into_json()
    }

    fn into_json(self) -> Value {
        match self {
            Domain::And(children) if children.is_empty() => Value::Array(Vec::new()),
            domain => {
                let mut tokens = Vec::new();
                domain.into_tokens(&mut tokens);
                Value::Array(tokens)
            }
        }
    }

    fn into_tokens(self, out: &mut Vec<Value>) {
        match self {
            Domain::True => out.push(special_leaf(1)),
            Domain::False => out.push(special_leaf(0)),
            Domain::Leaf(leaf) => out.push(Value::Array(vec![
                Value::String(leaf.path),
                Value::from(leaf.op.as_str()),
                match leaf.value {
                    Operand::Value(value) => value,
                    Operand::Domain(sub) => sub.into_json(),
                },
            ])),
            Domain::Not(operand) => {
                out.push(Value::from("!"));
                operand.into_tokens(out);
            }
            Domain::And(children) => group_into_tokens(Kind::And, children, out),
            Domain::Or(children) => group_into_tokens(Kind::Or, children, out),
        }
    }
}

/// `[1, "=", 1]` or `[0, "=", 1]`.
fn special_leaf(left: u64) -> Value {
    Value::Array(vec![Value::from(left), Value::from("="), Value::from(1u64)])
}

fn group_into_tokens(kind: Kind, children: Vec<Domain>, out: &mut Vec<Value>) {
    if children.is_empty() {
        out.push(special_leaf(kind.neutral()));
        return;
    }
    for _ in 1..children.len() {
        out.push(Value::from(kind.token()));
    }
    for child in children {
        child.into_tokens(out);
    }
}

/// The two n-ary node kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    And,
    Or,
}

impl Kind {
    fn token(self) -> &'static str {
        match self {
            Kind::And => "&",
            Kind::Or => "|",
        }
    }

    /// The left side of the special leaf that is this kind's neutral element.
    fn neutral(self) -> u64 {
        match self {
            Kind::And => 1,
            Kind::Or => 0,
        }
    }

    fn node(self, children: Vec<Domain>) -> Domain {
        match self {
            Kind::And => Domain::And(children),
            Kind::Or => Domain::Or(children),
        }
    }
}

/// A subtree under construction: AND/OR nodes grow at both ends while chains are flattened.
enum Node {
    Done(Domain),
    Group(Kind, VecDeque<Domain>),
}

/// A subtree and its height (a leaf is 1).
struct Part {
    node: Node,
    height: usize,
}

impl Part {
    fn finish(self) -> Domain {
        match self.node {
            Node::Done(domain) => domain,
            Node::Group(kind, children) => kind.node(Vec::from(children)),
        }
    }

    /// The operands this part contributes to a `kind` node: its own if it is one (flattening),
    /// else itself.
    fn operands(self, kind: Kind) -> Result<VecDeque<Domain>, Domain> {
        match self.node {
            Node::Group(own, children) if own == kind => Ok(children),
            node => Err(Part { node, height: 0 }.finish()),
        }
    }

    /// The height this part adds under a `kind` node.
    fn height_under(&self, kind: Kind) -> usize {
        match self.node {
            Node::Group(own, _) if own == kind => self.height,
            _ => self.height + 1,
        }
    }
}

/// `first AND second` (or OR), flattened; merges the smaller operand list into the larger one
/// so that any chain shape costs O(n log n) at worst.
fn join(kind: Kind, first: Part, second: Part) -> Part {
    let height = first.height_under(kind).max(second.height_under(kind));
    let children = match (first.operands(kind), second.operands(kind)) {
        (Ok(mut left), Ok(mut right)) => {
            if left.len() >= right.len() {
                left.extend(right);
                left
            } else {
                while let Some(item) = left.pop_back() {
                    right.push_front(item);
                }
                right
            }
        }
        (Ok(mut left), Err(right)) => {
            left.push_back(right);
            left
        }
        (Err(left), Ok(mut right)) => {
            right.push_front(left);
            right
        }
        (Err(left), Err(right)) => VecDeque::from([left, right]),
    };
    Part {
        node: Node::Group(kind, children),
        height,
    }
}

/// Parses `domain` with at most `budget` levels; returns the tree and its height.
///
/// Reads the tokens from the end, as Odoo's `_tree_from_domain` does: each operator takes the
/// subtrees that follow it, and what remains on the stack are the top-level expressions, ANDed.
fn parse_within(domain: &Value, budget: usize) -> Result<(Domain, usize), DomainError> {
    let tokens = domain.as_array().ok_or(DomainError::NotAList)?;
    let mut stack: Vec<Part> = Vec::new();
    for (index, token) in tokens.iter().enumerate().rev() {
        let part = match token {
            Value::String(operator) => {
                let mut operand = || stack.pop().ok_or(DomainError::MissingOperand { index });
                match operator.as_str() {
                    "!" => {
                        let only = operand()?;
                        let height = only.height + 1;
                        Part {
                            node: Node::Done(Domain::Not(Box::new(only.finish()))),
                            height,
                        }
                    }
                    "&" => {
                        let (first, second) = (operand()?, operand()?);
                        join(Kind::And, first, second)
                    }
                    "|" => {
                        let (first, second) = (operand()?, operand()?);
                        join(Kind::Or, first, second)
                    }
                    _ => return Err(DomainError::UnknownToken { index }),
                }
            }
            Value::Array(term) => {
                let (leaf, height) = parse_term(term, index, budget)?;
                Part {
                    node: Node::Done(leaf),
                    height,
                }
            }
            _ => return Err(DomainError::NotATerm { index }),
        };
        if part.height > budget {
            return Err(DomainError::TooDeep);
        }
        stack.push(part);
    }
    // The stack holds the top-level expressions, the first one on top: implicit AND.
    let mut top: Option<Part> = None;
    while let Some(next) = stack.pop() {
        let joined = match top {
            None => next,
            Some(previous) => join(Kind::And, previous, next),
        };
        if joined.height > budget {
            return Err(DomainError::TooDeep);
        }
        top = Some(joined);
    }
    Ok(match top {
        None => (Domain::And(Vec::new()), 1),
        Some(part) => {
            let height = part.height;
            (part.finish(), height)
        }
    })
}

/// Parses one term array (the token at `index`).
fn parse_term(term: &[Value], index: usize, budget: usize) -> Result<(Domain, usize), DomainError> {
    let bad = |reason| DomainError::BadTerm { index, reason };
    let [left, operator, right] = term else {
        return Err(bad("a term has exactly three elements"));
    };
    let operator = operator
        .as_str()
        .ok_or(bad("the operator must be a string"))?;
    let path = match left {
        Value::String(path) if !path.is_empty() => path,
        Value::String(_) => return Err(bad("the field path is empty")),
        Value::Number(number) => {
            let special = operator == "=" && right.as_u64() == Some(1);
            return match number.as_u64() {
                Some(1) if special => Ok((Domain::True, 1)),
                Some(0) if special => Ok((Domain::False, 1)),
                _ => Err(bad(
                    "a number on the left is only allowed in [1, \"=\", 1] or [0, \"=\", 1]",
                )),
            };
        }
        _ => return Err(bad("the field path must be a string")),
    };
    let op = Op::from_spelling(operator).ok_or(DomainError::UnknownOperator { index })?;
    let (value, height) = match op {
        Op::Any | Op::NotAny => {
            let (sub, height) = match budget.checked_sub(1) {
                Some(inner) if inner > 0 => parse_within(right, inner),
                _ => Err(DomainError::TooDeep),
            }
            .map_err(|source| DomainError::SubDomain {
                index,
                source: Box::new(source),
            })?;
            (Operand::Domain(Box::new(sub)), height + 1)
        }
        _ => (Operand::Value(right.clone()), 1),
    };
    Ok((
        Domain::Leaf(Leaf {
            path: path.clone(),
            op,
            value,
        }),
        height,
    ))
}

/// A canonical subtree and its sort key: its tokens serialised as JSON, comma-separated, as they
/// appear inside the serialised domain (`"&",[..],[..]`). Bytes of UTF-8 JSON, compared
/// bytewise: the same order as comparing the strings.
struct Canon {
    domain: Domain,
    key: Vec<u8>,
}

const TRUE_KEY: &[u8] = b"[1,\"=\",1]";
const FALSE_KEY: &[u8] = b"[0,\"=\",1]";

/// Appends `value` as JSON to `out`.
fn write_json<T: serde::Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> Result<(), DomainError> {
    serde_json::to_writer(out, value).map_err(|error| DomainError::Serialise(error.to_string()))
}

/// Canonicalises `domain`, bottom-up; `negated` says whether a `!` is above it in its own domain
/// (then `<>` keeps its spelling). Recursion is bounded by the tree's height, at most
/// [`MAX_DEPTH`] for trees built by [`parse`].
fn canon(domain: Domain, negated: bool) -> Result<Canon, DomainError> {
    Ok(match domain {
        Domain::True => Canon {
            domain: Domain::True,
            key: TRUE_KEY.to_vec(),
        },
        Domain::False => Canon {
            domain: Domain::False,
            key: FALSE_KEY.to_vec(),
        },
        Domain::Leaf(mut leaf) => {
            if leaf.op == Op::NeLegacy && !negated {
                leaf.op = Op::Ne;
            }
            let mut key = Vec::with_capacity(leaf.path.len() + 32);
            key.push(b'[');
            write_json(&mut key, &leaf.path)?;
            key.extend_from_slice(b",\"");
            key.extend_from_slice(leaf.op.as_str().as_bytes());
            key.extend_from_slice(b"\",");
            match leaf.value {
                Operand::Value(ref value) => write_json(&mut key, value)?,
                Operand::Domain(sub) => {
                    // A sub-domain is a fresh domain: negations outside it do not reach into it
                    // (`_tree_not` turns `any` into `not any` and leaves the sub-domain alone).
                    let sub = canon(*sub, false)?;
                    key.push(b'[');
                    key.extend_from_slice(&sub.key);
                    key.push(b']');
                    leaf.value = Operand::Domain(Box::new(sub.domain));
                }
            }
            key.push(b']');
            Canon {
                domain: Domain::Leaf(leaf),
                key,
            }
        }
        Domain::Not(operand) => {
            let operand = as_operand(canon(*operand, true)?);
            let mut key = Vec::with_capacity(operand.key.len() + 4);
            key.extend_from_slice(b"\"!\",");
            key.extend_from_slice(&operand.key);
            Canon {
                key,
                domain: Domain::Not(Box::new(operand.domain)),
            }
        }
        Domain::And(children) => canon_group(Kind::And, children, negated)?,
        Domain::Or(children) => canon_group(Kind::Or, children, negated)?,
    })
}

/// An empty AND/OR cannot be written as an operand (it would be no tokens): use its value,
/// TRUE_LEAF or FALSE_LEAF. [`parse`] never nests empty nodes; this covers hand-built trees.
fn as_operand(canon: Canon) -> Canon {
    match canon.domain {
        Domain::And(ref children) if children.is_empty() => Canon {
            domain: Domain::True,
            key: TRUE_KEY.to_vec(),
        },
        Domain::Or(ref children) if children.is_empty() => Canon {
            domain: Domain::False,
            key: FALSE_KEY.to_vec(),
        },
        _ => canon,
    }
}

fn canon_group(kind: Kind, children: Vec<Domain>, negated: bool) -> Result<Canon, DomainError> {
    let mut operands: Vec<Canon> = Vec::with_capacity(children.len());
    for child in children {
        let child = canon(child, negated)?;
        match (kind, child.domain) {
            // A child of the same kind appears only when de-duplication collapsed a node to its
            // one operand (in `A | (B & B)` with `B = C | D`, the AND becomes `C | D`): splice its
            // operands. They are canonical already, so canonicalising them again only recomputes
            // their keys.
            (Kind::And, Domain::And(grandchildren)) | (Kind::Or, Domain::Or(grandchildren)) => {
                for grandchild in grandchildren {
                    operands.push(canon(grandchild, negated)?);
                }
            }
            (_, domain) => operands.push(as_operand(Canon {
                domain,
                key: child.key,
            })),
        }
    }
    operands.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    // Identical operands of one AND/OR node: `x AND x` is `x` in three-valued logic too.
    operands.dedup_by(|a, b| a.key == b.key);
    if operands.len() == 1 {
        if let Some(only) = operands.pop() {
            return Ok(only);
        }
    }
    if operands.is_empty() && kind == Kind::Or {
        // Hand-built trees only: the empty disjunction is written FALSE_LEAF.
        return Ok(as_operand(Canon {
            domain: Domain::Or(Vec::new()),
            key: Vec::new(),
        }));
    }
    let mut key = Vec::with_capacity(operands.iter().map(|operand| operand.key.len() + 5).sum());
    for _ in 1..operands.len() {
        key.push(b'"');
        key.extend_from_slice(kind.token().as_bytes());
        key.extend_from_slice(b"\",");
    }
    let mut domains = Vec::with_capacity(operands.len());
    for (position, operand) in operands.into_iter().enumerate() {
        if position > 0 {
            key.push(b',');
        }
        key.extend_from_slice(&operand.key);
        domains.push(operand.domain);
    }
    Ok(Canon {
        domain: kind.node(domains),
        key,
    })
}

#[cfg(test)]
mod proptests;
