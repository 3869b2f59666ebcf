//! STIX 2.1 patterning: a parser for the whole grammar, and the lowering of the subset that
//! indicators can express.
//!
//! The parser reads every construct of the language (observation expressions with AND, OR,
//! FOLLOWEDBY and the WITHIN, REPEATS and START/STOP qualifiers; comparison expressions with
//! AND, OR, NOT and every operator; every literal kind), so that anything outside the subset is
//! named precisely in the error rather than failing as a syntax error.
//!
//! An MDE indicator is a single value of one type, and a set of indicators matches when any
//! one of them does: exactly an OR of `=` comparisons. So the subset is an OR of observations,
//! each an OR of `object-path = 'string'` comparisons over the paths in [`PATHS`]. AND,
//! FOLLOWEDBY and qualifiers make the whole pattern unsupported (dropping any part of them would
//! match more than the pattern says); an unsupported comparison inside an OR only costs that
//! comparison (the others still match only what the pattern matches).

use rampart_core::indicator::IndicatorType;
use std::fmt;
use std::net::IpAddr;

/// The object paths that become indicators, for messages.
pub const PATHS: &str = "file:hashes.'SHA-256', file:hashes.'SHA-1', file:hashes.MD5, ipv4-addr:value, ipv6-addr:value, domain-name:value, url:value, x509-certificate:hashes.'SHA-1'";

/// Nesting beyond this is refused, so hostile patterns cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

/// One indicator a pattern names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub indicator_type: IndicatorType,
    /// The string as the pattern has it, escapes resolved.
    pub value: String,
    /// The object path as written (`file:hashes.'SHA-256'`).
    pub path: String,
}

/// Why a pattern yields nothing at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// `position` is the 1-based character where the problem is.
    #[error("invalid STIX pattern at character {position}: {message}")]
    Syntax { position: usize, message: String },
    #[error("unsupported STIX pattern: {0}")]
    Unsupported(String),
}

/// The comparisons of the pattern's OR in order, each as the indicator it names or the reason
/// it cannot be one (starting "unsupported STIX pattern:" when the construct is outside the
/// subset). An error for a pattern that cannot be read or cannot be split at all.
pub fn targets(pattern: &str) -> Result<Vec<Result<Target, String>>, PatternError> {
    let tree = parse(pattern)?;
    let mut comparisons = Vec::new();
    flatten_observation(&tree, &mut comparisons).map_err(PatternError::Unsupported)?;
    Ok(comparisons.into_iter().map(target).collect())
}

// ---------------------------------------------------------------------------------------------
// Syntax tree

#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// `[ … ]`
    Comparisons(Comparisons),
    Or(Vec<Observation>),
    And(Vec<Observation>),
    FollowedBy(Vec<Observation>),
    Qualified(Box<Observation>, Qualifier),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qualifier {
    Within,
    Repeats,
    StartStop,
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Qualifier::Within => "WITHIN",
            Qualifier::Repeats => "REPEATS",
            Qualifier::StartStop => "START/STOP",
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Comparisons {
    Or(Vec<Comparisons>),
    And(Vec<Comparisons>),
    One(Comparison),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub path: ObjectPath,
    pub negated: bool,
    pub op: Operator,
    /// `None` for EXISTS.
    pub value: Option<Literal>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectPath {
    pub object_type: String,
    pub steps: Vec<Step>,
    /// As written, for messages.
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A property, quoted or not (`hashes`, `'SHA-256'`).
    Property(String),
    /// A list index: a number or `*`.
    Index(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Like,
    Matches,
    IsSubset,
    IsSuperset,
    Exists,
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operator::Eq => "=",
            Operator::Ne => "!=",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Gt => ">",
            Operator::Ge => ">=",
            Operator::In => "IN",
            Operator::Like => "LIKE",
            Operator::Matches => "MATCHES",
            Operator::IsSubset => "ISSUBSET",
            Operator::IsSuperset => "ISSUPERSET",
            Operator::Exists => "EXISTS",
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Str(String),
    Number(String),
    Bool(bool),
    /// `t'…'`, `b'…'`, `h'…'`
    Typed(char, String),
    /// `('a', 'b')` for IN.
    Set(Vec<Literal>),
}

impl Literal {
    fn kind(&self) -> &'static str {
        match self {
            Literal::Str(_) => "a string",
            Literal::Number(_) => "a number",
            Literal::Bool(_) => "a boolean",
            Literal::Typed('t', _) => "a timestamp",
            Literal::Typed('b', _) => "a binary value",
            Literal::Typed(_, _) => "a hex value",
            Literal::Set(_) => "a set",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lowering

fn flatten_observation<'t>(
    o: &'t Observation,
    out: &mut Vec<&'t Comparison>,
) -> Result<(), String> {
    match o {
        Observation::Comparisons(c) => flatten_comparisons(c, out),
        Observation::Or(items) => items.iter().try_for_each(|i| flatten_observation(i, out)),
        Observation::And(_) => Err(
            "observation expressions joined by AND (each must be observed) cannot be split into separate indicators"
                .into(),
        ),
        Observation::FollowedBy(_) => Err(
            "FOLLOWEDBY (observations in sequence) cannot be expressed as indicators".into(),
        ),
        Observation::Qualified(_, q) => Err(format!(
            "the {q} qualifier (a condition on time or repetition) cannot be expressed as indicators"
        )),
    }
}

fn flatten_comparisons<'t>(
    c: &'t Comparisons,
    out: &mut Vec<&'t Comparison>,
) -> Result<(), String> {
    match c {
        Comparisons::Or(items) => items.iter().try_for_each(|i| flatten_comparisons(i, out)),
        Comparisons::And(_) => Err(
            "comparisons joined by AND (all must hold for one object) cannot be split into separate indicators"
                .into(),
        ),
        Comparisons::One(one) => {
            out.push(one);
            Ok(())
        }
    }
}

fn unsupported(why: String) -> String {
    format!("unsupported STIX pattern: {why}")
}

/// The indicator type of an object path in the subset.
fn path_type(p: &ObjectPath) -> Option<IndicatorType> {
    let props: Option<Vec<&str>> = p
        .steps
        .iter()
        .map(|s| match s {
            Step::Property(name) => Some(name.as_str()),
            Step::Index(_) => None,
        })
        .collect();
    let props = props?;
    // Hash names are spelt variously in the wild ('SHA-256', SHA256, sha256).
    let hash = |name: &str| -> String {
        name.chars()
            .filter(|c| *c != '-' && *c != '_')
            .flat_map(char::to_uppercase)
            .collect()
    };
    match (p.object_type.as_str(), props.as_slice()) {
        ("file", ["hashes", name]) => match hash(name).as_str() {
            "SHA256" => Some(IndicatorType::FileSha256),
            "SHA1" => Some(IndicatorType::FileSha1),
            "MD5" => Some(IndicatorType::FileMd5),
            _ => None,
        },
        ("x509-certificate", ["hashes", name]) if hash(name) == "SHA1" => {
            Some(IndicatorType::CertificateThumbprint)
        }
        ("ipv4-addr" | "ipv6-addr", ["value"]) => Some(IndicatorType::IpAddress),
        ("domain-name", ["value"]) => Some(IndicatorType::DomainName),
        ("url", ["value"]) => Some(IndicatorType::Url),
        _ => None,
    }
}

fn target(c: &Comparison) -> Result<Target, String> {
    let path = &c.path.text;
    let Some(ty) = path_type(&c.path) else {
        return Err(unsupported(format!(
            "the object path {path} has no indicator type; supported: {PATHS}"
        )));
    };
    if c.negated {
        return Err(unsupported(format!(
            "NOT {} on {path}: a negated comparison matches everything else",
            c.op
        )));
    }
    if c.op != Operator::Eq {
        return Err(unsupported(format!(
            "the operator {} on {path}; only '=' with a string is supported",
            c.op
        )));
    }
    let value = match &c.value {
        Some(Literal::Str(s)) => s.clone(),
        Some(other) => {
            return Err(unsupported(format!(
                "{path} compared with {}; only a string is supported",
                other.kind()
            )));
        }
        None => return Err(unsupported(format!("{path} without a value"))),
    };
    // The core accepts both families for IpAddress; the pattern's object type says which.
    if ty == IndicatorType::IpAddress {
        let addr = value.trim();
        let addr = addr.split_once('/').map_or(addr, |(a, _)| a);
        match (c.path.object_type.as_str(), addr.parse::<IpAddr>()) {
            ("ipv4-addr", Ok(IpAddr::V6(_))) => {
                return Err(format!("{path}: '{value}' is an IPv6 address"));
            }
            ("ipv6-addr", Ok(IpAddr::V4(_))) => {
                return Err(format!("{path}: '{value}' is an IPv4 address"));
            }
            _ => {}
        }
    }
    Ok(Target {
        indicator_type: ty,
        value,
        path: path.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Op(Operator),
    /// A keyword, upper-cased.
    Keyword(String),
    Path(ObjectPath),
    Lit(Literal),
}

/// A token and the byte offset it starts at.
type Spanned = (Tok, usize);

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

fn syntax(src: &str, at: usize, message: impl Into<String>) -> PatternError {
    let at = at.min(src.len());
    PatternError::Syntax {
        position: src[..at].chars().count() + 1,
        message: message.into(),
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.src[self.pos..].chars().nth(1)
    }

    fn err(&self, at: usize, m: impl Into<String>) -> PatternError {
        syntax(self.src, at, m)
    }

    fn tokens(mut self) -> Result<Vec<Spanned>, PatternError> {
        let mut out = Vec::new();
        loop {
            while self.peek().is_some_and(char::is_whitespace) {
                self.pos += self.peek().map_or(1, char::len_utf8);
            }
            let start = self.pos;
            let Some(c) = self.peek() else {
                return Ok(out);
            };
            let tok = match c {
                '[' => self.single(Tok::LBracket),
                ']' => self.single(Tok::RBracket),
                '(' => self.single(Tok::LParen),
                ')' => self.single(Tok::RParen),
                ',' => self.single(Tok::Comma),
                '=' => {
                    self.pos += 1;
                    if self.peek() == Some('=') {
                        self.pos += 1;
                    }
                    Tok::Op(Operator::Eq)
                }
                '!' if self.peek2() == Some('=') => {
                    self.pos += 2;
                    Tok::Op(Operator::Ne)
                }
                '<' | '>' => {
                    self.pos += 1;
                    let op = match (c, self.peek()) {
                        ('<', Some('=')) => Some(Operator::Le),
                        ('<', Some('>')) => Some(Operator::Ne),
                        ('>', Some('=')) => Some(Operator::Ge),
                        _ => None,
                    };
                    match op {
                        Some(op) => {
                            self.pos += 1;
                            Tok::Op(op)
                        }
                        None if c == '<' => Tok::Op(Operator::Lt),
                        None => Tok::Op(Operator::Gt),
                    }
                }
                '\'' => Tok::Lit(Literal::Str(self.string()?)),
                '-' | '+' | '0'..='9' => self.number()?,
                c if c.is_ascii_alphabetic() || c == '_' => self.word()?,
                other => return Err(self.err(start, format!("unexpected character '{other}'"))),
            };
            out.push((tok, start));
        }
    }

    fn single(&mut self, t: Tok) -> Tok {
        self.pos += 1;
        t
    }

    /// A quoted string at `pos`; only `\'` and `\\` are escapes in STIX patterns.
    fn string(&mut self) -> Result<String, PatternError> {
        let start = self.pos;
        self.pos += 1;
        let mut s = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err(start, "the string is not closed"));
            };
            self.pos += c.len_utf8();
            match c {
                '\'' => return Ok(s),
                '\\' => match self.peek() {
                    Some(e @ ('\'' | '\\')) => {
                        self.pos += 1;
                        s.push(e);
                    }
                    Some(e) => {
                        return Err(self.err(
                            self.pos - 1,
                            format!("'\\{e}' is not an escape; only \\' and \\\\ are"),
                        ));
                    }
                    None => return Err(self.err(start, "the string is not closed")),
                },
                c => s.push(c),
            }
        }
    }

    fn number(&mut self) -> Result<Tok, PatternError> {
        let start = self.pos;
        if matches!(self.peek(), Some('-' | '+')) {
            self.pos += 1;
        }
        let digits_from = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '.') {
            self.pos += 1;
        }
        let text = &self.src[start..self.pos];
        let digits = &self.src[digits_from..self.pos];
        if digits.is_empty()
            || digits.starts_with('.')
            || digits.ends_with('.')
            || digits.matches('.').count() > 1
        {
            return Err(self.err(start, format!("'{text}' is not a number")));
        }
        Ok(Tok::Lit(Literal::Number(text.to_owned())))
    }

    /// A keyword, a boolean, a typed literal (`t'…'`) or an object path (`type:property…`).
    fn word(&mut self) -> Result<Tok, PatternError> {
        let start = self.pos;
        while self.peek().is_some_and(is_word) {
            self.pos += 1;
        }
        let word = &self.src[start..self.pos];
        match self.peek() {
            Some('\'') if matches!(word, "t" | "b" | "h") => {
                let kind = word.chars().next().unwrap_or('t');
                let s = self.string()?;
                Ok(Tok::Lit(Literal::Typed(kind, s)))
            }
            Some(':') => {
                self.pos += 1;
                self.path(start, word)
            }
            _ => Ok(match word.to_ascii_lowercase().as_str() {
                "true" => Tok::Lit(Literal::Bool(true)),
                "false" => Tok::Lit(Literal::Bool(false)),
                _ => Tok::Keyword(word.to_ascii_uppercase()),
            }),
        }
    }

    /// The property path after `type:`: components joined by `.`, each a name or a quoted
    /// string, each optionally followed by list indexes `[0]` / `[*]`.
    fn path(&mut self, start: usize, object_type: &str) -> Result<Tok, PatternError> {
        let mut steps = Vec::new();
        loop {
            let step_at = self.pos;
            let name = match self.peek() {
                Some('\'') => self.string()?,
                Some(c) if is_word(c) => {
                    while self.peek().is_some_and(is_word) {
                        self.pos += 1;
                    }
                    self.src[step_at..self.pos].to_owned()
                }
                _ => return Err(self.err(step_at, "expected a property name in the object path")),
            };
            steps.push(Step::Property(name));
            while self.peek() == Some('[') {
                let at = self.pos;
                self.pos += 1;
                let from = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '*') {
                    self.pos += 1;
                }
                let index = &self.src[from..self.pos];
                if self.peek() != Some(']') || !(index == "*" || index.parse::<u64>().is_ok()) {
                    return Err(self.err(at, "a list index is a number or * in brackets"));
                }
                self.pos += 1;
                steps.push(Step::Index(index.to_owned()));
            }
            if self.peek() == Some('.') {
                self.pos += 1;
            } else {
                break;
            }
        }
        Ok(Tok::Path(ObjectPath {
            object_type: object_type.to_owned(),
            steps,
            text: self.src[start..self.pos].to_owned(),
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Parser

/// Parses a whole pattern.
pub fn parse(src: &str) -> Result<Observation, PatternError> {
    let tokens = Lexer { src, pos: 0 }.tokens()?;
    if tokens.is_empty() {
        return Err(syntax(src, 0, "the pattern is empty"));
    }
    let mut p = Parser {
        src,
        tokens,
        i: 0,
        depth: 0,
    };
    let tree = p.observations()?;
    if let Some((t, at)) = p.tokens.get(p.i) {
        return Err(syntax(src, *at, format!("unexpected {}", describe(t))));
    }
    Ok(tree)
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Spanned>,
    i: usize,
    depth: usize,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::LBracket => "'['".into(),
        Tok::RBracket => "']'".into(),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Comma => "','".into(),
        Tok::Op(op) => format!("'{op}'"),
        Tok::Keyword(k) => format!("'{k}'"),
        Tok::Path(p) => format!("the object path {}", p.text),
        Tok::Lit(l) => l.kind().to_owned(),
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.i).map(|(t, _)| t)
    }

    fn at(&self) -> usize {
        self.tokens
            .get(self.i)
            .map_or(self.src.len(), |(_, at)| *at)
    }

    fn err(&self, m: impl Into<String>) -> PatternError {
        syntax(self.src, self.at(), m)
    }

    fn unexpected(&self, wanted: &str) -> PatternError {
        match self.peek() {
            Some(t) => self.err(format!("expected {wanted}, found {}", describe(t))),
            None => self.err(format!("expected {wanted}, found the end of the pattern")),
        }
    }

    fn keyword(&mut self, k: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Keyword(w)) if w == k) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: Tok, wanted: &str) -> Result<(), PatternError> {
        if self.peek() == Some(&t) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.unexpected(wanted))
        }
    }

    fn nest(&mut self) -> Result<(), PatternError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!("nested more than {MAX_DEPTH} levels deep")));
        }
        Ok(())
    }

    /// `a FOLLOWEDBY b …` — the loosest binding.
    fn observations(&mut self) -> Result<Observation, PatternError> {
        let mut items = vec![self.observation_or()?];
        while self.keyword("FOLLOWEDBY") {
            items.push(self.observation_or()?);
        }
        Ok(one_or(items, Observation::FollowedBy))
    }

    fn observation_or(&mut self) -> Result<Observation, PatternError> {
        let mut items = vec![self.observation_and()?];
        while self.keyword("OR") {
            items.push(self.observation_and()?);
        }
        Ok(one_or(items, Observation::Or))
    }

    fn observation_and(&mut self) -> Result<Observation, PatternError> {
        let mut items = vec![self.qualified()?];
        while self.keyword("AND") {
            items.push(self.qualified()?);
        }
        Ok(one_or(items, Observation::And))
    }

    fn qualified(&mut self) -> Result<Observation, PatternError> {
        let mut o = self.observation()?;
        loop {
            let q = if self.keyword("WITHIN") {
                self.number("a number of seconds after WITHIN")?;
                self.expect_keyword("SECONDS")?;
                Qualifier::Within
            } else if self.keyword("REPEATS") {
                self.number("a count after REPEATS")?;
                self.expect_keyword("TIMES")?;
                Qualifier::Repeats
            } else if self.keyword("START") {
                self.timestamp("START")?;
                self.expect_keyword("STOP")?;
                self.timestamp("STOP")?;
                Qualifier::StartStop
            } else {
                return Ok(o);
            };
            o = Observation::Qualified(Box::new(o), q);
        }
    }

    fn expect_keyword(&mut self, k: &str) -> Result<(), PatternError> {
        if self.keyword(k) {
            Ok(())
        } else {
            Err(self.unexpected(k))
        }
    }

    fn number(&mut self, wanted: &str) -> Result<(), PatternError> {
        match self.peek() {
            Some(Tok::Lit(Literal::Number(_))) => {
                self.i += 1;
                Ok(())
            }
            _ => Err(self.unexpected(wanted)),
        }
    }

    fn timestamp(&mut self, after: &str) -> Result<(), PatternError> {
        match self.peek() {
            Some(Tok::Lit(Literal::Typed('t', _))) => {
                self.i += 1;
                Ok(())
            }
            _ => Err(self.unexpected(&format!("a timestamp t'…' after {after}"))),
        }
    }

    /// `[ comparisons ]` or `( observations )`.
    fn observation(&mut self) -> Result<Observation, PatternError> {
        match self.peek() {
            Some(Tok::LBracket) => {
                self.i += 1;
                let c = self.comparison_or()?;
                self.expect(Tok::RBracket, "']' or a boolean operator")?;
                Ok(Observation::Comparisons(c))
            }
            Some(Tok::LParen) => {
                self.i += 1;
                self.nest()?;
                let o = self.observations()?;
                self.expect(Tok::RParen, "')'")?;
                self.depth -= 1;
                Ok(o)
            }
            _ => Err(self.unexpected("'[' starting an observation expression")),
        }
    }

    fn comparison_or(&mut self) -> Result<Comparisons, PatternError> {
        let mut items = vec![self.comparison_and()?];
        while self.keyword("OR") {
            items.push(self.comparison_and()?);
        }
        Ok(one_or(items, Comparisons::Or))
    }

    fn comparison_and(&mut self) -> Result<Comparisons, PatternError> {
        let mut items = vec![self.comparison()?];
        while self.keyword("AND") {
            items.push(self.comparison()?);
        }
        Ok(one_or(items, Comparisons::And))
    }

    fn comparison(&mut self) -> Result<Comparisons, PatternError> {
        if self.peek() == Some(&Tok::LParen) {
            self.i += 1;
            self.nest()?;
            let c = self.comparison_or()?;
            self.expect(Tok::RParen, "')'")?;
            self.depth -= 1;
            return Ok(c);
        }
        if self.keyword("EXISTS") {
            let path = self.path()?;
            return Ok(Comparisons::One(Comparison {
                path,
                negated: false,
                op: Operator::Exists,
                value: None,
            }));
        }
        let path = self.path()?;
        let negated = self.keyword("NOT");
        let op = match self.peek() {
            Some(Tok::Op(op)) => Some(*op),
            Some(Tok::Keyword(k)) => match k.as_str() {
                "IN" => Some(Operator::In),
                "LIKE" => Some(Operator::Like),
                "MATCHES" => Some(Operator::Matches),
                "ISSUBSET" => Some(Operator::IsSubset),
                "ISSUPERSET" => Some(Operator::IsSuperset),
                _ => None,
            },
            _ => None,
        };
        let Some(op) = op else {
            return Err(self.unexpected("a comparison operator"));
        };
        self.i += 1;
        let value = if op == Operator::In {
            self.set()?
        } else {
            self.literal()?
        };
        Ok(Comparisons::One(Comparison {
            path,
            negated,
            op,
            value: Some(value),
        }))
    }

    fn path(&mut self) -> Result<ObjectPath, PatternError> {
        match self.peek() {
            Some(Tok::Path(p)) => {
                let p = p.clone();
                self.i += 1;
                Ok(p)
            }
            _ => Err(self.unexpected("an object path such as file:hashes.'SHA-256'")),
        }
    }

    fn literal(&mut self) -> Result<Literal, PatternError> {
        match self.peek() {
            Some(Tok::Lit(l)) => {
                let l = l.clone();
                self.i += 1;
                Ok(l)
            }
            _ => Err(self.unexpected("a value")),
        }
    }

    fn set(&mut self) -> Result<Literal, PatternError> {
        self.expect(Tok::LParen, "'(' starting the set after IN")?;
        let mut items = vec![self.literal()?];
        while self.peek() == Some(&Tok::Comma) {
            self.i += 1;
            items.push(self.literal()?);
        }
        self.expect(Tok::RParen, "')' closing the set")?;
        Ok(Literal::Set(items))
    }
}

fn one_or<T>(mut items: Vec<T>, many: impl FnOnce(Vec<T>) -> T) -> T {
    if items.len() == 1 {
        items.remove(0)
    } else {
        many(items)
    }
}
