//! The IMAP command grammar (RFC 9051 §9, with the RFC 3501 forms rev1 clients send).
//!
//! [`parse_command`] takes one complete command as framed by [`super::Assembler`] (literals
//! inline as `{N}` CRLF octets) and returns a typed [`Command`] or a [`ParseError`] that says
//! what was wrong, carrying the tag when there was one so the driver answers `tag BAD ...`.

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: String,
    pub body: CommandBody,
}

/// A sequence number or UID, or `*` (the largest in use), or `$`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNum {
    Num(u32),
    Star,
    /// `$`, the session's saved search result (RFC 5182 §2.1 `seq-last-command`). It is
    /// only ever a whole set on its own ([`SeqSet::saved`]); the server replaces it with the
    /// messages it stands for before using the set, and left in place it names nothing.
    Saved,
}

/// A sequence set (RFC 9051 §9 `sequence-set`): ranges as written; a range's bounds may be in
/// either order (RFC 9051 §9: "2:4" and "4:2" are equivalent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqSet(pub Vec<(SeqNum, SeqNum)>);

impl SeqSet {
    /// `$` (RFC 5182 §2.1): the saved search result, as the parser returns it.
    pub fn saved() -> SeqSet {
        SeqSet(vec![(SeqNum::Saved, SeqNum::Saved)])
    }

    /// True if the set is `$` (RFC 5182), to be replaced by the saved search result.
    pub fn is_saved(&self) -> bool {
        self.0
            .iter()
            .any(|&(a, b)| a == SeqNum::Saved || b == SeqNum::Saved)
    }

    /// The set as sorted, merged, inclusive ranges, with `*` standing for `largest`: lookups
    /// are then a binary search, however many ranges a client sent.
    /// An unreplaced `$` contributes nothing.
    pub fn normalized(&self, largest: u32) -> Vec<(u32, u32)> {
        let v = |s: SeqNum| match s {
            SeqNum::Num(x) => x,
            SeqNum::Star => largest,
            SeqNum::Saved => 0,
        };
        let mut r: Vec<(u32, u32)> = self
            .0
            .iter()
            .filter(|&&(a, b)| a != SeqNum::Saved && b != SeqNum::Saved)
            .map(|&(a, b)| (v(a).min(v(b)), v(a).max(v(b))))
            .collect();
        r.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(r.len());
        for (lo, hi) in r {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        out
    }

    /// How many numbers the set names (`*` as the largest number there is).
    pub fn count(&self) -> u64 {
        self.normalized(u32::MAX)
            .iter()
            .map(|&(lo, hi)| u64::from(hi - lo) + 1)
            .sum()
    }

    /// Membership in a [`SeqSet::normalized`] list.
    pub fn in_normalized(ranges: &[(u32, u32)], n: u32) -> bool {
        let i = ranges.partition_point(|&(lo, _)| lo <= n);
        i > 0 && ranges[i - 1].1 >= n
    }

    /// True if `n` is in the set, where `*` stands for `largest` (an unreplaced `$` holds
    /// nothing).
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        self.0.iter().any(|&(a, b)| {
            let v = |s: SeqNum| match s {
                SeqNum::Num(x) => x,
                SeqNum::Star => largest,
                SeqNum::Saved => 0,
            };
            let (lo, hi) = (v(a).min(v(b)), v(a).max(v(b)));
            n >= lo && n <= hi
        })
    }
}

/// A message flag as a client names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flag {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
    Recent,
    /// `\*` in PERMANENTFLAGS only.
    Keyword(String),
    /// Another `\Word` (not storable).
    Extension(String),
}

impl Flag {
    pub fn parse(s: &str) -> Flag {
        match s.to_ascii_lowercase().as_str() {
            "\\seen" => Flag::Seen,
            "\\answered" => Flag::Answered,
            "\\flagged" => Flag::Flagged,
            "\\deleted" => Flag::Deleted,
            "\\draft" => Flag::Draft,
            "\\recent" => Flag::Recent,
            _ if s.starts_with('\\') => Flag::Extension(s.to_string()),
            _ => Flag::Keyword(s.to_string()),
        }
    }
}

/// STORE's operation (RFC 9051 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Replace,
    Add,
    Remove,
}

/// A BODY[...] section (RFC 9051 §6.4.5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    /// Part numbers, empty for the whole message.
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    Mime,
}

impl Section {
    /// The section spec as echoed in the response, e.g. `1.2.HEADER.FIELDS (FROM)`.
    pub fn spec(&self) -> String {
        let mut s: Vec<String> = self.part.iter().map(|n| n.to_string()).collect();
        if let Some(t) = &self.text {
            s.push(match t {
                SectionText::Header => "HEADER".into(),
                SectionText::Text => "TEXT".into(),
                SectionText::Mime => "MIME".into(),
                SectionText::HeaderFields(f) => format!("HEADER.FIELDS ({})", f.join(" ")),
                SectionText::HeaderFieldsNot(f) => {
                    format!("HEADER.FIELDS.NOT ({})", f.join(" "))
                }
            });
        }
        s.join(".")
    }
}

/// One FETCH data item (RFC 9051 §6.4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAtt {
    Envelope,
    Flags,
    InternalDate,
    Rfc822Size,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    Body,
    BodyStructure,
    Uid,
    ModSeq,
    BodySection {
        peek: bool,
        section: Section,
        /// `<origin.count>`.
        partial: Option<(u32, u32)>,
    },
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<(u32, u32)>,
    },
    BinarySize(Vec<u32>),
}

/// A SEARCH key (RFC 9051 §6.4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Answered,
    Deleted,
    Draft,
    Flagged,
    Seen,
    Recent,
    New,
    Old,
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unseen,
    Keyword(String),
    Unkeyword(String),
    Bcc(String),
    Cc(String),
    From(String),
    To(String),
    Subject(String),
    Body(String),
    Text(String),
    Header(String, String),
    /// Dates as (year, month, day).
    Before((i32, u32, u32)),
    On((i32, u32, u32)),
    Since((i32, u32, u32)),
    SentBefore((i32, u32, u32)),
    SentOn((i32, u32, u32)),
    SentSince((i32, u32, u32)),
    Larger(u64),
    Smaller(u64),
    Uid(SeqSet),
    Seq(SeqSet),
    ModSeq(u64),
    Not(Box<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    And(Vec<SearchKey>),
}

/// ESEARCH result options (RFC 4731 / RFC 9051 §6.4.4), also SORT's (RFC 5267 §3 ESORT).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchReturn {
    pub min: bool,
    pub max: bool,
    pub all: bool,
    pub count: bool,
    pub save: bool,
    /// `PARTIAL range` (RFC 5267 §4.4 for SEARCH and SORT; RFC 9394 ranges from the end).
    pub partial: Option<PartialRange>,
    /// `UPDATE` (RFC 5267 §4.3, CONTEXT=SEARCH and CONTEXT=SORT): keep the result and send
    /// ADDTO / REMOVEFROM as it changes. It counts as an option: `RETURN (UPDATE)` alone does
    /// not imply ALL.
    pub update: bool,
}

/// A `PARTIAL` range of result positions, 1-based, bounds in order (`4:2` is `2:4`).
/// RFC 5267 §4.4 `partial-range = nz-number ":" nz-number`; RFC 9394 §3 adds
/// `"-" nz-number ":" "-" nz-number`, positions counted from the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartialRange {
    /// Positions `lo..=hi` from the start.
    First(u32, u32),
    /// Positions `lo..=hi` from the end: `Last(1, 10)` is the last ten, written `-1:-10`.
    Last(u32, u32),
}

impl PartialRange {
    /// The part of `results` (in result order) the range names; empty when it names none.
    pub fn slice<'a, T>(&self, results: &'a [T]) -> &'a [T] {
        let n = results.len();
        let (lo, hi) = match *self {
            PartialRange::First(lo, hi) => (lo as usize, hi as usize),
            PartialRange::Last(lo, hi) => (lo as usize, hi as usize),
        };
        if lo == 0 || lo > n {
            return &[];
        }
        let hi = hi.min(n);
        match self {
            PartialRange::First(..) => &results[lo - 1..hi],
            PartialRange::Last(..) => &results[n - hi..n - lo + 1],
        }
    }
}

impl std::fmt::Display for PartialRange {
    /// As echoed in the ESEARCH response: `2:4`, `-1:-10`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PartialRange::First(lo, hi) => write!(f, "{lo}:{hi}"),
            PartialRange::Last(lo, hi) => write!(f, "-{lo}:-{hi}"),
        }
    }
}

/// What a SORT criterion sorts by (RFC 5256 §3 `sort-key`; DISPLAYFROM and DISPLAYTO are
/// RFC 5957 §3's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// INTERNALDATE.
    Arrival,
    /// The addr-mailbox of the first Cc address.
    Cc,
    /// The sent date (RFC 5256 §2.2): the Date header, else INTERNALDATE.
    Date,
    /// The addr-mailbox of the first From address.
    From,
    /// RFC822.SIZE.
    Size,
    /// The base subject (RFC 5256 §2.1).
    Subject,
    /// The addr-mailbox of the first To address.
    To,
    /// The display name of the first From address, else its addr-spec (RFC 5957 §3).
    DisplayFrom,
    /// The same for the first To address.
    DisplayTo,
}

/// One SORT criterion (RFC 5256 §3 `sort-criterion = ["REVERSE" SP] sort-key`). REVERSE
/// reverses this key only, not the final tie-break by sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    pub reverse: bool,
    pub key: SortKey,
}

/// A THREAD algorithm (RFC 5256 §3 `thread-alg`): the two this server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    /// THREAD=ORDEREDSUBJECT ("poor man's threading", RFC 5256 §3).
    OrderedSubject,
    /// THREAD=REFERENCES (RFC 5256 §3).
    References,
}

/// `[UID] SORT [RETURN (...)] (criteria) charset search-key...` (RFC 5256 §3, RFC 5267 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortCommand {
    pub uid: bool,
    /// `RETURN (...)` (RFC 5267 ESORT): answered by ESEARCH instead of SORT.
    pub ret: Option<SearchReturn>,
    /// At least one.
    pub criteria: Vec<SortCriterion>,
    /// Mandatory in SORT (RFC 5256 §3), as sent.
    pub charset: String,
    pub key: SearchKey,
}

/// `[UID] THREAD algorithm charset search-key...` (RFC 5256 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadCommand {
    pub uid: bool,
    pub algorithm: ThreadAlgorithm,
    /// Mandatory in THREAD (RFC 5256 §3), as sent.
    pub charset: String,
    pub key: SearchKey,
}

/// One message of an APPEND (RFC 9051 §6.3.12; RFC 3502 §6.3.11 repeats these for
/// MULTIAPPEND): its flags, its internal date as sent, its octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<Flag>,
    pub date: Option<String>,
    /// The message's octets; empty when it is built by CATENATE.
    pub message: Vec<u8>,
    /// RFC 4469 CATENATE: the message is these parts joined, in order.
    pub catenate: Option<Vec<CatPart>>,
}

/// One part of a CATENATE list (RFC 4469 §5): text as sent, or an IMAP URL (RFC 5092) whose
/// octets the server fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatPart {
    Text(Vec<u8>),
    Url(String),
}

/// The most parts one CATENATE list may hold (RFC 4469 sets no bound).
pub const MAX_CATENATE_PARTS: usize = 1000;

/// The most messages one APPEND may carry (RFC 3502 sets no bound; each message needs at
/// least a few octets of command text, which `MAX_COMMAND_TEXT` bounds as well).
pub const MAX_APPEND_MESSAGES: usize = 1000;

/// LIST options (RFC 5258 LIST-EXTENDED, RFC 6154, RFC 5819).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOptions {
    pub subscribed: bool,
    pub special_use_only: bool,
    pub recursive_match: bool,
    pub return_subscribed: bool,
    pub return_children: bool,
    pub return_special_use: bool,
    pub return_status: Option<Vec<String>>,
    /// Any selection or return option was given (the extended syntax).
    pub extended: bool,
}

/// SELECT/EXAMINE's QRESYNC parameter (RFC 7162 §3.2.5): what the client last knew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    pub uidvalidity: u32,
    pub modseq: u64,
    /// The UIDs the client holds (`None`: all).
    pub known_uids: Option<SeqSet>,
    /// `(seq-set uid-set)`: message numbers and the UIDs they had (§3.2.5.2).
    pub seq_match: Option<(SeqSet, SeqSet)>,
}

/// RFC 5465 §6 `filter-mailboxes`: which mailboxes an event group is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyFilter {
    Selected,
    SelectedDelayed,
    Inboxes,
    Personal,
    Subscribed,
    /// The mailboxes named and every mailbox below them.
    Subtree(Vec<String>),
    /// Exactly the mailboxes named.
    Mailboxes(Vec<String>),
}

impl NotifyFilter {
    /// `selected` or `selected-delayed`: the selected mailbox, not a set of others.
    pub fn is_selected(&self) -> bool {
        matches!(self, NotifyFilter::Selected | NotifyFilter::SelectedDelayed)
    }
}

/// RFC 5465 §5 events, as named in a NOTIFY SET (names are case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyEvent {
    /// `MessageNew [(fetch-att ...)]` (§5.2); the attributes only for the selected mailbox.
    MessageNew(Vec<FetchAtt>),
    MessageExpunge,
    FlagChange,
    AnnotationChange,
    MailboxName,
    SubscriptionChange,
    MailboxMetadataChange,
    ServerMetadataChange,
    /// Any other atom (§8 `event-ext`): the server answers `NO [BADEVENT]`.
    Other(String),
}

/// One `(filter events)` group of NOTIFY SET; `events` empty stands for `NONE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyGroup {
    pub filter: NotifyFilter,
    pub events: Vec<NotifyEvent>,
}

/// `NOTIFY SET [STATUS] group...` (RFC 5465 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySet {
    /// The STATUS indicator: an untagged STATUS now for each mailbox the groups name.
    pub status: bool,
    pub groups: Vec<NotifyGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    Capability,
    Noop,
    Logout,
    StartTls,
    Authenticate {
        mechanism: String,
        initial: Option<String>,
    },
    Login {
        user: String,
        password: String,
    },
    Enable(Vec<String>),
    Select {
        mailbox: String,
        read_only: bool,
        condstore: bool,
        /// `(QRESYNC (...))` (RFC 7162 §3.2.5).
        qresync: Option<Qresync>,
    },
    Create(String),
    Delete(String),
    Rename(String, String),
    Subscribe(String),
    Unsubscribe(String),
    List {
        reference: String,
        patterns: Vec<String>,
        options: ListOptions,
    },
    Lsub {
        reference: String,
        pattern: String,
    },
    Namespace,
    Status {
        mailbox: String,
        items: Vec<String>,
    },
    /// APPEND with one message, or several (RFC 3502 MULTIAPPEND): never empty.
    Append {
        mailbox: String,
        messages: Vec<AppendMessage>,
    },
    Idle,
    Check,
    Close,
    Unselect,
    Expunge {
        uids: Option<SeqSet>,
    },
    Search {
        uid: bool,
        ret: Option<SearchReturn>,
        charset: Option<String>,
        key: SearchKey,
    },
    /// `[UID] SORT` (RFC 5256 §3, RFC 5267 ESORT).
    Sort(SortCommand),
    /// `[UID] THREAD` (RFC 5256 §3).
    Thread(ThreadCommand),
    Fetch {
        uid: bool,
        set: SeqSet,
        items: Vec<FetchAtt>,
        /// The items were given as a macro or in parentheses (affects nothing but tracing).
        changed_since: Option<u64>,
        /// The VANISHED modifier (RFC 7162 §3.2.6; UID FETCH with CHANGEDSINCE only).
        vanished: bool,
    },
    Store {
        uid: bool,
        set: SeqSet,
        mode: StoreMode,
        silent: bool,
        flags: Vec<Flag>,
        unchanged_since: Option<u64>,
    },
    Copy {
        uid: bool,
        set: SeqSet,
        mailbox: String,
    },
    Move {
        uid: bool,
        set: SeqSet,
        mailbox: String,
    },
    Id(Vec<(String, Option<String>)>),
    /// `GETQUOTA root` (RFC 9208 §4.1.1): a quota root's usage and limits.
    GetQuota(String),
    /// `GETQUOTAROOT mailbox` (RFC 9208 §4.1.2): the mailbox's quota roots and their quotas.
    GetQuotaRoot(String),
    /// `SETQUOTA root (RESOURCE limit ...)` (RFC 9208 §4.1.3); resource names upper-cased.
    SetQuota {
        root: String,
        limits: Vec<(String, u64)>,
    },
    /// `CANCELUPDATE "tag" ...` (RFC 5267 §4.3.5): the updating searches to end; never empty.
    CancelUpdate(Vec<String>),
    /// `NOTIFY NONE` (`None`) or `NOTIFY SET ...` (RFC 5465 §3.1).
    Notify(Option<NotifySet>),
}

impl CommandBody {
    /// The command name for replies ("UID FETCH", "SELECT", ...).
    pub fn name(&self) -> &'static str {
        use CommandBody::*;
        match self {
            Capability => "CAPABILITY",
            Noop => "NOOP",
            Logout => "LOGOUT",
            StartTls => "STARTTLS",
            Authenticate { .. } => "AUTHENTICATE",
            Login { .. } => "LOGIN",
            Enable(_) => "ENABLE",
            Select {
                read_only: false, ..
            } => "SELECT",
            Select { .. } => "EXAMINE",
            Create(_) => "CREATE",
            Delete(_) => "DELETE",
            Rename(..) => "RENAME",
            Subscribe(_) => "SUBSCRIBE",
            Unsubscribe(_) => "UNSUBSCRIBE",
            List { .. } => "LIST",
            Lsub { .. } => "LSUB",
            Namespace => "NAMESPACE",
            Status { .. } => "STATUS",
            Append { .. } => "APPEND",
            Idle => "IDLE",
            Check => "CHECK",
            Close => "CLOSE",
            Unselect => "UNSELECT",
            Expunge { uids: None } => "EXPUNGE",
            Expunge { .. } => "UID EXPUNGE",
            Search { uid: false, .. } => "SEARCH",
            Search { .. } => "UID SEARCH",
            Sort(SortCommand { uid: false, .. }) => "SORT",
            Sort(_) => "UID SORT",
            Thread(ThreadCommand { uid: false, .. }) => "THREAD",
            Thread(_) => "UID THREAD",
            Fetch { uid: false, .. } => "FETCH",
            Fetch { .. } => "UID FETCH",
            Store { uid: false, .. } => "STORE",
            Store { .. } => "UID STORE",
            Copy { uid: false, .. } => "COPY",
            Copy { .. } => "UID COPY",
            Move { uid: false, .. } => "MOVE",
            Move { .. } => "UID MOVE",
            Id(_) => "ID",
            GetQuota(_) => "GETQUOTA",
            GetQuotaRoot(_) => "GETQUOTAROOT",
            SetQuota { .. } => "SETQUOTA",
            CancelUpdate(_) => "CANCELUPDATE",
            Notify(_) => "NOTIFY",
        }
    }
}

/// Why a command was refused by the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("a command starts with a tag, a space and a command name, e.g. \"a1 CAPABILITY\"")]
    NoTag,
    #[error("unknown command {0}; try CAPABILITY for the list of what this server does")]
    Unknown(String),
    /// The line starts with a command name where the tag belongs (`LOGIN alice secret`): the
    /// tag was forgotten. What the person typed at telnet, answered with what to type.
    #[error("every command starts with a tag of your choosing, then the command: type \"a1 {0} ...\" (your line with \"a1 \" in front)")]
    TagMissing(String),
    #[error("{0}")]
    Syntax(String),
    /// A mailbox name (or LIST reference / pattern) whose octets are not UTF-8, e.g. Latin-1
    /// in a literal. Not a syntax error but a name the server refuses: the driver answers
    /// `NO` with a text that fits the session (modified UTF-7 or UTF-8), so it gets the
    /// octets.
    #[error("the mailbox name is not valid UTF-8 (nor modified UTF-7)")]
    MailboxNotUtf8(Vec<u8>),
}

/// A parse error with the tag it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedError {
    pub tag: Option<String>,
    pub error: ParseError,
}

/// RFC 9051 §9 `tag`: ASTRING-CHAR except "+".
pub fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

type PResult<T> = Result<T, ParseError>;

fn syntax<T>(msg: impl Into<String>) -> PResult<T> {
    Err(ParseError::Syntax(msg.into()))
}

struct P<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> P<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn at_end(&self) -> bool {
        self.i >= self.b.len()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn sp(&mut self, what: &str) -> PResult<()> {
        if self.eat(b' ') {
            Ok(())
        } else if self.at_end() {
            syntax(format!("missing {what}"))
        } else {
            syntax(format!("expected a space before {what}"))
        }
    }
    fn expect(&mut self, c: u8, what: &str) -> PResult<()> {
        if self.eat(c) {
            Ok(())
        } else {
            syntax(format!("expected {what}"))
        }
    }
    fn end(&mut self) -> PResult<()> {
        if self.at_end() {
            Ok(())
        } else {
            let rest = String::from_utf8_lossy(&self.b[self.i..]);
            // An atom stops at the first octet beyond ASCII: `SUBJECT Grüße` leaves "üße".
            let hint = if self.b[self.i] >= 0x80 {
                " (text beyond ASCII must be a quoted string, e.g. SUBJECT \"Grüße\", or a literal)"
            } else {
                ""
            };
            syntax(format!(
                "unexpected text at the end: {:?}{hint}",
                truncate(&rest)
            ))
        }
    }
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        &self.b[start..self.i]
    }
    fn atom(&mut self, what: &str) -> PResult<String> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return syntax(format!("expected {what}"));
        }
        Ok(String::from_utf8_lossy(a).into_owned())
    }
    fn number(&mut self, what: &str) -> PResult<u64> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() || d.len() > 19 {
            return syntax(format!("expected a number for {what}"));
        }
        std::str::from_utf8(d)
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or_else(|| syntax(format!("bad number for {what}")), Ok)
    }
    fn nz_number(&mut self, what: &str) -> PResult<u32> {
        let n = self.number(what)?;
        if n == 0 || n > u64::from(u32::MAX) {
            return syntax(format!("{what} must be between 1 and 4294967295"));
        }
        Ok(n as u32)
    }
    fn quoted(&mut self) -> PResult<Vec<u8>> {
        self.expect(b'"', "a quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return syntax("unterminated quoted string"),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(c);
                            self.i += 1;
                        }
                        _ => return syntax("in a quoted string only \\\" and \\\\ may be escaped"),
                    }
                }
                Some(b'\r' | b'\n') => return syntax("a quoted string cannot contain CR or LF"),
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }
    fn literal(&mut self) -> PResult<Vec<u8>> {
        self.eat(b'~');
        self.expect(b'{', "a literal")?;
        let n = self.number("the literal size")?;
        self.eat(b'+');
        self.expect(b'}', "} after the literal size")?;
        if !(self.eat(b'\r') && self.eat(b'\n')) {
            return syntax("a literal size must end the line");
        }
        let n = usize::try_from(n).map_or_else(|_| syntax("literal too large"), Ok)?;
        if self.b.len() - self.i < n {
            return syntax("the literal is shorter than its declared size");
        }
        let v = self.b[self.i..self.i + n].to_vec();
        self.i += n;
        Ok(v)
    }
    fn string(&mut self, what: &str) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{' | b'~') => self.literal(),
            _ => syntax(format!("expected {what} as a quoted string or a literal")),
        }
    }
    fn astring_bytes(&mut self, what: &str) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(what),
            _ => {
                let a = self.take_while(is_astring_char);
                if a.is_empty() {
                    return syntax(format!("expected {what}"));
                }
                Ok(a.to_vec())
            }
        }
    }
    fn astring(&mut self, what: &str) -> PResult<String> {
        let b = self.astring_bytes(what)?;
        String::from_utf8(b).map_or_else(|_| syntax(format!("{what} is not UTF-8")), Ok)
    }
    /// A mailbox name, or a LIST reference: an astring whose octets must be UTF-8 (see
    /// [`ParseError::MailboxNotUtf8`]); the driver decodes modified UTF-7 where it applies.
    fn mailbox(&mut self, what: &str) -> PResult<String> {
        let b = self.astring_bytes(what)?;
        String::from_utf8(b).map_err(|e| ParseError::MailboxNotUtf8(e.into_bytes()))
    }
    fn list_mailbox(&mut self) -> PResult<String> {
        match self.peek() {
            Some(b'"' | b'{') => self.mailbox("a mailbox pattern"),
            _ => {
                let a = self.take_while(is_list_char);
                if a.is_empty() {
                    return syntax("expected a mailbox pattern");
                }
                Ok(String::from_utf8_lossy(a).into_owned())
            }
        }
    }
    fn seq_num(&mut self) -> PResult<SeqNum> {
        if self.eat(b'*') {
            Ok(SeqNum::Star)
        } else {
            Ok(SeqNum::Num(self.nz_number("a message number")?))
        }
    }
    fn seq_set(&mut self) -> PResult<SeqSet> {
        // RFC 5182 §4: `sequence-set =/ seq-last-command`, a `$` on its own.
        if self.eat(b'$') {
            if matches!(self.peek(), Some(b',' | b':')) {
                return syntax(
                    "$ stands for the whole saved search result and cannot be combined with numbers",
                );
            }
            return Ok(SeqSet::saved());
        }
        let mut v = Vec::new();
        loop {
            let a = self.seq_num()?;
            let b = if self.eat(b':') { self.seq_num()? } else { a };
            v.push((a, b));
            if !self.eat(b',') {
                break;
            }
        }
        Ok(SeqSet(v))
    }
    fn flag(&mut self) -> PResult<Flag> {
        let start = self.i;
        if self.eat(b'\\') {
            if self.eat(b'*') {
                return Ok(Flag::Keyword("\\*".into()));
            }
            self.atom("a flag name after \\")?;
        } else {
            self.atom("a flag")?;
        }
        Ok(Flag::parse(&String::from_utf8_lossy(
            &self.b[start..self.i],
        )))
    }
    fn flag_list(&mut self) -> PResult<Vec<Flag>> {
        self.expect(b'(', "( to start the flag list")?;
        let mut v = Vec::new();
        if self.eat(b')') {
            return Ok(v);
        }
        loop {
            v.push(self.flag()?);
            if self.eat(b')') {
                return Ok(v);
            }
            self.sp("the next flag or )")?;
        }
    }
    /// `(a b c)` of atoms/astrings.
    fn paren_list(&mut self, what: &str) -> PResult<Vec<String>> {
        self.expect(b'(', &format!("( to start {what}"))?;
        let mut v = Vec::new();
        if self.eat(b')') {
            return Ok(v);
        }
        loop {
            v.push(self.astring(what)?);
            if self.eat(b')') {
                return Ok(v);
            }
            self.sp(&format!("the rest of {what}"))?;
        }
    }
    fn date(&mut self) -> PResult<(i32, u32, u32)> {
        let quoted = self.eat(b'"');
        let d = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'-');
        let s = String::from_utf8_lossy(d).into_owned();
        if quoted {
            self.expect(b'"', "\" after the date")?;
        }
        parse_date(&s).map_or_else(
            || syntax(format!("{s:?} is not a date like 1-Feb-2024")),
            Ok,
        )
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// `d-Mon-yyyy` (RFC 9051 §9 `date-text`).
pub fn parse_date(s: &str) -> Option<(i32, u32, u32)> {
    let mut it = s.split('-');
    let day: u32 = it.next()?.trim().parse().ok()?;
    let mon = month_number(it.next()?)?;
    let year: i32 = it.next()?.parse().ok()?;
    if it.next().is_some() || !(1..=31).contains(&day) {
        return None;
    }
    Some((year, mon, day))
}

pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

pub fn month_number(m: &str) -> Option<u32> {
    MONTHS
        .iter()
        .position(|x| x.eq_ignore_ascii_case(m))
        .map(|i| i as u32 + 1)
}

/// Parses one complete command (see [`super::Assembler`]).
/// A section spec as FETCH BODY[...] takes it, without the brackets (`1.2`, `HEADER`,
/// `2.MIME`, `HEADER.FIELDS (Subject)`): the one section grammar, shared with IMAP URLs'
/// `;SECTION=` (RFC 5092 §3).
/// `CATENATE (TEXT {n} URL "url" ...)` (RFC 4469 §5).
fn parse_catenate(p: &mut P<'_>) -> PResult<Vec<CatPart>> {
    let word = p.atom("CATENATE")?;
    if !word.eq_ignore_ascii_case("CATENATE") {
        return syntax(format!(
            "{word} is not part of APPEND; the message is a literal or CATENATE (...)"
        ));
    }
    p.sp("the CATENATE list")?;
    p.expect(b'(', "( to start the CATENATE list")?;
    let mut parts = Vec::new();
    loop {
        let kind = p.atom("TEXT or URL")?;
        p.sp("the part")?;
        if kind.eq_ignore_ascii_case("TEXT") {
            if !matches!(p.peek(), Some(b'{' | b'~')) {
                return syntax("CATENATE's TEXT needs a literal, e.g. TEXT {12}");
            }
            parts.push(CatPart::Text(p.literal()?));
        } else if kind.eq_ignore_ascii_case("URL") {
            parts.push(CatPart::Url(p.astring("the URL")?));
        } else {
            return syntax(format!("{kind} is not a CATENATE part; use TEXT or URL"));
        }
        if parts.len() > MAX_CATENATE_PARTS {
            return syntax(format!(
                "one CATENATE may join at most {MAX_CATENATE_PARTS} parts"
            ));
        }
        if p.eat(b')') {
            return Ok(parts);
        }
        p.sp("the next part or ) to end the CATENATE list")?;
    }
}

pub fn parse_section(spec: &[u8]) -> Result<Section, ParseError> {
    let mut b = Vec::with_capacity(spec.len() + 2);
    b.push(b'[');
    b.extend_from_slice(spec);
    b.push(b']');
    let mut p = P { b: &b, i: 0 };
    let s = section(&mut p)?;
    p.end()?;
    Ok(s)
}

pub fn parse_command(buf: &[u8]) -> Result<Command, TaggedError> {
    let mut p = P { b: buf, i: 0 };
    let tag = p.take_while(is_tag_char);
    if tag.is_empty() || !p.eat(b' ') {
        return Err(TaggedError {
            tag: None,
            error: ParseError::NoTag,
        });
    }
    let tag = String::from_utf8_lossy(tag).into_owned();
    match parse_body(&mut p) {
        Ok(body) => Ok(Command { tag, body }),
        // `LOGIN alice secret`: the "tag" is a command name and the "command" is its first
        // argument. The tag was forgotten; there is no tag to answer with.
        Err(ParseError::Unknown(_))
            if COMMAND_NAMES.contains(&tag.to_ascii_uppercase().as_str()) =>
        {
            Err(TaggedError {
                tag: None,
                error: ParseError::TagMissing(tag.to_ascii_uppercase()),
            })
        }
        Err(error) => Err(TaggedError {
            tag: Some(tag),
            error,
        }),
    }
}

/// The command names [`parse_body`] knows (to recognise a forgotten tag).
const COMMAND_NAMES: &[&str] = &[
    "CAPABILITY",
    "NOOP",
    "LOGOUT",
    "STARTTLS",
    "IDLE",
    "CHECK",
    "CLOSE",
    "UNSELECT",
    "NAMESPACE",
    "EXPUNGE",
    "AUTHENTICATE",
    "LOGIN",
    "SELECT",
    "EXAMINE",
    "CREATE",
    "DELETE",
    "RENAME",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "LIST",
    "LSUB",
    "STATUS",
    "APPEND",
    "ENABLE",
    "SEARCH",
    "SORT",
    "THREAD",
    "FETCH",
    "STORE",
    "COPY",
    "MOVE",
    "UID",
    "ID",
    "GETQUOTA",
    "GETQUOTAROOT",
    "SETQUOTA",
    "CANCELUPDATE",
    "NOTIFY",
];

fn parse_body(p: &mut P<'_>) -> PResult<CommandBody> {
    let name = p
        .take_while(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        .to_ascii_uppercase();
    let name = String::from_utf8_lossy(&name).into_owned();
    if name.is_empty() {
        return Err(ParseError::NoTag);
    }
    let body = match name.as_str() {
        "CAPABILITY" => CommandBody::Capability,
        "NOOP" => CommandBody::Noop,
        "LOGOUT" => CommandBody::Logout,
        "STARTTLS" => CommandBody::StartTls,
        "IDLE" => CommandBody::Idle,
        "CHECK" => CommandBody::Check,
        "CLOSE" => CommandBody::Close,
        "UNSELECT" => CommandBody::Unselect,
        "NAMESPACE" => CommandBody::Namespace,
        "EXPUNGE" => CommandBody::Expunge { uids: None },
        "AUTHENTICATE" => {
            p.sp("the SASL mechanism")?;
            let mechanism = p.atom("a SASL mechanism name")?.to_ascii_uppercase();
            let initial = if p.eat(b' ') {
                // RFC 4959 SASL-IR: base64 or "=".
                let r = p.take_while(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
                if r.is_empty() {
                    return syntax("expected a base64 initial response");
                }
                Some(String::from_utf8_lossy(r).into_owned())
            } else {
                None
            };
            CommandBody::Authenticate { mechanism, initial }
        }
        "LOGIN" => {
            p.sp("the user name")?;
            let user = p.astring("the user name")?;
            p.sp("the password")?;
            let password = p.astring("the password")?;
            CommandBody::Login { user, password }
        }
        "ENABLE" => {
            let mut caps = Vec::new();
            while p.eat(b' ') {
                caps.push(p.atom("a capability name")?.to_ascii_uppercase());
            }
            if caps.is_empty() {
                return syntax("ENABLE needs at least one capability, e.g. ENABLE IMAP4rev2");
            }
            CommandBody::Enable(caps)
        }
        "SELECT" | "EXAMINE" => {
            p.sp("the mailbox name")?;
            let mailbox = p.mailbox("the mailbox name")?;
            let mut condstore = false;
            let mut qresync = None;
            if p.eat(b' ') {
                // RFC 4466 select-params: (CONDSTORE), (QRESYNC (...)).
                p.expect(b'(', "( to start the select parameters")?;
                loop {
                    let o = p.atom("a select parameter")?;
                    if o.eq_ignore_ascii_case("CONDSTORE") {
                        condstore = true;
                    } else if o.eq_ignore_ascii_case("QRESYNC") {
                        p.sp("the QRESYNC parameters")?;
                        qresync = Some(parse_qresync(p)?);
                    } else {
                        return syntax(format!(
                            "unsupported SELECT parameter {o}; this server knows CONDSTORE and QRESYNC"
                        ));
                    }
                    if p.eat(b')') {
                        break;
                    }
                    p.sp("the next select parameter or )")?;
                }
            }
            CommandBody::Select {
                mailbox,
                read_only: name == "EXAMINE",
                condstore,
                qresync,
            }
        }
        "CREATE" | "DELETE" | "SUBSCRIBE" | "UNSUBSCRIBE" => {
            p.sp("the mailbox name")?;
            let m = p.mailbox("the mailbox name")?;
            if name == "CREATE" && p.eat(b' ') {
                // RFC 4466 create-params (USE (...)) are accepted and ignored.
                p.paren_list("create parameters").ok();
                p.i = p.b.len();
            }
            match name.as_str() {
                "CREATE" => CommandBody::Create(m),
                "DELETE" => CommandBody::Delete(m),
                "SUBSCRIBE" => CommandBody::Subscribe(m),
                _ => CommandBody::Unsubscribe(m),
            }
        }
        "RENAME" => {
            p.sp("the existing mailbox name")?;
            let a = p.mailbox("the existing mailbox name")?;
            p.sp("the new mailbox name")?;
            let b = p.mailbox("the new mailbox name")?;
            CommandBody::Rename(a, b)
        }
        "LIST" => parse_list(p)?,
        "LSUB" => {
            p.sp("the reference name")?;
            let reference = p.mailbox("the reference name")?;
            p.sp("the mailbox pattern")?;
            let pattern = p.list_mailbox()?;
            CommandBody::Lsub { reference, pattern }
        }
        "STATUS" => {
            p.sp("the mailbox name")?;
            let mailbox = p.mailbox("the mailbox name")?;
            p.sp("the status items")?;
            let items = p
                .paren_list("the status items")?
                .into_iter()
                .map(|s| s.to_ascii_uppercase())
                .collect::<Vec<_>>();
            for i in &items {
                if !matches!(
                    i.as_str(),
                    "MESSAGES"
                        | "UIDNEXT"
                        | "UIDVALIDITY"
                        | "UNSEEN"
                        | "DELETED"
                        | "SIZE"
                        | "RECENT"
                        | "HIGHESTMODSEQ"
                        | "APPENDLIMIT"
                ) {
                    return syntax(format!("unknown STATUS item {i}"));
                }
            }
            CommandBody::Status { mailbox, items }
        }
        "APPEND" => {
            p.sp("the mailbox name")?;
            let mailbox = p.mailbox("the mailbox name")?;
            // RFC 3502 §6.3.11: append-message repeats, each with its own flags and date.
            let mut messages = Vec::new();
            loop {
                p.sp("the message literal")?;
                let mut flags = Vec::new();
                let mut date = None;
                if p.peek() == Some(b'(') {
                    flags = p.flag_list()?;
                    p.sp("the message literal")?;
                }
                if p.peek() == Some(b'"') {
                    let d = p.quoted()?;
                    date = Some(String::from_utf8_lossy(&d).into_owned());
                    p.sp("the message literal")?;
                }
                let (message, catenate) = if matches!(p.peek(), Some(b'C' | b'c')) {
                    (Vec::new(), Some(parse_catenate(p)?))
                } else if matches!(p.peek(), Some(b'{' | b'~')) {
                    (p.literal()?, None)
                } else {
                    return syntax(
                        "APPEND needs the message as a literal, e.g. {310}, or CATENATE (...)",
                    );
                };
                messages.push(AppendMessage {
                    flags,
                    date,
                    message,
                    catenate,
                });
                if p.peek() != Some(b' ') {
                    break;
                }
                if messages.len() >= MAX_APPEND_MESSAGES {
                    return syntax(format!(
                        "one APPEND may carry at most {MAX_APPEND_MESSAGES} messages; send the rest in another APPEND"
                    ));
                }
            }
            CommandBody::Append { mailbox, messages }
        }
        "SEARCH" => parse_search(p, false)?,
        "SORT" => CommandBody::Sort(parse_sort(p, false)?),
        "THREAD" => CommandBody::Thread(parse_thread(p, false)?),
        "FETCH" => parse_fetch(p, false)?,
        "STORE" => parse_store(p, false)?,
        "COPY" | "MOVE" => parse_copy(p, false, name == "MOVE")?,
        "UID" => {
            p.sp("the UID command")?;
            let sub = p.atom("FETCH, SEARCH, SORT, THREAD, STORE, COPY, MOVE or EXPUNGE")?;
            match sub.to_ascii_uppercase().as_str() {
                "SEARCH" => parse_search(p, true)?,
                "SORT" => CommandBody::Sort(parse_sort(p, true)?),
                "THREAD" => CommandBody::Thread(parse_thread(p, true)?),
                "FETCH" => parse_fetch(p, true)?,
                "STORE" => parse_store(p, true)?,
                "COPY" => parse_copy(p, true, false)?,
                "MOVE" => parse_copy(p, true, true)?,
                "EXPUNGE" => {
                    p.sp("the UID set")?;
                    CommandBody::Expunge {
                        uids: Some(p.seq_set()?),
                    }
                }
                other => {
                    return syntax(format!(
                        "UID {other} is not a command; UID goes with FETCH, SEARCH, SORT, THREAD, STORE, COPY, MOVE or EXPUNGE"
                    ))
                }
            }
        }
        "ID" => {
            p.sp("the ID parameters (or NIL)")?;
            let mut v = Vec::new();
            if p.eat(b'(') {
                if !p.eat(b')') {
                    loop {
                        let k = p.string("an ID field name")?;
                        p.sp("the ID field value")?;
                        let val = nstring(p)?;
                        v.push((
                            String::from_utf8_lossy(&k).into_owned(),
                            val.map(|x| String::from_utf8_lossy(&x).into_owned()),
                        ));
                        if p.eat(b')') {
                            break;
                        }
                        p.sp("the next ID field")?;
                    }
                }
            } else {
                let a = p.atom("NIL")?;
                if !a.eq_ignore_ascii_case("NIL") {
                    return syntax("ID takes a list of field/value pairs or NIL");
                }
            }
            CommandBody::Id(v)
        }
        // RFC 9208 §4.1.1: getquota = "GETQUOTA" SP quota-root-name; quota-root-name = astring.
        "GETQUOTA" => {
            p.sp("the quota root (\"\" for your account)")?;
            CommandBody::GetQuota(p.astring("the quota root")?)
        }
        // RFC 9208 §4.1.2: getquotaroot = "GETQUOTAROOT" SP mailbox.
        "GETQUOTAROOT" => {
            p.sp("the mailbox name")?;
            CommandBody::GetQuotaRoot(p.mailbox("the mailbox name")?)
        }
        // RFC 9208 §4.1.3: setquota = "SETQUOTA" SP quota-root-name SP setquota-list;
        // setquota-list = "(" [setquota-resource *(SP setquota-resource)] ")";
        // setquota-resource = resource-name SP resource-limit (a number64).
        "SETQUOTA" => {
            p.sp("the quota root")?;
            let root = p.astring("the quota root")?;
            p.sp("the resource limits, e.g. (STORAGE 512)")?;
            p.expect(b'(', "( to start the resource limits, e.g. (STORAGE 512)")?;
            let mut limits = Vec::new();
            if !p.eat(b')') {
                loop {
                    let resource = p.atom("a resource name such as STORAGE")?;
                    p.sp("the limit")?;
                    let limit = p.number("the resource limit")?;
                    if limit > i64::MAX as u64 {
                        return syntax("the resource limit is too large (RFC 9208 number64)");
                    }
                    limits.push((resource.to_ascii_uppercase(), limit));
                    if p.eat(b')') {
                        break;
                    }
                    p.sp("the next resource or )")?;
                }
            }
            CommandBody::SetQuota { root, limits }
        }
        // RFC 5267 §5: cancelupdate = "CANCELUPDATE" 1*(SP quoted); the tags of updating
        // searches. Any string (and an atom, leniently) is taken.
        "CANCELUPDATE" => {
            let mut tags = Vec::new();
            loop {
                p.sp("the tag of an updating search, e.g. CANCELUPDATE \"a1\"")?;
                let tag = p.astring("the tag of an updating search in quotes")?;
                tags.push(tag);
                if p.at_end() {
                    break;
                }
            }
            CommandBody::CancelUpdate(tags)
        }
        "NOTIFY" => {
            p.sp("NONE or SET")?;
            let word = p.atom("NONE or SET")?.to_ascii_uppercase();
            match word.as_str() {
                "NONE" => CommandBody::Notify(None),
                "SET" => CommandBody::Notify(Some(parse_notify_set(p)?)),
                _ => return syntax("NOTIFY takes NONE or SET, e.g. NOTIFY SET (personal (MessageNew MessageExpunge))"),
            }
        }
        // `a LOGINsecret`: the reply (and so the trace) does not repeat a secret.
        _ => {
            return Err(ParseError::Unknown(
                crate::secrets::mask_secrets(&name).into_owned(),
            ))
        }
    };
    // Text after a password or a SASL response may be more of it (`LOGIN alice my secret`):
    // the reply does not repeat it, unlike `end`'s for other commands.
    if !p.at_end() {
        match body {
            CommandBody::Login { .. } => return syntax(
                "unexpected text after the password; a password with spaces goes in a quoted string, e.g. LOGIN alice \"two words\"",
            ),
            CommandBody::Authenticate { .. } => return syntax(
                "unexpected text after the initial response; send the mechanism and at most one base64 response, e.g. AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==",
            ),
            _ => {}
        }
    }
    p.end()?;
    Ok(body)
}

/// RFC 5465 §8: `"SET" [SP "STATUS"] SP event-group *(SP event-group)` after `SET`, with the
/// rules of §5 that make a request a syntax error (BAD): fetch attributes only for the
/// selected mailbox, and for the selected mailbox MessageNew and FlagChange only together
/// with MessageExpunge.
fn parse_notify_set(p: &mut P<'_>) -> PResult<NotifySet> {
    p.sp("STATUS or an event group")?;
    let mut status = false;
    if p.peek() != Some(b'(') {
        let w = p.atom("STATUS or an event group")?;
        if !w.eq_ignore_ascii_case("STATUS") {
            return syntax(format!(
                "expected STATUS or an event group such as (personal (MessageNew)), not {}",
                truncate(&w)
            ));
        }
        status = true;
        p.sp("an event group")?;
    }
    let mut groups = Vec::new();
    loop {
        groups.push(notify_group(p)?);
        if !p.eat(b' ') {
            break;
        }
    }
    Ok(NotifySet { status, groups })
}

fn notify_group(p: &mut P<'_>) -> PResult<NotifyGroup> {
    p.expect(
        b'(',
        "( to start an event group, e.g. (selected (MessageNew MessageExpunge))",
    )?;
    let word = p.atom("a mailbox filter (selected, personal, mailboxes ...)")?;
    let filter = match word.to_ascii_lowercase().as_str() {
        "selected" => NotifyFilter::Selected,
        "selected-delayed" => NotifyFilter::SelectedDelayed,
        "inboxes" => NotifyFilter::Inboxes,
        "personal" => NotifyFilter::Personal,
        "subscribed" => NotifyFilter::Subscribed,
        "subtree" => NotifyFilter::Subtree(one_or_more_mailbox(p)?),
        "mailboxes" => NotifyFilter::Mailboxes(one_or_more_mailbox(p)?),
        other => {
            return syntax(format!(
                "unknown mailbox filter {}; use selected, selected-delayed, inboxes, personal, subscribed, subtree or mailboxes",
                truncate(other)
            ))
        }
    };
    p.sp("the events, e.g. (MessageNew MessageExpunge), or NONE")?;
    let mut events = Vec::new();
    if p.eat(b'(') {
        loop {
            let name = p.atom("an event name such as MessageNew")?;
            let event = match name.to_ascii_lowercase().as_str() {
                "messagenew" => {
                    let mut atts = Vec::new();
                    if p.b[p.i..].starts_with(b" (") {
                        p.i += 2;
                        loop {
                            atts.push(fetch_att(p)?);
                            if p.eat(b')') {
                                break;
                            }
                            p.sp("the next fetch attribute or )")?;
                        }
                    }
                    NotifyEvent::MessageNew(atts)
                }
                "messageexpunge" => NotifyEvent::MessageExpunge,
                "flagchange" => NotifyEvent::FlagChange,
                "annotationchange" => NotifyEvent::AnnotationChange,
                "mailboxname" => NotifyEvent::MailboxName,
                "subscriptionchange" => NotifyEvent::SubscriptionChange,
                "mailboxmetadatachange" => NotifyEvent::MailboxMetadataChange,
                "servermetadatachange" => NotifyEvent::ServerMetadataChange,
                _ => NotifyEvent::Other(name),
            };
            events.push(event);
            if p.eat(b')') {
                break;
            }
            p.sp("the next event or )")?;
        }
    } else {
        let w = p.atom("the events in parentheses, or NONE")?;
        if !w.eq_ignore_ascii_case("NONE") {
            return syntax(
                "the events go in parentheses, e.g. (MessageNew MessageExpunge), or NONE",
            );
        }
    }
    p.expect(b')', ") to end the event group")?;
    let has = |f: fn(&NotifyEvent) -> bool| events.iter().any(f);
    let with_atts = has(|e| matches!(e, NotifyEvent::MessageNew(a) if !a.is_empty()));
    if with_atts && !filter.is_selected() {
        return syntax(
            "MessageNew takes fetch attributes only for the selected mailbox (RFC 5465 §5.2)",
        );
    }
    if filter.is_selected()
        && !has(|e| *e == NotifyEvent::MessageExpunge)
        && has(|e| matches!(e, NotifyEvent::MessageNew(_) | NotifyEvent::FlagChange))
    {
        return syntax(
            "for the selected mailbox, MessageNew and FlagChange need MessageExpunge too (RFC 5465 §5)",
        );
    }
    Ok(NotifyGroup { filter, events })
}

/// RFC 5465 §8 `one-or-more-mailbox`: a mailbox, or several in parentheses.
fn one_or_more_mailbox(p: &mut P<'_>) -> PResult<Vec<String>> {
    p.sp("a mailbox name or a list of them")?;
    if !p.eat(b'(') {
        return Ok(vec![p.mailbox("a mailbox name")?]);
    }
    let mut names = Vec::new();
    loop {
        names.push(p.mailbox("a mailbox name")?);
        if p.eat(b')') {
            return Ok(names);
        }
        p.sp("the next mailbox name or )")?;
    }
}

fn nstring(p: &mut P<'_>) -> PResult<Option<Vec<u8>>> {
    if matches!(p.peek(), Some(b'"' | b'{')) {
        return Ok(Some(p.string("a string")?));
    }
    let a = p.atom("a string or NIL")?;
    if a.eq_ignore_ascii_case("NIL") {
        Ok(None)
    } else {
        syntax("expected a string or NIL")
    }
}

fn parse_list(p: &mut P<'_>) -> PResult<CommandBody> {
    let mut options = ListOptions::default();
    p.sp("the reference name")?;
    if p.peek() == Some(b'(') {
        // RFC 5258 §3: selection options.
        options.extended = true;
        for o in p.paren_list("the LIST selection options")? {
            match o.to_ascii_uppercase().as_str() {
                "SUBSCRIBED" => options.subscribed = true,
                "SPECIAL-USE" => options.special_use_only = true,
                "RECURSIVEMATCH" => options.recursive_match = true,
                "REMOTE" => {}
                other => return syntax(format!("unknown LIST selection option {other}")),
            }
        }
        p.sp("the reference name")?;
    }
    let reference = p.mailbox("the reference name")?;
    p.sp("the mailbox pattern")?;
    let mut patterns = Vec::new();
    if p.eat(b'(') {
        loop {
            patterns.push(p.list_mailbox()?);
            if p.eat(b')') {
                break;
            }
            p.sp("the next pattern")?;
        }
        options.extended = true;
    } else {
        patterns.push(p.list_mailbox()?);
    }
    if p.eat(b' ') {
        let kw = p.atom("RETURN")?;
        if !kw.eq_ignore_ascii_case("RETURN") {
            return syntax("expected RETURN (...) after the pattern");
        }
        p.sp("the return options")?;
        options.extended = true;
        p.expect(b'(', "( to start the return options")?;
        if !p.eat(b')') {
            loop {
                let o = p.atom("a return option")?.to_ascii_uppercase();
                match o.as_str() {
                    "SUBSCRIBED" => options.return_subscribed = true,
                    "CHILDREN" => options.return_children = true,
                    "SPECIAL-USE" => options.return_special_use = true,
                    "STATUS" => {
                        p.sp("the status items")?;
                        options.return_status = Some(
                            p.paren_list("the status items")?
                                .into_iter()
                                .map(|s| s.to_ascii_uppercase())
                                .collect(),
                        );
                    }
                    other => return syntax(format!("unknown LIST return option {other}")),
                }
                if p.eat(b')') {
                    break;
                }
                p.sp("the next return option")?;
            }
        }
    }
    if options.recursive_match && !options.subscribed {
        return syntax("RECURSIVEMATCH needs another selection option (RFC 5258 §3)");
    }
    Ok(CommandBody::List {
        reference,
        patterns,
        options,
    })
}

fn parse_copy(p: &mut P<'_>, uid: bool, mv: bool) -> PResult<CommandBody> {
    p.sp("the message set")?;
    let set = p.seq_set()?;
    p.sp("the target mailbox")?;
    let mailbox = p.mailbox("the target mailbox")?;
    Ok(if mv {
        CommandBody::Move { uid, set, mailbox }
    } else {
        CommandBody::Copy { uid, set, mailbox }
    })
}

fn parse_store(p: &mut P<'_>, uid: bool) -> PResult<CommandBody> {
    p.sp("the message set")?;
    let set = p.seq_set()?;
    p.sp("FLAGS, +FLAGS or -FLAGS")?;
    let mut unchanged_since = None;
    if p.eat(b'(') {
        let k = p.atom("UNCHANGEDSINCE")?;
        if !k.eq_ignore_ascii_case("UNCHANGEDSINCE") {
            return syntax("the only STORE modifier is UNCHANGEDSINCE");
        }
        p.sp("the mod-sequence")?;
        unchanged_since = Some(p.number("UNCHANGEDSINCE")?);
        p.expect(b')', ") after the modifier")?;
        p.sp("FLAGS, +FLAGS or -FLAGS")?;
    }
    let mode = if p.eat(b'+') {
        StoreMode::Add
    } else if p.eat(b'-') {
        StoreMode::Remove
    } else {
        StoreMode::Replace
    };
    let item = p.atom("FLAGS or FLAGS.SILENT")?.to_ascii_uppercase();
    let silent = match item.as_str() {
        "FLAGS" => false,
        "FLAGS.SILENT" => true,
        other => return syntax(format!("STORE changes FLAGS or FLAGS.SILENT, not {other}")),
    };
    p.sp("the flags")?;
    let flags = if p.peek() == Some(b'(') {
        p.flag_list()?
    } else {
        let mut v = vec![p.flag()?];
        while p.eat(b' ') {
            v.push(p.flag()?);
        }
        v
    };
    Ok(CommandBody::Store {
        uid,
        set,
        mode,
        silent,
        flags,
        unchanged_since,
    })
}

fn parse_fetch(p: &mut P<'_>, uid: bool) -> PResult<CommandBody> {
    p.sp("the message set")?;
    let set = p.seq_set()?;
    if p.at_end() {
        return syntax(
            "missing the data items: say what to fetch, e.g. FETCH 1 (FLAGS BODY[]) or FETCH 1:* (FLAGS ENVELOPE)",
        );
    }
    p.sp("the data items")?;
    let mut items = Vec::new();
    if p.eat(b'(') {
        loop {
            items.push(fetch_att(p)?);
            if p.eat(b')') {
                break;
            }
            p.sp("the next data item or )")?;
        }
    } else {
        let save = p.i;
        let a = p.atom("a data item")?.to_ascii_uppercase();
        match a.as_str() {
            // RFC 9051 §6.4.5 macros.
            "ALL" => items.extend([
                FetchAtt::Flags,
                FetchAtt::InternalDate,
                FetchAtt::Rfc822Size,
                FetchAtt::Envelope,
            ]),
            "FAST" => items.extend([
                FetchAtt::Flags,
                FetchAtt::InternalDate,
                FetchAtt::Rfc822Size,
            ]),
            "FULL" => items.extend([
                FetchAtt::Flags,
                FetchAtt::InternalDate,
                FetchAtt::Rfc822Size,
                FetchAtt::Envelope,
                FetchAtt::Body,
            ]),
            _ => {
                p.i = save;
                items.push(fetch_att(p)?);
            }
        }
    }
    let mut changed_since = None;
    let mut vanished = false;
    if p.eat(b' ') {
        // RFC 7162 §3.1.4: (CHANGEDSINCE n); §3.2.6: VANISHED.
        p.expect(b'(', "( to start the FETCH modifiers")?;
        loop {
            let k = p.atom("CHANGEDSINCE or VANISHED")?;
            if k.eq_ignore_ascii_case("CHANGEDSINCE") {
                p.sp("the mod-sequence")?;
                changed_since = Some(p.number("CHANGEDSINCE")?);
            } else if k.eq_ignore_ascii_case("VANISHED") {
                vanished = true;
            } else {
                return syntax("the FETCH modifiers are CHANGEDSINCE n and VANISHED");
            }
            if p.eat(b')') {
                break;
            }
            p.sp("the next modifier or )")?;
        }
    }
    Ok(CommandBody::Fetch {
        uid,
        set,
        items,
        changed_since,
        vanished,
    })
}

/// `(uidvalidity mod-sequence [known-uids [(seq-set uid-set)]])` (RFC 7162 §3.2.5, §7
/// `select-param`). The two sets of seq-match-data must name as many messages.
fn parse_qresync(p: &mut P<'_>) -> PResult<Qresync> {
    p.expect(b'(', "( to start the QRESYNC parameters")?;
    let uidvalidity = p.nz_number("the UIDVALIDITY (QRESYNC needs a nonzero one)")?;
    p.sp("the mod-sequence")?;
    let modseq = p.number("the mod-sequence")?;
    if modseq == 0 {
        return syntax("the QRESYNC mod-sequence must be at least 1");
    }
    let mut known_uids = None;
    let mut seq_match = None;
    if p.eat(b' ') {
        if p.peek() != Some(b'(') {
            known_uids = Some(p.seq_set()?);
            p.eat(b' ');
        }
        if p.eat(b'(') {
            let seqs = p.seq_set()?;
            p.sp("the UID set of the sequence match data")?;
            let uids = p.seq_set()?;
            p.expect(b')', ") after the sequence match data")?;
            if seqs.count() != uids.count() {
                return syntax("the sequence match data must pair as many message numbers as UIDs");
            }
            seq_match = Some((seqs, uids));
        }
    }
    p.expect(b')', ") after the QRESYNC parameters")?;
    Ok(Qresync {
        uidvalidity,
        modseq,
        known_uids,
        seq_match,
    })
}

fn partial(p: &mut P<'_>) -> PResult<Option<(u32, u32)>> {
    if !p.eat(b'<') {
        return Ok(None);
    }
    let a = p.number("the partial origin")?;
    p.expect(b'.', ". in <origin.count>")?;
    let b = p.number("the partial count")?;
    p.expect(b'>', "> after the partial range")?;
    if a > u64::from(u32::MAX) || b == 0 || b > u64::from(u32::MAX) {
        return syntax("the partial range is out of bounds");
    }
    Ok(Some((a as u32, b as u32)))
}

fn part_numbers(p: &mut P<'_>) -> PResult<Vec<u32>> {
    let mut v = Vec::new();
    while p.peek().is_some_and(|b| b.is_ascii_digit()) {
        v.push(p.nz_number("a part number")?);
        if !p.eat(b'.') {
            break;
        }
    }
    Ok(v)
}

fn section(p: &mut P<'_>) -> PResult<Section> {
    p.expect(b'[', "[")?;
    let part = part_numbers(p)?;
    let mut text = None;
    if p.peek() != Some(b']') {
        let t = p
            .take_while(|b| b.is_ascii_alphabetic() || b == b'.')
            .to_ascii_uppercase();
        text = Some(match t.as_slice() {
            b"HEADER" => SectionText::Header,
            b"TEXT" => SectionText::Text,
            b"MIME" if !part.is_empty() => SectionText::Mime,
            b"HEADER.FIELDS" | b"HEADER.FIELDS.NOT" => {
                p.sp("the header field list")?;
                let f = p.paren_list("the header field names")?;
                if f.is_empty() {
                    return syntax("the header field list is empty");
                }
                if t.len() == 13 {
                    SectionText::HeaderFields(f)
                } else {
                    SectionText::HeaderFieldsNot(f)
                }
            }
            other => {
                return syntax(format!(
                    "unknown section {:?}; use HEADER, TEXT, MIME or HEADER.FIELDS (...)",
                    String::from_utf8_lossy(other)
                ))
            }
        });
    }
    p.expect(b']', "] to end the section")?;
    Ok(Section { part, text })
}

fn fetch_att(p: &mut P<'_>) -> PResult<FetchAtt> {
    let name = p
        .take_while(|b| b.is_ascii_alphanumeric() || b == b'.')
        .to_ascii_uppercase();
    let name = String::from_utf8_lossy(&name).into_owned();
    Ok(match name.as_str() {
        "ENVELOPE" => FetchAtt::Envelope,
        "FLAGS" => FetchAtt::Flags,
        "INTERNALDATE" => FetchAtt::InternalDate,
        "RFC822.SIZE" => FetchAtt::Rfc822Size,
        "RFC822" => FetchAtt::Rfc822,
        "RFC822.HEADER" => FetchAtt::Rfc822Header,
        "RFC822.TEXT" => FetchAtt::Rfc822Text,
        "BODYSTRUCTURE" => FetchAtt::BodyStructure,
        "UID" => FetchAtt::Uid,
        "MODSEQ" => FetchAtt::ModSeq,
        "BODY" | "BODY.PEEK" => {
            if p.peek() != Some(b'[') {
                if name == "BODY" {
                    return Ok(FetchAtt::Body);
                }
                return syntax("BODY.PEEK needs a section, e.g. BODY.PEEK[]");
            }
            let section = section(p)?;
            FetchAtt::BodySection {
                peek: name == "BODY.PEEK",
                section,
                partial: partial(p)?,
            }
        }
        "BINARY" | "BINARY.PEEK" | "BINARY.SIZE" => {
            p.expect(b'[', "[ after BINARY")?;
            let part = part_numbers(p)?;
            p.expect(b']', "] (BINARY takes part numbers only)")?;
            if name == "BINARY.SIZE" {
                FetchAtt::BinarySize(part)
            } else {
                FetchAtt::Binary {
                    peek: name == "BINARY.PEEK",
                    part,
                    partial: partial(p)?,
                }
            }
        }
        "" => return syntax("expected a FETCH data item such as FLAGS or BODY[]"),
        other => return syntax(format!("unknown FETCH data item {other}")),
    })
}

/// `RETURN (...)` when it comes next (then also the space after it), else nothing consumed.
fn return_clause(p: &mut P<'_>, cmd: &str, next: &str) -> PResult<Option<SearchReturn>> {
    let save = p.i;
    let first = p
        .take_while(|b| b.is_ascii_alphabetic())
        .to_ascii_uppercase();
    if first == b"RETURN" && p.peek() == Some(b' ') {
        p.sp("the return options")?;
        let r = return_options(p, cmd)?;
        p.sp(next)?;
        Ok(Some(r))
    } else {
        p.i = save;
        Ok(None)
    }
}

/// The parenthesised ESEARCH result options (RFC 4731 §3.1): for SEARCH MIN MAX ALL COUNT
/// SAVE, and `PARTIAL range` (RFC 5267 §4.4, RFC 9394).
fn return_options(p: &mut P<'_>, cmd: &str) -> PResult<SearchReturn> {
    let what = format!("the {cmd} return options");
    let mut r = SearchReturn::default();
    p.expect(b'(', &format!("( to start {what}"))?;
    if p.eat(b')') {
        return Ok(r);
    }
    loop {
        let o = p.astring(&what)?.to_ascii_uppercase();
        match o.as_str() {
            "MIN" => r.min = true,
            "MAX" => r.max = true,
            "ALL" => r.all = true,
            "COUNT" => r.count = true,
            "SAVE" => r.save = true,
            // RFC 5267 §4.2: CONTEXT is a hint that more searches of this kind follow.
            "CONTEXT" => {}
            "UPDATE" if r.update => {
                return syntax(format!("UPDATE is given twice in {what}"));
            }
            "UPDATE" => r.update = true,
            "PARTIAL" => {
                p.sp("the PARTIAL range, e.g. PARTIAL 1:100")?;
                r.partial = Some(partial_range(p)?);
            }
            other => return syntax(format!("unknown {cmd} return option {other}")),
        }
        if p.eat(b')') {
            return Ok(r);
        }
        p.sp(&format!("the rest of {what}"))?;
    }
}

/// RFC 5267 §4.4 / RFC 9394 §3 `partial-range`: `lo:hi` or `-lo:-hi`, both nz-number.
fn partial_range(p: &mut P<'_>) -> PResult<PartialRange> {
    let bad = "a PARTIAL range is two positions such as 1:100 (or -1:-100 from the end)";
    let from_end = p.eat(b'-');
    let a = p.nz_number("the PARTIAL range").or_else(|_| syntax(bad))?;
    if !p.eat(b':') || p.eat(b'-') != from_end {
        return syntax(bad);
    }
    let b = p.nz_number("the PARTIAL range").or_else(|_| syntax(bad))?;
    let (lo, hi) = (a.min(b), a.max(b));
    Ok(if from_end {
        PartialRange::Last(lo, hi)
    } else {
        PartialRange::First(lo, hi)
    })
}

/// `1*(SP search-key)` after the first space: several keys are an AND.
fn search_keys(p: &mut P<'_>) -> PResult<SearchKey> {
    let mut keys = vec![search_key(p, 0)?];
    while p.eat(b' ') {
        keys.push(search_key(p, 0)?);
    }
    Ok(if keys.len() == 1 {
        keys.pop().unwrap_or(SearchKey::All)
    } else {
        SearchKey::And(keys)
    })
}

fn parse_search(p: &mut P<'_>, uid: bool) -> PResult<CommandBody> {
    p.sp("the search criteria")?;
    let mut charset = None;
    let ret = return_clause(p, "SEARCH", "the search criteria")?;
    let save = p.i;
    let first = p
        .take_while(|b| b.is_ascii_alphabetic())
        .to_ascii_uppercase();
    if first == b"CHARSET" && p.peek() == Some(b' ') {
        p.sp("the charset")?;
        charset = Some(p.astring("the charset")?);
        p.sp("the search criteria")?;
    } else {
        p.i = save;
    }
    let key = search_keys(p)?;
    Ok(CommandBody::Search {
        uid,
        ret,
        charset,
        key,
    })
}

/// RFC 5256 §3: `sort = ["UID" SP] "SORT" SP sort-criteria SP search-criteria`, with
/// RFC 5267 §3's `SP "RETURN" SP sort-return-opts` before the criteria;
/// `sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"`;
/// `search-criteria = charset 1*(SP search-key)`.
fn parse_sort(p: &mut P<'_>, uid: bool) -> PResult<SortCommand> {
    p.sp("the sort criteria, e.g. SORT (REVERSE DATE) UTF-8 ALL")?;
    let ret = return_clause(p, "SORT", "the sort criteria")?;
    p.expect(
        b'(',
        "( to start the sort criteria, e.g. SORT (REVERSE DATE) UTF-8 ALL",
    )?;
    let mut criteria = Vec::new();
    loop {
        let mut name = p.atom("a sort key such as DATE, SUBJECT or REVERSE ARRIVAL")?;
        let reverse = name.eq_ignore_ascii_case("REVERSE");
        if reverse {
            p.sp("the sort key after REVERSE")?;
            name = p.atom("a sort key after REVERSE")?;
        }
        let key = match name.to_ascii_uppercase().as_str() {
            "ARRIVAL" => SortKey::Arrival,
            "CC" => SortKey::Cc,
            "DATE" => SortKey::Date,
            "FROM" => SortKey::From,
            "SIZE" => SortKey::Size,
            "SUBJECT" => SortKey::Subject,
            "TO" => SortKey::To,
            "DISPLAYFROM" => SortKey::DisplayFrom,
            "DISPLAYTO" => SortKey::DisplayTo,
            other => return syntax(format!(
                "unknown sort key {other}; use ARRIVAL, CC, DATE, FROM, SIZE, SUBJECT, TO, DISPLAYFROM or DISPLAYTO, each optionally after REVERSE"
            )),
        };
        criteria.push(SortCriterion { reverse, key });
        if p.eat(b')') {
            break;
        }
        p.sp("the next sort key or )")?;
    }
    let (charset, key) = charset_and_keys(p, "SORT")?;
    Ok(SortCommand {
        uid,
        ret,
        criteria,
        charset,
        key,
    })
}

/// RFC 5256 §3: `thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria`.
fn parse_thread(p: &mut P<'_>, uid: bool) -> PResult<ThreadCommand> {
    p.sp("the threading algorithm, e.g. THREAD REFERENCES UTF-8 ALL")?;
    let name = p.atom("a threading algorithm: REFERENCES or ORDEREDSUBJECT")?;
    let algorithm = match name.to_ascii_uppercase().as_str() {
        "REFERENCES" => ThreadAlgorithm::References,
        "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
        other => {
            return syntax(format!(
                "unknown threading algorithm {other}; this server threads by REFERENCES or ORDEREDSUBJECT"
            ))
        }
    };
    let (charset, key) = charset_and_keys(p, "THREAD")?;
    Ok(ThreadCommand {
        uid,
        algorithm,
        charset,
        key,
    })
}

/// ` charset 1*(SP search-key)` (RFC 5256 §3 `search-criteria`: the charset is mandatory).
fn charset_and_keys(p: &mut P<'_>, cmd: &str) -> PResult<(String, SearchKey)> {
    p.sp(&format!(
        "the charset: {cmd} needs one before the search keys, e.g. UTF-8 ALL"
    ))?;
    let charset = p.astring("the charset")?;
    p.sp("the search criteria, e.g. ALL")?;
    Ok((charset, search_keys(p)?))
}

/// Nesting limit for NOT/OR/parentheses, so a hostile command cannot exhaust the stack.
const MAX_SEARCH_DEPTH: usize = 32;

fn search_key(p: &mut P<'_>, depth: usize) -> PResult<SearchKey> {
    if depth > MAX_SEARCH_DEPTH {
        return syntax("search criteria nested too deeply");
    }
    if p.eat(b'(') {
        let mut keys = vec![search_key(p, depth + 1)?];
        loop {
            if p.eat(b')') {
                break;
            }
            p.sp("the next search key or )")?;
            keys.push(search_key(p, depth + 1)?);
        }
        return Ok(SearchKey::And(keys));
    }
    if p.peek()
        .is_some_and(|b| b.is_ascii_digit() || b == b'*' || b == b'$')
    {
        return Ok(SearchKey::Seq(p.seq_set()?));
    }
    let name = p
        .take_while(|b| b.is_ascii_alphanumeric())
        .to_ascii_uppercase();
    let name = String::from_utf8_lossy(&name).into_owned();
    macro_rules! arg {
        () => {{
            p.sp(&format!("the argument of {name}"))?;
            p.astring(&format!("the argument of {name}"))?
        }};
    }
    macro_rules! date {
        () => {{
            p.sp(&format!("the date of {name}"))?;
            p.date()?
        }};
    }
    Ok(match name.as_str() {
        "ALL" => SearchKey::All,
        "ANSWERED" => SearchKey::Answered,
        "DELETED" => SearchKey::Deleted,
        "DRAFT" => SearchKey::Draft,
        "FLAGGED" => SearchKey::Flagged,
        "SEEN" => SearchKey::Seen,
        "RECENT" => SearchKey::Recent,
        "NEW" => SearchKey::New,
        "OLD" => SearchKey::Old,
        "UNANSWERED" => SearchKey::Unanswered,
        "UNDELETED" => SearchKey::Undeleted,
        "UNDRAFT" => SearchKey::Undraft,
        "UNFLAGGED" => SearchKey::Unflagged,
        "UNSEEN" => SearchKey::Unseen,
        "KEYWORD" => SearchKey::Keyword(arg!()),
        "UNKEYWORD" => SearchKey::Unkeyword(arg!()),
        "BCC" => SearchKey::Bcc(arg!()),
        "CC" => SearchKey::Cc(arg!()),
        "FROM" => SearchKey::From(arg!()),
        "TO" => SearchKey::To(arg!()),
        "SUBJECT" => SearchKey::Subject(arg!()),
        "BODY" => SearchKey::Body(arg!()),
        "TEXT" => SearchKey::Text(arg!()),
        "HEADER" => {
            let f = arg!();
            let v = arg!();
            SearchKey::Header(f, v)
        }
        "BEFORE" => SearchKey::Before(date!()),
        "ON" => SearchKey::On(date!()),
        "SINCE" => SearchKey::Since(date!()),
        "SENTBEFORE" => SearchKey::SentBefore(date!()),
        "SENTON" => SearchKey::SentOn(date!()),
        "SENTSINCE" => SearchKey::SentSince(date!()),
        "LARGER" => {
            p.sp("the size")?;
            SearchKey::Larger(p.number("LARGER")?)
        }
        "SMALLER" => {
            p.sp("the size")?;
            SearchKey::Smaller(p.number("SMALLER")?)
        }
        "MODSEQ" => {
            p.sp("the mod-sequence")?;
            // RFC 7162 §3.1.5: optional entry name and type (priv/shared/all), ignored.
            if p.peek() == Some(b'"') {
                p.quoted()?;
                p.sp("the entry type")?;
                let t = p.atom("priv, shared or all")?.to_ascii_lowercase();
                if !matches!(t.as_str(), "priv" | "shared" | "all") {
                    return syntax("the MODSEQ entry type is priv, shared or all");
                }
                p.sp("the mod-sequence")?;
            }
            SearchKey::ModSeq(p.number("MODSEQ")?)
        }
        "UID" => {
            p.sp("the UID set")?;
            SearchKey::Uid(p.seq_set()?)
        }
        "NOT" => {
            p.sp("the key to negate")?;
            SearchKey::Not(Box::new(search_key(p, depth + 1)?))
        }
        "OR" => {
            p.sp("the first key of OR")?;
            let a = search_key(p, depth + 1)?;
            p.sp("the second key of OR")?;
            let b = search_key(p, depth + 1)?;
            SearchKey::Or(Box::new(a), Box::new(b))
        }
        "" => return syntax("expected a search key such as ALL, UNSEEN or FROM \"x\""),
        other => return syntax(format!("unknown search key {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> CommandBody {
        parse_command(s.as_bytes())
            .unwrap_or_else(|e| panic!("{s}: {e:?}"))
            .body
    }
    fn err(s: &str) -> TaggedError {
        parse_command(s.as_bytes()).expect_err(s)
    }

    #[test]
    fn simple_commands() {
        assert_eq!(ok("a CAPABILITY"), CommandBody::Capability);
        assert_eq!(ok("a noop"), CommandBody::Noop);
        assert_eq!(
            ok("a LOGIN alice \"se\\\"cret\""),
            CommandBody::Login {
                user: "alice".into(),
                password: "se\"cret".into()
            }
        );
        assert_eq!(
            ok("a LOGIN {5}\r\nalice {3}\r\npw!"),
            CommandBody::Login {
                user: "alice".into(),
                password: "pw!".into()
            }
        );
        assert_eq!(
            ok("a select INBOX"),
            CommandBody::Select {
                mailbox: "INBOX".into(),
                read_only: false,
                condstore: false,
                qresync: None
            }
        );
        assert!(matches!(
            ok("a UID EXPUNGE 1:3"),
            CommandBody::Expunge { uids: Some(_) }
        ));
    }

    #[test]
    fn select_qresync_and_fetch_vanished() {
        let CommandBody::Select {
            qresync: Some(q),
            condstore: false,
            ..
        } = ok("a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211 (1:3 41,43,45)))")
        else {
            panic!("not a QRESYNC select");
        };
        assert_eq!((q.uidvalidity, q.modseq), (67890007, 20050715194045000));
        assert_eq!(q.known_uids.map(|k| k.count()), Some(170));
        assert!(q.seq_match.is_some());
        assert!(matches!(
            ok("a EXAMINE INBOX (QRESYNC (1 2) CONDSTORE)"),
            CommandBody::Select {
                qresync: Some(_),
                condstore: true,
                ..
            }
        ));
        assert!(matches!(
            ok("a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5 VANISHED)"),
            CommandBody::Fetch {
                vanished: true,
                changed_since: Some(5),
                ..
            }
        ));
        // Hostile: UIDVALIDITY 0, modseq 0, seq-match sets of different lengths, junk.
        for bad in [
            "a SELECT INBOX (QRESYNC (0 5))",
            "a SELECT INBOX (QRESYNC (1 0))",
            "a SELECT INBOX (QRESYNC (1 5 1:10 (1:3 1,2)))",
            "a SELECT INBOX (QRESYNC (1))",
            "a SELECT INBOX (QRESYNC 1 5)",
            "a SELECT INBOX (FOO)",
            "a UID FETCH 1 (FLAGS) (VANISHED FOO)",
        ] {
            assert!(parse_command(bad.as_bytes()).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn errors_never_repeat_what_may_be_a_password() {
        for line in [
            "a LOGIN alice my secret",
            "a LOGIN alice \"my\" secret",
            "a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA== secret",
            "a LOGINsecret",
        ] {
            let text = err(line).error.to_string();
            assert!(!text.contains("secret"), "{line}: {text}");
        }
        // Other commands still show what was left over.
        assert!(err("a NOOP extra").error.to_string().contains("extra"));
    }

    #[test]
    fn errors_keep_tags() {
        let e = err("a1 FROB");
        assert_eq!(e.tag.as_deref(), Some("a1"));
        assert_eq!(e.error, ParseError::Unknown("FROB".into()));
        // A forgotten tag: untagged, with what to type.
        let e = err("login alice secret");
        assert_eq!(e.tag, None);
        assert_eq!(e.error, ParseError::TagMissing("LOGIN".into()));
        assert!(e.error.to_string().contains("\"a1 LOGIN ...\""));
        assert_eq!(
            err("SELECT INBOX").error,
            ParseError::TagMissing("SELECT".into())
        );
        assert!(err("a1 FETCH 1")
            .error
            .to_string()
            .contains("e.g. FETCH 1 (FLAGS BODY[])"));
        assert!(err("a1 SEARCH SUBJECT Grüße")
            .error
            .to_string()
            .contains("must be a quoted string"));
        assert_eq!(err("").tag, None);
        assert_eq!(err("a1").error, ParseError::NoTag);
        assert!(matches!(err("a LOGIN alice").error, ParseError::Syntax(_)));
        assert!(matches!(
            err("a FETCH 1 (FLAGS").error,
            ParseError::Syntax(_)
        ));
        assert!(matches!(
            err("a FETCH 1 FLAGS)").error,
            ParseError::Syntax(_)
        ));
        assert!(matches!(
            err("a FETCH 0 FLAGS").error,
            ParseError::Syntax(_)
        ));
        assert!(matches!(err("a NOOP extra").error, ParseError::Syntax(_)));
        assert!(matches!(
            err("a LOGIN {9}\r\nab c").error,
            ParseError::Syntax(_)
        ));
    }

    #[test]
    fn fetch_items() {
        let CommandBody::Fetch { set, items, uid, .. } =
            ok("a UID FETCH 1:*,4 (FLAGS BODY.PEEK[HEADER.FIELDS (From To)] BODY[1.2.MIME] BODY[]<0.10> RFC822.SIZE)")
        else {
            panic!()
        };
        assert!(uid);
        assert_eq!(
            set,
            SeqSet(vec![
                (SeqNum::Num(1), SeqNum::Star),
                (SeqNum::Num(4), SeqNum::Num(4))
            ])
        );
        assert_eq!(items.len(), 5);
        assert_eq!(
            items[1],
            FetchAtt::BodySection {
                peek: true,
                section: Section {
                    part: vec![],
                    text: Some(SectionText::HeaderFields(vec!["From".into(), "To".into()]))
                },
                partial: None
            }
        );
        assert_eq!(
            items[2],
            FetchAtt::BodySection {
                peek: false,
                section: Section {
                    part: vec![1, 2],
                    text: Some(SectionText::Mime)
                },
                partial: None
            }
        );
        assert_eq!(
            items[3],
            FetchAtt::BodySection {
                peek: false,
                section: Section::default(),
                partial: Some((0, 10))
            }
        );
        let CommandBody::Fetch { items, .. } = ok("a FETCH 1 FULL") else {
            panic!()
        };
        assert_eq!(items.len(), 5);
        let CommandBody::Fetch { items, .. } = ok("a FETCH 1 body[text]") else {
            panic!()
        };
        assert!(matches!(items[0], FetchAtt::BodySection { .. }));
    }

    #[test]
    fn search_keys() {
        let CommandBody::Search { key, charset, .. } =
            ok("a SEARCH CHARSET UTF-8 OR FROM alice NOT SEEN SINCE 1-Feb-2024 (LARGER 10 2:4)")
        else {
            panic!()
        };
        assert_eq!(charset.as_deref(), Some("UTF-8"));
        let SearchKey::And(keys) = key else { panic!() };
        assert_eq!(keys.len(), 3);
        assert_eq!(keys[1], SearchKey::Since((2024, 2, 1)));
        let CommandBody::Search { ret, .. } = ok("a UID SEARCH RETURN (MIN COUNT) ALL") else {
            panic!()
        };
        assert!(ret.is_some_and(|r| r.min && r.count));
        assert!(matches!(err("a SEARCH FROB").error, ParseError::Syntax(_)));
        let deep = format!("a SEARCH {}ALL", "NOT ".repeat(100));
        assert!(matches!(err(&deep).error, ParseError::Syntax(_)));
    }

    #[test]
    fn store_append_list() {
        assert_eq!(
            ok("a STORE 1 +FLAGS.SILENT (\\Seen $Junk)"),
            CommandBody::Store {
                uid: false,
                set: SeqSet(vec![(SeqNum::Num(1), SeqNum::Num(1))]),
                mode: StoreMode::Add,
                silent: true,
                flags: vec![Flag::Seen, Flag::Keyword("$Junk".into())],
                unchanged_since: None
            }
        );
        let CommandBody::Append { mailbox, messages } =
            ok("a APPEND Sent (\\Seen) \"1-Feb-2024 10:00:00 +0000\" {4+}\r\nab\r\n")
        else {
            panic!()
        };
        assert_eq!(mailbox, "Sent");
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].flags, vec![Flag::Seen]);
        assert!(messages[0].date.is_some());
        assert_eq!(messages[0].message, b"ab\r\n");
        let CommandBody::List {
            patterns, options, ..
        } = ok("a LIST (SUBSCRIBED) \"\" (INBOX \"*\") RETURN (CHILDREN STATUS (MESSAGES))")
        else {
            panic!()
        };
        assert_eq!(patterns, vec!["INBOX", "*"]);
        assert!(options.subscribed && options.return_children);
        assert_eq!(options.return_status, Some(vec!["MESSAGES".to_string()]));
        assert!(matches!(ok("a LIST \"\" %"), CommandBody::List { .. }));
        assert!(
            matches!(ok("a ID (\"name\" \"x\" \"v\" NIL)"), CommandBody::Id(v) if v.len() == 2)
        );
    }

    #[test]
    fn multiappend() {
        // RFC 3502 §6.3.11: each message with its own optional flags and date.
        let CommandBody::Append { mailbox, messages } = ok(
            "a APPEND Sent (\\Seen) {2+}\r\nab \"1-Feb-2024 10:00:00 +0000\" {1+}\r\nc {3+}\r\ndef",
        ) else {
            panic!()
        };
        assert_eq!(mailbox, "Sent");
        let got: Vec<_> = messages
            .iter()
            .map(|m| (m.flags.clone(), m.date.is_some(), m.message.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (vec![Flag::Seen], false, b"ab".to_vec()),
                (vec![], true, b"c".to_vec()),
                (vec![], false, b"def".to_vec()),
            ]
        );
        // Malformed: a trailing space, a second message without its literal, flags alone.
        for bad in [
            "a APPEND x {1+}\r\na ",
            "a APPEND x {1+}\r\na (\\Seen)",
            "a APPEND x {1+}\r\na \"1-Feb-2024 10:00:00 +0000\"",
            "a APPEND x {1+}\r\na foo",
        ] {
            assert!(
                matches!(err(bad).error, ParseError::Syntax(_)),
                "{bad:?} should be a syntax error"
            );
        }
        // More messages than one APPEND may carry.
        let many = format!("a APPEND x{}", " {1+}\r\na".repeat(MAX_APPEND_MESSAGES + 1));
        assert!(matches!(err(&many).error, ParseError::Syntax(m) if m.contains("at most")));
        let enough = format!("a APPEND x{}", " {1+}\r\na".repeat(MAX_APPEND_MESSAGES));
        assert!(
            matches!(ok(&enough), CommandBody::Append { messages, .. } if messages.len() == MAX_APPEND_MESSAGES)
        );
    }

    #[test]
    fn catenate() {
        // RFC 4469 §5, alone and with MULTIAPPEND.
        let CommandBody::Append { messages, .. } = ok(
            "a APPEND x (\\Seen) CATENATE (URL \"/INBOX/;UID=1\" TEXT {2+}\r\nab) catenate (text {1+}\r\nc) {1+}\r\nd",
        ) else {
            panic!()
        };
        assert_eq!(messages.len(), 3);
        assert_eq!(
            messages[0].catenate,
            Some(vec![
                CatPart::Url("/INBOX/;UID=1".into()),
                CatPart::Text(b"ab".to_vec())
            ])
        );
        assert_eq!(messages[0].flags, vec![Flag::Seen]);
        assert_eq!(
            messages[1].catenate,
            Some(vec![CatPart::Text(b"c".to_vec())])
        );
        assert_eq!(messages[2].catenate, None);
        assert_eq!(messages[2].message, b"d");
        for bad in [
            "a APPEND x CATENATE (TEXT {1+}\r\na",
            "a APPEND x CATENATE ()",
            "a APPEND x CATENATE (TEXT \"a\")",
            "a APPEND x CATENATE (FOO \"a\")",
            "a APPEND x CATENATE",
            "a APPEND x CATENATEX (URL a)",
            "a APPEND x CATENATE (URL a",
        ] {
            assert!(
                matches!(err(bad).error, ParseError::Syntax(_)),
                "{bad:?} should be a syntax error"
            );
        }
        let many = format!(
            "a APPEND x CATENATE ({})",
            vec!["URL a"; MAX_CATENATE_PARTS + 1].join(" ")
        );
        assert!(matches!(err(&many).error, ParseError::Syntax(m) if m.contains("at most")));
    }

    #[test]
    fn quota_commands() {
        // RFC 9208 §4.1.
        for (cmd, want) in [
            ("a GETQUOTA \"\"", CommandBody::GetQuota(String::new())),
            (
                "a getquota user.bob",
                CommandBody::GetQuota("user.bob".into()),
            ),
            ("a GETQUOTA {3}\r\nx y", CommandBody::GetQuota("x y".into())),
            (
                "a GETQUOTAROOT INBOX",
                CommandBody::GetQuotaRoot("INBOX".into()),
            ),
            (
                "a GetQuotaRoot \"Entw&APw-rfe\"",
                CommandBody::GetQuotaRoot("Entw&APw-rfe".into()),
            ),
            (
                "a SETQUOTA \"\" (STORAGE 512)",
                CommandBody::SetQuota {
                    root: String::new(),
                    limits: vec![("STORAGE".into(), 512)],
                },
            ),
            (
                "a SETQUOTA r (storage 1 MESSAGE 20)",
                CommandBody::SetQuota {
                    root: "r".into(),
                    limits: vec![("STORAGE".into(), 1), ("MESSAGE".into(), 20)],
                },
            ),
            (
                "a SETQUOTA \"\" ()",
                CommandBody::SetQuota {
                    root: String::new(),
                    limits: vec![],
                },
            ),
        ] {
            assert_eq!(ok(cmd), want, "{cmd}");
        }
        assert_eq!(ok("a GETQUOTAROOT inbox").name(), "GETQUOTAROOT");
        for bad in [
            "a GETQUOTA",
            "a GETQUOTAROOT",
            "a GETQUOTA \"\" extra",
            "a GETQUOTAROOT INBOX Sent",
            "a SETQUOTA \"\"",
            "a SETQUOTA \"\" STORAGE 512",
            "a SETQUOTA \"\" (STORAGE)",
            "a SETQUOTA \"\" (STORAGE x)",
            "a SETQUOTA \"\" (STORAGE 512",
            "a SETQUOTA \"\" (STORAGE 99999999999999999999)",
            "a SETQUOTA \"\" (STORAGE 9223372036854775808)",
        ] {
            let e = err(bad);
            assert_eq!(e.tag.as_deref(), Some("a"), "{bad}");
            assert!(matches!(e.error, ParseError::Syntax(_)), "{bad}: {e:?}");
        }
        // A forgotten tag is recognised for the new names too.
        assert_eq!(
            err("GETQUOTAROOT INBOX").error,
            ParseError::TagMissing("GETQUOTAROOT".into())
        );
    }

    #[test]
    fn notify_commands() {
        use NotifyEvent as E;
        use NotifyFilter as F;
        let set = |status: bool, groups: Vec<(NotifyFilter, Vec<NotifyEvent>)>| {
            CommandBody::Notify(Some(NotifySet {
                status,
                groups: groups
                    .into_iter()
                    .map(|(filter, events)| NotifyGroup { filter, events })
                    .collect(),
            }))
        };
        for (cmd, want) in [
            ("a NOTIFY NONE", CommandBody::Notify(None)),
            ("a notify none", CommandBody::Notify(None)),
            (
                "a NOTIFY SET (selected (MessageNew MessageExpunge))",
                set(false, vec![(F::Selected, vec![E::MessageNew(vec![]), E::MessageExpunge])]),
            ),
            (
                "a notify set status (mailboxes box2 (MessageExpunge))",
                set(true, vec![(F::Mailboxes(vec!["box2".into()]), vec![E::MessageExpunge])]),
            ),
            (
                "a NOTIFY SET (mailboxes (a \"b c\") (MessageNew)) (personal NONE)",
                set(
                    false,
                    vec![
                        (F::Mailboxes(vec!["a".into(), "b c".into()]), vec![E::MessageNew(vec![])]),
                        (F::Personal, vec![]),
                    ],
                ),
            ),
            (
                "a NOTIFY SET (selected-delayed (MessageNew (UID FLAGS) MessageExpunge FlagChange)) (subtree Lists (MessageNew))",
                set(
                    false,
                    vec![
                        (
                            F::SelectedDelayed,
                            vec![
                                E::MessageNew(vec![FetchAtt::Uid, FetchAtt::Flags]),
                                E::MessageExpunge,
                                E::FlagChange,
                            ],
                        ),
                        (F::Subtree(vec!["Lists".into()]), vec![E::MessageNew(vec![])]),
                    ],
                ),
            ),
            (
                "a NOTIFY SET (inboxes (FlagChange AnnotationChange)) (subscribed (MailboxName SubscriptionChange XFoo))",
                set(
                    false,
                    vec![
                        (F::Inboxes, vec![E::FlagChange, E::AnnotationChange]),
                        (
                            F::Subscribed,
                            vec![E::MailboxName, E::SubscriptionChange, E::Other("XFoo".into())],
                        ),
                    ],
                ),
            ),
            (
                "a NOTIFY SET (selected NONE)",
                set(false, vec![(F::Selected, vec![])]),
            ),
        ] {
            assert_eq!(ok(cmd), want, "{cmd}");
        }
        assert_eq!(ok("a NOTIFY NONE").name(), "NOTIFY");
        for bad in [
            "a NOTIFY",
            "a NOTIFY SET",
            "a NOTIFY SET STATUS",
            "a NOTIFY ALL",
            "a NOTIFY NONE extra",
            "a NOTIFY SET personal (MessageNew)",
            "a NOTIFY SET (personal MessageNew)",
            "a NOTIFY SET (personal ())",
            "a NOTIFY SET (personal (MessageNew)",
            "a NOTIFY SET (everything (MessageNew))",
            "a NOTIFY SET (mailboxes (MessageNew))",
            "a NOTIFY SET (subtree () (MessageNew))",
            "a NOTIFY SET STATUSX (personal (MessageNew))",
            "a NOTIFY SET (personal (MessageNew)) ",
            // Fetch attributes only for the selected mailbox (RFC 5465 §5.2).
            "a NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",
            "a NOTIFY SET (selected (MessageNew (NOSUCH) MessageExpunge))",
            // The selected mailbox: MessageNew and FlagChange need MessageExpunge (§5).
            "a NOTIFY SET (selected (MessageNew))",
            "a NOTIFY SET (selected-delayed (FlagChange))",
        ] {
            let e = err(bad);
            assert_eq!(e.tag.as_deref(), Some("a"), "{bad}");
            assert!(matches!(e.error, ParseError::Syntax(_)), "{bad}: {e:?}");
        }
        assert_eq!(
            err("NOTIFY NONE").error,
            ParseError::TagMissing("NOTIFY".into())
        );
    }

    #[test]
    fn mailbox_names_not_utf8() {
        // Names travel as sent (modified UTF-7 is the driver's business); octets that are
        // not UTF-8 come back whole so the driver can say how to write the name.
        assert_eq!(
            ok("a CREATE Entw&APw-rfe"),
            CommandBody::Create("Entw&APw-rfe".into())
        );
        assert_eq!(
            ok("a CREATE {9}\r\nEntwürfe"),
            CommandBody::Create("Entwürfe".into())
        );
        for cmd in [
            &b"a CREATE {4}\r\nx\xfcyz"[..],
            b"a SELECT \"x\xfc\"",
            b"a RENAME a {1}\r\n\xfc",
            b"a LIST \"\" \"\xfc*\"",
            b"a LSUB \"\xfc\" *",
            b"a STATUS {1}\r\n\xfc (MESSAGES)",
            b"a APPEND {1}\r\n\xfc {1}\r\nx",
            b"a UID MOVE 1 {1}\r\n\xfc",
            b"a GETQUOTAROOT {1}\r\n\xfc",
        ] {
            let e = parse_command(cmd).expect_err("not UTF-8");
            assert_eq!(e.tag.as_deref(), Some("a"));
            assert!(
                matches!(&e.error, ParseError::MailboxNotUtf8(b) if b.contains(&0xfc)),
                "{e:?}"
            );
        }
    }

    /// A SORT or THREAD command with the tag `a`, through [`parse_command`].
    fn st(s: &str) -> CommandBody {
        match parse_command(s.as_bytes()) {
            Ok(
                c @ Command {
                    body: CommandBody::Sort(_) | CommandBody::Thread(_),
                    ..
                },
            ) => {
                assert_eq!(c.tag, "a", "{s}");
                c.body
            }
            other => panic!("{s}: {other:?}"),
        }
    }
    fn st_err(s: &str) -> ParseError {
        match parse_command(s.as_bytes()) {
            Err(e) => {
                assert_eq!(e.tag.as_deref(), Some("a"), "{s}");
                e.error
            }
            other => panic!("{s}: {other:?}"),
        }
    }
    fn crit(reverse: bool, key: SortKey) -> SortCriterion {
        SortCriterion { reverse, key }
    }

    #[test]
    fn sort_commands() {
        use SortKey as K;
        let from = SearchKey::From("x".into());
        // RFC 5256 §3's examples, imaptest's sort-* and esort commands, RFC 5957 keys.
        for (cmd, uid, ret, criteria, charset, key) in [
            (
                "a SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994",
                false,
                None,
                vec![crit(false, K::Subject)],
                "UTF-8",
                SearchKey::Since((1994, 2, 1)),
            ),
            (
                "a UID SORT (SUBJECT REVERSE DATE) UTF-8 ALL",
                true,
                None,
                vec![crit(false, K::Subject), crit(true, K::Date)],
                "UTF-8",
                SearchKey::All,
            ),
            (
                "a sort (from reverse arrival) us-ascii all",
                false,
                None,
                vec![crit(false, K::From), crit(true, K::Arrival)],
                "us-ascii",
                SearchKey::All,
            ),
            (
                "a SORT (ARRIVAL CC DATE FROM SIZE SUBJECT TO DISPLAYFROM REVERSE DISPLAYTO) \"UTF-8\" 1:5 FROM x",
                false,
                None,
                vec![
                    crit(false, K::Arrival),
                    crit(false, K::Cc),
                    crit(false, K::Date),
                    crit(false, K::From),
                    crit(false, K::Size),
                    crit(false, K::Subject),
                    crit(false, K::To),
                    crit(false, K::DisplayFrom),
                    crit(true, K::DisplayTo),
                ],
                "UTF-8",
                SearchKey::And(vec![
                    SearchKey::Seq(SeqSet(vec![(SeqNum::Num(1), SeqNum::Num(5))])),
                    from.clone(),
                ]),
            ),
            (
                "a SORT (DATE) {5}\r\nUTF-8 FROM {1}\r\nx",
                false,
                None,
                vec![crit(false, K::Date)],
                "UTF-8",
                from.clone(),
            ),
            (
                "a sort return (min) (arrival) us-ascii 1:5",
                false,
                Some(SearchReturn {
                    min: true,
                    ..SearchReturn::default()
                }),
                vec![crit(false, K::Arrival)],
                "us-ascii",
                SearchKey::Seq(SeqSet(vec![(SeqNum::Num(1), SeqNum::Num(5))])),
            ),
            (
                "a UID SORT RETURN (MAX COUNT ALL SAVE) (SIZE) UTF-8 ALL",
                true,
                Some(SearchReturn {
                    max: true,
                    count: true,
                    all: true,
                    save: true,
                    ..SearchReturn::default()
                }),
                vec![crit(false, K::Size)],
                "UTF-8",
                SearchKey::All,
            ),
            (
                "a SORT RETURN () (SIZE) UTF-8 ALL",
                false,
                Some(SearchReturn::default()),
                vec![crit(false, K::Size)],
                "UTF-8",
                SearchKey::All,
            ),
            (
                "a sort return (partial 4:2) (reverse arrival) us-ascii all",
                false,
                Some(SearchReturn {
                    partial: Some(PartialRange::First(2, 4)),
                    ..SearchReturn::default()
                }),
                vec![crit(true, K::Arrival)],
                "us-ascii",
                SearchKey::All,
            ),
            (
                "a SORT RETURN (COUNT PARTIAL -1:-100) (DATE) UTF-8 ALL",
                false,
                Some(SearchReturn {
                    count: true,
                    partial: Some(PartialRange::Last(1, 100)),
                    ..SearchReturn::default()
                }),
                vec![crit(false, K::Date)],
                "UTF-8",
                SearchKey::All,
            ),
        ] {
            let want = CommandBody::Sort(SortCommand {
                uid,
                ret,
                criteria,
                charset: charset.into(),
                key,
            });
            assert_eq!(st(cmd), want, "{cmd}");
        }
    }

    #[test]
    fn thread_commands() {
        for (cmd, uid, algorithm, key) in [
            (
                "a THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000",
                false,
                ThreadAlgorithm::OrderedSubject,
                SearchKey::Since((2000, 3, 5)),
            ),
            (
                "a thread references us-ascii all",
                false,
                ThreadAlgorithm::References,
                SearchKey::All,
            ),
            (
                "a UID THREAD REFERENCES US-ASCII TEXT \"gewp\" UNDELETED",
                true,
                ThreadAlgorithm::References,
                SearchKey::And(vec![SearchKey::Text("gewp".into()), SearchKey::Undeleted]),
            ),
        ] {
            let CommandBody::Thread(t) = st(cmd) else {
                panic!("{cmd}")
            };
            assert_eq!(
                (t.uid, t.algorithm, &t.key),
                (uid, algorithm, &key),
                "{cmd}"
            );
        }
        let CommandBody::Thread(t) = st("a THREAD REFERENCES \"x-unknown\" ALL") else {
            panic!()
        };
        assert_eq!(
            t.charset, "x-unknown",
            "the charset is the server's to judge"
        );
    }

    #[test]
    fn sort_thread_errors() {
        for bad in [
            // imaptest sort-partial: a PARTIAL range is two numbers, no `*`.
            "a sort return (partial 1) (arrival) us-ascii all",
            "a sort return (partial 1:*) (arrival) us-ascii all",
            "a sort return (partial *:1) (arrival) us-ascii all",
            "a sort return (partial 0:1) (arrival) us-ascii all",
            "a sort return (partial -1:2) (arrival) us-ascii all",
            "a sort return (partial 1:-2) (arrival) us-ascii all",
            "a sort return (partial 1:99999999999) (arrival) us-ascii all",
            "a sort return (partial) (arrival) us-ascii all",
            "a SORT RETURN (MIN (DATE) UTF-8 ALL",
            "a SORT RETURN MIN (DATE) UTF-8 ALL",
            "a SORT",
            "a SORT ",
            "a SORT () UTF-8 ALL",
            "a SORT (DATE",
            "a SORT (DATE)",
            "a SORT (DATE) UTF-8",
            "a SORT (DATE) UTF-8 ",
            "a SORT DATE UTF-8 ALL",
            "a SORT (SENDER) UTF-8 ALL",
            "a SORT (REVERSE) UTF-8 ALL",
            "a SORT (REVERSE REVERSE DATE) UTF-8 ALL",
            "a SORT (DATE  SIZE) UTF-8 ALL",
            "a SORT (DATE) UTF-8 FROB",
            "a SORT (DATE) UTF-8 ALL)",
            "a UID SORT (DATE) ALL",
            "a THREAD",
            "a THREAD REFERENCES",
            "a THREAD REFERENCES UTF-8",
            "a THREAD REFS UTF-8 ALL",
            "a THREAD (REFERENCES) UTF-8 ALL",
            "a UID THREAD ORDEREDSUBJECT UTF-8 ALL extra",
        ] {
            assert!(matches!(st_err(bad), ParseError::Syntax(_)), "{bad}");
        }
        // The texts say what to send.
        assert!(st_err("a SORT (DATE)").to_string().contains("charset"));
        assert!(st_err("a THREAD REFS UTF-8 ALL")
            .to_string()
            .contains("REFERENCES or ORDEREDSUBJECT"));
        assert!(st_err("a SORT (SENDER) UTF-8 ALL")
            .to_string()
            .contains("DISPLAYFROM"));
        // A name that only starts with SORT is unknown; SORT and THREAD have their names.
        assert!(matches!(
            err("a SORTX (DATE) UTF-8 ALL").error,
            ParseError::Unknown(_)
        ));
        assert_eq!(ok("a SORT (DATE) UTF-8 ALL").name(), "SORT");
        assert_eq!(ok("a UID SORT (DATE) UTF-8 ALL").name(), "UID SORT");
        assert_eq!(ok("a THREAD REFERENCES UTF-8 ALL").name(), "THREAD");
        assert_eq!(ok("a uid thread references utf-8 all").name(), "UID THREAD");
        // A forgotten tag before SORT is recognised like before any other command.
        assert!(matches!(
            parse_command(b"SORT REVERSE").map_err(|e| e.error),
            Err(ParseError::TagMissing(n)) if n == "SORT"
        ));
    }

    #[test]
    fn search_return_unchanged_by_sort() {
        // PARTIAL is SEARCH's too (RFC 5267 §4.4), reversed bounds put in order; zero is BAD.
        let CommandBody::Search { ret, .. } = ok("a SEARCH RETURN (PARTIAL 4:2) ALL") else {
            panic!()
        };
        assert_eq!(ret.and_then(|r| r.partial), Some(PartialRange::First(2, 4)));
        assert!(matches!(
            err("a SEARCH RETURN (PARTIAL 0:2) ALL").error,
            ParseError::Syntax(_)
        ));
        assert!(err("a SEARCH RETURN (FOO) ALL")
            .error
            .to_string()
            .contains("unknown SEARCH return option FOO"));
        let CommandBody::Search { ret, .. } = ok("a SEARCH RETURN () ALL") else {
            panic!()
        };
        assert_eq!(ret, Some(SearchReturn::default()));
    }

    #[test]
    fn context_update_and_cancelupdate() {
        // RFC 5267 §4.3: UPDATE for SEARCH and SORT; CONTEXT is a hint and changes nothing.
        let CommandBody::Search { ret, .. } = ok("a SEARCH RETURN (UPDATE CONTEXT) SEEN") else {
            panic!()
        };
        assert_eq!(
            ret,
            Some(SearchReturn {
                update: true,
                ..SearchReturn::default()
            })
        );
        let CommandBody::Sort(s) = ok("a UID SORT RETURN (update all) (DATE) UTF-8 ALL") else {
            panic!()
        };
        assert!(s.ret.is_some_and(|r| r.update && r.all));
        assert!(err("a SEARCH RETURN (UPDATE UPDATE) ALL")
            .error
            .to_string()
            .contains("twice"));
        assert_eq!(
            ok("a CANCELUPDATE \"s1\" \"s2\""),
            CommandBody::CancelUpdate(vec!["s1".into(), "s2".into()])
        );
        assert_eq!(
            ok("a cancelupdate t"),
            CommandBody::CancelUpdate(vec!["t".into()])
        );
        for bad in ["a CANCELUPDATE", "a CANCELUPDATE ", "a CANCELUPDATE \"x\" "] {
            assert!(matches!(err(bad).error, ParseError::Syntax(_)), "{bad}");
        }
    }

    #[test]
    fn partial_ranges() {
        let v = [5, 3, 4, 2, 1];
        for (r, want) in [
            (PartialRange::First(1, 1), &[5][..]),
            (PartialRange::First(2, 4), &[3, 4, 2]),
            (PartialRange::First(1, 6), &[5, 3, 4, 2, 1]),
            (PartialRange::First(6, 6), &[]),
            (PartialRange::First(5, 9), &[1]),
            (PartialRange::Last(1, 1), &[1]),
            (PartialRange::Last(1, 2), &[2, 1]),
            (PartialRange::Last(2, 100), &[5, 3, 4, 2]),
            (PartialRange::Last(5, 5), &[5]),
            (PartialRange::Last(6, 7), &[]),
        ] {
            assert_eq!(r.slice(&v), want, "{r}");
        }
        assert_eq!(PartialRange::First(2, 4).to_string(), "2:4");
        assert_eq!(PartialRange::Last(1, 100).to_string(), "-1:-100");
        assert_eq!(PartialRange::First(1, 3).slice::<u32>(&[]), &[] as &[u32]);
    }

    /// SORT and THREAD framed by the line reader and the assembler one octet at a time (a
    /// literal charset and a literal search string), then parsed.
    #[test]
    fn sort_thread_one_octet_at_a_time() {
        let wire: &[u8] = b"a UID SORT RETURN (PARTIAL 1:10) (REVERSE DATE) {5+}\r\nUTF-8 SUBJECT {3+}\r\nf\xc3\xbc\r\na THREAD REFERENCES US-ASCII ALL\r\n";
        let done = super::super::assemble::chunk_tests::one_octet_at_a_time_commands(wire);
        assert_eq!(done.len(), 2);
        let CommandBody::Sort(s) = st(&String::from_utf8_lossy(&done[0])) else {
            panic!()
        };
        assert!(s.uid);
        assert_eq!(s.charset, "UTF-8");
        assert_eq!(s.criteria, vec![crit(true, SortKey::Date)]);
        assert_eq!(s.key, SearchKey::Subject("fü".into()));
        assert_eq!(
            s.ret.and_then(|r| r.partial),
            Some(PartialRange::First(1, 10))
        );
        assert!(matches!(
            st(&String::from_utf8_lossy(&done[1])),
            CommandBody::Thread(ThreadCommand {
                algorithm: ThreadAlgorithm::References,
                ..
            })
        ));
    }

    /// RFC 5182 §4: `$` is a sequence set on its own, wherever one is taken.
    #[test]
    fn saved_result_marker() {
        let saved = SeqSet::saved();
        let cases: &[(&str, CommandBody)] = &[
            (
                "a FETCH $ FLAGS",
                CommandBody::Fetch {
                    uid: false,
                    set: saved.clone(),
                    items: vec![FetchAtt::Flags],
                    changed_since: None,
                    vanished: false,
                },
            ),
            (
                "a UID COPY $ Trash",
                CommandBody::Copy {
                    uid: true,
                    set: saved.clone(),
                    mailbox: "Trash".into(),
                },
            ),
            (
                "a UID MOVE $ Trash",
                CommandBody::Move {
                    uid: true,
                    set: saved.clone(),
                    mailbox: "Trash".into(),
                },
            ),
            (
                "a UID EXPUNGE $",
                CommandBody::Expunge {
                    uids: Some(saved.clone()),
                },
            ),
            (
                "a UID SEARCH UID $",
                CommandBody::Search {
                    uid: true,
                    ret: None,
                    charset: None,
                    key: SearchKey::Uid(saved.clone()),
                },
            ),
            (
                "a SEARCH $ SEEN",
                CommandBody::Search {
                    uid: false,
                    ret: None,
                    charset: None,
                    key: SearchKey::And(vec![SearchKey::Seq(saved.clone()), SearchKey::Seen]),
                },
            ),
        ];
        for (line, want) in cases {
            assert_eq!(&ok(line), want, "{line}");
        }
        for bad in [
            "a FETCH $,1 FLAGS",
            "a FETCH $:3 FLAGS",
            "a FETCH 1,$ FLAGS",
            "a FETCH $$ FLAGS",
        ] {
            assert!(matches!(err(bad).error, ParseError::Syntax(_)), "{bad}");
        }
        assert!(saved.is_saved());
        assert!(!SeqSet(vec![(SeqNum::Num(1), SeqNum::Star)]).is_saved());
        // Left unreplaced, `$` names nothing.
        assert!(saved.normalized(10).is_empty());
        assert!(!saved.contains(1, 10));
    }

    #[test]
    fn seqset_contains() {
        let s = SeqSet(vec![(SeqNum::Num(5), SeqNum::Num(2))]);
        assert!(s.contains(3, 10));
        assert!(!s.contains(6, 10));
        let s = SeqSet(vec![(SeqNum::Num(3), SeqNum::Star)]);
        assert!(s.contains(10, 10));
        assert!(!s.contains(2, 10));
        let s = SeqSet(vec![
            (SeqNum::Num(9), SeqNum::Num(7)),
            (SeqNum::Num(1), SeqNum::Num(2)),
            (SeqNum::Num(3), SeqNum::Num(3)),
            (SeqNum::Star, SeqNum::Star),
        ]);
        let n = s.normalized(20);
        assert_eq!(n, vec![(1, 3), (7, 9), (20, 20)]);
        for (x, want) in [
            (0, false),
            (1, true),
            (3, true),
            (4, false),
            (8, true),
            (10, false),
            (20, true),
        ] {
            assert_eq!(SeqSet::in_normalized(&n, x), want, "{x}");
        }
    }
}
