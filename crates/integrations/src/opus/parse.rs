//! Streaming parser for OPUS Løn XML dumps (`ZLPE<timestamp>_delta.xml`).
//!
//! A dump is one `<kmd>` root holding repeated `<orgUnit>` and `<employee>` records (one
//! `<employee>` per employment). The parser pulls events from quick-xml over any [`BufRead`] and
//! keeps only the record currently being read as a small element tree, so memory stays at a
//! few megabytes plus the parsed records, whatever the size of the file.
//!
//! Every record gets a [`Digest`]: an MD5 over a canonical, length-prefixed encoding of its
//! content, so that two dumps can be compared record by record (DESIGN ruling 1). The digest
//! covers the element's attributes (except `lastChanged`) and its child elements (except the
//! top-level `numerator` and `denominator`), recursively with names, attributes and trimmed
//! text. Indentation and surrounding whitespace never count. Attribute order never counts
//! either (XML gives it no meaning), and child elements are compared as a map from name to the
//! list of elements with that name: the relative order of two *different* fields does not
//! count, the order of repeated elements with the same name (several `<function>`) does.
//!
//! Errors name the file, the 1-based line and column (the column counts bytes from the start
//! of the line), the record (`employee id="1000"`) and the field. A CPR number never appears
//! in an error: an invalid one is reported as "not a valid CPR number".

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, Read};
use std::path::Path;
use std::sync::Arc;

use dipex_model::Cpr;
use jiff::civil::Date;
use md5::{Digest as _, Md5};
use quick_xml::errors::IllFormedError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

/// How deep elements may nest inside one record. Real records are two levels deep
/// (`employee/function/roleText`); the limit keeps hostile input from exhausting the stack.
const MAX_RECORD_DEPTH: usize = 32;

/// Longest value quoted in an error message; longer values are cut.
const MAX_SHOWN_VALUE: usize = 80;

/// A parsed dump: all units and employments in document order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dump {
    pub units: Vec<Unit>,
    pub employees: Vec<Employee>,
}

/// MD5 digest of a record's canonical content (see the module documentation).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Digest(pub [u8; 16]);

impl Digest {
    /// Lower-case hex, 32 characters.
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(32);
        for b in self.0 {
            s.push(HEX[usize::from(b >> 4)] as char);
            s.push(HEX[usize::from(b & 0x0f)] as char);
        }
        s
    }

    /// Parse 32 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<Digest> {
        let b = text.as_bytes();
        if b.len() != 32 {
            return None;
        }
        let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        let mut out = [0u8; 16];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Some(Digest(out))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// One `<orgUnit>` record.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// OPUS unit id (`@id`).
    pub id: String,
    /// Line of the `<orgUnit` start tag.
    pub line: u64,
    pub digest: Digest,
    /// The `@client` attribute (OPUS customer number).
    pub client: Option<String>,
    pub last_changed: Option<Date>,
    pub start_date: Option<Date>,
    pub end_date: Option<Date>,
    /// `parentOrgUnit`: the element must be present; empty means a root unit.
    pub parent: Option<String>,
    pub long_name: String,
    pub short_name: Option<String>,
    pub street: Option<String>,
    pub zip_code: Option<String>,
    pub phone_number: Option<String>,
    pub cvr: Option<String>,
    pub ean: Option<String>,
    pub se: Option<String>,
    pub p_nr: Option<String>,
    pub org_type: Option<String>,
    pub org_type_txt: Option<String>,
    /// Every child element without children of its own, as (name, trimmed text), in document
    /// order, known or not. Used for the `unit_user_key` setting.
    pub fields: Vec<(String, String)>,
}

impl Unit {
    /// A field by its OPUS name: `@id`, `@client`, or the text of a child element (`shortName`,
    /// `costCenter`, ...). `None` when absent or empty.
    pub fn field(&self, name: &str) -> Option<&str> {
        match name {
            "@id" => Some(self.id.as_str()),
            "@client" => self.client.as_deref(),
            _ => self
                .fields
                .iter()
                .find(|(n, v)| n == name && !v.is_empty())
                .map(|(_, v)| v.as_str()),
        }
    }
}

/// One `<employee>` record (one employment).
#[derive(Debug, Clone, PartialEq)]
pub struct Employee {
    /// Employment number (`@id`).
    pub id: String,
    /// Line of the `<employee` start tag.
    pub line: u64,
    pub digest: Digest,
    /// The `@client` attribute (OPUS customer number).
    pub client: Option<String>,
    pub last_changed: Option<Date>,
    /// `@action`, e.g. `leave`.
    pub action: Option<String>,
    /// `None` exactly for a leave marker: `action="leave"` and no child elements.
    pub data: Option<Box<EmployeeData>>,
}

impl Employee {
    /// Whether this record is a leave marker (`<employee id=".." action="leave"/>`).
    pub fn is_leave_marker(&self) -> bool {
        self.data.is_none()
    }
}

/// The `<address>` of an employee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressField {
    /// A plain street address such as `Testvej 10`.
    Plain(String),
    /// A structured element (attributes or child elements): the person has address protection
    /// and the address must never be imported.
    Protected,
}

/// A `<function startDate=".." endDate=".."><artText/><roleText/></function>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub start_date: Option<Date>,
    pub end_date: Option<Date>,
    pub art_text: Option<String>,
    pub role_text: Option<String>,
}

/// The content of an ordinary `<employee>` record.
#[derive(Debug, Clone, PartialEq)]
pub struct EmployeeData {
    pub cpr: Cpr,
    pub entry_date: Option<Date>,
    pub leave_date: Option<Date>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub address: Option<AddressField>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub work_phone: Option<String>,
    pub email: Option<String>,
    pub user_id: Option<String>,
    pub work_contract: Option<String>,
    pub work_contract_text: Option<String>,
    pub position_id: Option<String>,
    pub position: Option<String>,
    pub position_short: Option<String>,
    pub is_manager: Option<String>,
    pub superior_level: Option<String>,
    pub subordinate_level: Option<String>,
    pub org_unit: String,
    pub pay_grade_text: Option<String>,
    pub numerator: Option<String>,
    pub denominator: Option<String>,
    pub functions: Vec<Function>,
}

/// Why a dump could not be parsed, and where.
#[derive(Debug)]
pub struct ParseError {
    /// The name of the input as given to [`parse_dump`] (for [`parse_file`], the path).
    pub source: String,
    /// 1-based line.
    pub line: u64,
    /// 1-based column, in bytes from the start of the line.
    pub column: u64,
    /// The record, e.g. `employee id="1000"` or `orgUnit id="3"`, when the error is inside one.
    pub element: Option<String>,
    /// The field, e.g. `entryDate` or `@lastChanged` (attributes carry an `@`).
    pub field: Option<&'static str>,
    pub kind: ParseErrorKind,
}

/// The kinds of [`ParseError`].
#[derive(Debug, thiserror::Error)]
pub enum ParseErrorKind {
    /// Not well-formed XML (unclosed tag, mismatched end tag, bad entity, invalid UTF-8, ...).
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// The document declares (or is in) an encoding other than UTF-8.
    #[error("unsupported encoding: {0}")]
    Encoding(String),
    /// The root element is not `<kmd>`.
    #[error("the root element is <{0}>, expected <kmd>")]
    WrongRoot(String),
    /// A required element or attribute is absent or empty.
    #[error("required field is missing or empty")]
    Missing,
    /// A field has a value that cannot be used. `value` is `None` when the value must not be
    /// shown (a CPR number) or is not text.
    #[error("{reason}")]
    Invalid {
        value: Option<String>,
        reason: &'static str,
    },
    /// Reading the input failed.
    #[error("I/O error: {0}")]
    Io(#[source] Arc<io::Error>),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.source, self.line, self.column)?;
        if let Some(element) = &self.element {
            write!(f, "in {element}: ")?;
        }
        match (&self.kind, &self.field) {
            (ParseErrorKind::Missing, Some(field)) => {
                write!(f, "required field {field} is missing or empty")
            }
            (ParseErrorKind::Invalid { value, reason }, field) => {
                if let Some(field) = field {
                    write!(f, "field {field}")?;
                } else {
                    f.write_str("value")?;
                }
                if let Some(value) = value {
                    write!(f, " = {value:?}")?;
                }
                write!(f, ": {reason}")
            }
            (kind, Some(field)) => write!(f, "field {field}: {kind}"),
            (kind, None) => write!(f, "{kind}"),
        }
    }
}

impl std::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ParseErrorKind::Io(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

/// Parse a dump from a file. Errors carry the path as their `source`.
pub fn parse_file(path: &Path) -> Result<Dump, ParseError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| ParseError {
        source: name.clone(),
        line: 1,
        column: 1,
        element: None,
        field: None,
        kind: ParseErrorKind::Io(Arc::new(e)),
    })?;
    parse_dump(io::BufReader::with_capacity(64 * 1024, file), &name)
}

/// Parse a dump from any buffered reader; `source` names the input in errors.
pub fn parse_dump<R: BufRead>(reader: R, source: &str) -> Result<Dump, ParseError> {
    let mut input = Tracked::new(reader);
    let at_start = |kind| ParseError {
        source: source.to_string(),
        line: 1,
        column: 1,
        element: None,
        field: None,
        kind,
    };
    input
        .prime(4)
        .map_err(|e| at_start(ParseErrorKind::Io(Arc::new(e))))?;
    let head = input.peek();
    if head.starts_with(b"\xEF\xBB\xBF") {
        input.skip_bom(3);
    } else if head.starts_with(b"\xFF\xFE")
        || head.starts_with(b"\xFE\xFF")
        || head.starts_with(b"<\0")
        || head.starts_with(b"\0<")
    {
        return Err(at_start(ParseErrorKind::Encoding(
            "the file is UTF-16; OPUS dumps must be UTF-8".into(),
        )));
    }

    let mut xml = Reader::from_reader(input);
    let mut parser = DumpParser {
        source,
        state: State::Prolog,
        stack: Vec::new(),
        dump: Dump::default(),
    };
    let mut buf = Vec::with_capacity(4096);
    loop {
        let start = xml.buffer_position();
        xml.get_mut().checkpoint(start);
        buf.clear();
        let event = match xml.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(e) => {
                let at = xml.get_ref().line_col(xml.error_position().max(start));
                return Err(parser.xml_error(at, e));
            }
        };
        let at = xml.get_ref().line_col(start);
        if parser.event(event, at)? {
            return Ok(parser.dump);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Input with line tracking

/// A buffered reader that remembers where lines start, so that quick-xml's byte offsets can be
/// turned into line and column. Only newlines after the last checkpoint (the start of the
/// current event) are kept.
struct Tracked<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    filled: usize,
    /// Bytes consumed so far, i.e. the offset of `buf[pos]`.
    consumed: u64,
    /// Offsets of the newlines at or after `floor`.
    newlines: VecDeque<u64>,
    floor: u64,
    lines_below_floor: u64,
    last_newline_below_floor: Option<u64>,
}

impl<R: Read> Tracked<R> {
    fn new(inner: R) -> Self {
        Tracked {
            inner,
            buf: vec![0u8; 64 * 1024].into_boxed_slice(),
            pos: 0,
            filled: 0,
            consumed: 0,
            newlines: VecDeque::new(),
            floor: 0,
            lines_below_floor: 0,
            last_newline_below_floor: None,
        }
    }

    /// Fill the (empty) buffer with at least `n` bytes unless the input is shorter.
    fn prime(&mut self, n: usize) -> io::Result<()> {
        while self.filled < n {
            match self.inner.read(&mut self.buf[self.filled..]) {
                Ok(0) => break,
                Ok(k) => self.filled += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn peek(&self) -> &[u8] {
        &self.buf[self.pos..self.filled]
    }

    /// Drop a byte order mark without counting it, so offsets agree with quick-xml's.
    fn skip_bom(&mut self, n: usize) {
        self.pos += n;
    }

    fn checkpoint(&mut self, offset: u64) {
        while let Some(&nl) = self.newlines.front() {
            if nl >= offset {
                break;
            }
            self.newlines.pop_front();
            self.lines_below_floor += 1;
            self.last_newline_below_floor = Some(nl);
        }
        self.floor = self.floor.max(offset);
    }

    /// 1-based line and byte column of `offset` (clamped to the last checkpoint).
    fn line_col(&self, offset: u64) -> (u64, u64) {
        let offset = offset.max(self.floor);
        let before = self.newlines.partition_point(|&nl| nl < offset);
        let line = self.lines_below_floor + before as u64 + 1;
        let last = if before > 0 {
            Some(self.newlines[before - 1])
        } else {
            self.last_newline_below_floor
        };
        let line_start = last.map_or(0, |nl| nl + 1);
        (line, offset - line_start + 1)
    }
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(out.len());
            out[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Tracked<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.filled {
            self.pos = 0;
            self.filled = 0;
            self.filled = self.inner.read(&mut self.buf)?;
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    fn consume(&mut self, amt: usize) {
        let end = (self.pos + amt).min(self.filled);
        for (i, &b) in self.buf[self.pos..end].iter().enumerate() {
            if b == b'\n' {
                self.newlines.push_back(self.consumed + i as u64);
            }
        }
        self.consumed += (end - self.pos) as u64;
        self.pos = end;
    }
}

// ---------------------------------------------------------------------------------------------
// Event loop

/// Where in the document the parser is.
enum State {
    /// Before the root element.
    Prolog,
    /// Directly inside `<kmd>`.
    Root,
    /// Inside an ignored top-level element, this many levels deep.
    Skip(u32),
    /// Inside an `<orgUnit>` or `<employee>`; `stack` holds the open elements.
    Record,
    /// After `</kmd>`.
    Epilog,
}

/// An element of the record being read.
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    /// All character data directly inside the element, untrimmed.
    text: String,
    children: Vec<Node>,
    line: u64,
    column: u64,
}

impl Node {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn trimmed(&self) -> &str {
        self.text.trim()
    }

    /// `orgUnit id="3"` or `employee id="1000"`, for error messages.
    fn label(&self) -> String {
        match self.attr("id") {
            Some(id) => format!("{} id=\"{}\"", tag_name(&self.name), shown(id)),
            None => tag_name(&self.name),
        }
    }
}

struct DumpParser<'s> {
    source: &'s str,
    state: State,
    stack: Vec<Node>,
    dump: Dump,
}

type Pos = (u64, u64);

impl DumpParser<'_> {
    fn error(&self, (line, column): Pos, kind: ParseErrorKind) -> ParseError {
        ParseError {
            source: self.source.to_string(),
            line,
            column,
            element: self.stack.first().map(Node::label),
            field: None,
            kind,
        }
    }

    fn malformed(&self, at: Pos, message: impl Into<String>) -> ParseError {
        self.error(at, ParseErrorKind::Malformed(message.into()))
    }

    fn xml_error(&self, at: Pos, e: quick_xml::Error) -> ParseError {
        let kind = match e {
            quick_xml::Error::Io(io) => ParseErrorKind::Io(io),
            quick_xml::Error::Encoding(e) => {
                ParseErrorKind::Malformed(format!("the text is not valid UTF-8 ({e})"))
            }
            quick_xml::Error::IllFormed(ill) => ParseErrorKind::Malformed(match ill {
                IllFormedError::MismatchedEndTag { expected, found } => format!(
                    "end tag </{}> does not match the open element <{}>",
                    tag_name(&found),
                    tag_name(&expected)
                ),
                IllFormedError::UnmatchedEndTag(found) => {
                    format!("end tag </{}> has no matching start tag", tag_name(&found))
                }
                IllFormedError::MissingEndTag(open) => {
                    format!("element <{}> is not closed", tag_name(&open))
                }
                other => redact(&other.to_string()),
            }),
            other => ParseErrorKind::Malformed(redact(&other.to_string())),
        };
        self.error(at, kind)
    }

    /// Handle one event; `Ok(true)` at the end of the document.
    fn event(&mut self, event: Event<'_>, at: Pos) -> Result<bool, ParseError> {
        match event {
            Event::Decl(decl) => {
                if !matches!(self.state, State::Prolog) {
                    return Err(
                        self.malformed(at, "XML declaration after the start of the document")
                    );
                }
                match decl.encoding() {
                    None => {}
                    Some(Ok(enc)) => {
                        let e = enc.trim();
                        if !e.eq_ignore_ascii_case("utf-8") && !e.eq_ignore_ascii_case("utf8") {
                            return Err(self.error(
                                at,
                                ParseErrorKind::Encoding(format!(
                                    "the file declares encoding {:?}; OPUS dumps must be UTF-8",
                                    shown(e)
                                )),
                            ));
                        }
                    }
                    Some(Err(e)) => return Err(self.malformed(at, redact(&e.to_string()))),
                }
            }
            Event::DocType(_) => {
                if !matches!(self.state, State::Prolog) {
                    return Err(self.malformed(at, "DOCTYPE after the root element started"));
                }
            }
            Event::PI(_) | Event::Comment(_) => {}
            Event::Text(text) => {
                let text = text.xml10_content();
                self.character_data(&text, at)?;
            }
            Event::CData(cdata) => {
                let text = cdata.xml10_content();
                self.character_data(&text, at)?;
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match &*reference {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => {
                            return Err(
                                self.malformed(at, format!("unknown entity &{};", shown(other)))
                            );
                        }
                    },
                    Err(e) => return Err(self.malformed(at, redact(&e.to_string()))),
                };
                let mut utf8 = [0u8; 4];
                self.character_data(resolved.encode_utf8(&mut utf8), at)?;
            }
            Event::Start(start) => {
                let node = self.node(&start, at)?;
                match self.state {
                    State::Prolog => {
                        self.check_root(&node, at)?;
                        self.state = State::Root;
                    }
                    State::Root if is_record(&node.name) => {
                        self.stack.push(node);
                        self.state = State::Record;
                    }
                    State::Root => self.state = State::Skip(1),
                    State::Skip(depth) => self.state = State::Skip(depth.saturating_add(1)),
                    State::Record => {
                        if self.stack.len() >= MAX_RECORD_DEPTH {
                            return Err(self.malformed(at, "elements nested too deeply"));
                        }
                        self.stack.push(node);
                    }
                    State::Epilog => {
                        return Err(self.malformed(at, "a second element after the root element"));
                    }
                }
            }
            Event::Empty(start) => {
                let node = self.node(&start, at)?;
                match self.state {
                    State::Prolog => {
                        self.check_root(&node, at)?;
                        self.state = State::Epilog;
                    }
                    State::Root if is_record(&node.name) => self.finish_record(node)?,
                    State::Root | State::Skip(_) => {}
                    State::Record => match self.stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None => return Err(self.malformed(at, "internal state error")),
                    },
                    State::Epilog => {
                        return Err(self.malformed(at, "a second element after the root element"));
                    }
                }
            }
            Event::End(_) => match self.state {
                State::Record => {
                    let Some(node) = self.stack.pop() else {
                        return Err(self.malformed(at, "internal state error"));
                    };
                    match self.stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None => {
                            self.state = State::Root;
                            self.finish_record(node)?;
                        }
                    }
                }
                State::Skip(1) => self.state = State::Root,
                State::Skip(depth) => self.state = State::Skip(depth - 1),
                State::Root => self.state = State::Epilog,
                State::Prolog | State::Epilog => {
                    return Err(self.malformed(at, "end tag without a start tag"));
                }
            },
            Event::Eof => {
                return match self.state {
                    State::Epilog => Ok(true),
                    State::Prolog => Err(self.malformed(at, "no root element (empty document?)")),
                    State::Record => {
                        let open = self
                            .stack
                            .last()
                            .map_or_else(String::new, |n| tag_name(&n.name));
                        Err(self.malformed(
                            at,
                            format!("unexpected end of file: <{open}> is not closed"),
                        ))
                    }
                    State::Root | State::Skip(_) => {
                        Err(self.malformed(at, "unexpected end of file: <kmd> is not closed"))
                    }
                };
            }
        }
        Ok(false)
    }

    fn character_data(&mut self, text: &str, at: Pos) -> Result<(), ParseError> {
        match self.state {
            State::Record => {
                if let Some(node) = self.stack.last_mut() {
                    node.text.push_str(text);
                }
                Ok(())
            }
            State::Prolog | State::Epilog if !text.trim().is_empty() => {
                Err(self.malformed(at, "text outside the root element"))
            }
            _ => Ok(()),
        }
    }

    fn check_root(&self, node: &Node, at: Pos) -> Result<(), ParseError> {
        if node.name == "kmd" {
            Ok(())
        } else {
            Err(self.error(at, ParseErrorKind::WrongRoot(tag_name(&node.name))))
        }
    }

    fn node(&self, start: &BytesStart<'_>, (line, column): Pos) -> Result<Node, ParseError> {
        let name = start.name().as_ref().to_string();
        if name.is_empty() {
            return Err(self.malformed((line, column), "element without a name"));
        }
        let mut attrs = Vec::new();
        for attr in start.attributes() {
            let attr = attr.map_err(|e| self.malformed((line, column), redact(&e.to_string())))?;
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| self.malformed((line, column), redact(&e.to_string())))?;
            attrs.push((attr.key.as_ref().to_string(), value.into_owned()));
        }
        Ok(Node {
            name,
            attrs,
            text: String::new(),
            children: Vec::new(),
            line,
            column,
        })
    }

    fn finish_record(&mut self, node: Node) -> Result<(), ParseError> {
        let digest = digest_record(&node);
        let record = Record {
            source: self.source,
            node: &node,
        };
        if node.name == "orgUnit" {
            let unit = record.unit(digest)?;
            self.dump.units.push(unit);
        } else {
            let employee = record.employee(digest)?;
            self.dump.employees.push(employee);
        }
        Ok(())
    }
}

fn is_record(name: &str) -> bool {
    name == "orgUnit" || name == "employee"
}

/// A value as quoted in an error message: cut to a readable length, CPR-like digit runs masked.
fn shown(value: &str) -> String {
    if value.chars().count() <= MAX_SHOWN_VALUE {
        redact(value)
    } else {
        let mut s: String = value.chars().take(MAX_SHOWN_VALUE).collect();
        s.push('…');
        redact(&s)
    }
}

/// An element name from the document as shown in a message: the leading name characters, at
/// most 40 of them (a broken tag can swallow a lot of the document).
fn tag_name(raw: &str) -> String {
    let name: String = raw
        .chars()
        .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        .take(40)
        .collect();
    if name.len() == raw.len() {
        redact(&name)
    } else {
        format!("{}…", redact(&name))
    }
}

/// Mask every run of ten or more digits (optionally `DDMMYY-NNNN`) after its sixth digit, so
/// that no text taken from a dump can carry a CPR number into a message.
fn redact(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            let next = text[i..]
                .char_indices()
                .nth(1)
                .map_or(text.len(), |(k, _)| i + k);
            out.push_str(&text[i..next]);
            i = next;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i - start == 6
            && i + 5 <= b.len()
            && b[i] == b'-'
            && b[i + 1..i + 5].iter().all(u8::is_ascii_digit)
        {
            i += 5;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
        let run = &text[start..i];
        let digits = run.bytes().filter(u8::is_ascii_digit).count();
        if digits >= 10 {
            out.push_str(&run[..6]);
            out.extend(run[6..].chars().map(|c| if c == '-' { '-' } else { 'x' }));
        } else {
            out.push_str(run);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Digest

fn digest_record(node: &Node) -> Digest {
    let mut hasher = Md5::new();
    feed_node(&mut hasher, node, true);
    Digest(hasher.finalize().into())
}

fn feed_len(h: &mut Md5, n: usize) {
    h.update((n as u64).to_le_bytes());
}

fn feed_str(h: &mut Md5, s: &str) {
    feed_len(h, s.len());
    h.update(s.as_bytes());
}

/// Canonical encoding: name, sorted attributes, trimmed text, children grouped by name (stable,
/// so repeated elements keep their order), each part length-prefixed. On the record element
/// itself `lastChanged` and the `numerator`/`denominator` children are left out.
fn feed_node(h: &mut Md5, node: &Node, top: bool) {
    feed_str(h, &node.name);
    let mut attrs: Vec<&(String, String)> = node
        .attrs
        .iter()
        .filter(|(k, _)| !(top && k == "lastChanged"))
        .collect();
    attrs.sort();
    feed_len(h, attrs.len());
    for (k, v) in attrs {
        feed_str(h, k);
        feed_str(h, v);
    }
    feed_str(h, node.trimmed());
    let mut children: Vec<&Node> = node
        .children
        .iter()
        .filter(|c| !(top && (c.name == "numerator" || c.name == "denominator")))
        .collect();
    children.sort_by(|a, b| a.name.cmp(&b.name));
    feed_len(h, children.len());
    for child in children {
        feed_node(h, child, false);
    }
}

// ---------------------------------------------------------------------------------------------
// Records

/// A complete record element being turned into a [`Unit`] or [`Employee`].
struct Record<'a> {
    source: &'a str,
    node: &'a Node,
}

impl Record<'_> {
    fn error(&self, at: &Node, field: &'static str, kind: ParseErrorKind) -> ParseError {
        ParseError {
            source: self.source.to_string(),
            line: at.line,
            column: at.column,
            element: Some(self.node.label()),
            field: Some(field),
            kind,
        }
    }

    fn missing(&self, field: &'static str) -> ParseError {
        self.error(self.node, field, ParseErrorKind::Missing)
    }

    fn invalid(
        &self,
        at: &Node,
        field: &'static str,
        value: Option<&str>,
        reason: &'static str,
    ) -> ParseError {
        self.error(
            at,
            field,
            ParseErrorKind::Invalid {
                value: value.map(shown),
                reason,
            },
        )
    }

    /// A required, non-empty attribute of the record element.
    /// `field` is the attribute name with its `@`.
    fn required_attr(&self, field: &'static str) -> Result<String, ParseError> {
        match self.node.attr(&field[1..]).map(str::trim) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            _ => Err(self.missing(field)),
        }
    }

    fn optional_attr(&self, name: &str) -> Option<String> {
        self.node
            .attr(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    /// Date attribute `name` of `at`, reported as `field`.
    fn date_attr(
        &self,
        at: &Node,
        name: &str,
        field: &'static str,
    ) -> Result<Option<Date>, ParseError> {
        match at.attr(name).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => parse_date(v)
                .map(Some)
                .ok_or_else(|| self.invalid(at, field, Some(v), DATE_REASON)),
        }
    }

    /// The only child element `name` of `parent`, if any; two of them are an error.
    fn child<'n>(
        &self,
        parent: &'n Node,
        name: &'static str,
    ) -> Result<Option<&'n Node>, ParseError> {
        let mut found = parent.children.iter().filter(|c| c.name == name);
        let first = found.next();
        if let Some(second) = found.next() {
            return Err(self.invalid(second, name, None, "the element appears more than once"));
        }
        Ok(first)
    }

    /// Trimmed text of the child element `name`; `None` if absent or empty.
    fn text_in(&self, parent: &Node, name: &'static str) -> Result<Option<String>, ParseError> {
        match self.child(parent, name)? {
            None => Ok(None),
            Some(node) => self.simple_text(node, name),
        }
    }

    fn simple_text(&self, node: &Node, field: &'static str) -> Result<Option<String>, ParseError> {
        if !node.children.is_empty() {
            return Err(self.invalid(node, field, None, "expected text, found child elements"));
        }
        let t = node.trimmed();
        Ok((!t.is_empty()).then(|| t.to_string()))
    }

    fn text(&self, name: &'static str) -> Result<Option<String>, ParseError> {
        self.text_in(self.node, name)
    }

    fn required_text(&self, name: &'static str) -> Result<String, ParseError> {
        self.text(name)?.ok_or_else(|| self.missing(name))
    }

    fn date(&self, name: &'static str) -> Result<Option<Date>, ParseError> {
        let Some(node) = self.child(self.node, name)? else {
            return Ok(None);
        };
        match self.simple_text(node, name)? {
            None => Ok(None),
            Some(v) => parse_date(&v)
                .map(Some)
                .ok_or_else(|| self.invalid(node, name, Some(&v), DATE_REASON)),
        }
    }

    fn unit(&self, digest: Digest) -> Result<Unit, ParseError> {
        let node = self.node;
        let id = self.required_attr("@id")?;
        let parent = match self.child(node, "parentOrgUnit")? {
            None => return Err(self.missing("parentOrgUnit")),
            Some(p) => self.simple_text(p, "parentOrgUnit")?,
        };
        let fields = node
            .children
            .iter()
            .filter(|c| c.children.is_empty())
            .map(|c| (c.name.clone(), c.trimmed().to_string()))
            .collect();
        Ok(Unit {
            id,
            line: node.line,
            digest,
            client: self.optional_attr("client"),
            last_changed: self.date_attr(node, "lastChanged", "@lastChanged")?,
            start_date: self.date("startDate")?,
            end_date: self.date("endDate")?,
            parent,
            long_name: self.required_text("longName")?,
            short_name: self.text("shortName")?,
            street: self.text("street")?,
            zip_code: self.text("zipCode")?,
            phone_number: self.text("phoneNumber")?,
            cvr: self.text("cvrNr")?,
            ean: self.text("eanNr")?,
            se: self.text("seNr")?,
            p_nr: self.text("pNr")?,
            org_type: self.text("orgType")?,
            org_type_txt: self.text("orgTypeTxt")?,
            fields,
        })
    }

    fn employee(&self, digest: Digest) -> Result<Employee, ParseError> {
        let node = self.node;
        let id = self.required_attr("@id")?;
        let action = self.optional_attr("action");
        let last_changed = self.date_attr(node, "lastChanged", "@lastChanged")?;
        let data = if action.as_deref() == Some("leave") && node.children.is_empty() {
            None
        } else {
            Some(Box::new(self.employee_data()?))
        };
        Ok(Employee {
            id,
            line: node.line,
            digest,
            client: self.optional_attr("client"),
            last_changed,
            action,
            data,
        })
    }

    fn employee_data(&self) -> Result<EmployeeData, ParseError> {
        let node = self.node;
        let cpr = match self.child(node, "cpr")? {
            None => return Err(self.missing("cpr")),
            Some(c) => {
                if !c.children.is_empty() {
                    return Err(self.invalid(c, "cpr", None, "not a valid CPR number"));
                }
                if c.trimmed().is_empty() {
                    return Err(self.missing("cpr"));
                }
                Cpr::parse(c.trimmed())
                    .map_err(|_| self.invalid(c, "cpr", None, "not a valid CPR number"))?
            }
        };
        let address = match self.child(node, "address")? {
            None => None,
            Some(a) if !a.attrs.is_empty() || !a.children.is_empty() => {
                Some(AddressField::Protected)
            }
            Some(a) => {
                let t = a.trimmed();
                (!t.is_empty()).then(|| AddressField::Plain(t.to_string()))
            }
        };
        let mut functions = Vec::new();
        for f in node.children.iter().filter(|c| c.name == "function") {
            functions.push(Function {
                start_date: self.date_attr(f, "startDate", "function/@startDate")?,
                end_date: self.date_attr(f, "endDate", "function/@endDate")?,
                art_text: self.text_in(f, "artText")?,
                role_text: self.text_in(f, "roleText")?,
            });
        }
        Ok(EmployeeData {
            cpr,
            entry_date: self.date("entryDate")?,
            leave_date: self.date("leaveDate")?,
            first_name: self.text("firstName")?,
            last_name: self.text("lastName")?,
            address,
            postal_code: self.text("postalCode")?,
            city: self.text("city")?,
            country: self.text("country")?,
            work_phone: self.text("workPhone")?,
            email: self.text("email")?,
            user_id: self.text("userId")?,
            work_contract: self.text("workContract")?,
            work_contract_text: self.text("workContractText")?,
            position_id: self.text("positionId")?,
            position: self.text("position")?,
            position_short: self.text("positionShort")?,
            is_manager: self.text("isManager")?,
            superior_level: self.text("superiorLevel")?,
            subordinate_level: self.text("subordinateLevel")?,
            org_unit: self.required_text("orgUnit")?,
            pay_grade_text: self.text("payGradeText")?,
            numerator: self.text("numerator")?,
            denominator: self.text("denominator")?,
            functions,
        })
    }
}

const DATE_REASON: &str = "not a date of the form YYYY-MM-DD";

/// Strict `YYYY-MM-DD`.
fn parse_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i32> {
        b[r].iter().try_fold(0i32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i32::from(c - b'0'))
        })
    };
    let year = i16::try_from(num(0..4)?).ok()?;
    let month = i8::try_from(num(5..7)?).ok()?;
    let day = i8::try_from(num(8..10)?).ok()?;
    Date::new(year, month, day).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn fixture(rel: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/opus")
            .join(rel)
    }

    const DAY1: &str = "ok/ZLPE20200101220000_delta.xml";
    const DAY2: &str = "ok/ZLPE20200102220000_delta.xml";

    fn parse_str(xml: &str) -> Result<Dump, ParseError> {
        parse_dump(xml.as_bytes(), "test.xml")
    }

    fn err_of(rel: &str) -> ParseError {
        parse_file(&fixture(rel)).expect_err(rel)
    }

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    /// One employee inside a minimal dump.
    fn one_employee(inner: &str) -> String {
        format!(
            "<kmd><orgUnit id=\"1\"><parentOrgUnit/><longName>U</longName></orgUnit>\
             <employee id=\"7\" client=\"813\">{inner}</employee></kmd>"
        )
    }

    const BASE_EMPLOYEE: &str = "<cpr suppId=\"0\">0101010000</cpr><orgUnit>1</orgUnit>";

    fn employee_of(inner: &str) -> Employee {
        let mut dump = parse_str(&one_employee(inner)).unwrap();
        dump.employees.pop().unwrap()
    }

    #[test]
    fn parses_day_one_fixture() {
        let dump = parse_file(&fixture(DAY1)).unwrap();
        let ids: Vec<&str> = dump.units.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3"]);
        let ids: Vec<&str> = dump.employees.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["1000", "1001", "1002", "1006", "999"]);

        let root = &dump.units[0];
        assert_eq!(root.line, 4);
        assert_eq!(root.parent, None);
        assert_eq!(root.long_name, "Andeby Kommune");
        assert_eq!(root.client.as_deref(), Some("813"));
        assert_eq!(root.last_changed, Some(date("2020-09-16")));
        assert_eq!(root.start_date, Some(date("1900-01-01")));
        assert_eq!(root.end_date, Some(date("9999-12-31")));
        assert_eq!(root.street.as_deref(), Some("Rådhuspladsen 1"));
        assert_eq!(root.p_nr.as_deref(), Some("0000000000"));
        assert_eq!(root.field("costCenter"), None);
        assert_eq!(root.field("parentOrgUnit"), None);
        assert_eq!(root.field("@id"), Some("1"));
        assert_eq!(root.field("@client"), Some("813"));
        assert_eq!(root.field("shortName"), Some("AND.K"));

        let u2 = &dump.units[1];
        assert_eq!(u2.long_name, "Børn & Unge");
        assert_eq!(u2.parent.as_deref(), Some("1"));
        assert_eq!(u2.field("costCenter"), Some("345300000000"));
        assert_eq!(u2.se.as_deref(), Some("22334455"));
        assert_eq!(u2.org_type.as_deref(), Some("00001"));
        assert_eq!(u2.org_type_txt.as_deref(), Some("Direktion"));

        let e = &dump.employees[0];
        assert_eq!(e.line, 57);
        assert_eq!(e.last_changed, Some(date("2020-10-01")));
        assert_eq!(e.action, None);
        let d = e.data.as_ref().unwrap();
        assert_eq!(d.cpr.expose(), "0101010000");
        assert_eq!(d.entry_date, Some(date("2019-05-01")));
        assert_eq!(d.leave_date, None);
        assert_eq!(d.first_name.as_deref(), Some("Åse"));
        assert_eq!(d.address, Some(AddressField::Plain("Østergade 10".into())));
        assert_eq!(d.postal_code.as_deref(), Some("9900"));
        assert_eq!(d.work_phone.as_deref(), Some("87651000"));
        assert_eq!(d.user_id.as_deref(), Some("AOE1000"));
        assert_eq!(d.is_manager.as_deref(), Some("true"));
        assert_eq!(d.superior_level.as_deref(), Some("1"));
        assert_eq!(d.subordinate_level.as_deref(), Some("02"));
        assert_eq!(d.org_unit, "3");
        assert_eq!(d.numerator.as_deref(), Some("1"), "text is trimmed");
        assert!(d.functions.is_empty());

        let d = dump.employees[1].data.as_ref().unwrap();
        assert_eq!(d.work_phone, None, "empty element is None");
        assert_eq!(
            (d.numerator.as_deref(), d.denominator.as_deref()),
            (Some("30"), Some("37"))
        );
        assert_eq!(
            d.functions,
            [Function {
                start_date: Some(date("2019-08-01")),
                end_date: Some(date("9999-12-31")),
                art_text: Some("Rolle".into()),
                role_text: Some("Tillidsrepræsentant".into()),
            }]
        );

        let d = dump.employees[2].data.as_ref().unwrap();
        assert_eq!(d.address, Some(AddressField::Protected));
        assert_eq!(d.postal_code, None);
        assert_eq!(d.email, None);

        let leave = &dump.employees[4];
        assert!(leave.is_leave_marker());
        assert_eq!(leave.action.as_deref(), Some("leave"));
        assert_eq!(leave.last_changed, None);
        assert_eq!(leave.line, 163);
    }

    #[test]
    fn parses_day_two_fixture() {
        let dump = parse_file(&fixture(DAY2)).unwrap();
        let ids: Vec<&str> = dump.units.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3", "4", "5"]);
        let u5 = &dump.units[4];
        assert_eq!(u5.start_date, Some(date("2022-03-01")));
        assert_eq!(u5.long_name, "Ny organisationsenhed");
        assert_eq!(
            (u5.street.as_ref(), u5.org_type.as_ref(), u5.cvr.as_ref()),
            (None, None, None)
        );
        assert_eq!(dump.units[2].parent.as_deref(), Some("1"));
        let ids: Vec<&str> = dump.employees.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["1000", "1001", "1002", "9991", "999"]);
        let leaves: Vec<&str> = dump
            .employees
            .iter()
            .filter(|e| e.is_leave_marker())
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(leaves, ["9991", "999"]);
    }

    fn digests<'a>(items: impl Iterator<Item = (&'a str, Digest)>) -> BTreeMap<String, Digest> {
        items.map(|(id, d)| (id.to_string(), d)).collect()
    }

    fn changed(before: &BTreeMap<String, Digest>, after: &BTreeMap<String, Digest>) -> Vec<String> {
        after
            .iter()
            .filter(|(id, d)| before.get(*id) != Some(d))
            .map(|(id, _)| id.clone())
            .collect()
    }

    #[test]
    fn fixture_days_differ_exactly_in_the_described_records() {
        let d1 = parse_file(&fixture(DAY1)).unwrap();
        let d2 = parse_file(&fixture(DAY2)).unwrap();
        let units = |d: &Dump| digests(d.units.iter().map(|u| (u.id.as_str(), u.digest)));
        let emps = |d: &Dump| digests(d.employees.iter().map(|e| (e.id.as_str(), e.digest)));
        assert_eq!(changed(&units(&d1), &units(&d2)), ["2", "3", "4", "5"]);
        assert_eq!(changed(&emps(&d1), &emps(&d2)), ["1000", "1001", "9991"]);
        assert!(changed(&units(&d1), &units(&d1)).is_empty());
        let (e1, e2) = (emps(&d1), emps(&d2));
        let gone: Vec<&String> = e1.keys().filter(|k| !e2.contains_key(*k)).collect();
        assert_eq!(gone, ["1006"]);
    }

    /// Every record's digest as `kind id hex`, in document order.
    fn digest_lines(dump: &Dump) -> Vec<String> {
        let units = dump
            .units
            .iter()
            .map(|u| format!("orgUnit {} {}", u.id, u.digest));
        let emps = dump
            .employees
            .iter()
            .map(|e| format!("employee {} {}", e.id, e.digest));
        units.chain(emps).collect()
    }

    /// Digests are stored in users' state databases: they must never change for the same input.
    /// These values were recorded before the parser was rewritten for speed.
    #[test]
    fn digests_are_stable() {
        const FIXTURE_DIGESTS: &[(&str, &[&str])] = &[
            (
                DAY1,
                &[
                    "orgUnit 1 8ccf1db79170b8886fd7f2cdd3a39b98",
                    "orgUnit 2 913770abf5938343b1cbc1842b0392c3",
                    "orgUnit 3 010502e3e789003e36eb7b3132ce4591",
                    "employee 1000 95c2561425a90e517b63be9c583ad8cf",
                    "employee 1001 379266e1bdac209fe0f544481f7340ee",
                    "employee 1002 f58e1b98bd539f4dff223887b68725d6",
                    "employee 1006 51a63978e27227689623069b0b5d7ec6",
                    "employee 999 2854678eb76ee3c890882c07a6a192e7",
                ],
            ),
            (
                DAY2,
                &[
                    "orgUnit 1 8ccf1db79170b8886fd7f2cdd3a39b98",
                    "orgUnit 2 4d160596deeccfd49bed7b8f3da416aa",
                    "orgUnit 3 52df52907fa877ecbbbdaa54b60abf82",
                    "orgUnit 4 75f97295ac866080a09d5bf763d30226",
                    "orgUnit 5 3f2d047d0de2a59ef464d078c011ae98",
                    "employee 1000 bc29b7bbeaaaac99c40c8bb49f308d16",
                    "employee 1001 b763fe9937fdf3a6a1da9204af682135",
                    "employee 1002 f58e1b98bd539f4dff223887b68725d6",
                    "employee 9991 fe3106c7b217b7547bd36b0b03b2257c",
                    "employee 999 2854678eb76ee3c890882c07a6a192e7",
                ],
            ),
        ];
        // Corner cases of the canonical encoding: mixed content, entities and CDATA, attribute
        // normalisation and order, Unicode whitespace, line ends, nesting, repeated names.
        const RECORDS: &[(&str, &str)] = &[
            (DIGEST_BASE, "employee 7 ef8523506ca2ed148c2d7fc41e29adc1"),
            (
                r#"<employee id="9" client="813" action="leave"/>"#,
                "employee 9 55c3038bc539211ccce2e2b951cfb817",
            ),
            (
                r#"<employee id="9" action="leave">  </employee>"#,
                "employee 9 709be6c5b0bff3c837cd3bb37ffcd1b9",
            ),
            (
                "<employee id=\"2\" b=\"x\" a=\"y &amp; z\" lastChanged=\"2020-02-02\">  pre <cpr>0101010000</cpr> mid \
                 <orgUnit>1</orgUnit> post <x><y a=\"1\">t</y>u<y/><numerator>3</numerator></x>\
                 <![CDATA[ c ]]>&#x41;<numerator> 1 </numerator><denominator/></employee>",
                "employee 2 fd0cf72cb663f2526a71c32820f26214",
            ),
            (
                "<employee id=\"3\" a=\"x\ny&#10;z\tw\r\n\"><cpr>0101010000</cpr><orgUnit>1</orgUnit>\
                 <firstName>\u{a0}Åse\u{3000}</firstName><lastName>a\r\nb\rc</lastName>\
                 <city>a&amp;b&lt;c&#229;</city><email><![CDATA[]]></email></employee>",
                "employee 3 9a98ae6eba24537e1cc168a708d58e90",
            ),
            (
                "<orgUnit id=\"4\"><z>1</z><parentOrgUnit/><longName>U</longName><z>2</z><a/>\
                 <m><n><o><p>deep</p></o></n></m><z>3</z><numerator>5</numerator></orgUnit>",
                "orgUnit 4 fd3665120094e27ef68456e65a7c1ba9",
            ),
            (
                "<orgUnit id=\"5\" client=\"\" lastChanged=\"2020-01-01\"><parentOrgUnit> 1 </parentOrgUnit>\
                 <longName>Å</longName></orgUnit>",
                "orgUnit 5 642d1cb99f83101a8236002e99f0c651",
            ),
        ];
        for (xml, expected) in RECORDS {
            let dump = parse_str(&format!("<kmd>{xml}</kmd>")).unwrap();
            assert_eq!(digest_lines(&dump), [*expected], "{xml}");
        }
        for (rel, expected) in FIXTURE_DIGESTS {
            let dump = parse_file(&fixture(rel)).unwrap();
            assert_eq!(digest_lines(&dump), *expected, "{rel}");
        }

        // A small generated dump over three days (changes, new units, leave markers).
        let dir = tempfile::tempdir().unwrap();
        let spec = crate::opus::synth::SynthSpec {
            units: 40,
            employees: 400,
            days: 3,
            seed: 7,
            start: jiff::civil::date(2024, 1, 1),
        };
        let paths = crate::opus::synth::write_dumps(&spec, dir.path()).unwrap();
        let mut summary = Vec::new();
        for path in &paths {
            let dump = parse_file(path).unwrap();
            let lines = digest_lines(&dump);
            let mut h = Md5::new();
            for line in &lines {
                h.update(line.as_bytes());
                h.update(b"\n");
            }
            summary.push(format!("{} {}", lines.len(), Digest(h.finalize().into())));
        }
        assert_eq!(
            summary,
            [
                "440 5e263a16f6c7cd8a27afa033b4260d41",
                "441 7a9d6f961032e6592484323f52f17467",
                "441 78c74076ef9e2d07771e3e758ca74c08",
            ]
        );
    }

    #[test]
    fn err_fixtures_fail_with_position_element_and_field() {
        let e = err_of("err/missing_longname.xml");
        assert!(matches!(e.kind, ParseErrorKind::Missing), "{e}");
        assert_eq!((e.line, e.column), (9, 3));
        assert_eq!(e.element.as_deref(), Some("orgUnit id=\"2\""));
        assert_eq!(e.field, Some("longName"));
        assert!(e.source.ends_with("missing_longname.xml"));
        let text = e.to_string();
        assert!(text.contains("missing_longname.xml:9:3"), "{text}");
        assert!(text.contains("longName"), "{text}");

        let e = err_of("err/missing_cpr.xml");
        assert!(matches!(e.kind, ParseErrorKind::Missing), "{e}");
        assert_eq!(e.line, 9);
        assert_eq!(e.element.as_deref(), Some("employee id=\"1000\""));
        assert_eq!(e.field, Some("cpr"));

        let e = err_of("err/invalid_date.xml");
        assert_eq!((e.line, e.column), (10, 5));
        assert_eq!(e.field, Some("entryDate"));
        assert!(e.to_string().contains("\"2019-02-30\""), "{e}");

        let e = err_of("err/invalid_cpr.xml");
        assert_eq!((e.line, e.column), (20, 5));
        assert_eq!(e.element.as_deref(), Some("employee id=\"1001\""));
        assert_eq!(e.field, Some("cpr"));
        let text = format!("{e} {e:?}");
        assert!(text.contains("not a valid CPR number"), "{text}");
        assert!(
            !text.contains("01010A0000") && !text.contains("0A0000"),
            "{text}"
        );

        let e = err_of("err/wrong_root.xml");
        assert!(
            matches!(&e.kind, ParseErrorKind::WrongRoot(r) if r == "opus"),
            "{e}"
        );
        assert_eq!(e.line, 2);

        let e = err_of("err/not_utf8_encoding.xml");
        assert!(matches!(e.kind, ParseErrorKind::Encoding(_)), "{e}");
        assert!(e.to_string().contains("ISO-8859-1"), "{e}");

        let e = err_of("err/malformed_unclosed_tag.xml");
        assert!(matches!(e.kind, ParseErrorKind::Malformed(_)), "{e}");
        assert_eq!(e.line, 12, "{e}");
        assert_eq!(e.element.as_deref(), Some("orgUnit id=\"2\""));
    }

    #[test]
    fn tree_defects_are_left_to_the_mapper() {
        for rel in ["err/unknown_parent.xml", "err/cycle.xml"] {
            let dump = parse_file(&fixture(rel)).unwrap();
            assert!(dump.units.len() >= 3, "{rel}");
        }
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let e = parse_file(Path::new("/nonexistent/ZLPE20200101220000_delta.xml")).unwrap_err();
        assert!(matches!(e.kind, ParseErrorKind::Io(_)));
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn entities_and_char_refs_are_resolved_and_joined() {
        let dump = parse_str(
            "<kmd><orgUnit id=\"a&amp;b\" client=\"&#56;13\"><parentOrgUnit/>\
             <longName>  Børn &amp; Unge &lt;x&gt; &#229;&#xE6;&apos;&quot; <![CDATA[&c]]> </longName>\
             </orgUnit></kmd>",
        )
        .unwrap();
        let u = &dump.units[0];
        assert_eq!(u.long_name, "Børn & Unge <x> åæ'\" &c");
        assert_eq!(u.id, "a&b");
        assert_eq!(u.client.as_deref(), Some("813"));

        let e = parse_str("<kmd><orgUnit id=\"1\"><longName>a&nbsp;b</longName></orgUnit></kmd>")
            .unwrap_err();
        assert!(matches!(e.kind, ParseErrorKind::Malformed(_)), "{e}");
        assert!(e.to_string().contains("nbsp"), "{e}");
        let e = parse_str("<kmd><orgUnit id=\"1\"><longName>a & b</longName></orgUnit></kmd>")
            .unwrap_err();
        assert!(matches!(e.kind, ParseErrorKind::Malformed(_)), "{e}");
    }

    fn leave_dump(employee: &str) -> Result<Dump, ParseError> {
        parse_str(&format!("<kmd>{employee}</kmd>"))
    }

    #[test]
    fn leave_marker_versus_employee() {
        for marker in [
            r#"<employee id="9" client="813" action="leave"/>"#,
            r#"<employee id="9" client="813" action="leave">  </employee>"#,
        ] {
            let e = &leave_dump(marker).unwrap().employees[0];
            assert!(e.is_leave_marker(), "{marker}");
            assert_eq!(e.client.as_deref(), Some("813"));
        }
        // action="leave" with children: an ordinary employee that happens to carry the action.
        let e = employee_of(&format!("{BASE_EMPLOYEE}<leaveDate>2020-01-31</leaveDate>"));
        assert!(e.data.is_some());
        let e = &leave_dump(&format!(
            r#"<employee id="9" action="leave">{BASE_EMPLOYEE}</employee>"#
        ))
        .unwrap()
        .employees[0];
        assert!(!e.is_leave_marker());
        assert_eq!(e.action.as_deref(), Some("leave"));
        // Another action is an ordinary employee, so it needs its fields.
        let e = &leave_dump(&format!(
            r#"<employee id="9" action="test">{BASE_EMPLOYEE}</employee>"#
        ))
        .unwrap()
        .employees[0];
        assert_eq!(
            (e.action.as_deref(), e.data.is_some()),
            (Some("test"), true)
        );
        let err = leave_dump(r#"<employee id="9" action="test"/>"#).unwrap_err();
        assert!(matches!(err.kind, ParseErrorKind::Missing));
        assert_eq!(err.field, Some("cpr"));
        // Without an id nothing can be matched later.
        let err = leave_dump(r#"<employee action="leave"/>"#).unwrap_err();
        assert_eq!(err.field, Some("@id"));
        assert_eq!(err.element.as_deref(), Some("employee"));
    }

    #[test]
    fn address_plain_protected_or_absent() {
        let addr = |inner: &str| {
            employee_of(&format!("{BASE_EMPLOYEE}{inner}"))
                .data
                .unwrap()
                .address
        };
        assert_eq!(
            addr("<address> Testvej 1 </address>"),
            Some(AddressField::Plain("Testvej 1".into()))
        );
        assert_eq!(addr("<address/>"), None);
        assert_eq!(addr(""), None);
        assert_eq!(
            addr(r#"<address protected="true"/>"#),
            Some(AddressField::Protected)
        );
        assert_eq!(
            addr("<address><street>Hemmelig 1</street><zip>1234</zip></address>"),
            Some(AddressField::Protected)
        );
    }

    #[test]
    fn functions_are_a_list_in_document_order() {
        let d = employee_of(&format!(
            "{BASE_EMPLOYEE}\
             <function startDate=\"2020-01-01\" endDate=\"\"><artText>A</artText><roleText>Første</roleText></function>\
             <function><roleText>Anden</roleText></function>"
        ))
        .data
        .unwrap();
        let roles: Vec<_> = d.functions.iter().map(|f| f.role_text.as_deref()).collect();
        assert_eq!(roles, [Some("Første"), Some("Anden")]);
        assert_eq!(d.functions[0].start_date, Some(date("2020-01-01")));
        assert_eq!(d.functions[0].end_date, None);
        assert_eq!(d.functions[1].art_text, None);

        let err = parse_str(&one_employee(&format!(
            "{BASE_EMPLOYEE}<function startDate=\"01-01-2020\"/>"
        )))
        .unwrap_err();
        assert_eq!(err.field, Some("function/@startDate"));
        assert!(err.to_string().contains("01-01-2020"), "{err}");
    }

    #[test]
    fn single_records_are_still_lists_and_other_elements_are_ignored() {
        let dump = parse_str(
            "<?xml version='1.0' encoding='UTF-8'?>\n<!DOCTYPE kmd>\n<kmd>\n<header created=\"x\"><a><b>1</b></a>tekst</header>\n\
             <orgUnit id=\"1\"><parentOrgUnit/><longName>U</longName></orgUnit>\n\
             <trailer/>\n<employee id=\"2\" action=\"leave\"/>\n<!-- slut --></kmd>\n<?pi x?>\n",
        )
        .unwrap();
        assert_eq!((dump.units.len(), dump.employees.len()), (1, 1));
        assert_eq!(parse_str("<kmd/>").unwrap(), Dump::default());
        assert_eq!(parse_str("\u{feff}<kmd></kmd>").unwrap(), Dump::default());
    }

    #[test]
    fn document_level_errors() {
        let cases = [
            ("", "no root"),
            ("   ", "no root"),
            ("<kmd>", "not closed"),
            ("<kmd><orgUnit id=\"1\">", "<orgUnit> is not closed"),
            ("<kmd></kmd><kmd/>", "second element"),
            ("<kmd></kmd>tekst", "outside the root"),
            ("tekst<kmd></kmd>", "outside the root"),
            ("<kmd><a></b></kmd>", "malformed"),
            ("<kmd><orgUnit id='1' id='2'/></kmd>", "malformed"),
        ];
        for (xml, expect) in cases {
            let e = parse_str(xml).unwrap_err();
            assert!(e.to_string().contains(expect), "{xml:?}: {e}");
        }
        let e =
            parse_str("<kmd><orgUnit id=\"1\"><longName>x</longName></orgUnit></kmd>").unwrap_err();
        assert_eq!(e.field, Some("parentOrgUnit"));
        let e = parse_str("<kmd><orgUnit id=\"1\" lastChanged=\"2020-13-01\"><parentOrgUnit/><longName>x</longName></orgUnit></kmd>")
            .unwrap_err();
        assert_eq!(e.field, Some("@lastChanged"));
        let e = parse_str("<kmd><orgUnit id=\"1\"><parentOrgUnit/><longName>x</longName><longName>y</longName></orgUnit></kmd>")
            .unwrap_err();
        assert!(e.to_string().contains("more than once"), "{e}");
        let e = parse_str(
            "<kmd><orgUnit id=\"1\"><parentOrgUnit/><longName><b>x</b></longName></orgUnit></kmd>",
        )
        .unwrap_err();
        assert!(e.to_string().contains("child elements"), "{e}");
    }

    #[test]
    fn encodings_other_than_utf8_are_rejected() {
        let e = parse_str("<?xml version=\"1.0\" encoding=\"windows-1252\"?><kmd/>").unwrap_err();
        assert!(matches!(e.kind, ParseErrorKind::Encoding(_)), "{e}");
        let utf16: Vec<u8> = "\u{feff}<kmd/>"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let e = parse_dump(&utf16[..], "x").unwrap_err();
        assert!(matches!(e.kind, ParseErrorKind::Encoding(_)), "{e}");
        // Latin-1 bytes without a declaration: invalid UTF-8, reported with its line.
        let bytes = b"<kmd>\n<orgUnit id=\"1\"><parentOrgUnit/>\n<longName>\xC6r\xF8</longName></orgUnit></kmd>";
        let e = parse_dump(&bytes[..], "x").unwrap_err();
        assert!(e.to_string().contains("UTF-8"), "{e}");
        assert_eq!(e.line, 3, "{e}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!(
            "<kmd><employee id=\"1\">{}{}</employee></kmd>",
            "<a>".repeat(100_000),
            "</a>".repeat(100_000)
        );
        let e = parse_str(&deep).unwrap_err();
        assert!(e.to_string().contains("nested too deeply"), "{e}");
        // Outside records nothing is kept, so deep nesting is merely skipped.
        let deep = format!(
            "<kmd><x>{}{}</x></kmd>",
            "<a>".repeat(10_000),
            "</a>".repeat(10_000)
        );
        assert_eq!(parse_str(&deep).unwrap(), Dump::default());
    }

    /// A reader that hands out one byte per call, to exercise buffer boundaries.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() || out.is_empty() {
                return Ok(0);
            }
            out[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    #[test]
    fn byte_by_byte_reading_gives_the_same_result() {
        for rel in [
            DAY1,
            DAY2,
            "err/invalid_cpr.xml",
            "err/malformed_unclosed_tag.xml",
        ] {
            let bytes = std::fs::read(fixture(rel)).unwrap();
            let whole = parse_dump(&bytes[..], "x");
            let trickled = parse_dump(io::BufReader::with_capacity(1, Trickle(&bytes)), "x");
            match (whole, trickled) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (a, b) => panic!("{rel}: {a:?} vs {b:?}"),
            }
        }
        let bom = b"\xEF\xBB\xBF<kmd/>";
        assert!(parse_dump(io::BufReader::with_capacity(1, Trickle(bom)), "x").is_ok());
    }

    #[test]
    fn redaction_masks_cpr_like_digit_runs() {
        assert_eq!(redact("a 0101011234 b"), "a 010101xxxx b");
        assert_eq!(redact("010101-1234"), "010101-xxxx");
        assert_eq!(redact("x01010112345y"), "x010101xxxxxy");
        assert_eq!(
            redact("2019-02-30 123456789 æ 12"),
            "2019-02-30 123456789 æ 12"
        );
        assert_eq!(redact("010101-12"), "010101-12");
        assert_eq!(tag_name("firstName"), "firstName");
        assert_eq!(tag_name("\"firstName>\n 0101010000"), "…");
        assert_eq!(tag_name("a 0101010000"), "a…");
    }

    #[test]
    fn digest_hex_round_trip() {
        let d = Digest([
            0, 1, 0x7f, 0x80, 0xff, 0xab, 0xcd, 0xef, 9, 10, 11, 12, 13, 14, 15, 16,
        ]);
        let hex = d.to_hex();
        assert_eq!(hex, "00017f80ffabcdef090a0b0c0d0e0f10");
        assert_eq!(Digest::from_hex(&hex), Some(d));
        assert_eq!(Digest::from_hex(&hex.to_uppercase()), Some(d));
        assert_eq!(Digest::from_hex("00"), None);
        assert_eq!(Digest::from_hex(&"g".repeat(32)), None);
        assert_eq!(Digest::from_hex(&"é".repeat(16)), None);
    }

    const DIGEST_BASE: &str = r#"<employee id="7" client="813" lastChanged="2020-01-01">
        <entryDate>2019-05-01</entryDate>
        <cpr suppId="0">0101010000</cpr>
        <firstName>Åse</firstName>
        <orgUnit>1</orgUnit>
        <numerator>1</numerator>
        <denominator>1</denominator>
        <function startDate="2020-01-01"><roleText>A</roleText></function>
        <function startDate="2020-02-01"><roleText>B</roleText></function>
    </employee>"#;

    fn digest_of(employee: &str) -> Digest {
        leave_dump(employee).unwrap().employees[0].digest
    }

    #[test]
    fn digest_ignores_layout_last_changed_and_fraction() {
        let base = digest_of(DIGEST_BASE);
        let compact: String = DIGEST_BASE.lines().map(str::trim).collect();
        let spread = DIGEST_BASE
            .replace("><", ">\n\t\t  <")
            .replace("Åse<", "Åse \r\n <");
        let same = [
            compact,
            spread,
            DIGEST_BASE.replace("lastChanged=\"2020-01-01\"", "lastChanged=\"2021-06-30\""),
            DIGEST_BASE.replace(r#" lastChanged="2020-01-01""#, ""),
            DIGEST_BASE.replace("<numerator>1</numerator>", "<numerator>30</numerator>"),
            DIGEST_BASE.replace("<denominator>1</denominator>", ""),
            DIGEST_BASE.replace(r#"id="7" client="813""#, r#"client="813"  id="7""#),
            DIGEST_BASE.replace(
                "<firstName>Åse</firstName>",
                "<firstName>&#197;se</firstName>",
            ),
            DIGEST_BASE.replace(
                "<firstName>Åse</firstName>\n        <orgUnit>1</orgUnit>",
                "<orgUnit>1</orgUnit><firstName>Åse</firstName>",
            ),
            DIGEST_BASE.replace("<firstName>", "<!-- note --><firstName>"),
        ];
        for variant in same {
            assert_ne!(variant, DIGEST_BASE);
            assert_eq!(digest_of(&variant), base, "{variant}");
        }
    }

    #[test]
    fn digest_sees_every_content_change() {
        let base = digest_of(DIGEST_BASE);
        let different = [
            DIGEST_BASE.replace("Åse", "Aase"),
            DIGEST_BASE.replace("Åse", "Åse Marie"),
            DIGEST_BASE.replace(r#"client="813""#, r#"client="814""#),
            DIGEST_BASE.replace(r#"id="7""#, r#"id="7" action="test""#),
            DIGEST_BASE.replace(r#"suppId="0""#, r#"suppId="1""#),
            DIGEST_BASE.replace("<firstName>Åse</firstName>", ""),
            DIGEST_BASE.replace("<firstName>Åse</firstName>", "<firstName/>"),
            DIGEST_BASE.replace("<orgUnit>", "<leaveDate/><orgUnit>"),
            DIGEST_BASE.replace("<orgUnit>", "<unknownField>x</unknownField><orgUnit>"),
            DIGEST_BASE.replace("<roleText>B</roleText>", "<roleText>C</roleText>"),
            DIGEST_BASE.replace("2020-02-01", "2020-03-01"),
            DIGEST_BASE.replace("<roleText>A</roleText>", "<roleText>A</roleText><artText/>"),
            DIGEST_BASE
                .replace("<roleText>A</roleText>", "<roleText>X</roleText>")
                .replace("<roleText>B</roleText>", "<roleText>A</roleText>")
                .replace("<roleText>X</roleText>", "<roleText>B</roleText>"),
            DIGEST_BASE.replace(
                r#"<function startDate="2020-02-01"><roleText>B</roleText></function>"#,
                "",
            ),
            // Nested numerator is content: only the record's own numerator is excluded.
            DIGEST_BASE.replace(
                "<roleText>A</roleText>",
                "<roleText>A</roleText><numerator>2</numerator>",
            ),
        ];
        for variant in different {
            assert_ne!(digest_of(&variant), base, "{variant}");
        }
        // Units: every field counts, the parent too.
        let unit = |parent: &str| {
            parse_str(&format!(
                "<kmd><orgUnit id=\"3\"><parentOrgUnit>{parent}</parentOrgUnit><longName>U</longName></orgUnit></kmd>"
            ))
            .unwrap()
            .units[0]
                .digest
        };
        assert_ne!(unit("1"), unit("2"));
        assert_ne!(unit(""), unit("2"));
        // Length prefixes keep field boundaries: moving text between fields changes the digest.
        let two = |a: &str, b: &str| {
            parse_str(&format!(
                "<kmd><orgUnit id=\"3\"><parentOrgUnit/><longName>U</longName><x>{a}</x><y>{b}</y></orgUnit></kmd>"
            ))
            .unwrap()
            .units[0]
                .digest
        };
        assert_ne!(two("ab", "c"), two("a", "bc"));
    }

    #[test]
    fn cpr_never_appears_in_errors() {
        let cpr = "1234567890";
        let cases = [
            format!("<cpr>{cpr}1</cpr><orgUnit>1</orgUnit>"),
            "<cpr>12345x7890</cpr><orgUnit>1</orgUnit>".to_string(),
            format!("<cpr><n>{cpr}</n></cpr><orgUnit>1</orgUnit>"),
            format!("<cpr>{cpr}</cpr><cpr>{cpr}</cpr><orgUnit>1</orgUnit>"),
            format!("<cpr>{cpr}</cpr>"),
            format!("<cpr>{cpr}</cpr><orgUnit>1</orgUnit><entryDate>x</entryDate>"),
        ];
        // A broken end tag can swallow the rest of the document into its "name".
        let swallowed = format!(
            "<kmd><employee id=\"1\"><firstName>A</\"firstName>\n<cpr>{cpr}</cpr>\" ></employee></kmd>"
        );
        let e = parse_str(&swallowed).unwrap_err();
        assert!(!format!("{e} | {e:?}").contains("67890"), "{e}");
        for inner in cases {
            let e = parse_str(&one_employee(&inner)).unwrap_err();
            let text = format!("{e} | {e:?}");
            assert!(!text.contains("12345"), "{text}");
            assert!(!text.contains("67890"), "{text}");
        }
        let dump = parse_str(&one_employee(&format!(
            "<cpr>{cpr}</cpr><orgUnit>1</orgUnit>"
        )))
        .unwrap();
        assert!(!format!("{dump:?}").contains("67890"));
    }

    /// Mutations of a valid dump: the parser must return, never panic.
    fn mutate(mut bytes: Vec<u8>, ops: &[(u8, usize, usize, u8)]) -> Vec<u8> {
        for &(op, a, b, byte) in ops {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let i = a % bytes.len();
            let j = (i + b % 64).min(bytes.len());
            match op % 6 {
                0 => bytes[i] = byte,
                1 => {
                    bytes.drain(i..j);
                }
                2 => {
                    let chunk = bytes[i..j].to_vec();
                    bytes.splice(j..j, chunk);
                }
                3 => bytes.insert(i, byte),
                4 => {
                    let snippets: [&[u8]; 8] = [
                        b"<",
                        b">",
                        b"&amp;",
                        b"&#x0;",
                        b"</employee>",
                        b"<orgUnit>",
                        b"\"",
                        b"&",
                    ];
                    let s = snippets[usize::from(byte) % snippets.len()];
                    bytes.splice(i..i, s.iter().copied());
                }
                _ => bytes.truncate(i),
            }
        }
        bytes
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_dump(&bytes[..], "prop");
        }

        #[test]
        fn arbitrary_xmlish_text_never_panics(text in "[<>/&;#a-z=\" \n'!?\\[\\]-]{0,400}") {
            let _ = parse_str(&text);
            let _ = parse_str(&format!("<kmd><employee id=\"1\">{text}</employee></kmd>"));
        }

        #[test]
        fn mutated_dumps_never_panic(
            day2 in any::<bool>(),
            ops in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<usize>(), any::<u8>()), 1..8),
        ) {
            let bytes = std::fs::read(fixture(if day2 { DAY2 } else { DAY1 })).unwrap();
            let mutated = mutate(bytes, &ops);
            if let Err(e) = parse_dump(&mutated[..], "prop") {
                // Positions are always real positions.
                prop_assert!(e.line >= 1 && e.column >= 1);
                let text = e.to_string();
                for cpr in ["0101010000", "0301010000", "0401010000"] {
                    prop_assert!(!text.contains(cpr), "{}", text);
                }
            }
        }
    }
}
