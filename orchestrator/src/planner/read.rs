//! Reading a question in plain English, with no guessing: every word is
//! either understood (an address, a transaction noun, a count, a date or
//! amount qualifier, what to report) or known filler ("what", "the",
//! "for"). A word that is neither makes the whole question refused, and
//! the refusal names it: a qualifier is never silently dropped.
//!
//! Reading is two passes. [`scan`] gives each word or phrase a [`Role`];
//! [`Reading::question`] combines the roles and sets aside, as unused, any
//! part that does not fit with the rest (a count with "how many", a second
//! date range, "oldest" with "latest").

use std::{collections::BTreeSet, ops::Range};

use chrono::NaiveDate;

use super::{
    PlanError,
    question::{AmountLimit, Ask, DateFilter, Period, Pick, Question, Report, Selection},
};

/// Most addresses one question may name.
pub const EMAILS_MAX: usize = 10;

/// What may surround a word in a sentence without being part of it.
const PUNCTUATION: &str = "?!.,;:\"'()<>[]{}`";

const NOUNS: [&str; 6] = [
    "transaction",
    "purchase",
    "payment",
    "order",
    "charge",
    "expense",
];
/// Words that name transactions in general, with no number.
const TOPICS: [&str; 4] = ["spending", "history", "activity", "bought"];
const NEWEST: [&str; 5] = ["last", "latest", "recent", "newest", "past"];
const OLDEST: [&str; 3] = ["oldest", "earliest", "first"];
const ID_WORDS: [&str; 5] = ["id", "userid", "user-id", "identifier", "uuid"];
const NUMBER_WORDS: [&str; 21] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];
/// Words that carry no meaning of their own here. "in", "on" and "from"
/// are filler only where no date follows them.
const FILLER: [&str; 56] = [
    "what", "what's", "whats", "what’s", "which", "are", "is", "was", "were", "be", "been", "the",
    "a", "an", "for", "of", "by", "me", "my", "show", "list", "give", "get", "tell", "find", "see",
    "all", "every", "any", "did", "does", "do", "has", "have", "had", "make", "made", "please",
    "to", "with", "user", "email", "address", "account", "customer", "and", "i", "can", "you",
    "their", "his", "her", "there", "so", "far", "money",
];
const GLUE: [&str; 3] = ["in", "on", "from"];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
/// Currency symbols, written before the amount, and their ISO codes.
const CURRENCY_SYMBOLS: [(&str, &str); 5] = [
    ("£", "GBP"),
    ("$", "USD"),
    ("€", "EUR"),
    ("¥", "JPY"),
    ("₹", "INR"),
];
/// Currency names, written after the amount, and their ISO codes.
const CURRENCY_NAMES: [(&str, &str); 5] = [
    ("pounds", "GBP"),
    ("dollars", "USD"),
    ("euros", "EUR"),
    ("yen", "JPY"),
    ("rupees", "INR"),
];
/// ISO 4217 codes a question may name by code.
const CURRENCY_CODES: [&str; 13] = [
    "GBP", "USD", "EUR", "JPY", "INR", "CHF", "KWD", "CAD", "AUD", "CNY", "SEK", "NOK", "DKK",
];
/// Amount qualifiers: the words, whether they bound from above, inclusive.
const AMOUNT_WORDS: [(&[&str], bool, bool); 9] = [
    (&["over"], true, false),
    (&["above"], true, false),
    (&["more", "than"], true, false),
    (&["greater", "than"], true, false),
    (&["at", "least"], true, true),
    (&["under"], false, false),
    (&["below"], false, false),
    (&["less", "than"], false, false),
    (&["at", "most"], false, true),
];
const REPORT_WORDS: [(&[&str], Report); 7] = [
    (&["how", "much"], Report::Total),
    (&["in", "total"], Report::Total),
    (&["total"], Report::Total),
    (&["spent"], Report::Total),
    (&["spend"], Report::Total),
    (&["how", "many"], Report::Count),
    (&["number", "of"], Report::Count),
];

/// Understands a question in plain English completely, or refuses it.
pub fn parse_question(text: &str) -> Result<Question, PlanError> {
    let tokens = tokenize(text);
    let parts = scan(&tokens);
    Reading::new(&tokens, parts).question()
}

/// One word of the question: as written (less the punctuation around it)
/// and lower-cased.
struct Token {
    raw: String,
    word: String,
}

fn tokenize(text: &str) -> Vec<Token> {
    text.split_whitespace()
        .map(|raw| raw.trim_matches(|c: char| PUNCTUATION.contains(c)))
        .filter(|raw| !raw.is_empty())
        .map(|raw| Token {
            raw: raw.to_owned(),
            word: raw.to_lowercase(),
        })
        .collect()
}

/// What a word or phrase is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    Email(String),
    Noun {
        plural: bool,
    },
    Topic,
    Newest,
    Oldest,
    Number(u32),
    Report(Report),
    Id,
    Dates(DateFilter),
    Amount {
        above: bool,
        limit: AmountLimit,
    },
    Filler,
    /// Neither understood nor filler.
    Unknown,
}

#[derive(Debug, Clone)]
struct Part {
    role: Role,
    span: Range<usize>,
}

/// Gives every token a role, phrases first.
fn scan(tokens: &[Token]) -> Vec<Part> {
    let words: Vec<&str> = tokens.iter().map(|t| t.word.as_str()).collect();
    let mut parts = Vec::new();
    let mut at = 0;
    while at < tokens.len() {
        let (role, len) = role_at(tokens, &words, at);
        parts.push(Part {
            role,
            span: at..at + len,
        });
        at += len;
    }
    parts
}

fn role_at(tokens: &[Token], words: &[&str], at: usize) -> (Role, usize) {
    if let Some(email) = email_in(&tokens[at].raw) {
        return (Role::Email(email), 1);
    }
    let phrase = date_phrase(words, at)
        .or_else(|| amount_phrase(tokens, words, at))
        .or_else(|| report_phrase(words, at));
    if let Some(found) = phrase {
        return found;
    }
    let word = words[at];
    let role = if let Some(plural) = noun(word) {
        Role::Noun { plural }
    } else if TOPICS.contains(&word) {
        Role::Topic
    } else if word == "most" && words.get(at + 1).is_some_and(|w| NEWEST.contains(w)) {
        return (Role::Newest, 2);
    } else if NEWEST.contains(&word) {
        Role::Newest
    } else if OLDEST.contains(&word) {
        Role::Oldest
    } else if let Some(n) = count(word) {
        Role::Number(n)
    } else if ID_WORDS.contains(&word) {
        Role::Id
    } else if FILLER.contains(&word) || GLUE.contains(&word) {
        Role::Filler
    } else {
        Role::Unknown
    };
    (role, 1)
}

/// The address a word holds, less a possessive `'s`: `bob@example.com's`.
fn email_in(raw: &str) -> Option<String> {
    let raw = raw.strip_suffix("'s").unwrap_or(raw);
    let (local, domain) = raw.split_once('@')?;
    (!local.is_empty() && !domain.is_empty()).then(|| raw.to_owned())
}

/// `Some(plural)` for a transaction noun.
fn noun(word: &str) -> Option<bool> {
    if NOUNS.contains(&word) {
        return Some(false);
    }
    word.strip_suffix('s')
        .filter(|w| NOUNS.contains(w))
        .map(|_| true)
}

/// A count in digits or words.
fn count(word: &str) -> Option<u32> {
    if word.bytes().all(|b| b.is_ascii_digit()) {
        return word.parse().ok();
    }
    NUMBER_WORDS
        .iter()
        .position(|n| *n == word)
        .map(|n| n as u32)
}

fn starts_with(words: &[&str], at: usize, phrase: &[&str]) -> bool {
    words.get(at..at + phrase.len()) == Some(phrase)
}

fn report_phrase(words: &[&str], at: usize) -> Option<(Role, usize)> {
    REPORT_WORDS
        .iter()
        .find(|(phrase, _)| starts_with(words, at, phrase))
        .map(|(phrase, report)| (Role::Report(*report), phrase.len()))
}

/// "on 16 January 2023", "in March 2023", "since 2023", "between … and …".
fn date_phrase(words: &[&str], at: usize) -> Option<(Role, usize)> {
    let start = at + 1;
    let single = |make: fn(Period) -> DateFilter| {
        period(words, start).map(|(p, len)| (Role::Dates(make(p)), len + 1))
    };
    match words[at] {
        "on" | "in" | "during" => single(DateFilter::During),
        "since" => single(DateFilter::Since),
        "after" => single(DateFilter::After),
        "before" => single(DateFilter::Before),
        "between" | "from" => {
            let (first, len) = period(words, start)?;
            let joint = if words[at] == "between" {
                ["and"].as_slice()
            } else {
                &["to", "until"]
            };
            if !joint.contains(words.get(start + len)?) {
                return None;
            }
            let (second, len2) = period(words, start + len + 1)?;
            Some((
                Role::Dates(DateFilter::Between(first, second)),
                len + len2 + 2,
            ))
        }
        _ => None,
    }
}

/// A day, month or year at `at`: `2023-01-16`, `2023-03`, `2023`,
/// `16 January 2023`, `the 16th of Jan 2023`, `January 16 2023`,
/// `March 2023`. Returns it and the words it took.
fn period(words: &[&str], at: usize) -> Option<(Period, usize)> {
    let skip = usize::from(words.get(at) == Some(&"the"));
    let at = at + skip;
    let word = |i: usize| words.get(at + i).copied();
    let first = word(0)?;
    if let Some(found) = iso_period(first) {
        return Some((found, 1 + skip));
    }
    if let Some(day) = day_of_month(first) {
        let (month, taken) = month_after(words, at + 1)?;
        let year = word(1 + taken).and_then(year_of)?;
        let date = NaiveDate::from_ymd_opt(year, month, day)?;
        return Some((Period::Day(date), 2 + taken + skip));
    }
    let month = month_of(first)?;
    if let (Some(day), Some(year)) = (word(1).and_then(day_of_month), word(2).and_then(year_of)) {
        let date = NaiveDate::from_ymd_opt(year, month, day)?;
        return Some((Period::Day(date), 3 + skip));
    }
    let year = word(1).and_then(year_of)?;
    Some((Period::Month { year, month }, 2 + skip))
}

/// The month after a day: `January` or `of January`, and the words taken.
fn month_after(words: &[&str], at: usize) -> Option<(u32, usize)> {
    let of = usize::from(words.get(at) == Some(&"of"));
    words
        .get(at + of)
        .and_then(|w| month_of(w))
        .map(|m| (m, 1 + of))
}

fn iso_period(word: &str) -> Option<Period> {
    if let Some(year) = year_of(word) {
        return Some(Period::Year(year));
    }
    if word.len() == 10 {
        return NaiveDate::parse_from_str(word, "%Y-%m-%d")
            .ok()
            .map(Period::Day);
    }
    let (year, month) = word.split_once('-')?;
    let month: u32 = (month.len() == 2).then(|| month.parse().ok()).flatten()?;
    ((1..=12).contains(&month)).then_some(Period::Month {
        year: year_of(year)?,
        month,
    })
}

/// A year written with four digits.
fn year_of(word: &str) -> Option<i32> {
    (word.len() == 4 && word.bytes().all(|b| b.is_ascii_digit()))
        .then(|| word.parse().ok())
        .flatten()
}

/// `16`, `16th`, `1st`: a day of a month.
fn day_of_month(word: &str) -> Option<u32> {
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &word[digits.len()..];
    if !["", "st", "nd", "rd", "th"].contains(&suffix) || digits.len() > 2 {
        return None;
    }
    digits.parse().ok().filter(|d| (1..=31).contains(d))
}

/// A month by name or by its first three letters (and "sept").
fn month_of(word: &str) -> Option<u32> {
    let found = MONTHS.iter().position(|m| {
        *m == word
            || (word.len() == 3 && m.starts_with(word))
            || (word == "sept" && *m == "september")
    })?;
    Some(found as u32 + 1)
}

/// "over £50", "under 20 USD", "at least EUR 10.50".
fn amount_phrase(tokens: &[Token], words: &[&str], at: usize) -> Option<(Role, usize)> {
    let &(phrase, above, inclusive) = AMOUNT_WORDS
        .iter()
        .find(|(p, _, _)| starts_with(words, at, p))?;
    let (amount, currency, len) = money(tokens, at + phrase.len())?;
    // "more than 3 purchases" counts purchases; it is no amount.
    let next = words.get(at + phrase.len() + len).copied();
    if currency.is_none() && next.and_then(noun).is_some() {
        return None;
    }
    let limit = AmountLimit {
        amount,
        currency,
        inclusive,
    };
    Some((Role::Amount { above, limit }, phrase.len() + len))
}

/// An amount at `at`: `£50`, `50`, `50 GBP`, `GBP 50`, `50 pounds`.
fn money(tokens: &[Token], at: usize) -> Option<(String, Option<String>, usize)> {
    let word = |i: usize| tokens.get(at + i).map(|t| t.word.as_str());
    let first = word(0)?;
    if let Some((sign, code)) = CURRENCY_SYMBOLS.iter().find(|(s, _)| first.starts_with(s))
        && let Some(amount) = decimal(&first[sign.len()..])
    {
        return Some((amount, Some((*code).to_owned()), 1));
    }
    if let Some(code) = currency_code(first)
        && let Some(amount) = word(1).and_then(decimal)
    {
        return Some((amount, Some(code), 2));
    }
    let amount = decimal(first)?;
    match word(1).and_then(currency_word) {
        Some(code) => Some((amount, Some(code), 2)),
        None => Some((amount, None, 1)),
    }
}

fn currency_code(word: &str) -> Option<String> {
    let upper = word.to_uppercase();
    CURRENCY_CODES.contains(&upper.as_str()).then_some(upper)
}

fn currency_word(word: &str) -> Option<String> {
    currency_code(word).or_else(|| {
        CURRENCY_NAMES
            .iter()
            .find(|(name, _)| *name == word)
            .map(|(_, code)| (*code).to_owned())
    })
}

/// `1,250.50` → `1250.50`: digits in groups of three, a point, digits.
fn decimal(text: &str) -> Option<String> {
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) if !f.is_empty() => (w, Some(f)),
        Some(_) => return None,
        None => (text, None),
    };
    let groups: Vec<&str> = whole.split(',').collect();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let grouped =
        groups.len() == 1 || (groups[0].len() <= 3 && groups[1..].iter().all(|g| g.len() == 3));
    if !groups.iter().all(|g| digits(g)) || !grouped || !fraction.is_none_or(digits) {
        return None;
    }
    let mut plain = groups.concat();
    if let Some(fraction) = fraction {
        plain.push('.');
        plain.push_str(fraction);
    }
    Some(plain)
}

/// The parts of a question and which of them could not be used.
struct Reading<'a> {
    tokens: &'a [Token],
    parts: Vec<Part>,
    unused: BTreeSet<usize>,
}

impl<'a> Reading<'a> {
    fn new(tokens: &'a [Token], parts: Vec<Part>) -> Self {
        let mut reading = Self {
            tokens,
            parts,
            unused: BTreeSet::new(),
        };
        let unknown: Vec<usize> = reading.find(|r| *r == Role::Unknown);
        reading.set_aside(&unknown);
        reading
    }

    /// The positions (in `parts`) of the parts whose role matches.
    fn find(&self, matches: impl Fn(&Role) -> bool) -> Vec<usize> {
        (0..self.parts.len())
            .filter(|&i| matches(&self.parts[i].role))
            .collect()
    }

    fn has(&self, matches: impl Fn(&Role) -> bool) -> bool {
        !self.find(matches).is_empty()
    }

    /// Marks parts as not usable in this question.
    fn set_aside(&mut self, parts: &[usize]) {
        for &i in parts {
            self.unused.extend(self.parts[i].span.clone());
        }
    }

    fn question(mut self) -> Result<Question, PlanError> {
        let emails: Vec<String> = self
            .parts
            .iter()
            .filter_map(|p| match &p.role {
                Role::Email(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        if emails.is_empty() {
            return Err(PlanError::NoEmail);
        }
        if emails.len() > EMAILS_MAX {
            return Err(PlanError::TooManyEmails {
                named: emails.len(),
            });
        }
        let about_money =
            self.has(|r| matches!(r, Role::Noun { .. } | Role::Topic | Role::Report(_)));
        let ask = if about_money {
            let ids = self.find(|r| *r == Role::Id);
            self.set_aside(&ids);
            self.transactions()?
        } else if self.has(|r| *r == Role::Id) {
            let qualifiers = self.find(|r| {
                matches!(
                    r,
                    Role::Newest
                        | Role::Oldest
                        | Role::Number(_)
                        | Role::Dates(_)
                        | Role::Amount { .. }
                )
            });
            self.set_aside(&qualifiers);
            Ask::UserId
        } else {
            let rest = self.find(|r| !matches!(r, Role::Email(_) | Role::Filler));
            self.set_aside(&rest);
            return Err(self.refusal());
        };
        if !self.unused.is_empty() {
            return Err(self.refusal());
        }
        Ok(Question { emails, ask })
    }

    fn transactions(&mut self) -> Result<Ask, PlanError> {
        let report = self.report();
        let mut selection = Selection {
            pick: self.pick()?,
            ..Selection::default()
        };
        let dates = self.find(|r| matches!(r, Role::Dates(_)));
        if let Some((&first, rest)) = dates.split_first() {
            if let Role::Dates(filter) = self.parts[first].role {
                selection.dates = Some(filter);
            }
            self.set_aside(rest);
        }
        for bound_above in [true, false] {
            let found =
                self.find(|r| matches!(r, Role::Amount { above, .. } if *above == bound_above));
            if let Some((&first, rest)) = found.split_first() {
                if let Role::Amount { limit, .. } = &self.parts[first].role {
                    let slot = if bound_above {
                        &mut selection.above
                    } else {
                        &mut selection.below
                    };
                    *slot = Some(limit.clone());
                }
                self.set_aside(rest);
            }
        }
        if report == Report::Count && selection.pick != Pick::All {
            let picks = self.find(|r| matches!(r, Role::Newest | Role::Oldest | Role::Number(_)));
            self.set_aside(&picks);
        }
        Ok(Ask::Transactions { selection, report })
    }

    /// Total or count; both at once is one too many.
    fn report(&mut self) -> Report {
        let counts = self.find(|r| *r == Role::Report(Report::Count));
        if self.has(|r| *r == Role::Report(Report::Total)) {
            self.set_aside(&counts);
            Report::Total
        } else if counts.is_empty() {
            Report::List
        } else {
            Report::Count
        }
    }

    /// Which end and how many: a number next to a recency word ("last 2",
    /// "2 most recent") or just before a noun ("seven orders"); else one
    /// for a recency word with a singular noun ("the latest purchase").
    fn pick(&mut self) -> Result<Pick, PlanError> {
        let newest = self.find(|r| *r == Role::Newest);
        let oldest = self.find(|r| *r == Role::Oldest);
        if !newest.is_empty() && !oldest.is_empty() {
            self.set_aside(&oldest);
        }
        let from_oldest = newest.is_empty() && !oldest.is_empty();
        let numbers = self.find(|r| matches!(r, Role::Number(_)));
        let (attached, loose): (Vec<usize>, Vec<usize>) =
            numbers.into_iter().partition(|&i| self.is_count(i));
        self.set_aside(&loose);
        if let Some((&first, rest)) = attached.split_first() {
            self.set_aside(rest);
            let Role::Number(n) = self.parts[first].role else {
                unreachable!("a number")
            };
            if n == 0 {
                return Err(PlanError::ZeroCount);
            }
            return Ok(if from_oldest {
                Pick::Oldest(n)
            } else {
                Pick::Newest(n)
            });
        }
        let singular = self.has(|r| *r == Role::Noun { plural: false })
            && !self.has(|r| *r == Role::Noun { plural: true });
        Ok(match (singular, newest.is_empty(), from_oldest) {
            (true, false, _) => Pick::Newest(1),
            (true, _, true) => Pick::Oldest(1),
            (false, _, true) => {
                // "the oldest transactions", with no number: how many?
                self.set_aside(&oldest);
                Pick::All
            }
            _ => Pick::All,
        })
    }

    /// Whether the number at part `i` says how many: a recency word just
    /// before it, or recency words and then a noun just after it.
    fn is_count(&self, i: usize) -> bool {
        let recency = |r: &Role| matches!(r, Role::Newest | Role::Oldest);
        if i > 0 && recency(&self.parts[i - 1].role) {
            return true;
        }
        let mut next = i + 1;
        while next < self.parts.len() && recency(&self.parts[next].role) {
            next += 1;
        }
        self.parts
            .get(next)
            .is_some_and(|p| matches!(p.role, Role::Noun { .. }))
    }

    /// The refusal, naming each run of unused words as written, with the
    /// word that leads into it ("in March", "last month", "on coffee").
    fn refusal(&self) -> PlanError {
        let mut shown = self.unused.clone();
        for part in &self.parts {
            let leads = matches!(part.role, Role::Newest | Role::Oldest)
                || (part.role == Role::Filler
                    && GLUE.contains(&self.tokens[part.span.start].word.as_str()));
            if leads && self.unused.contains(&part.span.end) {
                shown.extend(part.span.clone());
            }
        }
        let mut unused: Vec<String> = Vec::new();
        let mut last = None;
        for &i in &shown {
            let word = &self.tokens[i].raw;
            match (last, unused.last_mut()) {
                (Some(prev), Some(phrase)) if prev + 1 == i => {
                    phrase.push(' ');
                    phrase.push_str(word);
                }
                _ => unused.push(word.clone()),
            }
            last = Some(i);
        }
        PlanError::NotUnderstood { unused }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(emails: &[&str], selection: Selection) -> Question {
        transactions(emails, selection, Report::List)
    }

    fn transactions(emails: &[&str], selection: Selection, report: Report) -> Question {
        Question {
            emails: emails.iter().map(|e| (*e).to_owned()).collect(),
            ask: Ask::Transactions { selection, report },
        }
    }

    fn pick(pick: Pick) -> Selection {
        Selection {
            pick,
            ..Selection::default()
        }
    }

    fn dates(filter: DateFilter) -> Selection {
        Selection {
            dates: Some(filter),
            ..Selection::default()
        }
    }

    fn day(text: &str) -> Period {
        Period::Day(NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap())
    }

    fn limit(amount: &str, currency: Option<&str>, inclusive: bool) -> Option<AmountLimit> {
        Some(AmountLimit {
            amount: amount.into(),
            currency: currency.map(str::to_owned),
            inclusive,
        })
    }

    fn refused(text: &str) -> Vec<String> {
        match parse_question(text) {
            Err(PlanError::NotUnderstood { unused }) => unused,
            other => panic!("{text:?} was not refused: {other:?}"),
        }
    }

    const BOB: &[&str] = &["bob@example.com"];

    #[test]
    fn reads_the_forms_it_read_before_as_before() {
        for (text, expected) in [
            (
                "What are the recent transactions for bob@example.com?",
                list(BOB, Selection::default()),
            ),
            (
                "Show me all purchases for Alice@Example.com",
                list(&["Alice@Example.com"], Selection::default()),
            ),
            (
                "spending history of bob@example.com",
                list(BOB, Selection::default()),
            ),
            (
                "last 2 transactions for bob@example.com",
                list(BOB, pick(Pick::Newest(2))),
            ),
            (
                "bob@example.com's three most recent payments",
                list(BOB, pick(Pick::Newest(3))),
            ),
            (
                "bob@example.com's 12 most recent payments?",
                list(BOB, pick(Pick::Newest(12))),
            ),
            (
                "what were the last seven orders of bob@example.com",
                list(BOB, pick(Pick::Newest(7))),
            ),
            (
                "What was the latest purchase by bob@example.com?",
                list(BOB, pick(Pick::Newest(1))),
            ),
            (
                "last transaction for bob@example.com",
                list(BOB, pick(Pick::Newest(1))),
            ),
            (
                "2 transactions for bob@example.com",
                list(BOB, pick(Pick::Newest(2))),
            ),
        ] {
            assert_eq!(parse_question(text), Ok(expected), "{text}");
        }
        for text in [
            "What is the user id of charlie@example.com?",
            "userid for charlie@example.com",
        ] {
            let expected = Question {
                emails: vec!["charlie@example.com".into()],
                ask: Ask::UserId,
            };
            assert_eq!(parse_question(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn reads_totals_counts_and_the_oldest() {
        for (text, expected) in [
            (
                "What is the total alice@example.com spent?",
                transactions(&["alice@example.com"], Selection::default(), Report::Total),
            ),
            (
                "How much has (bob@example.com) spent?",
                transactions(BOB, Selection::default(), Report::Total),
            ),
            (
                "total of the last 3 purchases for bob@example.com",
                transactions(BOB, pick(Pick::Newest(3)), Report::Total),
            ),
            (
                "how many transactions does bob@example.com have",
                transactions(BOB, Selection::default(), Report::Count),
            ),
            (
                "number of orders of bob@example.com",
                transactions(BOB, Selection::default(), Report::Count),
            ),
            (
                "the oldest purchase of bob@example.com",
                list(BOB, pick(Pick::Oldest(1))),
            ),
            (
                "first 3 transactions for bob@example.com",
                list(BOB, pick(Pick::Oldest(3))),
            ),
            (
                "the 2 earliest payments of bob@example.com",
                list(BOB, pick(Pick::Oldest(2))),
            ),
        ] {
            assert_eq!(parse_question(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn reads_every_kind_of_date() {
        let march = Period::Month {
            year: 2023,
            month: 3,
        };
        for (text, filter) in [
            (
                "purchases for bob@example.com in March 2023",
                DateFilter::During(march),
            ),
            (
                "purchases for bob@example.com during mar 2023",
                DateFilter::During(march),
            ),
            (
                "purchases for bob@example.com in 2023-03",
                DateFilter::During(march),
            ),
            (
                "transactions in 2023 for bob@example.com",
                DateFilter::During(Period::Year(2023)),
            ),
            (
                "transactions for bob@example.com on 16 January 2023",
                DateFilter::During(day("2023-01-16")),
            ),
            (
                "transactions for bob@example.com on January 16, 2023",
                DateFilter::During(day("2023-01-16")),
            ),
            (
                "transactions for bob@example.com on the 16th of Jan 2023",
                DateFilter::During(day("2023-01-16")),
            ),
            (
                "transactions for bob@example.com on 2023-01-16",
                DateFilter::During(day("2023-01-16")),
            ),
            (
                "transactions for bob@example.com since 1 March 2023",
                DateFilter::Since(day("2023-03-01")),
            ),
            (
                "transactions for bob@example.com since March 2023",
                DateFilter::Since(march),
            ),
            (
                "transactions for bob@example.com after 14 January 2023",
                DateFilter::After(day("2023-01-14")),
            ),
            (
                "transactions for bob@example.com before 2023",
                DateFilter::Before(Period::Year(2023)),
            ),
            (
                "transactions for bob@example.com between 1 January 2023 and 15 January 2023",
                DateFilter::Between(day("2023-01-01"), day("2023-01-15")),
            ),
            (
                "transactions for bob@example.com from January 2023 to March 2023",
                DateFilter::Between(
                    Period::Month {
                        year: 2023,
                        month: 1,
                    },
                    march,
                ),
            ),
        ] {
            assert_eq!(parse_question(text), Ok(list(BOB, dates(filter))), "{text}");
        }
    }

    #[test]
    fn reads_amounts_with_and_without_a_currency() {
        for (text, above, below) in [
            (
                "purchases over £50 for bob@example.com",
                limit("50", Some("GBP"), false),
                None,
            ),
            (
                "purchases above 1,250.50 GBP for bob@example.com",
                limit("1250.50", Some("GBP"), false),
                None,
            ),
            (
                "bob@example.com's purchases more than 20 dollars",
                limit("20", Some("USD"), false),
                None,
            ),
            (
                "bob@example.com's purchases at least USD 20",
                limit("20", Some("USD"), true),
                None,
            ),
            (
                "bob@example.com's purchases under $20.50",
                None,
                limit("20.50", Some("USD"), false),
            ),
            (
                "bob@example.com's purchases at most 75",
                None,
                limit("75", None, true),
            ),
            (
                "payments of bob@example.com over 10 and under €100",
                limit("10", None, false),
                limit("100", Some("EUR"), false),
            ),
        ] {
            let selection = Selection {
                above,
                below,
                ..Selection::default()
            };
            assert_eq!(parse_question(text), Ok(list(BOB, selection)), "{text}");
        }
    }

    #[test]
    fn answers_for_every_address_named() {
        assert_eq!(
            parse_question("transactions for alice@example.com and charlie@example.com"),
            Ok(list(
                &["alice@example.com", "charlie@example.com"],
                Selection::default()
            ))
        );
        let many: Vec<String> = (0..=EMAILS_MAX)
            .map(|i| format!("u{i}@example.com"))
            .collect();
        assert_eq!(
            parse_question(&format!("transactions for {}", many.join(", "))),
            Err(PlanError::TooManyEmails {
                named: EMAILS_MAX + 1
            })
        );
    }

    #[test]
    fn refuses_naming_what_it_could_not_use() {
        for (text, unused) in [
            ("What is the weather for bob@example.com?", vec!["weather"]),
            (
                "purchases for bob@example.com at Starbucks",
                vec!["at Starbucks"],
            ),
            ("purchases for bob@example.com in March", vec!["in March"]),
            (
                "purchases for bob@example.com last month",
                vec!["last month"],
            ),
            (
                "how much did bob@example.com spend on coffee",
                vec!["on coffee"],
            ),
            ("top 3 transactions for bob@example.com", vec!["top"]),
            ("transactions for bob@example.com in EUR", vec!["in EUR"]),
            ("order 66 for bob@example.com", vec!["66"]),
            (
                "how many of the last 5 transactions of bob@example.com",
                vec!["last 5"],
            ),
            (
                "total and how many purchases for bob@example.com",
                vec!["how many"],
            ),
            (
                "transactions for bob@example.com since 2023 before 2024",
                vec!["before 2024"],
            ),
            (
                "the oldest and latest purchase of bob@example.com",
                vec!["oldest"],
            ),
            ("the oldest purchases of bob@example.com", vec!["oldest"]),
            ("user id of bob@example.com since 2023", vec!["since 2023"]),
            ("user id and transactions of bob@example.com", vec!["id"]),
            (
                "does bob@example.com have more than 3 purchases",
                vec!["more than"],
            ),
            (
                "purchases of bob@example.com between £10 and £50",
                vec!["between £10", "£50"],
            ),
            (
                "transactions for bob@example.com on 31 February 2023",
                vec!["on 31 February 2023"],
            ),
            ("bob@example.com", vec![]),
        ] {
            assert_eq!(refused(text), unused, "{text}");
        }
        assert_eq!(
            parse_question("What are the recent transactions?"),
            Err(PlanError::NoEmail)
        );
        assert_eq!(
            parse_question("last 0 transactions for bob@example.com"),
            Err(PlanError::ZeroCount)
        );
    }
}
