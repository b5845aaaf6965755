//! The calculator ("Rechen-Server") protocol, sans-IO.
//!
//! A request is one line (TCP) or one datagram (UDP); the reply is one line: the result in
//! plain decimal notation, or `ERR <reason>`. The grammar (ABNF, RFC 5234; case-insensitive
//! operator names; `WSP` is space or tab, allowed between any two tokens):
//!
//! ```text
//! request  = *WSP ( prefix / expr ) *WSP
//! prefix   = opname 1*WSP operand 1*WSP operand
//! opname   = "ADD" / "SUB" / "MUL" / "DIV" / "MOD" / "POW"
//! operand  = *( "-" / "+" ) ( number / "(" expr ")" )
//! expr     = term *( ( "+" / "-" ) term )              ; left-associative
//! term     = factor *( ( "*" / "/" / "%" ) factor )     ; left-associative
//! factor   = ( "-" / "+" ) factor / power               ; unary sign
//! power    = primary [ "^" factor ]                     ; right-associative: 2^3^2 = 2^9
//! primary  = number / "(" expr ")"
//! number   = 1*DIGIT [ "." *DIGIT ] / "." 1*DIGIT
//! ```
//!
//! `^` binds tighter than unary minus (`-2^2 = -4`, as in mathematics and Python) and its
//! exponent may carry a sign (`2^-1 = 0.5`). `%` is the truncating remainder (sign of the
//! dividend). Arithmetic is exact decimal (see [`crate::decimal`]). Errors, checked in this
//! order (the whole line is parsed before anything is computed, so a syntax error always wins):
//!
//! | reply | when |
//! |---|---|
//! | `ERR line too long` | the line exceeds `services.calc.max_line` octets |
//! | `ERR syntax error at column N: <what>` | N counts octets from 1 |
//! | `ERR expression too deeply nested` | more than [`MAX_DEPTH`] nested parentheses/signs |
//! | `ERR number too large` | a literal or result needs more than 38 integer digits |
//! | `ERR division by zero` | `/`, `%` or `DIV`/`MOD` by 0, or 0 to a negative power |
//! | `ERR exponent must be an integer` | `2^0.5` |
use crate::decimal::{Decimal, DecimalError};

/// Most nesting of parentheses and unary signs: recursion (and the tree) stays small.
pub const MAX_DEPTH: usize = 64;

/// Why a request has no result; `Display` is the text after `ERR `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalcError {
    #[error("line too long")]
    LineTooLong,
    #[error("syntax error at column {column}: {what}")]
    Syntax { column: usize, what: String },
    #[error("expression too deeply nested")]
    TooDeep,
    #[error("{0}")]
    Arithmetic(#[from] DecimalError),
}

/// Evaluates one request line (without its line end) and returns the reply text without a line
/// end: the number, or `ERR <reason>`. This is the one place errors become wire text.
pub fn reply(line: &[u8]) -> String {
    match evaluate(line) {
        Ok(v) => v.to_string(),
        Err(e) => format!("ERR {e}"),
    }
}

/// Parses and evaluates one request.
pub fn evaluate(line: &[u8]) -> Result<Decimal, CalcError> {
    let tokens = tokenize(line)?;
    let mut p = Parser {
        tokens: &tokens,
        pos: 0,
        depth: 0,
    };
    let node = p.request()?;
    node.eval()
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Decimal),
    Word(String),
    Op(u8),
    LParen,
    RParen,
    /// Whitespace run: only significant between a prefix operator and its operands.
    Space,
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// 1-based octet column.
    col: usize,
}

fn syntax(col: usize, what: impl Into<String>) -> CalcError {
    CalcError::Syntax {
        column: col,
        what: what.into(),
    }
}

fn tokenize(line: &[u8]) -> Result<Vec<Token>, CalcError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        let col = i + 1;
        let b = line[i];
        match b {
            b' ' | b'\t' => {
                while i < line.len() && matches!(line[i], b' ' | b'\t') {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Space,
                    col,
                });
                continue;
            }
            b'0'..=b'9' | b'.' => {
                let start = i;
                while i < line.len() && (line[i].is_ascii_digit() || line[i] == b'.') {
                    i += 1;
                }
                // ASCII digits and dots only: valid UTF-8.
                let text = std::str::from_utf8(&line[start..i]).unwrap_or("");
                match Decimal::parse(text) {
                    Some(Ok(v)) => out.push(Token {
                        tok: Tok::Num(v),
                        col,
                    }),
                    Some(Err(e)) => return Err(e.into()),
                    None => return Err(syntax(col, format!("malformed number {text:?}"))),
                }
                continue;
            }
            b'a'..=b'z' | b'A'..=b'Z' => {
                let start = i;
                while i < line.len() && line[i].is_ascii_alphabetic() {
                    i += 1;
                }
                let word = String::from_utf8_lossy(&line[start..i]).to_ascii_uppercase();
                out.push(Token {
                    tok: Tok::Word(word),
                    col,
                });
                continue;
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' => out.push(Token {
                tok: Tok::Op(b),
                col,
            }),
            b'(' => out.push(Token {
                tok: Tok::LParen,
                col,
            }),
            b')' => out.push(Token {
                tok: Tok::RParen,
                col,
            }),
            _ => {
                let shown = if b.is_ascii_graphic() {
                    format!("unexpected character '{}'", b as char)
                } else {
                    format!("unexpected octet 0x{b:02x}")
                };
                return Err(syntax(col, shown));
            }
        }
        i += 1;
    }
    out.push(Token {
        tok: Tok::End,
        col: line.len() + 1,
    });
    Ok(out)
}

#[derive(Debug)]
enum Node {
    Num(Decimal),
    Neg(Box<Node>),
    /// A left-associative chain `first op x op y ...`, evaluated iteratively.
    Chain(Box<Node>, Vec<(u8, Node)>),
    Pow(Box<Node>, Box<Node>),
}

impl Node {
    fn eval(&self) -> Result<Decimal, CalcError> {
        Ok(match self {
            Node::Num(v) => *v,
            Node::Neg(n) => -n.eval()?,
            Node::Pow(b, e) => b.eval()?.checked_pow(e.eval()?)?,
            Node::Chain(first, rest) => {
                let mut acc = first.eval()?;
                for (op, n) in rest {
                    let v = n.eval()?;
                    acc = match op {
                        b'+' => acc.checked_add(v)?,
                        b'-' => acc.checked_sub(v)?,
                        b'*' => acc.checked_mul(v)?,
                        b'/' => acc.checked_div(v)?,
                        _ => acc.checked_rem(v)?,
                    };
                }
                acc
            }
        })
    }
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek_raw(&self) -> &Token {
        // tokenize() always ends with End, and pos never passes it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn skip_space(&mut self) {
        while matches!(self.peek_raw().tok, Tok::Space) {
            self.pos += 1;
        }
    }

    /// The next non-space token.
    fn peek(&mut self) -> Token {
        self.skip_space();
        self.peek_raw().clone()
    }

    fn bump(&mut self) {
        if !matches!(self.peek_raw().tok, Tok::End) {
            self.pos += 1;
        }
    }

    fn enter(&mut self) -> Result<(), CalcError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(CalcError::TooDeep);
        }
        Ok(())
    }

    fn request(&mut self) -> Result<Node, CalcError> {
        let t = self.peek();
        let node = match &t.tok {
            Tok::End => return Err(syntax(t.col, "empty request")),
            Tok::Word(w) => {
                let op = match w.as_str() {
                    "ADD" => b'+',
                    "SUB" => b'-',
                    "MUL" => b'*',
                    "DIV" => b'/',
                    "MOD" => b'%',
                    "POW" => b'^',
                    _ => {
                        return Err(syntax(
                            t.col,
                            format!("unknown operation {w:?} (use ADD, SUB, MUL, DIV, MOD or POW)"),
                        ))
                    }
                };
                self.bump();
                let a = self.operand()?;
                let b = self.operand()?;
                if op == b'^' {
                    Node::Pow(Box::new(a), Box::new(b))
                } else {
                    Node::Chain(Box::new(a), vec![(op, b)])
                }
            }
            _ => self.expr()?,
        };
        let t = self.peek();
        match t.tok {
            Tok::End => Ok(node),
            Tok::RParen => Err(syntax(t.col, "unmatched ')'")),
            _ => Err(syntax(t.col, "expected an operator or the end of the line")),
        }
    }

    /// A prefix-form operand: must be separated by whitespace from what precedes it.
    fn operand(&mut self) -> Result<Node, CalcError> {
        let t = self.peek_raw().clone();
        if !matches!(t.tok, Tok::Space) {
            let what = if matches!(t.tok, Tok::End) {
                "expected two operands"
            } else {
                "expected a space before the operand"
            };
            return Err(syntax(t.col, what));
        }
        self.skip_space();
        self.enter()?;
        let mut negate = false;
        loop {
            let t = self.peek_raw().clone();
            match t.tok {
                Tok::Op(b'-') => negate = !negate,
                Tok::Op(b'+') => {}
                _ => break,
            }
            self.pos += 1;
        }
        let t = self.peek_raw().clone();
        let n = match t.tok {
            Tok::Num(v) => {
                self.pos += 1;
                Node::Num(v)
            }
            Tok::LParen => self.paren()?,
            Tok::End => return Err(syntax(t.col, "expected two operands")),
            _ => return Err(syntax(t.col, "expected a number or '('")),
        };
        self.depth -= 1;
        Ok(if negate { Node::Neg(Box::new(n)) } else { n })
    }

    fn expr(&mut self) -> Result<Node, CalcError> {
        let first = self.term()?;
        let mut rest = Vec::new();
        while let Tok::Op(op @ (b'+' | b'-')) = self.peek().tok {
            self.bump();
            rest.push((op, self.term()?));
        }
        Ok(if rest.is_empty() {
            first
        } else {
            Node::Chain(Box::new(first), rest)
        })
    }

    fn term(&mut self) -> Result<Node, CalcError> {
        let first = self.factor()?;
        let mut rest = Vec::new();
        while let Tok::Op(op @ (b'*' | b'/' | b'%')) = self.peek().tok {
            self.bump();
            rest.push((op, self.factor()?));
        }
        Ok(if rest.is_empty() {
            first
        } else {
            Node::Chain(Box::new(first), rest)
        })
    }

    fn factor(&mut self) -> Result<Node, CalcError> {
        self.enter()?;
        let t = self.peek();
        let n = match t.tok {
            Tok::Op(b'-') => {
                self.bump();
                Node::Neg(Box::new(self.factor()?))
            }
            Tok::Op(b'+') => {
                self.bump();
                self.factor()?
            }
            _ => {
                let base = self.primary()?;
                if matches!(self.peek().tok, Tok::Op(b'^')) {
                    self.bump();
                    Node::Pow(Box::new(base), Box::new(self.factor()?))
                } else {
                    base
                }
            }
        };
        self.depth -= 1;
        Ok(n)
    }

    fn primary(&mut self) -> Result<Node, CalcError> {
        let t = self.peek();
        match t.tok {
            Tok::Num(v) => {
                self.bump();
                Ok(Node::Num(v))
            }
            Tok::LParen => self.paren(),
            Tok::End => Err(syntax(
                t.col,
                "expected a number, '(' or '-' at the end of the line",
            )),
            Tok::Word(w) => Err(syntax(
                t.col,
                format!("unexpected word {w:?} (operation names go first: ADD 3 4)"),
            )),
            Tok::RParen => Err(syntax(t.col, "unexpected ')'")),
            Tok::Op(op) => Err(syntax(t.col, format!("unexpected '{}'", op as char))),
            Tok::Space => Err(syntax(t.col, "unexpected space")),
        }
    }

    fn paren(&mut self) -> Result<Node, CalcError> {
        // Depth is counted by factor()/operand(), which every '(' passes through.
        let open = self.peek();
        self.bump();
        let inner = self.expr()?;
        let t = self.peek();
        if !matches!(t.tok, Tok::RParen) {
            return Err(syntax(
                t.col,
                format!("missing ')' for the '(' at column {}", open.col),
            ));
        }
        self.bump();
        Ok(inner)
    }
}

/// Splits a byte stream into request lines of at most `max` octets (sans-IO).
///
/// A line ends at LF; a CR before it is dropped. A line longer than `max` yields one
/// [`Frame::TooLong`] as soon as the limit is passed, and the rest of it is discarded as it
/// arrives, so the buffer never holds more than `max` octets plus one pushed chunk.
#[derive(Debug)]
pub struct LineFramer {
    buf: Vec<u8>,
    max: usize,
    discarding: bool,
}

/// One framed request.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Line(Vec<u8>),
    TooLong,
}

impl LineFramer {
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            max,
            discarding: false,
        }
    }

    /// Adds received octets; call [`LineFramer::next_frame`] until `None` afterwards.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Octets received that are not yet a full line.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            match self.buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                    line.pop(); // LF
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if self.discarding {
                        self.discarding = false;
                        continue; // the tail of a line already answered with TooLong
                    }
                    if line.len() > self.max {
                        return Some(Frame::TooLong);
                    }
                    return Some(Frame::Line(line));
                }
                None => {
                    // A CR may still be followed by LF: it does not count yet.
                    let len = self.buf.len() - usize::from(self.buf.last() == Some(&b'\r'));
                    if self.discarding {
                        self.buf.clear();
                        return None;
                    }
                    if len > self.max {
                        self.buf.clear();
                        self.discarding = true;
                        return Some(Frame::TooLong);
                    }
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The grammar table: request -> reply.
    const TABLE: &[(&str, &str)] = &[
        // numbers
        ("42", "42"),
        ("  42  ", "42"),
        ("\t7", "7"),
        ("3.14", "3.14"),
        (".5", "0.5"),
        ("5.", "5"),
        ("007", "7"),
        ("1.000", "1"),
        // operators and precedence
        ("1+2", "3"),
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("10 - 4 - 3", "3"),
        ("100 / 10 / 5", "2"),
        ("7 % 3", "1"),
        ("-7 % 3", "-1"),
        ("7.5 % 2", "1.5"),
        ("2 ^ 10", "1024"),
        ("2^3^2", "512"),
        ("-2^2", "-4"),
        ("(-2)^2", "4"),
        ("2^-1", "0.5"),
        ("-3", "-3"),
        ("--3", "3"),
        ("+3", "3"),
        ("3 - -3", "6"),
        ("-(2+3)*2", "-10"),
        ("((((1))))", "1"),
        ("2*3^2", "18"),
        // exact decimals
        ("0.1 + 0.2", "0.3"),
        ("1 - 0.9", "0.1"),
        ("1.1 * 1.1", "1.21"),
        ("1/3", "0.3333333333333333333333333333"),
        ("2/3", "0.6666666666666666666666666667"),
        ("1/8", "0.125"),
        ("-7/2", "-3.5"),
        ("0.000001 * 0.000001", "0.000000000001"),
        ("12345678901234567890 * 1000000000000000000", "12345678901234567890000000000000000000"),
        // prefix form
        ("ADD 3 4", "7"),
        ("add 3 4", "7"),
        ("SUB 3 4", "-1"),
        ("MUL 2.5 4", "10"),
        ("DIV 1 4", "0.25"),
        ("MOD 10 4", "2"),
        ("POW 2 8", "256"),
        ("ADD -3 -4", "-7"),
        ("ADD  3\t4 ", "7"),
        ("MUL (1+2) (3+4)", "21"),
        // every error
        ("", "ERR syntax error at column 1: empty request"),
        ("   ", "ERR syntax error at column 4: empty request"),
        ("1 +", "ERR syntax error at column 4: expected a number, '(' or '-' at the end of the line"),
        ("1 + * 2", "ERR syntax error at column 5: unexpected '*'"),
        ("(1 + 2", "ERR syntax error at column 7: missing ')' for the '(' at column 1"),
        ("1 + 2)", "ERR syntax error at column 6: unmatched ')'"),
        ("1 2", "ERR syntax error at column 3: expected an operator or the end of the line"),
        ("1 + x", "ERR syntax error at column 5: unexpected word \"X\" (operation names go first: ADD 3 4)"),
        ("1 # 2", "ERR syntax error at column 3: unexpected character '#'"),
        ("1.2.3", "ERR syntax error at column 1: malformed number \"1.2.3\""),
        (".", "ERR syntax error at column 1: malformed number \".\""),
        ("1e5", "ERR syntax error at column 2: expected an operator or the end of the line"),
        ("()", "ERR syntax error at column 2: unexpected ')'"),
        ("FOO 1 2", "ERR syntax error at column 1: unknown operation \"FOO\" (use ADD, SUB, MUL, DIV, MOD or POW)"),
        ("ADD 3", "ERR syntax error at column 6: expected two operands"),
        ("ADD", "ERR syntax error at column 4: expected two operands"),
        ("ADD 3 4 5", "ERR syntax error at column 9: expected an operator or the end of the line"),
        ("ADD 3 x", "ERR syntax error at column 7: expected a number or '('"),
        ("1 / 0", "ERR division by zero"),
        ("1 % 0", "ERR division by zero"),
        ("DIV 5 0", "ERR division by zero"),
        ("MOD 5 0.0", "ERR division by zero"),
        ("0^-1", "ERR division by zero"),
        ("(1/0) + )", "ERR syntax error at column 9: unexpected ')'"),
        ("123456789012345678901234567890123456789", "ERR number too large"),
        ("99999999999999999999999999999999999999 + 1", "ERR number too large"),
        ("10^38", "ERR number too large"),
        ("POW 10 100", "ERR number too large"),
        ("2^0.5", "ERR exponent must be an integer"),
    ];

    #[test]
    fn grammar_table() {
        for (req, want) in TABLE {
            assert_eq!(reply(req.as_bytes()), *want, "request {req:?}");
        }
    }

    #[test]
    fn non_ascii_is_a_syntax_error() {
        assert_eq!(
            reply("1 × 2".as_bytes()),
            "ERR syntax error at column 3: unexpected octet 0xc3"
        );
        assert_eq!(
            reply(b"1\x002"),
            "ERR syntax error at column 2: unexpected octet 0x00"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!(
            "{}1{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(reply(deep.as_bytes()), "ERR expression too deeply nested");
        let ok = format!(
            "{}1{}",
            "(".repeat(MAX_DEPTH / 2),
            ")".repeat(MAX_DEPTH / 2)
        );
        assert_eq!(reply(ok.as_bytes()), "1");
        let minus = format!("{}1", "-".repeat(1000));
        assert_eq!(reply(minus.as_bytes()), "ERR expression too deeply nested");
        // A long flat chain is fine: evaluated iteratively.
        let flat = vec!["1"; 500].join("+");
        assert_eq!(reply(flat.as_bytes()), "500");
    }

    #[test]
    fn line_too_long_text() {
        assert_eq!(
            format!("ERR {}", CalcError::LineTooLong),
            "ERR line too long"
        );
    }

    #[test]
    fn framer_splits_lines_any_chunking() {
        let input = b"1+1\r\nADD 2 3\n\n4*4\r\n";
        for chunk in 1..input.len() {
            let mut f = LineFramer::new(100);
            let mut got = Vec::new();
            for c in input.chunks(chunk) {
                f.push(c);
                while let Some(fr) = f.next_frame() {
                    got.push(fr);
                }
            }
            assert_eq!(
                got,
                vec![
                    Frame::Line(b"1+1".to_vec()),
                    Frame::Line(b"ADD 2 3".to_vec()),
                    Frame::Line(b"".to_vec()),
                    Frame::Line(b"4*4".to_vec()),
                ],
                "chunk size {chunk}"
            );
        }
    }

    #[test]
    fn framer_too_long_once_and_bounded() {
        let mut f = LineFramer::new(8);
        let mut got = Vec::new();
        for _ in 0..100 {
            f.push(b"0123456789");
            while let Some(fr) = f.next_frame() {
                got.push(fr);
            }
            assert!(f.pending() <= 8 + 10);
        }
        f.push(b"tail\n1+1\n");
        while let Some(fr) = f.next_frame() {
            got.push(fr);
        }
        assert_eq!(got, vec![Frame::TooLong, Frame::Line(b"1+1".to_vec())]);

        // Exactly max octets is allowed; a whole long line in one push is TooLong.
        let mut f = LineFramer::new(8);
        f.push(b"12345678\r\n123456789\n2\n");
        assert_eq!(f.next_frame(), Some(Frame::Line(b"12345678".to_vec())));
        assert_eq!(f.next_frame(), Some(Frame::TooLong));
        assert_eq!(f.next_frame(), Some(Frame::Line(b"2".to_vec())));
        assert_eq!(f.next_frame(), None);

        // A CR waiting for its LF does not count against the limit.
        let mut f = LineFramer::new(3);
        f.push(b"123\r");
        assert_eq!(f.next_frame(), None);
        f.push(b"\n");
        assert_eq!(f.next_frame(), Some(Frame::Line(b"123".to_vec())));
    }
}
