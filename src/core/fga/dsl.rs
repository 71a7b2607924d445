//! A parser of OpenFGA's modelling language, schema 1.1 (openfga/language's grammar is the
//! reference): the `model` / `schema` header, `type` blocks with `relations` and `define`
//! lines, and `condition` blocks. Line comments start with `#` (at the start of a line, or
//! after a space); a relation's type restrictions may span lines. Errors name the line.

use super::model::{Condition, Model, ParameterType, Relation, Restriction, RestrictionKind, Rewrite, TypeDef};
use crate::core::permission::shorten;
use std::fmt;

/// A syntax error, at a line of the text (counted from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "syntax error at line {}: {}", self.line, self.message)
    }
}

type Result<T> = std::result::Result<T, SyntaxError>;

fn error<T>(line: usize, message: impl Into<String>) -> Result<T> {
    Err(SyntaxError { line, message: message.into() })
}

/// Parses a model. Only the syntax is checked here; `validate` checks what it says.
pub fn parse(text: &str) -> Result<Model> {
    let lines: Vec<(usize, &str)> = text.lines().enumerate().map(|(i, l)| (i + 1, l)).collect();
    let mut at = 0;
    let next = |at: &mut usize| -> Option<(usize, String)> {
        while *at < lines.len() {
            let (n, line) = lines[*at];
            *at += 1;
            let code = without_comment(line).trim();
            if !code.is_empty() {
                return Some((n, code.to_string()));
            }
        }
        None
    };
    let last_line = lines.len().max(1);
    match next(&mut at) {
        Some((_, l)) if l == "model" => {}
        Some((n, l)) => return error(n, format!("expected \"model\", found \"{}\"", shorten(&l))),
        None => return error(last_line, "the model is empty: expected \"model\""),
    }
    let schema = match next(&mut at) {
        Some((n, l)) => match l.strip_prefix("schema").filter(|r| r.starts_with([' ', '\t'])).map(str::trim) {
            Some(v) if is_schema_version(v) => v.to_string(),
            _ => return error(n, format!("expected \"schema <version>\", found \"{}\"", shorten(&l))),
        },
        None => return error(last_line, "expected \"schema <version>\""),
    };
    let mut model = Model { schema, types: Vec::new(), conditions: Vec::new() };
    // In a type block: whether its "relations" line was seen.
    let mut relations_open = false;
    while let Some((n, line)) = next(&mut at) {
        let (keyword, rest) = split_keyword(&line);
        match keyword {
            "type" => {
                let name = rest.trim();
                if !is_identifier(name) {
                    return error(n, format!("expected a type name after \"type\", found \"{}\"", shorten(name)));
                }
                model.types.push(TypeDef { name: name.to_string(), relations: Vec::new() });
                relations_open = false;
            }
            "relations" if rest.trim().is_empty() => match model.types.last() {
                Some(t) if !relations_open && t.relations.is_empty() => relations_open = true,
                _ => return error(n, "\"relations\" belongs once under a type"),
            },
            "define" => {
                if !relations_open {
                    return error(n, "\"define\" belongs under a type's \"relations\"");
                }
                // Brackets and parentheses may carry a definition over several lines.
                // (Counted line by line: recounting the whole would make a long unclosed
                // definition quadratic.)
                let mut definition = rest.to_string();
                let mut open = depth(&definition);
                while open > 0 {
                    match next(&mut at) {
                        Some((_, more)) => {
                            definition.push(' ');
                            definition.push_str(&more);
                            open += depth(&more);
                        }
                        None => return error(n, "unclosed bracket or parenthesis"),
                    }
                }
                let relation = parse_define(&definition).map_err(|message| SyntaxError { line: n, message })?;
                model.types.last_mut().expect("relations_open is set under a type").relations.push(relation);
            }
            "condition" => {
                relations_open = false;
                // The header and body run to the brace that closes the body.
                // (Looked for again only after a line with a brace: every line would make a
                // long unclosed block quadratic.)
                let mut block = rest.to_string();
                let mut closed = block_closed(&block);
                while !closed {
                    match lines.get(at) {
                        Some((_, more)) => {
                            block.push('\n');
                            block.push_str(more);
                            at += 1;
                            closed = more.contains('}') && block_closed(&block);
                        }
                        None => return error(n, "the condition's body is not closed with \"}\""),
                    }
                }
                model.conditions.push(parse_condition(&block).map_err(|message| SyntaxError { line: n, message })?);
            }
            _ => return error(n, format!("expected \"type\", \"relations\", \"define\" or \"condition\", found \"{}\"", shorten(&line))),
        }
    }
    Ok(model)
}

/// The line without a `#` comment (one that starts the line or follows whitespace; a `#`
/// inside `group#member` is not one).
fn without_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

fn split_keyword(line: &str) -> (&str, &str) {
    let end = line.find(|c: char| c.is_whitespace()).unwrap_or(line.len());
    (&line[..end], &line[end..])
}

fn is_schema_version(s: &str) -> bool {
    let mut parts = s.split('.');
    let digits = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
}

/// A type, relation, condition or parameter name: a letter or `_`, then letters, digits,
/// `_` and `-`.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}


/// Open brackets and parentheses not yet closed.
fn depth(s: &str) -> i32 {
    s.chars().map(|c| match c {
        '[' | '(' => 1,
        ']' | ')' => -1,
        _ => 0,
    }).sum()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Name(&'a str),
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Colon,
    Star,
    Hash,
    Or,
    And,
    ButNot,
    From,
    With,
}

impl fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Token::Name(n) => n,
            Token::LBracket => "[",
            Token::RBracket => "]",
            Token::LParen => "(",
            Token::RParen => ")",
            Token::Comma => ",",
            Token::Colon => ":",
            Token::Star => "*",
            Token::Hash => "#",
            Token::Or => "or",
            Token::And => "and",
            Token::ButNot => "but not",
            Token::From => "from",
            Token::With => "with",
        })
    }
}

fn tokens(s: &str) -> std::result::Result<Vec<Token<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while let Some(c) = rest.chars().next() {
        let symbol = match c {
            '[' => Some(Token::LBracket),
            ']' => Some(Token::RBracket),
            '(' => Some(Token::LParen),
            ')' => Some(Token::RParen),
            ',' => Some(Token::Comma),
            ':' => Some(Token::Colon),
            '*' => Some(Token::Star),
            '#' => Some(Token::Hash),
            _ => None,
        };
        if let Some(symbol) = symbol {
            out.push(symbol);
            rest = rest[1..].trim_start();
            continue;
        }
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(rest.len());
        if end == 0 {
            return Err(format!("unexpected character '{c}'"));
        }
        let word = &rest[..end];
        rest = rest[end..].trim_start();
        out.push(match word {
            "or" => Token::Or,
            "and" => Token::And,
            "from" => Token::From,
            "with" => Token::With,
            "but" => match split_keyword(rest) {
                ("not", after) => {
                    rest = after.trim_start();
                    Token::ButNot
                }
                _ => return Err("\"but\" must be followed by \"not\"".to_string()),
            },
            name if is_identifier(name) => Token::Name(name),
            other => return Err(format!("\"{}\" is not a valid name", shorten(other))),
        });
    }
    Ok(out)
}

/// `name: definition` of a `define` line.
fn parse_define(text: &str) -> std::result::Result<Relation, String> {
    let (name, definition) = text.split_once(':').ok_or("expected \"define <relation>: <definition>\"")?;
    let name = name.trim();
    if !is_identifier(name) {
        return Err(format!("\"{}\" is not a valid relation name", shorten(name)));
    }
    let tokens = tokens(definition)?;
    let mut parser = Parser { tokens: &tokens, at: 0, nesting: 0 };
    let rewrite = parser.definition(true)?;
    match parser.peek() {
        None => Ok(Relation { name: name.to_string(), rewrite }),
        Some(t) => Err(format!("unexpected \"{t}\" in the definition of {name}")),
    }
}

/// Deepest nesting of parentheses accepted: the parser, and everything that walks the
/// definition, recurse once per level.
const MAX_NESTING: usize = 32;

struct Parser<'t, 'a> {
    tokens: &'t [Token<'a>],
    at: usize,
    nesting: usize,
}

impl<'a> Parser<'_, 'a> {
    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.at).copied()
    }

    fn take(&mut self) -> Option<Token<'a>> {
        let t = self.peek();
        self.at += usize::from(t.is_some());
        t
    }

    fn expect(&mut self, want: Token<'static>) -> std::result::Result<(), String> {
        match self.take() {
            Some(t) if t == want => Ok(()),
            Some(t) => Err(format!("expected \"{want}\", found \"{t}\"")),
            None => Err(format!("expected \"{want}\" at the end of the definition")),
        }
    }

    fn name(&mut self, what: &str) -> std::result::Result<&'a str, String> {
        match self.take() {
            Some(Token::Name(n)) => Ok(n),
            Some(t) => Err(format!("expected {what}, found \"{t}\"")),
            None => Err(format!("expected {what} at the end of the definition")),
        }
    }

    /// One operand, then either any number of `or`, any number of `and`, or one `but not`
    /// (mixing them needs parentheses). Type restrictions may be the first operand only.
    fn definition(&mut self, direct_allowed: bool) -> std::result::Result<Rewrite, String> {
        let first = self.operand(direct_allowed)?;
        let operator = match self.peek() {
            Some(op @ (Token::Or | Token::And | Token::ButNot)) => op,
            _ => return Ok(first),
        };
        let mut operands = vec![first];
        while self.peek() == Some(operator) {
            self.take();
            operands.push(self.operand(false)?);
            if operator == Token::ButNot {
                break;
            }
        }
        if let Some(other @ (Token::Or | Token::And | Token::ButNot)) = self.peek() {
            return Err(format!("\"{other}\" after \"{operator}\": group them with parentheses"));
        }
        Ok(match operator {
            Token::Or => Rewrite::Union(operands),
            Token::And => Rewrite::Intersection(operands),
            _ => {
                let subtract = operands.pop().expect("two operands");
                Rewrite::Exclusion { base: Box::new(operands.pop().expect("two operands")), subtract: Box::new(subtract) }
            }
        })
    }

    fn operand(&mut self, direct_allowed: bool) -> std::result::Result<Rewrite, String> {
        match self.take() {
            Some(Token::LBracket) if direct_allowed => self.restrictions(),
            Some(Token::LBracket) => Err("type restrictions ([...]) may only come first".to_string()),
            Some(Token::LParen) => {
                if self.nesting == MAX_NESTING {
                    return Err(format!("parentheses nested deeper than {MAX_NESTING}"));
                }
                self.nesting += 1;
                let inner = self.definition(direct_allowed)?;
                self.nesting -= 1;
                self.expect(Token::RParen)?;
                Ok(inner)
            }
            Some(Token::Name(computed)) => {
                if self.peek() != Some(Token::From) {
                    return Ok(Rewrite::Computed(computed.to_string()));
                }
                self.take();
                let tupleset = self.name("a relation after \"from\"")?;
                Ok(Rewrite::TupleToUserset { tupleset: tupleset.to_string(), computed: computed.to_string() })
            }
            Some(t) => Err(format!("expected a relation, \"(\" or \"[\", found \"{t}\"")),
            None => Err("the definition is incomplete".to_string()),
        }
    }

    /// `type`, `type:*`, `type#relation`, each optionally `with condition`, up to `]`.
    fn restrictions(&mut self) -> std::result::Result<Rewrite, String> {
        let mut list = Vec::new();
        loop {
            let type_name = self.name("a type")?.to_string();
            let kind = match self.peek() {
                Some(Token::Colon) => {
                    self.take();
                    self.expect(Token::Star)?;
                    RestrictionKind::Wildcard
                }
                Some(Token::Hash) => {
                    self.take();
                    RestrictionKind::Userset(self.name("a relation after \"#\"")?.to_string())
                }
                _ => RestrictionKind::Type,
            };
            let condition = match self.peek() {
                Some(Token::With) => {
                    self.take();
                    Some(self.name("a condition after \"with\"")?.to_string())
                }
                _ => None,
            };
            list.push(Restriction { type_name, kind, condition });
            match self.take() {
                Some(Token::Comma) => continue,
                Some(Token::RBracket) => return Ok(Rewrite::Direct(list)),
                Some(t) => return Err(format!("expected \",\" or \"]\", found \"{t}\"")),
                None => return Err("expected \"]\"".to_string()),
            }
        }
    }
}

/// Whether a condition block's text has its body's closing brace (braces inside CEL
/// strings do not count).
fn block_closed(text: &str) -> bool {
    body_end(text).is_some()
}

/// The byte offsets of the body's opening and closing braces.
fn body_end(text: &str) -> Option<(usize, usize)> {
    let mut depth = 0;
    let mut open = None;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                c if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '\'' if open.is_some() => quote = Some(c),
            '{' => {
                open.get_or_insert(i);
                depth += 1;
            }
            '}' if open.is_some() => {
                depth -= 1;
                if depth == 0 {
                    return Some((open.expect("opened"), i));
                }
            }
            _ => {}
        }
    }
    None
}

/// `name(param: type, ...) { expression }` after the `condition` keyword.
fn parse_condition(block: &str) -> std::result::Result<Condition, String> {
    let (open, close) = body_end(block).ok_or("the condition's body is not closed with \"}\"")?;
    if !block[close + 1..].trim().is_empty() {
        return Err(format!("unexpected \"{}\" after the condition's body", shorten(block[close + 1..].trim())));
    }
    let header = block[..open].trim();
    let (name, parameters) = header.split_once('(').ok_or("expected \"condition <name>(<parameters>) {\"")?;
    let name = name.trim();
    if !is_identifier(name) {
        return Err(format!("\"{}\" is not a valid condition name", shorten(name)));
    }
    let parameters = parameters.trim_end().strip_suffix(')').ok_or("expected \")\" after the condition's parameters")?;
    let parameters = parameters
        .split(',')
        .map(|p| {
            let (pname, ptype) = p.split_once(':').ok_or(format!("expected \"<name>: <type>\", found \"{}\"", shorten(p.trim())))?;
            let (pname, ptype) = (pname.trim(), ptype.trim());
            if !is_identifier(pname) {
                return Err(format!("\"{}\" is not a valid parameter name", shorten(pname)));
            }
            let ptype = ParameterType::parse(ptype).ok_or(format!(
                "\"{}\" is not a parameter type (bool, string, int, uint, double, duration, timestamp, ipaddress, map<T>, list<T>)",
                shorten(ptype)
            ))?;
            Ok((pname.to_string(), ptype))
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    let expression = block[open + 1..close].trim();
    if expression.is_empty() {
        return Err(format!("condition {name} has an empty expression"));
    }
    Ok(Condition { name: name.to_string(), parameters, expression: expression.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(body: &str) -> Result<Model> {
        parse(&format!("model\n  schema 1.1\n{body}"))
    }

    fn rewrite(definition: &str) -> std::result::Result<Rewrite, String> {
        parse_define(&format!("r: {definition}")).map(|r| r.rewrite)
    }

    fn direct(types: &[&str]) -> Rewrite {
        Rewrite::Direct(types.iter().map(|t| Restriction { type_name: t.to_string(), kind: RestrictionKind::Type, condition: None }).collect())
    }

    fn computed(r: &str) -> Rewrite {
        Rewrite::Computed(r.to_string())
    }

    #[test]
    fn header_types_and_relations() {
        let m = model("type user\n\ntype document\n  relations\n    define owner: [user]\n    define viewer: owner # comment\n").unwrap();
        assert_eq!(m.schema, "1.1");
        assert_eq!(m.types.len(), 2);
        assert!(m.types[0].relations.is_empty());
        assert_eq!(m.relation("document", "owner").unwrap().rewrite, direct(&["user"]));
        assert_eq!(m.relation("document", "viewer").unwrap().rewrite, computed("owner"));
    }

    #[test]
    fn restrictions() {
        let r = rewrite("[user, user:*, group#member, user with cond, group#member with cond, team:* with c2]").unwrap();
        let Rewrite::Direct(list) = r else { panic!() };
        let kinds: Vec<_> = list.iter().map(|r| (r.type_name.as_str(), r.kind.clone(), r.condition.as_deref())).collect();
        assert_eq!(kinds, vec![
            ("user", RestrictionKind::Type, None),
            ("user", RestrictionKind::Wildcard, None),
            ("group", RestrictionKind::Userset("member".into()), None),
            ("user", RestrictionKind::Type, Some("cond")),
            ("group", RestrictionKind::Userset("member".into()), Some("cond")),
            ("team", RestrictionKind::Wildcard, Some("c2")),
        ]);
    }

    #[test]
    fn operators_and_grouping() {
        let ttu = |c: &str, t: &str| Rewrite::TupleToUserset { tupleset: t.into(), computed: c.into() };
        assert_eq!(rewrite("[user] or editor or viewer from parent").unwrap(),
                   Rewrite::Union(vec![direct(&["user"]), computed("editor"), ttu("viewer", "parent")]));
        assert_eq!(rewrite("writer and editor").unwrap(), Rewrite::Intersection(vec![computed("writer"), computed("editor")]));
        assert_eq!(rewrite("writer but not (editor and owner)").unwrap(), Rewrite::Exclusion {
            base: Box::new(computed("writer")),
            subtract: Box::new(Rewrite::Intersection(vec![computed("editor"), computed("owner")])),
        });
        assert_eq!(rewrite("([user] or editor) and allowed").unwrap(), Rewrite::Intersection(vec![
            Rewrite::Union(vec![direct(&["user"]), computed("editor")]), computed("allowed"),
        ]));
        assert_eq!(rewrite("viewer from parent but not writer").unwrap(), Rewrite::Exclusion {
            base: Box::new(ttu("viewer", "parent")), subtract: Box::new(computed("writer")),
        });
        assert_eq!(rewrite("((a))").unwrap(), computed("a"));
    }

    #[test]
    fn syntax_errors() {
        for (definition, expected) in [
            ("a or b and c", "group them with parentheses"),
            ("a but not b but not c", "group them with parentheses"),
            ("a or [user]", "may only come first"),
            ("a or ([user])", "may only come first"),
            ("[user", "expected \"]\""),
            ("[user,]", "expected a type"),
            ("[]", "expected a type"),
            ("[user:]", "expected \"*\""),
            ("[group#]", "expected a relation after \"#\""),
            ("[user with]", "expected a condition"),
            ("a from", "expected a relation after \"from\""),
            ("a b", "unexpected \"b\""),
            ("(a or b", "expected \")\""),
            ("a but b", "followed by \"not\""),
            ("", "incomplete"),
            ("a or", "incomplete"),
            ("a; drop", "unexpected character"),
            ("1abc", "not a valid name"),
        ] {
            let e = rewrite(definition).unwrap_err();
            assert!(e.contains(expected), "{definition:?}: {e}");
        }
    }

    #[test]
    fn structure_errors_name_the_line() {
        let cases = [
            ("", 1, "empty"),
            ("schema 1.1", 1, "expected \"model\""),
            ("model\nschema one", 2, "schema"),
            ("model\n  schema 1.1\n  define a: [user]", 3, "belongs under"),
            ("model\n  schema 1.1\ntype user\n  relations\n  relations", 5, "once"),
            ("model\n  schema 1.1\ntype 9lives", 3, "type name"),
            ("model\n  schema 1.1\ntype user\n  relations\n    define a [user]", 5, "define <relation>"),
            ("model\n  schema 1.1\ntype user\n  relations\n    define a: [user,\n\n", 5, "unclosed"),
            ("model\n  schema 1.1\nrelation x", 3, "expected \"type\""),
            ("model\n  schema 1.1\ncondition c(x: int) {\n  x < 1\n", 3, "not closed"),
        ];
        for (text, line, expected) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(expected), "{text:?}: {e}");
        }
    }

    #[test]
    fn restrictions_across_lines_and_comments() {
        let m = model("# a comment\ntype user\ntype group\n  relations\n    # about members\n    define member: [\n      user,\n      group#member # nested\n    ]\n").unwrap();
        let Rewrite::Direct(list) = &m.relation("group", "member").unwrap().rewrite else { panic!() };
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn conditions() {
        let m = model(
            "type user\ncondition in_range(x: int, allowed: list<string>, m: map<int>) {\n  x < 100 && \"}\" in allowed && m[\"{\"] == 1\n}\ncondition after(ts: timestamp) { ts > timestamp(\"2023-01-01T00:00:00Z\") }\n",
        )
        .unwrap();
        assert_eq!(m.conditions.len(), 2);
        let c = m.condition("in_range").unwrap();
        assert_eq!(c.parameters, vec![
            ("x".to_string(), ParameterType::Int),
            ("allowed".to_string(), ParameterType::List(Box::new(ParameterType::String))),
            ("m".to_string(), ParameterType::Map(Box::new(ParameterType::Int))),
        ]);
        assert_eq!(c.expression, "x < 100 && \"}\" in allowed && m[\"{\"] == 1");
        assert_eq!(m.condition("after").unwrap().expression, "ts > timestamp(\"2023-01-01T00:00:00Z\")");
        for (text, expected) in [
            ("condition c(x: float) { x }", "not a parameter type"),
            ("condition c(x int) { x }", "<name>: <type>"),
            ("condition c(x: int) { }", "empty expression"),
            ("condition c x: int) { x }", "expected \"condition <name>"),
            ("condition c(x: int) { x } extra", "after the condition's body"),
        ] {
            let e = model(text).unwrap_err();
            assert!(e.message.contains(expected), "{text:?}: {e}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}[user]{}", "(".repeat(100_000), ")".repeat(100_000));
        let err = rewrite(&deep).unwrap_err();
        assert!(err.contains("nested deeper than 32"), "{err}");
        let fine = format!("{}[user]{}", "(".repeat(32), ")".repeat(32));
        assert!(rewrite(&fine).is_ok());
    }

    #[test]
    fn never_panics_on_arbitrary_text() {
        use proptest::prelude::*;
        let alphabet = prop::sample::select(vec![
            "model\n", "  schema 1.1\n", "type ", "user", " relations\n", "define ", "r: ", "[", "]", "(", ")", ",",
            ":", "*", "#", " or ", " and ", " but not ", " from ", " with ", "condition ", "{", "}", "\"", "\n", "x", "é",
        ]);
        proptest!(|(parts in prop::collection::vec(alphabet, 0..40))| {
            let _ = parse(&parts.concat());
        });
    }
}
