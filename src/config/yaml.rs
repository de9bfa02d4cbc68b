//! YAML text to a small tree of nodes that remember where they were written.
//!
//! yaml-rust2's event parser gives every event a position; its own `Yaml` tree throws them away.
//! This module keeps them: each node has the line and column of its value, each mapping entry
//! the position of its key. Scalars keep their text and whether they were plain (unquoted), so
//! typing happens later, against the schema (a plain `5` is a number where a number is expected
//! and the text `5` where a string is).
//!
//! Rejected here, with a position: syntax errors (fatal: nothing after them is read), duplicate
//! keys, anchors and aliases, tags, non-scalar keys, and several documents in one file. The
//! non-fatal problems leave a usable tree behind (the later duplicate is dropped; an alias becomes
//! an empty value) so the rest of the file is still checked.

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    pub(crate) const START: Pos = Pos { line: 1, col: 1 };

    fn from_marker(m: &Marker) -> Pos {
        Pos {
            line: m.line().max(1),
            col: m.col() + 1,
        }
    }
}

/// A problem found at a position, before it is tied to a file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub pos: Pos,
    pub message: String,
}

impl Problem {
    pub(crate) fn new(pos: Pos, message: impl Into<String>) -> Problem {
        Problem {
            pos,
            message: message.into(),
        }
    }
}

/// A scalar as written (after `${VAR}` interpolation, once that has run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scalar {
    pub text: String,
    /// Unquoted, so subject to YAML 1.2 core-schema typing (`true`, `5`, `~`, ...).
    pub plain: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

/// What [`parse`] found.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// The document's root; `None` for an empty stream or after a syntax error.
    pub root: Option<Node>,
    /// Every problem, in the order found.
    pub problems: Vec<Problem>,
    /// Positions of values that were replaced after a problem; later errors there are echoes.
    pub poisoned: Vec<Pos>,
}

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 64;

struct Fatal(Problem);

struct Builder<'a> {
    parser: Parser<std::str::Chars<'a>>,
    problems: Vec<Problem>,
    poisoned: Vec<Pos>,
}

fn syntax_error(e: &yaml_rust2::ScanError) -> Fatal {
    let mut message = format!("YAML syntax error: {}", e.info());
    if e.info().contains("tab") {
        message.push_str(" (indent with spaces: YAML does not allow tabs for indentation)");
    }
    Fatal(Problem::new(Pos::from_marker(e.marker()), message))
}

impl Builder<'_> {
    fn next(&mut self) -> Result<(Event, Marker), Fatal> {
        self.parser.next_token().map_err(|e| syntax_error(&e))
    }

    fn build(&mut self, event: Event, mark: Marker, depth: usize) -> Result<Node, Fatal> {
        let pos = Pos::from_marker(&mark);
        if depth > MAX_DEPTH {
            return Err(Fatal(Problem::new(
                pos,
                format!("the document is nested more than {MAX_DEPTH} levels deep"),
            )));
        }
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.check_anchor_and_tag(pos, anchor, tag.is_some());
                Ok(Node {
                    pos,
                    kind: Kind::Scalar(Scalar {
                        text,
                        plain: style == TScalarStyle::Plain,
                    }),
                })
            }
            Event::Alias(_) => {
                self.problems.push(Problem::new(
                    pos,
                    "YAML aliases (`*name`) are not supported: write the value out",
                ));
                self.poisoned.push(pos);
                Ok(Node {
                    pos,
                    kind: Kind::Scalar(Scalar {
                        text: String::new(),
                        plain: true,
                    }),
                })
            }
            Event::SequenceStart(anchor, tag) => {
                self.check_anchor_and_tag(pos, anchor, tag.is_some());
                let mut items = Vec::new();
                loop {
                    let (event, mark) = self.next()?;
                    if event == Event::SequenceEnd {
                        break;
                    }
                    items.push(self.build(event, mark, depth + 1)?);
                }
                Ok(Node {
                    pos,
                    kind: Kind::Seq(items),
                })
            }
            Event::MappingStart(anchor, tag) => {
                self.check_anchor_and_tag(pos, anchor, tag.is_some());
                self.mapping(pos, depth)
            }
            other => Err(Fatal(Problem::new(
                pos,
                format!("YAML syntax error: unexpected {other:?}"),
            ))),
        }
    }

    fn mapping(&mut self, start: Pos, depth: usize) -> Result<Node, Fatal> {
        let mut entries: Vec<Entry> = Vec::new();
        loop {
            let (event, mark) = self.next()?;
            if event == Event::MappingEnd {
                break;
            }
            let key = self.build(event, mark, depth + 1)?;
            let (event, mark) = self.next()?;
            let mut value = self.build(event, mark, depth + 1)?;
            let key_pos = key.pos;
            let Kind::Scalar(Scalar { text: key, .. }) = key.kind else {
                self.problems.push(Problem::new(
                    key_pos,
                    "mapping keys must be plain text, not lists or mappings",
                ));
                continue;
            };
            // An empty value (`key:` and nothing else) is reported by the parser at the start of
            // whatever follows, often the next line; point at its key instead.
            if let Kind::Scalar(Scalar { text, plain: true }) = &value.kind {
                if text.is_empty() && value.pos.line != key_pos.line {
                    value.pos = key_pos;
                }
            }
            if let Some(first) = entries.iter().find(|e| e.key == key) {
                self.problems.push(Problem::new(
                    key_pos,
                    format!(
                        "duplicate key `{key}` (first defined at line {}, column {})",
                        first.key_pos.line, first.key_pos.col
                    ),
                ));
                continue;
            }
            entries.push(Entry {
                key,
                key_pos,
                value,
            });
        }
        // A block mapping's start marker sits after its first key; its first key is a better
        // place to point at.
        let pos = entries.first().map_or(start, |e| e.key_pos.min(start));
        Ok(Node {
            pos,
            kind: Kind::Map(entries),
        })
    }

    fn check_anchor_and_tag(&mut self, pos: Pos, anchor: usize, tagged: bool) {
        if anchor != 0 {
            self.problems.push(Problem::new(
                pos,
                "YAML anchors (`&name`) are not supported: write the value out",
            ));
        }
        if tagged {
            self.problems.push(Problem::new(
                pos,
                "YAML tags (`!tag`, `!!str`) are not supported: quote the value to make it text",
            ));
        }
    }

    fn document(&mut self) -> Result<Option<Node>, Fatal> {
        let (event, _) = self.next()?;
        if event != Event::StreamStart {
            return Ok(None);
        }
        let (event, _) = self.next()?;
        match event {
            Event::StreamEnd => return Ok(None),
            Event::DocumentStart => {}
            _ => return Ok(None),
        }
        let (event, mark) = self.next()?;
        let root = self.build(event, mark, 0)?;
        // DocumentEnd, then the stream must end.
        let (_, _) = self.next()?;
        let (event, mark) = self.next()?;
        if event == Event::DocumentStart {
            self.problems.push(Problem::new(
                Pos::from_marker(&mark),
                "only one YAML document is allowed per file (remove the `---` separator and what follows)",
            ));
        }
        Ok(Some(root))
    }
}

/// Parses `text` into a tree with positions.
pub(crate) fn parse(text: &str) -> Parsed {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        problems: Vec::new(),
        poisoned: Vec::new(),
    };
    match builder.document() {
        Ok(root) => Parsed {
            root,
            problems: builder.problems,
            poisoned: builder.poisoned,
        },
        Err(Fatal(problem)) => {
            let mut problems = builder.problems;
            problems.push(problem);
            Parsed {
                root: None,
                problems,
                poisoned: builder.poisoned,
            }
        }
    }
}

/// A step in a path from the root: a mapping key or a list index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// `server.listen[0]`, `tenants.odoo.timeout`.
pub(crate) fn path_string(path: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

impl Node {
    /// The mapping's entry for `key`, if this is a mapping that has one.
    pub(crate) fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    /// Where to point for `path`: the value's position (`at_key == false`) or its key's
    /// (`at_key == true`; an index points at the item). A path that does not exist in the file
    /// (a defaulted key) falls back to the deepest part that does.
    pub(crate) fn locate(&self, path: &[Seg<'_>], at_key: bool) -> Pos {
        let mut node = self;
        let mut pos = self.pos;
        for (i, seg) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            match (seg, &node.kind) {
                (Seg::Key(k), Kind::Map(entries)) => match entries.iter().find(|e| e.key == *k) {
                    Some(entry) => {
                        pos = if last && at_key {
                            entry.key_pos
                        } else {
                            entry.value.pos
                        };
                        node = &entry.value;
                    }
                    None => return pos,
                },
                (Seg::Index(idx), Kind::Seq(items)) => match items.get(*idx) {
                    Some(item) => {
                        pos = item.pos;
                        node = item;
                    }
                    None => return pos,
                },
                _ => return pos,
            }
        }
        pos
    }
}
