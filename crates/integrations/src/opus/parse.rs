//! Streaming parser for OPUS Løn XML dumps (`ZLPE<timestamp>_delta.xml`).
//!
//! A dump is one `<kmd>` root holding repeated `<orgUnit>` and `<employee>` records (one
//! `<employee>` per employment). The parser pulls events from quick-xml over any [`BufRead`] and
//! keeps only the record currently being read, flat in a few buffers that are reused from
//! record to record, so memory stays at a few megabytes plus the parsed records, whatever the
//! size of the file. Whitespace that trimming would drop is dropped as it is read, and lines
//! and columns are worked out only for the events that can need them. [`parse_file`] reads a
//! large file in two halves at once (see there).
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

use std::fmt;
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
    Io(Arc<io::Error>),
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

/// No `source()`: the message already shows the I/O error, and error chains are printed once.
impl std::error::Error for ParseError {}

/// Parse a dump from a file. Errors carry the path as their `source`.
///
/// A large file is read in two halves at once, in two threads: the second half starts at an
/// `<orgUnit>` or `<employee>` start tag near the middle, and its records are used only if
/// reading the first half confirms that the tag really is a record of the `<kmd>` element
/// (and not, say, text inside a comment). Otherwise the first thread simply reads on to the
/// end. Either way the result is exactly that of reading the file from start to end.
pub fn parse_file(path: &Path) -> Result<Dump, ParseError> {
    parse_file_with(path, SPLIT_FILES_FROM)
}

/// Records per chunk in the second half of a file (see [`DumpParser::chunk`]).
const CHUNK: usize = 4096;

/// Files of at least this many bytes are read in two halves (see [`parse_file`]).
const SPLIT_FILES_FROM: u64 = 1 << 20;

fn parse_file_with(path: &Path, split_from: u64) -> Result<Dump, ParseError> {
    let name = path.display().to_string();
    let io_error = |e| ParseError {
        source: name.clone(),
        line: 1,
        column: 1,
        element: None,
        field: None,
        kind: ParseErrorKind::Io(Arc::new(e)),
    };
    let mut file = std::fs::File::open(path).map_err(io_error)?;
    let split = match file.metadata() {
        Ok(meta) if meta.len() >= split_from => {
            let split = find_split(&mut file, meta.len());
            file.seek(SeekFrom::Start(0)).map_err(io_error)?;
            split
        }
        _ => None,
    };
    parse_split(path, &name, file, split, CHUNK)
}

/// Parse `file` (at `path`), in two halves if `split` says where.
fn parse_split(
    path: &Path,
    name: &str,
    file: std::fs::File,
    split: Option<Split>,
    chunk: usize,
) -> Result<Dump, ParseError> {
    let mut first = Parse::new(file, name)?;
    let Some(split) = split else {
        return first.run_to_end();
    };
    let cancel = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let second = std::thread::Builder::new()
            .name("opus-parse".into())
            .spawn_scoped(scope, || {
                parse_second_half(path, name, split, chunk.max(1), &cancel)
            });
        let Ok(second) = second else {
            return first.run_to_end();
        };
        let stopped = first.run(split.at, &AtomicBool::new(false));
        if !matches!(stopped, Ok(Ran::Stopped)) {
            // Not a record after all, or the first half failed: the second half is of no use.
            cancel.store(true, Ordering::Relaxed);
        }
        let second = second
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match stopped? {
            Ran::Done => Ok(first.parser.finish()),
            // Only the second half is ever cancelled.
            Ran::Cancelled => Err(first.parser.malformed((1, 1), "internal error: cancelled")),
            Ran::Stopped => {
                let lines_before = first.parser.lines.lines_before(split.at);
                match second {
                    None => first.run_to_end(),
                    Some(Err(mut e)) => {
                        e.line += lines_before;
                        Err(e)
                    }
                    Some(Ok(chunks)) => {
                        let mut dump = first.parser.finish();
                        dump.units
                            .reserve_exact(chunks.iter().map(|c| c.units.len()).sum());
                        dump.employees
                            .reserve_exact(chunks.iter().map(|c| c.employees.len()).sum());
                        // Chunk by chunk, so that the memory of each is given back before the
                        // next is moved.
                        for chunk in chunks {
                            dump.units.extend(chunk.units.into_iter().map(|mut unit| {
                                unit.line += lines_before;
                                unit
                            }));
                            dump.employees.extend(chunk.employees.into_iter().map(
                                |mut employee| {
                                    employee.line += lines_before;
                                    employee
                                },
                            ));
                        }
                        Ok(dump)
                    }
                }
            }
        }
    })
}

/// Where the second half of a file starts: the `<` of a record start tag, and the last newline
/// before it (if any).
#[derive(Clone, Copy, Debug)]
struct Split {
    at: u64,
    last_newline: Option<u64>,
}

/// Look for an `<orgUnit` or `<employee` start tag with attributes in the middle of the file
/// (which is left at some position). Files with a byte order mark are not split (their offsets do not start at
/// the first byte).
fn find_split(file: &mut std::fs::File, len: u64) -> Option<Split> {
    const WINDOW: usize = 64 * 1024;
    const WINDOWS: u64 = 16;
    fn read_at(file: &mut std::fs::File, at: u64, buf: &mut [u8]) -> Option<usize> {
        file.seek(SeekFrom::Start(at)).ok()?;
        let mut filled = 0;
        while filled < buf.len() {
            match file.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        Some(filled)
    }
    // Records have attributes; an employee's `<orgUnit>` field does not.
    fn record_tag(window: &[u8]) -> Option<usize> {
        (0..window.len()).find(|&i| {
            let rest = &window[i..];
            [&b"<employee"[..], b"<orgUnit"].iter().any(|tag| {
                rest.starts_with(tag)
                    && rest
                        .get(tag.len())
                        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            })
        })
    }
    let mut buf = vec![0u8; WINDOW];
    let head = read_at(file, 0, &mut buf[..3])?;
    if buf[..head].starts_with(b"\xEF\xBB\xBF") {
        return None;
    }
    let middle = len / 2;
    let at = (0..WINDOWS).find_map(|k| {
        // Overlapping windows, so that a tag across a window boundary is seen.
        let from = middle + k * (WINDOW as u64 - 16);
        let n = read_at(file, from, &mut buf)?;
        record_tag(&buf[..n]).map(|i| from + i as u64)
    })?;
    // The last newline before it, for the columns of its line.
    let from = at.saturating_sub(WINDOW as u64);
    let n = read_at(file, from, &mut buf[..(at - from) as usize])?;
    let last_newline = match buf[..n].iter().rposition(|&b| b == b'\n') {
        Some(i) => Some(from + i as u64),
        None if from == 0 => None,
        None => return None,
    };
    Some(Split { at, last_newline })
}

/// Read the file from `split.at` on, as if it came right after `<kmd>`; the records come in
/// chunks of `chunk` (see [`DumpParser::chunk`]). `None` when cancelled or when the file cannot be read
/// again.
fn parse_second_half(
    path: &Path,
    source: &str,
    split: Split,
    chunk: usize,
    cancel: &AtomicBool,
) -> Option<Result<Vec<Dump>, ParseError>> {
    let mut file = std::fs::File::open(path).ok()?;
    file.seek(SeekFrom::Start(split.at)).ok()?;
    // quick-xml must see the root element open, as it would be here; the offsets of this
    // stream are shifted so that they are those of the file.
    const ROOT: &[u8] = b"<kmd>";
    let base = split.at.checked_sub(ROOT.len() as u64)?;
    let mut rest = Parse::fragment(
        io::Read::chain(ROOT, file),
        source,
        base,
        split.last_newline,
    );
    rest.parser.chunk = chunk;
    match rest.run(u64::MAX, cancel) {
        Ok(Ran::Done) => {
            rest.parser.finish_chunk();
            Some(Ok(std::mem::take(&mut rest.parser.chunks)))
        }
        Ok(Ran::Stopped | Ran::Cancelled) => None,
        Err(e) => Some(Err(e)),
    }
}

/// Parse a dump from any buffered reader; `source` names the input in errors.
pub fn parse_dump<R: BufRead>(reader: R, source: &str) -> Result<Dump, ParseError> {
    Parse::new(reader, source)?.run_to_end()
}

/// A parse in progress: the XML events of an input and the parser they go to.
struct Parse<'s, R> {
    events: EventReader<R>,
    parser: DumpParser<'s>,
}

/// How [`Parse::run`] ended.
enum Ran {
    /// At the end of the document.
    Done,
    /// At the requested offset, directly inside `<kmd>`.
    Stopped,
    Cancelled,
}

impl<'s, R: Read> Parse<'s, R> {
    /// Start reading a document (after checking for a byte order mark and UTF-16).
    fn new(reader: R, source: &'s str) -> Result<Self, ParseError> {
        let mut input = Tracked::new(reader, 0);
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
        input.primed();
        Ok(Parse {
            events: EventReader::new(input, 0),
            parser: DumpParser::new(source, State::Prolog, Lines::default()),
        })
    }

    /// Continue a document in the middle: `reader` gives `<kmd>` and then the rest of the
    /// document, whose offsets start at `base` plus the length of `<kmd>`; `last_newline` is
    /// the last newline before that. Lines are counted from that point (line 1).
    fn fragment(reader: R, source: &'s str, base: u64, last_newline: Option<u64>) -> Self {
        let mut events = EventReader::new(Tracked::new(reader, base), base);
        let mut lines = Lines::starting_after(last_newline);
        // The `<kmd>` start tag itself is not passed on.
        let _ = events.read_into(&mut Discard(&mut lines));
        Parse {
            events,
            parser: DumpParser::new(source, State::Root, lines),
        }
    }

    /// Parse to the end of the document.
    fn run_to_end(&mut self) -> Result<Dump, ParseError> {
        while !self.events.read_into(&mut self.parser)? {}
        Ok(self.parser.finish())
    }

    /// Parse until the end of the document, or until the event that starts at `stop_at` if
    /// that one is directly inside `<kmd>`, or until `cancel` is set.
    fn run(&mut self, stop_at: u64, cancel: &AtomicBool) -> Result<Ran, ParseError> {
        let mut count = 0u32;
        loop {
            if self.events.offset() == stop_at
                && matches!(self.parser.state, State::Root)
                && self.events.depth() == 1
            {
                return Ok(Ran::Stopped);
            }
            count = count.wrapping_add(1);
            if count.is_multiple_of(4096) && cancel.load(Ordering::Relaxed) {
                return Ok(Ran::Cancelled);
            }
            if self.events.read_into(&mut self.parser)? {
                return Ok(Ran::Done);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Events

/// Receives the events of a document: the [`DumpParser`] (or [`Discard`]). Events come with
/// the byte offset where they start, or [`NO_OFFSET`] when they cannot need one; the offsets
/// of the newlines come too ([`Sink::newlines`]), before any event that refers to them, so
/// that offsets can be turned into lines and columns. `Ok(true)` after the last event.
trait Sink {
    /// The offsets of the next newlines in the document.
    fn newlines(&mut self, newlines: &[u64]);
    /// The XML declaration, with its encoding if it declares one (`Err`: cannot be read).
    fn decl(&mut self, encoding: Result<Option<&str>, String>, at: u64)
    -> Result<bool, ParseError>;
    fn doctype(&mut self, at: u64) -> Result<bool, ParseError>;
    /// Character data: text with line ends normalised, CDATA, or a resolved reference.
    fn text(&mut self, text: &str, at: u64) -> Result<bool, ParseError>;
    /// An entity or character reference that cannot be resolved; the message.
    fn bad_ref(&mut self, message: String, at: u64) -> Result<bool, ParseError>;
    fn start(&mut self, start: &BytesStart<'_>, at: u64) -> Result<bool, ParseError>;
    fn empty(&mut self, start: &BytesStart<'_>, at: u64) -> Result<bool, ParseError>;
    fn end(&mut self, at: u64) -> Result<bool, ParseError>;
    fn eof(&mut self, at: u64) -> Result<bool, ParseError>;
    /// A malformed document: the event that starts at `at` has an error at `error_at`.
    fn xml_error(
        &mut self,
        e: quick_xml::Error,
        at: u64,
        error_at: u64,
    ) -> Result<bool, ParseError>;
}

/// The offset of an event that needs none (see [`Sink`]).
const NO_OFFSET: u64 = u64::MAX;

/// quick-xml over the tracked input.
struct EventReader<R> {
    xml: Reader<Tracked<R>>,
    /// What to add to quick-xml's offsets (see [`Parse::fragment`]).
    base: u64,
    buf: Vec<u8>,
    /// For each open element: whether it has had character data other than whitespace.
    /// Whitespace before that is trimmed away in the end, so it is not passed on.
    has_text: Vec<bool>,
    /// Give the offset of every event, not only of those that can need it (see
    /// [`EventReader::read_into`]).
    all_offsets: bool,
}

impl<R: Read> EventReader<R> {
    fn new(input: Tracked<R>, base: u64) -> Self {
        EventReader {
            xml: Reader::from_reader(input),
            base,
            buf: Vec::with_capacity(4096),
            has_text: Vec::new(),
            all_offsets: false,
        }
    }

    /// The offset of the next event.
    fn offset(&self) -> u64 {
        self.xml.buffer_position() + self.base
    }

    /// How many elements are open.
    fn depth(&self) -> usize {
        self.has_text.len()
    }

    /// Read the next event into `sink`. Comments and processing instructions are dropped, and
    /// so is whitespace that would be trimmed away. Text and end tags inside an element
    /// cannot be wrong, so they get [`NO_OFFSET`] unless `all_offsets` is set.
    fn read_into(&mut self, sink: &mut impl Sink) -> Result<bool, ParseError> {
        let start = self.offset();
        self.buf.clear();
        let result = self.xml.read_event_into(&mut self.buf);
        let input = self.xml.get_mut();
        if !input.newlines.is_empty() {
            sink.newlines(&input.newlines);
            input.newlines.clear();
        }
        let event = match result {
            Ok(event) => event,
            Err(e) => {
                let error_at = (self.xml.error_position() + self.base).max(start);
                return sink.xml_error(e, start, error_at);
            }
        };
        let text_at = if !self.has_text.is_empty() && !self.all_offsets {
            NO_OFFSET
        } else {
            start
        };
        match event {
            Event::Start(tag) => {
                self.has_text.push(false);
                sink.start(&tag, start)
            }
            Event::Empty(tag) => sink.empty(&tag, start),
            Event::End(_) => {
                self.has_text.pop();
                sink.end(text_at)
            }
            Event::Text(text) => {
                if !note_text(&mut self.has_text, &text) {
                    return Ok(false);
                }
                // Line ends are normalised (CR LF and CR to LF); most text has no CR at all.
                if text.as_bytes().contains(&b'\r') {
                    sink.text(&text.xml10_content(), text_at)
                } else {
                    sink.text(&text, text_at)
                }
            }
            Event::CData(cdata) => {
                if !note_text(&mut self.has_text, &cdata) {
                    return Ok(false);
                }
                if cdata.as_bytes().contains(&b'\r') {
                    sink.text(&cdata.xml10_content(), text_at)
                } else {
                    sink.text(&cdata, text_at)
                }
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
                            let message = format!("unknown entity &{};", shown(other));
                            return sink.bad_ref(message, start);
                        }
                    },
                    Err(e) => return sink.bad_ref(redact(&e.to_string()), start),
                };
                // Whitespace references count as text too: rare, and harmless.
                if let Some(t) = self.has_text.last_mut() {
                    *t = true;
                }
                let mut utf8 = [0u8; 4];
                sink.text(resolved.encode_utf8(&mut utf8), text_at)
            }
            Event::Decl(decl) => {
                let encoding = match decl.encoding() {
                    None => Ok(None),
                    Some(Ok(encoding)) => Ok(Some(encoding)),
                    Some(Err(e)) => Err(redact(&e.to_string())),
                };
                sink.decl(
                    encoding
                        .as_ref()
                        .map(Option::as_deref)
                        .map_err(String::clone),
                    start,
                )
            }
            Event::DocType(_) => sink.doctype(start),
            Event::PI(_) | Event::Comment(_) => Ok(false),
            Event::Eof => sink.eof(start),
        }
    }
}

/// Note character data in the innermost open element (`has_text` of
/// [`EventReader`]); `false` if it can be dropped: whitespace before any other text, which is
/// trimmed away in the end, or outside the root element.
fn note_text(has_text: &mut [bool], text: &str) -> bool {
    match has_text.last_mut() {
        Some(true) => true,
        Some(seen) => {
            *seen = !is_blank(text);
            *seen
        }
        None => !is_blank(text),
    }
}

/// Whether text is nothing but whitespace (in the sense of [`str::trim`]).
fn is_blank(text: &str) -> bool {
    text.bytes()
        .all(|b| matches!(b, b' ' | b'\n' | b'\t' | b'\r'))
        || text.trim_start().is_empty()
}

// ---------------------------------------------------------------------------------------------
// Input with line tracking

/// A buffered reader that notes the offsets of the newlines in what it reads (after any byte
/// order mark), a buffer at a time, for [`Lines`], so that quick-xml's byte offsets can be
/// turned into line and column.
struct Tracked<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    filled: usize,
    /// Bytes consumed so far, i.e. the offset of `buf[pos]`.
    consumed: u64,
    /// Newlines read and not yet passed on to [`Lines`].
    newlines: Vec<u64>,
}

/// Append the offsets of the newlines in `bytes`, which start at offset `base`, to `out`.
fn find_newlines(bytes: &[u8], base: u64, out: &mut Vec<u64>) {
    const BLOCK: usize = 32;
    let (blocks, rest) = bytes.as_chunks::<BLOCK>();
    let mut at = base;
    for block in blocks {
        // Written so that it compiles to a vector compare and a byte mask.
        let mut mask = 0u32;
        for (k, &b) in block.iter().enumerate() {
            mask |= u32::from(b == b'\n') << k;
        }
        while mask != 0 {
            out.push(at + u64::from(mask.trailing_zeros()));
            mask &= mask - 1;
        }
        at += BLOCK as u64;
    }
    for (k, &b) in rest.iter().enumerate() {
        if b == b'\n' {
            out.push(at + k as u64);
        }
    }
}

/// Newline bookkeeping. The newlines at or after the last checkpoint (the start of the current
/// event) are kept one by one; those before it are a count and the position of the last one.
#[derive(Default)]
struct Lines {
    /// Offsets of newlines; those from `head` on are at or after `floor` (some of them
    /// possibly not consumed yet).
    newlines: Vec<u64>,
    head: usize,
    floor: u64,
    lines_below_floor: u64,
    last_newline_below_floor: Option<u64>,
}

impl Lines {
    /// Note newlines (after those noted before).
    fn add(&mut self, newlines: &[u64]) {
        self.newlines.drain(..self.head);
        self.head = 0;
        self.newlines.extend_from_slice(newlines);
    }

    /// Lines counted from the one after the newline at `last_newline` (line 1).
    fn starting_after(last_newline: Option<u64>) -> Self {
        Lines {
            last_newline_below_floor: last_newline,
            ..Lines::default()
        }
    }

    /// How many lines end before `offset` (at or after the last checkpoint).
    fn lines_before(&mut self, offset: u64) -> u64 {
        self.checkpoint(offset);
        self.lines_below_floor
    }

    fn checkpoint(&mut self, offset: u64) {
        let pending = &self.newlines[self.head..];
        let passed = pending.iter().take_while(|&&nl| nl < offset).count();
        if passed > 0 {
            self.lines_below_floor += passed as u64;
            self.last_newline_below_floor = Some(pending[passed - 1]);
            self.head += passed;
        }
        self.floor = self.floor.max(offset);
    }

    /// 1-based line and byte column of `offset` (clamped to the last checkpoint).
    fn line_col(&self, offset: u64) -> Pos {
        let offset = offset.max(self.floor);
        let pending = &self.newlines[self.head..];
        let before = match pending.first() {
            Some(&nl) if nl < offset => pending.partition_point(|&nl| nl < offset),
            _ => 0,
        };
        let line = self.lines_below_floor + before as u64 + 1;
        let last = if before > 0 {
            Some(pending[before - 1])
        } else {
            self.last_newline_below_floor
        };
        let line_start = last.map_or(0, |nl| nl + 1);
        (line, offset - line_start + 1)
    }
}

impl<R: Read> Tracked<R> {
    /// `base` is the offset of the first byte.
    fn new(inner: R, base: u64) -> Self {
        Tracked {
            inner,
            buf: vec![0u8; 64 * 1024].into_boxed_slice(),
            pos: 0,
            filled: 0,
            consumed: base,
            newlines: Vec::new(),
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

    /// Note the newlines in what [`Tracked::prime`] read (after any byte order mark).
    fn primed(&mut self) {
        find_newlines(
            &self.buf[self.pos..self.filled],
            self.consumed,
            &mut self.newlines,
        );
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
    #[inline]
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.filled {
            self.pos = 0;
            self.filled = 0;
            self.filled = self.inner.read(&mut self.buf)?;
            find_newlines(&self.buf[..self.filled], self.consumed, &mut self.newlines);
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    #[inline]
    fn consume(&mut self, amt: usize) {
        let end = (self.pos + amt).min(self.filled);
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
    /// Inside an `<orgUnit>` or `<employee>`; `RecordBuf::open` holds the open elements.
    Record,
    /// After `</kmd>`.
    Epilog,
}

type Pos = (u64, u64);

struct DumpParser<'s> {
    source: &'s str,
    state: State,
    /// Where the lines of the document start.
    lines: Lines,
    rec: RecordBuf,
    /// The canonical encoding of the current record (see [`RecordBuf::encode`]).
    encoding: Vec<u8>,
    /// If not 0: keep the records in chunks of at most this many units and employees, each
    /// allocated in one go, in `chunks` (`dump` holds the chunk being filled). Moving the
    /// records of the second half of a file behind those of the first then needs little extra
    /// memory.
    chunk: usize,
    chunks: Vec<Dump>,
    dump: Dump,
}

impl<'s> DumpParser<'s> {
    fn new(source: &'s str, state: State, lines: Lines) -> Self {
        DumpParser {
            source,
            state,
            lines,
            rec: RecordBuf::default(),
            encoding: Vec::new(),
            chunk: 0,
            chunks: Vec::new(),
            dump: Dump::default(),
        }
    }

    fn error(&self, (line, column): Pos, kind: ParseErrorKind) -> ParseError {
        ParseError {
            source: self.source.to_string(),
            line,
            column,
            element: (!self.rec.open.is_empty()).then(|| self.rec.label()),
            field: None,
            kind,
        }
    }

    fn malformed(&self, at: Pos, message: impl Into<String>) -> ParseError {
        self.error(at, ParseErrorKind::Malformed(message.into()))
    }

    fn xml_failure(&self, at: Pos, e: quick_xml::Error) -> ParseError {
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

    /// The parsed dump so far.
    fn finish(&mut self) -> Dump {
        std::mem::take(&mut self.dump)
    }

    /// Move the chunk being filled to `chunks` (see `chunk`).
    fn finish_chunk(&mut self) {
        let chunk = std::mem::replace(
            &mut self.dump,
            Dump {
                units: Vec::with_capacity(self.chunk),
                employees: Vec::with_capacity(self.chunk),
            },
        );
        self.chunks.push(chunk);
    }

    /// Line and column of the event that starts at offset `at`.
    fn pos(&mut self, at: u64) -> Pos {
        debug_assert!(
            at != NO_OFFSET,
            "an event without an offset needs a position"
        );
        self.lines.checkpoint(at);
        self.lines.line_col(at)
    }

    fn character_data(&mut self, text: &str, at: u64) -> Result<(), ParseError> {
        match self.state {
            State::Record => {
                self.rec.push_text(text);
                Ok(())
            }
            State::Prolog | State::Epilog if !text.trim().is_empty() => {
                let at = self.pos(at);
                Err(self.malformed(at, "text outside the root element"))
            }
            _ => Ok(()),
        }
    }

    fn check_root(&self, head: Head, at: Pos) -> Result<(), ParseError> {
        let name = self.rec.str(head.name);
        if name == "kmd" {
            Ok(())
        } else {
            Err(self.error(at, ParseErrorKind::WrongRoot(tag_name(name))))
        }
    }

    /// Read the name and attributes of a start tag into the record buffer. Outside records the
    /// buffer is emptied first: nothing is kept of elements that are not part of a record, but
    /// their attributes are still checked.
    fn head(&mut self, start: &BytesStart<'_>, at: Pos) -> Result<Head, ParseError> {
        if self.rec.open.is_empty() {
            self.rec.clear();
        }
        let name = start.name().into_inner();
        if name.is_empty() {
            return Err(self.malformed(at, "element without a name"));
        }
        let name = self.rec.push_str(name);
        let first_attr = self.rec.attrs.len();
        // Most elements have no attributes at all; skip setting up the iterator for them.
        if !start.attributes_raw().is_empty() {
            for attr in start.attributes() {
                let attr = attr.map_err(|e| self.malformed(at, redact(&e.to_string())))?;
                let value = attr
                    .normalized_value(XmlVersion::Implicit1_0)
                    .map_err(|e| self.malformed(at, redact(&e.to_string())))?;
                let key = self.rec.push_str(attr.key.into_inner());
                let value = self.rec.push_str(&value);
                self.rec.attrs.push((key, value));
            }
        }
        Ok(Head {
            name,
            attrs: Span {
                start: first_attr,
                end: self.rec.attrs.len(),
            },
        })
    }

    fn finish_record(&mut self) -> Result<(), ParseError> {
        self.encoding.clear();
        self.rec.encode(&mut self.encoding, 0, true);
        let digest = Digest(Md5::digest(&self.encoding).into());
        self.rec.index_fields();
        let record = Record {
            source: self.source,
            buf: &self.rec,
        };
        if self.rec.name(0) == "orgUnit" {
            let unit = record.unit(digest)?;
            self.dump.units.push(unit);
        } else {
            let employee = record.employee(digest)?;
            self.dump.employees.push(employee);
        }
        if self.chunk > 0 && self.dump.units.len().max(self.dump.employees.len()) >= self.chunk {
            self.finish_chunk();
        }
        Ok(())
    }
}

impl Sink for DumpParser<'_> {
    fn newlines(&mut self, newlines: &[u64]) {
        self.lines.add(newlines);
    }

    fn decl(
        &mut self,
        encoding: Result<Option<&str>, String>,
        at: u64,
    ) -> Result<bool, ParseError> {
        let at = self.pos(at);
        if !matches!(self.state, State::Prolog) {
            return Err(self.malformed(at, "XML declaration after the start of the document"));
        }
        match encoding {
            Ok(None) => {}
            Ok(Some(enc)) => {
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
            Err(message) => return Err(self.malformed(at, message)),
        }
        Ok(false)
    }

    fn doctype(&mut self, at: u64) -> Result<bool, ParseError> {
        if !matches!(self.state, State::Prolog) {
            let at = self.pos(at);
            return Err(self.malformed(at, "DOCTYPE after the root element started"));
        }
        Ok(false)
    }

    fn text(&mut self, text: &str, at: u64) -> Result<bool, ParseError> {
        self.character_data(text, at)?;
        Ok(false)
    }

    fn bad_ref(&mut self, message: String, at: u64) -> Result<bool, ParseError> {
        let at = self.pos(at);
        Err(self.malformed(at, message))
    }

    fn start(&mut self, start: &BytesStart<'_>, at: u64) -> Result<bool, ParseError> {
        let at = self.pos(at);
        let head = self.head(start, at)?;
        match self.state {
            State::Prolog => {
                self.check_root(head, at)?;
                self.state = State::Root;
            }
            State::Root if is_record(self.rec.str(head.name)) => {
                self.rec.open_element(head, at);
                self.state = State::Record;
            }
            State::Root => self.state = State::Skip(1),
            State::Skip(depth) => self.state = State::Skip(depth.saturating_add(1)),
            State::Record => {
                if self.rec.open.len() >= MAX_RECORD_DEPTH {
                    return Err(self.malformed(at, "elements nested too deeply"));
                }
                self.rec.open_element(head, at);
            }
            State::Epilog => {
                return Err(self.malformed(at, "a second element after the root element"));
            }
        }
        Ok(false)
    }

    fn empty(&mut self, start: &BytesStart<'_>, at: u64) -> Result<bool, ParseError> {
        let at = self.pos(at);
        let head = self.head(start, at)?;
        match self.state {
            State::Prolog => {
                self.check_root(head, at)?;
                self.state = State::Epilog;
            }
            State::Root if is_record(self.rec.str(head.name)) => {
                self.rec.add_element(head, at);
                self.finish_record()?;
            }
            State::Root | State::Skip(_) => {}
            State::Record => {
                self.rec.add_element(head, at);
            }
            State::Epilog => {
                return Err(self.malformed(at, "a second element after the root element"));
            }
        }
        Ok(false)
    }

    fn end(&mut self, at: u64) -> Result<bool, ParseError> {
        match self.state {
            State::Record => {
                if self.rec.close_element() {
                    self.state = State::Root;
                    self.finish_record()?;
                }
            }
            State::Skip(1) => self.state = State::Root,
            State::Skip(depth) => self.state = State::Skip(depth - 1),
            State::Root => self.state = State::Epilog,
            State::Prolog | State::Epilog => {
                let at = self.pos(at);
                return Err(self.malformed(at, "end tag without a start tag"));
            }
        }
        Ok(false)
    }

    fn eof(&mut self, at: u64) -> Result<bool, ParseError> {
        let at = self.pos(at);
        match self.state {
            State::Epilog => Ok(true),
            State::Prolog => Err(self.malformed(at, "no root element (empty document?)")),
            State::Record => {
                let open = self
                    .rec
                    .open
                    .last()
                    .map_or_else(String::new, |&i| tag_name(self.rec.name(i)));
                Err(self.malformed(
                    at,
                    format!("unexpected end of file: <{open}> is not closed"),
                ))
            }
            State::Root | State::Skip(_) => {
                Err(self.malformed(at, "unexpected end of file: <kmd> is not closed"))
            }
        }
    }

    fn xml_error(
        &mut self,
        e: quick_xml::Error,
        at: u64,
        error_at: u64,
    ) -> Result<bool, ParseError> {
        self.lines.checkpoint(at);
        let at = self.lines.line_col(error_at);
        Err(self.xml_failure(at, e))
    }
}

/// Passes the newlines on to [`Lines`] and drops the events.
struct Discard<'a>(&'a mut Lines);

impl Sink for Discard<'_> {
    fn newlines(&mut self, newlines: &[u64]) {
        self.0.add(newlines);
    }

    fn decl(&mut self, _: Result<Option<&str>, String>, _: u64) -> Result<bool, ParseError> {
        Ok(false)
    }

    fn doctype(&mut self, _: u64) -> Result<bool, ParseError> {
        Ok(false)
    }

    fn text(&mut self, _: &str, _: u64) -> Result<bool, ParseError> {
        Ok(false)
    }

    fn bad_ref(&mut self, _: String, _: u64) -> Result<bool, ParseError> {
        Ok(false)
    }

    fn start(&mut self, _: &BytesStart<'_>, _: u64) -> Result<bool, ParseError> {
        Ok(false)
    }

    fn empty(&mut self, _: &BytesStart<'_>, _: u64) -> Result<bool, ParseError> {
        Ok(false)
    }

    fn end(&mut self, _: u64) -> Result<bool, ParseError> {
        Ok(false)
    }

    fn eof(&mut self, _: u64) -> Result<bool, ParseError> {
        Ok(true)
    }

    fn xml_error(&mut self, _: quick_xml::Error, _: u64, _: u64) -> Result<bool, ParseError> {
        Ok(true)
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
// The record being read

/// A range of [`RecordBuf::strs`] or [`RecordBuf::attrs`].
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    fn range(self) -> std::ops::Range<usize> {
        self.start..self.end
    }

    fn is_empty(self) -> bool {
        self.start == self.end
    }
}

/// The name and attributes of a start tag, stored in the [`RecordBuf`].
#[derive(Clone, Copy)]
struct Head {
    name: Span,
    attrs: Span,
}

/// No element: the parent of the record element, the end of a list of children.
const NONE: usize = usize::MAX;

/// An element of the record being read.
#[derive(Debug)]
struct Elem {
    name: Span,
    /// Range of `RecordBuf::attrs`.
    attrs: Span,
    /// The character data directly inside the element. While the element is open: what has
    /// been read so far, without leading blank pieces (unless `spilled`); once it is closed:
    /// trimmed.
    text: Span,
    /// While open: the text went on after a child element, so it is collected in
    /// `RecordBuf::spill` instead.
    spilled: bool,
    /// The known field this element's name is, if any.
    field: Option<Field>,
    /// Number of child elements.
    children: usize,
    first_child: usize,
    last_child: usize,
    next_sibling: usize,
    line: u64,
    column: u64,
}

/// The record currently being read, flat: elements in document order (the record element
/// first), their strings in one arena. Everything is reused from record to record, so reading
/// a record allocates nothing once the buffers have grown to the size of the largest record.
#[derive(Default)]
struct RecordBuf {
    elems: Vec<Elem>,
    /// Indices of the open elements, outermost first.
    open: Vec<usize>,
    /// Text of open elements that went on after a child element, by depth.
    spill: Vec<String>,
    /// Names, attribute keys and values, and texts.
    strs: String,
    /// Attributes as (key, value) ranges of `strs`.
    attrs: Vec<(Span, Span)>,
    /// Scratch for the canonical encoding: children in canonical order, a stack of lists.
    order: Vec<usize>,
    /// First and second occurrence of each known field among the record's children.
    fields: Vec<(Option<usize>, Option<usize>)>,
    sort_cache: SortCache,
}

/// Canonical orders of lists of known fields seen before (see
/// [`RecordBuf::sort_canonically`]).
#[derive(Default)]
struct SortCache {
    /// The fields of a list, in document order, and the positions in that list in canonical
    /// order.
    entries: Vec<(Vec<u8>, Vec<usize>)>,
    key: Vec<u8>,
    sorted: Vec<usize>,
}

impl SortCache {
    const ENTRIES: usize = 16;
}

impl RecordBuf {
    fn clear(&mut self) {
        self.elems.clear();
        self.open.clear();
        self.strs.clear();
        self.attrs.clear();
    }

    fn push_str(&mut self, s: &str) -> Span {
        let start = self.strs.len();
        self.strs.push_str(s);
        Span {
            start,
            end: self.strs.len(),
        }
    }

    fn str(&self, span: Span) -> &str {
        &self.strs[span.range()]
    }

    fn name(&self, i: usize) -> &str {
        self.str(self.elems[i].name)
    }

    /// Trimmed text of the (closed) element `i`.
    fn text(&self, i: usize) -> &str {
        self.str(self.elems[i].text)
    }

    fn attr(&self, i: usize, key: &str) -> Option<&str> {
        self.attrs[self.elems[i].attrs.range()]
            .iter()
            .find(|(k, _)| self.str(*k) == key)
            .map(|(_, v)| self.str(*v))
    }

    /// The child elements of `i`, in document order.
    fn children(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(
            Some(self.elems[i].first_child).filter(|&c| c != NONE),
            |&c| Some(self.elems[c].next_sibling).filter(|&n| n != NONE),
        )
    }

    /// `orgUnit id="3"` or `employee id="1000"`, for error messages.
    fn label(&self) -> String {
        match self.attr(0, "id") {
            Some(id) => format!("{} id=\"{}\"", tag_name(self.name(0)), shown(id)),
            None => tag_name(self.name(0)),
        }
    }

    fn add_element(&mut self, head: Head, (line, column): Pos) -> usize {
        let i = self.elems.len();
        let parent = self.open.last().copied().unwrap_or(NONE);
        let field = if parent == NONE {
            None
        } else {
            Field::from_name(self.str(head.name))
        };
        if let Some(p) = self.elems.get_mut(parent) {
            p.children += 1;
            let previous = p.last_child;
            p.last_child = i;
            if previous == NONE {
                p.first_child = i;
            } else {
                self.elems[previous].next_sibling = i;
            }
        }
        self.elems.push(Elem {
            name: head.name,
            attrs: head.attrs,
            text: Span::default(),
            spilled: false,
            field,
            children: 0,
            first_child: NONE,
            last_child: NONE,
            next_sibling: NONE,
            line,
            column,
        });
        i
    }

    fn open_element(&mut self, head: Head, at: Pos) {
        let i = self.add_element(head, at);
        self.open.push(i);
    }

    /// Close the innermost open element; `true` if that was the record element.
    fn close_element(&mut self) -> bool {
        let Some(i) = self.open.pop() else {
            return false;
        };
        let elem = &mut self.elems[i];
        if elem.spilled {
            let spill = &mut self.spill[self.open.len()];
            let start = self.strs.len();
            self.strs.push_str(spill.trim());
            elem.text = Span {
                start,
                end: self.strs.len(),
            };
            elem.spilled = false;
            spill.clear();
        } else if !elem.text.is_empty() {
            let text = &self.strs[elem.text.range()];
            let start = elem.text.start + (text.len() - text.trim_start().len());
            elem.text = Span {
                start,
                end: start + text.trim().len(),
            };
        }
        self.open.is_empty()
    }

    /// Character data inside the innermost open element.
    fn push_text(&mut self, text: &str) {
        let Some(&i) = self.open.last() else {
            return;
        };
        let depth = self.open.len() - 1;
        let elem = &mut self.elems[i];
        if elem.spilled {
            self.spill[depth].push_str(text);
        } else if elem.text.is_empty() {
            // Blank text before anything else is trimmed away in the end.
            if !text.trim_start().is_empty() {
                let start = self.strs.len();
                self.strs.push_str(text);
                elem.text = Span {
                    start,
                    end: self.strs.len(),
                };
            }
        } else if elem.text.end == self.strs.len() {
            self.strs.push_str(text);
            elem.text.end = self.strs.len();
        } else {
            // A child element came in between: collect the text elsewhere from now on.
            if self.spill.len() <= depth {
                self.spill.resize_with(depth + 1, String::new);
            }
            let spill = &mut self.spill[depth];
            spill.clear();
            spill.push_str(&self.strs[elem.text.range()]);
            spill.push_str(text);
            elem.spilled = true;
        }
    }

    /// Canonical encoding of element `i` into `out`: name, sorted attributes, trimmed text,
    /// children grouped by name (stable, so repeated elements keep their order), each part
    /// length-prefixed. On the record element itself (`top`) `lastChanged` and the
    /// `numerator`/`denominator` children are left out.
    fn encode(&mut self, out: &mut Vec<u8>, i: usize, top: bool) {
        let elem = &self.elems[i];
        if elem.children == 0 && elem.attrs.is_empty() {
            // Most elements: a name and a text.
            let (name, text) = (&self.strs[elem.name.range()], &self.strs[elem.text.range()]);
            out.reserve(32 + name.len() + text.len());
            put_str(out, name);
            put_len(out, 0);
            put_str(out, text);
            put_len(out, 0);
            return;
        }
        encode_head(out, &self.strs, &self.attrs, elem, top);
        if elem.children == 0 {
            put_len(out, 0);
            return;
        }
        let base = self.order.len();
        let mut c = elem.first_child;
        while c != NONE {
            let elem = &self.elems[c];
            if !(top && matches!(elem.field, Some(Field::Numerator | Field::Denominator))) {
                self.order.push(c);
            }
            c = elem.next_sibling;
        }
        self.sort_canonically(base);
        let end = self.order.len();
        put_len(out, end - base);
        for k in base..end {
            let child = self.order[k];
            self.encode(out, child, false);
        }
        self.order.truncate(base);
    }

    /// Sort `order[base..]` by element name, stably.
    fn sort_canonically(&mut self, base: usize) {
        let (elems, strs) = (&self.elems, &self.strs);
        let list = &mut self.order[base..];
        let name = |j: usize| &strs[elems[j].name.range()];
        if list.len() <= 1 || list.is_sorted_by(|&a, &b| name(a) <= name(b)) {
            return;
        }
        if !list.iter().all(|&j| elems[j].field.is_some()) {
            list.sort_by(|&a, &b| name(a).cmp(name(b)));
            return;
        }
        // Known names only. Records mostly repeat the fields of the record before, so the
        // order found for a list of fields is kept and reused. `Field` is declared in name
        // order; the document order breaks ties.
        let cache = &mut self.sort_cache;
        cache.key.clear();
        cache.key.extend(
            list.iter()
                .map(|&j| elems[j].field.map_or(u8::MAX, |f| f as u8)),
        );
        let found = cache.entries.iter().position(|(key, _)| *key == cache.key);
        let perm = match found {
            Some(k) => &cache.entries[k].1,
            None => {
                let mut perm: Vec<usize> = (0..list.len()).collect();
                perm.sort_by_key(|&k| cache.key[k]);
                if cache.entries.len() >= SortCache::ENTRIES {
                    cache.entries.remove(0);
                }
                cache.entries.push((cache.key.clone(), perm));
                &cache.entries[cache.entries.len() - 1].1
            }
        };
        cache.sorted.clear();
        cache.sorted.extend(perm.iter().map(|&k| list[k]));
        list.copy_from_slice(&cache.sorted);
    }

    /// Find the known fields among the record's children.
    fn index_fields(&mut self) {
        self.fields.clear();
        self.fields.resize(Field::COUNT, (None, None));
        let mut c = self.elems[0].first_child;
        while c != NONE {
            let elem = &self.elems[c];
            if let Some(field) = elem.field {
                let slot = &mut self.fields[field as usize];
                match slot {
                    (None, _) => slot.0 = Some(c),
                    (Some(_), None) => slot.1 = Some(c),
                    _ => {}
                }
            }
            c = elem.next_sibling;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Digest

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u64).to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// Name, sorted attributes (without `lastChanged` on the record element) and trimmed text.
fn encode_head(out: &mut Vec<u8>, strs: &str, attrs: &[(Span, Span)], elem: &Elem, top: bool) {
    let s = |span: Span| &strs[span.range()];
    put_str(out, s(elem.name));
    let attrs = &attrs[elem.attrs.range()];
    if attrs.is_empty() {
        put_len(out, 0);
    } else {
        let kept = |(k, _): &&(Span, Span)| !(top && s(*k) == "lastChanged");
        let key = |a: &(Span, Span)| (s(a.0), s(a.1));
        put_len(out, attrs.iter().filter(kept).count());
        if attrs.is_sorted_by(|a, b| key(a) <= key(b)) {
            for (k, v) in attrs.iter().filter(kept) {
                put_str(out, s(*k));
                put_str(out, s(*v));
            }
        } else {
            let mut sorted: Vec<&(Span, Span)> = attrs.iter().filter(kept).collect();
            sorted.sort_by(|a, b| key(a).cmp(&key(b)));
            for (k, v) in sorted {
                put_str(out, s(*k));
                put_str(out, s(*v));
            }
        }
    }
    put_str(out, s(elem.text));
}

// ---------------------------------------------------------------------------------------------
// Records

macro_rules! fields {
    ($($variant:ident = $name:literal,)*) => {
        /// The child elements of a record that the parser knows by name.
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        enum Field {
            $($variant,)*
        }

        impl Field {
            #[cfg(test)]
            const ALL: &[Field] = &[$(Field::$variant,)*];
            const COUNT: usize = [$($name,)*].len();

            fn name(self) -> &'static str {
                match self {
                    $(Field::$variant => $name,)*
                }
            }

            fn from_name(name: &str) -> Option<Field> {
                match name {
                    $($name => Some(Field::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

// In byte order of the names: the canonical encoding sorts children by name, and does so by
// this order where it can (`tests::fields_are_in_name_order`).
fields! {
    Address = "address",
    City = "city",
    Country = "country",
    Cpr = "cpr",
    CvrNr = "cvrNr",
    Denominator = "denominator",
    EanNr = "eanNr",
    Email = "email",
    EndDate = "endDate",
    EntryDate = "entryDate",
    FirstName = "firstName",
    Function = "function",
    IsManager = "isManager",
    LastName = "lastName",
    LeaveDate = "leaveDate",
    LongName = "longName",
    Numerator = "numerator",
    OrgType = "orgType",
    OrgTypeTxt = "orgTypeTxt",
    OrgUnit = "orgUnit",
    PNr = "pNr",
    ParentOrgUnit = "parentOrgUnit",
    PayGradeText = "payGradeText",
    PhoneNumber = "phoneNumber",
    Position = "position",
    PositionId = "positionId",
    PositionShort = "positionShort",
    PostalCode = "postalCode",
    SeNr = "seNr",
    ShortName = "shortName",
    StartDate = "startDate",
    Street = "street",
    SubordinateLevel = "subordinateLevel",
    SuperiorLevel = "superiorLevel",
    UserId = "userId",
    WorkContract = "workContract",
    WorkContractText = "workContractText",
    WorkPhone = "workPhone",
    ZipCode = "zipCode",
}

/// A complete record element being turned into a [`Unit`] or [`Employee`]. Element 0 of the
/// buffer is the record element; [`RecordBuf::index_fields`] has run.
struct Record<'a> {
    source: &'a str,
    buf: &'a RecordBuf,
}

impl Record<'_> {
    fn error(&self, at: usize, field: &'static str, kind: ParseErrorKind) -> ParseError {
        let elem = &self.buf.elems[at];
        ParseError {
            source: self.source.to_string(),
            line: elem.line,
            column: elem.column,
            element: Some(self.buf.label()),
            field: Some(field),
            kind,
        }
    }

    fn missing(&self, field: &'static str) -> ParseError {
        self.error(0, field, ParseErrorKind::Missing)
    }

    fn invalid(
        &self,
        at: usize,
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
        match self.buf.attr(0, &field[1..]).map(str::trim) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            _ => Err(self.missing(field)),
        }
    }

    fn optional_attr(&self, name: &str) -> Option<String> {
        self.buf
            .attr(0, name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    /// Date attribute `name` of element `at`, reported as `field`.
    fn date_attr(
        &self,
        at: usize,
        name: &str,
        field: &'static str,
    ) -> Result<Option<Date>, ParseError> {
        match self.buf.attr(at, name).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => parse_date(v)
                .map(Some)
                .ok_or_else(|| self.invalid(at, field, Some(v), DATE_REASON)),
        }
    }

    /// The only child element `field` of the record element, if any; two are an error.
    fn child(&self, field: Field) -> Result<Option<usize>, ParseError> {
        match self.buf.fields[field as usize] {
            (first, None) => Ok(first),
            (_, Some(second)) => Err(self.invalid(
                second,
                field.name(),
                None,
                "the element appears more than once",
            )),
        }
    }

    /// The only child element `name` of element `parent` (below the record element), if any.
    fn child_of(&self, parent: usize, name: &'static str) -> Result<Option<usize>, ParseError> {
        let mut found = self
            .buf
            .children(parent)
            .filter(|&c| self.buf.name(c) == name);
        let first = found.next();
        if let Some(second) = found.next() {
            return Err(self.invalid(second, name, None, "the element appears more than once"));
        }
        Ok(first)
    }

    /// Trimmed text of the child element `name` of `parent`; `None` if absent or empty.
    fn text_in(&self, parent: usize, name: &'static str) -> Result<Option<String>, ParseError> {
        match self.child_of(parent, name)? {
            None => Ok(None),
            Some(i) => self.simple_text(i, name),
        }
    }

    fn simple_text(&self, i: usize, field: &'static str) -> Result<Option<String>, ParseError> {
        if self.buf.elems[i].children > 0 {
            return Err(self.invalid(i, field, None, "expected text, found child elements"));
        }
        let t = self.buf.text(i);
        Ok((!t.is_empty()).then(|| t.to_string()))
    }

    fn text(&self, field: Field) -> Result<Option<String>, ParseError> {
        match self.child(field)? {
            None => Ok(None),
            Some(i) => self.simple_text(i, field.name()),
        }
    }

    fn required_text(&self, field: Field) -> Result<String, ParseError> {
        self.text(field)?.ok_or_else(|| self.missing(field.name()))
    }

    fn date(&self, field: Field) -> Result<Option<Date>, ParseError> {
        let Some(i) = self.child(field)? else {
            return Ok(None);
        };
        let name = field.name();
        if self.buf.elems[i].children > 0 {
            return Err(self.invalid(i, name, None, "expected text, found child elements"));
        }
        match self.buf.text(i) {
            "" => Ok(None),
            v => parse_date(v)
                .map(Some)
                .ok_or_else(|| self.invalid(i, name, Some(v), DATE_REASON)),
        }
    }

    fn unit(&self, digest: Digest) -> Result<Unit, ParseError> {
        let buf = self.buf;
        let id = self.required_attr("@id")?;
        let parent = match self.child(Field::ParentOrgUnit)? {
            None => return Err(self.missing("parentOrgUnit")),
            Some(p) => self.simple_text(p, "parentOrgUnit")?,
        };
        let leaves = || buf.children(0).filter(|&c| buf.elems[c].children == 0);
        let mut fields = Vec::with_capacity(leaves().count());
        fields.extend(leaves().map(|c| (buf.name(c).to_string(), buf.text(c).to_string())));
        Ok(Unit {
            id,
            line: buf.elems[0].line,
            digest,
            client: self.optional_attr("client"),
            last_changed: self.date_attr(0, "lastChanged", "@lastChanged")?,
            start_date: self.date(Field::StartDate)?,
            end_date: self.date(Field::EndDate)?,
            parent,
            long_name: self.required_text(Field::LongName)?,
            short_name: self.text(Field::ShortName)?,
            street: self.text(Field::Street)?,
            zip_code: self.text(Field::ZipCode)?,
            phone_number: self.text(Field::PhoneNumber)?,
            cvr: self.text(Field::CvrNr)?,
            ean: self.text(Field::EanNr)?,
            se: self.text(Field::SeNr)?,
            p_nr: self.text(Field::PNr)?,
            org_type: self.text(Field::OrgType)?,
            org_type_txt: self.text(Field::OrgTypeTxt)?,
            fields,
        })
    }

    fn employee(&self, digest: Digest) -> Result<Employee, ParseError> {
        let id = self.required_attr("@id")?;
        let action = self.optional_attr("action");
        let last_changed = self.date_attr(0, "lastChanged", "@lastChanged")?;
        let data = if action.as_deref() == Some("leave") && self.buf.elems[0].children == 0 {
            None
        } else {
            Some(Box::new(self.employee_data()?))
        };
        Ok(Employee {
            id,
            line: self.buf.elems[0].line,
            digest,
            client: self.optional_attr("client"),
            last_changed,
            action,
            data,
        })
    }

    fn employee_data(&self) -> Result<EmployeeData, ParseError> {
        let buf = self.buf;
        let cpr = match self.child(Field::Cpr)? {
            None => return Err(self.missing("cpr")),
            Some(c) => {
                if buf.elems[c].children > 0 {
                    return Err(self.invalid(c, "cpr", None, "not a valid CPR number"));
                }
                if buf.text(c).is_empty() {
                    return Err(self.missing("cpr"));
                }
                Cpr::parse(buf.text(c))
                    .map_err(|_| self.invalid(c, "cpr", None, "not a valid CPR number"))?
            }
        };
        let address = match self.child(Field::Address)? {
            None => None,
            Some(a) if !buf.elems[a].attrs.is_empty() || buf.elems[a].children > 0 => {
                Some(AddressField::Protected)
            }
            Some(a) => {
                let t = buf.text(a);
                (!t.is_empty()).then(|| AddressField::Plain(t.to_string()))
            }
        };
        let function_elems = || {
            buf.children(0)
                .filter(|&c| buf.elems[c].field == Some(Field::Function))
        };
        let mut functions = Vec::with_capacity(function_elems().count());
        for f in function_elems() {
            functions.push(Function {
                start_date: self.date_attr(f, "startDate", "function/@startDate")?,
                end_date: self.date_attr(f, "endDate", "function/@endDate")?,
                art_text: self.text_in(f, "artText")?,
                role_text: self.text_in(f, "roleText")?,
            });
        }
        Ok(EmployeeData {
            cpr,
            entry_date: self.date(Field::EntryDate)?,
            leave_date: self.date(Field::LeaveDate)?,
            first_name: self.text(Field::FirstName)?,
            last_name: self.text(Field::LastName)?,
            address,
            postal_code: self.text(Field::PostalCode)?,
            city: self.text(Field::City)?,
            country: self.text(Field::Country)?,
            work_phone: self.text(Field::WorkPhone)?,
            email: self.text(Field::Email)?,
            user_id: self.text(Field::UserId)?,
            work_contract: self.text(Field::WorkContract)?,
            work_contract_text: self.text(Field::WorkContractText)?,
            position_id: self.text(Field::PositionId)?,
            position: self.text(Field::Position)?,
            position_short: self.text(Field::PositionShort)?,
            is_manager: self.text(Field::IsManager)?,
            superior_level: self.text(Field::SuperiorLevel)?,
            subordinate_level: self.text(Field::SubordinateLevel)?,
            org_unit: self.required_text(Field::OrgUnit)?,
            pay_grade_text: self.text(Field::PayGradeText)?,
            numerator: self.text(Field::Numerator)?,
            denominator: self.text(Field::Denominator)?,
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
        parse_all_ways_with(xml.as_bytes(), "test.xml", 16)
    }

    /// Both results the same; errors are compared without their source.
    fn assert_same(a: &Result<Dump, ParseError>, b: &Result<Dump, ParseError>, what: &str) {
        let key = |e: &ParseError| {
            (
                e.line,
                e.column,
                e.element.clone(),
                e.field,
                format!("{:?}", e.kind),
            )
        };
        match (a, b) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}"),
            (Err(a), Err(b)) => assert_eq!(key(a), key(b), "{what}"),
            (a, b) => panic!("{what}: {a:?} versus {b:?}"),
        }
    }

    /// Parse as [`parse_dump`] does; then with an offset for every event (an event that is
    /// given none but needs one shows up as a difference, or as a failed debug assertion); then
    /// as [`parse_file`] does for large files, split at up to `splits` places (every `<` if
    /// there are fewer). All must agree; the first result is returned.
    fn parse_all_ways_with(bytes: &[u8], source: &str, splits: usize) -> Result<Dump, ParseError> {
        let one = parse_dump(bytes, source);
        let all = Parse::new(bytes, source).and_then(|mut parse| {
            parse.events.all_offsets = true;
            parse.run_to_end()
        });
        assert_same(&one, &all, "all offsets");
        if bytes.starts_with(b"\xEF\xBB\xBF") {
            return one;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.xml");
        std::fs::write(&path, bytes).unwrap();
        let tags: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] == b'<').collect();
        let step = tags.len().div_ceil(splits.max(1)).max(1);
        for &at in tags.iter().step_by(step) {
            let split = Split {
                at: at as u64,
                last_newline: bytes[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map(|i| i as u64),
            };
            let file = std::fs::File::open(&path).unwrap();
            // One record per chunk, to see chunks put together.
            let two = parse_split(&path, source, file, Some(split), 1);
            assert_same(&one, &two, &format!("split at {at}"));
        }
        let two = parse_file_with(&path, 0);
        assert_same(&one, &two, "split where parse_file would");
        one
    }

    fn parse_all_ways(bytes: &[u8], source: &str) -> Result<Dump, ParseError> {
        parse_all_ways_with(bytes, source, usize::MAX)
    }

    fn parse_path(path: &Path) -> Result<Dump, ParseError> {
        let bytes = std::fs::read(path).unwrap();
        let source = path.display().to_string();
        let result = parse_all_ways(&bytes, &source);
        // And through the file API, which must agree too.
        match (&result, parse_file(path)) {
            (Ok(a), Ok(b)) => assert_eq!(*a, b),
            (Err(a), Err(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
            (a, b) => panic!("{a:?} versus {b:?}"),
        }
        result
    }

    fn err_of(rel: &str) -> ParseError {
        parse_path(&fixture(rel)).expect_err(rel)
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
        let dump = parse_path(&fixture(DAY1)).unwrap();
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
        let dump = parse_path(&fixture(DAY2)).unwrap();
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
        let d1 = parse_path(&fixture(DAY1)).unwrap();
        let d2 = parse_path(&fixture(DAY2)).unwrap();
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
            let dump = parse_path(&fixture(rel)).unwrap();
            assert_eq!(digest_lines(&dump), *expected, "{rel}");
        }

        // A small generated dump over three days (changes, new units, leave markers).
        let dir = tempfile::tempdir().unwrap();
        let spec = dipex_testkit::synth::SynthSpec {
            units: 40,
            employees: 400,
            days: 3,
            seed: 7,
            start: jiff::civil::date(2024, 1, 1),
        };
        let paths = dipex_testkit::synth::write_dumps(&spec, dir.path()).unwrap();
        let mut summary = Vec::new();
        for path in &paths {
            let bytes = std::fs::read(path).unwrap();
            let dump = parse_all_ways_with(&bytes, "generated", 8).unwrap();
            assert_eq!(parse_file(path).unwrap(), dump);
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
                "440 e65e72c5fa0a7302f8ff3db8ad1a72bc",
                "441 7ea7307c8cba44b831a20aab70c2bfaa",
                "441 9b6da6615a70c21f25eb9df105624bc8",
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
            let dump = parse_path(&fixture(rel)).unwrap();
            assert!(dump.units.len() >= 3, "{rel}");
        }
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let e = parse_file(Path::new("/nonexistent/ZLPE20200101220000_delta.xml")).unwrap_err();
        assert!(matches!(e.kind, ParseErrorKind::Io(_)));
        // The message shows the I/O error; it is not given again as `source()` (printed once).
        assert_eq!(
            e.to_string(),
            "/nonexistent/ZLPE20200101220000_delta.xml:1:1: I/O error: No such file or directory (os error 2)"
        );
        assert!(std::error::Error::source(&e).is_none());
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
        let e = parse_all_ways(&utf16, "x").unwrap_err();
        assert!(matches!(e.kind, ParseErrorKind::Encoding(_)), "{e}");
        // Latin-1 bytes without a declaration: invalid UTF-8, reported with its line.
        let bytes = b"<kmd>\n<orgUnit id=\"1\"><parentOrgUnit/>\n<longName>\xC6r\xF8</longName></orgUnit></kmd>";
        let e = parse_all_ways(&bytes[..], "x").unwrap_err();
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
    fn fields_are_in_name_order() {
        let names: Vec<&[u8]> = Field::ALL.iter().map(|f| f.name().as_bytes()).collect();
        assert!(names.is_sorted_by(|a, b| a < b), "{names:?}");
        assert_eq!(Field::ALL.len(), Field::COUNT);
        for (i, f) in Field::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i);
            assert_eq!(Field::from_name(f.name()), Some(*f));
        }
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
            let _ = parse_all_ways_with(&bytes, "prop", 4);
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
            if let Err(e) = parse_all_ways_with(&mutated, "prop", 8) {
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
