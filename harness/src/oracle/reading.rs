//! The oracle's own reading of questions and of email addresses.
//!
//! It reads the forms the scenario files list and `explore` writes (the
//! list of a user's transactions, the newest n, a user id; one address),
//! by its own method: the address is the word with an `@` in it; a
//! question is about transactions when one of its words names them; the
//! count is the number just before a transaction noun, looking past the
//! recency adjectives in between ("last 2 purchases", "3 most recent
//! payments"). Every other word must be one it knows to carry no meaning;
//! a question with any other word is one it does not read (a scenario
//! cannot list it), so that a qualifier it would miss can never make it
//! expect the wrong answer. Generated questions of the other forms carry
//! their [`Meaning`]. It shares no code with `orchestrator::planner`, whose
//! rules it checks.

use super::meaning::{Meaning, Take, Wanted, What};

/// Nouns for transactions, each also read with a plural `s`; a number just
/// before one (past recency adjectives) is how many are wanted.
const NOUNS: [&str; 6] = [
    "transaction",
    "purchase",
    "payment",
    "order",
    "charge",
    "expense",
];
/// Other words that make a question one about transactions.
const ALSO_ABOUT_MONEY: [&str; 4] = ["spending", "bought", "history", "activity"];
/// Words the forms it reads use that carry no meaning of their own.
const MEANINGLESS: [&str; 16] = [
    "what", "what's", "are", "is", "was", "were", "the", "a", "for", "of", "by", "me", "show",
    "all", "user", "my",
];
/// Adjectives that may stand between a count and its noun; with a singular
/// noun and no count, one of them means "the one most recent".
const RECENCY: [&str; 7] = ["last", "latest", "recent", "newest", "top", "past", "most"];
/// Words that make a question one about the user id.
const ID_WORDS: [&str; 5] = ["id", "userid", "user-id", "identifier", "uuid"];
/// Counts written as words, by value.
const NUMBERS: [&str; 21] = [
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
/// What may surround a word in a sentence without being part of it.
const PUNCTUATION: &str = "?!.,;:\"'()<>[]{}`";

/// Reads a question, or says why it is not one the oracle can answer.
pub(super) fn read(text: &str) -> Result<Meaning, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| address_in(w).is_some())
        .ok_or_else(|| format!("{text:?} names no email address"))?;
    let email = address_in(words[at]).unwrap_or_default().to_owned();
    let rest: Vec<String> = words
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != at)
        .map(|(_, w)| w.trim_matches(|c| PUNCTUATION.contains(c)).to_lowercase())
        .collect();
    if let Some(word) = rest.iter().find(|w| !known(w)) {
        return Err(format!("the oracle does not read {word:?} in {text:?}"));
    }
    let asked = |what| Meaning::Asked {
        emails: vec![email.clone()],
        what,
    };
    if rest
        .iter()
        .any(|w| noun(w).is_some() || ALSO_ABOUT_MONEY.contains(&w.as_str()))
    {
        let take = count(&rest)?.map_or(Take::All, Take::Newest);
        return Ok(asked(What::Transactions(Wanted {
            take,
            ..Wanted::default()
        })));
    }
    if rest.iter().any(|w| ID_WORDS.contains(&w.as_str())) {
        return Ok(asked(What::UserId));
    }
    Err(format!(
        "{text:?} asks neither for transactions nor for a user id"
    ))
}

/// Whether the oracle knows what `word` does in a question (a number only
/// as a count: [`count`] checks where it stands).
fn known(word: &str) -> bool {
    word.is_empty()
        || noun(word).is_some()
        || [&ALSO_ABOUT_MONEY[..], &RECENCY, &ID_WORDS, &MEANINGLESS]
            .iter()
            .any(|set| set.contains(&word))
        || number(word).is_some()
}

/// The address a word holds, without the punctuation of the sentence
/// around it or a possessive `'s`: `bob@example.com's` is Bob's.
fn address_in(word: &str) -> Option<&str> {
    let trimmed = word.trim_matches(|c| PUNCTUATION.contains(c));
    let trimmed = trimmed.strip_suffix("'s").unwrap_or(trimmed);
    let (local, domain) = trimmed.split_once('@')?;
    (!local.is_empty() && !domain.is_empty()).then_some(trimmed)
}

/// Every address `text` names, in the order named, each once (two
/// spellings of one address are one).
pub(super) fn addresses(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        if let Some(address) = address_in(word)
            && !found.iter().any(|f| same_address(f, address))
        {
            found.push(address.to_owned());
        }
    }
    found
}

/// Whether `word` is a transaction noun: `Some(plural)`, else `None`.
fn noun(word: &str) -> Option<bool> {
    if NOUNS.contains(&word) {
        return Some(false);
    }
    word.strip_suffix('s')
        .filter(|stem| NOUNS.contains(stem))
        .map(|_| true)
}

/// How many transactions are asked for: the number before a noun, past any
/// recency adjectives; else one for a recent singular ("the latest
/// purchase"); else all of them.
fn count(words: &[String]) -> Result<Option<u32>, String> {
    let mut one_recent = false;
    let mut counts = Vec::new();
    for (at, word) in words.iter().enumerate() {
        let Some(plural) = noun(word) else {
            continue;
        };
        let mut first = at;
        while first > 0 && RECENCY.contains(&words[first - 1].as_str()) {
            first -= 1;
        }
        match first.checked_sub(1).and_then(|i| number(&words[i])) {
            Some(0) => return Err("a question for zero transactions has no answer".into()),
            Some(n) => counts.push((first - 1, n)),
            None => one_recent |= !plural && first < at,
        }
    }
    let numbers = words.iter().filter(|w| number(w).is_some()).count();
    if numbers > counts.len().min(1) {
        return Err("a number that is not a count of transactions".into());
    }
    Ok(counts.first().map(|&(_, n)| n).or(one_recent.then_some(1)))
}

/// A count in digits or in words.
fn number(word: &str) -> Option<u32> {
    if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) {
        return word.parse().ok();
    }
    NUMBERS
        .iter()
        .zip(0u32..)
        .find_map(|(name, n)| (*name == word).then_some(n))
}

/// Whether `email` is an address the user directory can hold: an unquoted
/// local part and a domain of letter-digit-hyphen labels. It is lenient
/// where that is safe (a malformed address it lets through is then simply
/// nobody's), and refuses only what is plainly not an address.
pub(super) fn plausible_address(email: &str) -> Result<(), String> {
    let email = email.trim();
    let refuse = |why: &str| Err(format!("{email:?} is not an email address: {why}"));
    let Some((local, domain)) = email.rsplit_once('@') else {
        return refuse("no @");
    };
    if local.is_empty() || domain.is_empty() {
        return refuse("nothing before or after the @");
    }
    if local
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "\"(),:;<>@[\\]".contains(c))
    {
        return refuse("the part before the @ holds a character only a quoted address may");
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return refuse("a dot at an end of the part before the @, or two in a row");
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    if !domain.split('.').all(label_ok) {
        return refuse("the domain is not dot-separated letters, digits and hyphens");
    }
    Ok(())
}

/// Whether two addresses are the same, ignoring case (letter by letter)
/// and surrounding white space.
pub(super) fn same_address(a: &str, b: &str) -> bool {
    let folded = |s: &str| {
        s.trim()
            .chars()
            .flat_map(char::to_lowercase)
            .collect::<Vec<char>>()
    };
    folded(a) == folded(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transactions(email: &str, count: Option<u32>) -> Meaning {
        Meaning::Asked {
            emails: vec![email.into()],
            what: What::Transactions(Wanted {
                take: count.map_or(Take::All, Take::Newest),
                ..Wanted::default()
            }),
        }
    }

    fn user_id(email: &str) -> Meaning {
        Meaning::Asked {
            emails: vec![email.into()],
            what: What::UserId,
        }
    }

    #[test]
    fn reads_every_form_the_scenarios_and_the_planners_help_use() {
        for (text, asked) in [
            (
                "What are the recent transactions for bob@example.com?",
                transactions("bob@example.com", None),
            ),
            (
                "last 2 purchases for ALICE@example.com",
                transactions("ALICE@example.com", Some(2)),
            ),
            (
                "last 1 transaction for charlie@example.com",
                transactions("charlie@example.com", Some(1)),
            ),
            (
                "Show me all purchases for alice@example.com",
                transactions("alice@example.com", None),
            ),
            (
                "Last 2 transactions for bob@example.com",
                transactions("bob@example.com", Some(2)),
            ),
            (
                "spending history of o'brien+x@bücher.example",
                transactions("o'brien+x@bücher.example", None),
            ),
            (
                "Zoë@Example.COM's 12 most recent payments?",
                transactions("Zoë@Example.COM", Some(12)),
            ),
            (
                "what were the last seven orders of b.ob@mail.example.org",
                transactions("b.ob@mail.example.org", Some(7)),
            ),
            (
                "the latest purchase of x@example.com",
                transactions("x@example.com", Some(1)),
            ),
            (
                "What is the most recent transaction for x@example.com?",
                transactions("x@example.com", Some(1)),
            ),
            (
                "What is the user id of charlie@example.com?",
                user_id("charlie@example.com"),
            ),
            ("userid for a@b.c", user_id("a@b.c")),
        ] {
            assert_eq!(read(text), Ok(asked), "{text}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_answer() {
        for text in [
            "weather for a@b.c",
            "transactions for nobody",
            "last zero purchases for a@b.c",
            "0 transactions for a@b.c",
            "transactions for bob@example.com in 2023",
            "How much has bob@example.com spent?",
            "purchases over 50 for bob@example.com",
            "transactions for alice@example.com and bob@example.com",
            "order 66 for bob@example.com",
        ] {
            assert!(read(text).is_err(), "{text}");
        }
    }

    #[test]
    fn addresses_match_ignoring_case_and_white_space_only() {
        assert!(same_address(" BOB@Example.com\t", "bob@example.com"));
        assert!(same_address("ÅSA@bücher.example", "åsa@BÜCHER.example"));
        assert!(!same_address("bob_@example.com", "bob@example.com"));
        assert!(!same_address("b.ob@example.com", "bob@example.com"));
    }

    #[test]
    fn tells_addresses_from_what_is_plainly_not_one() {
        for good in [
            "bob@example.com",
            "o'brien+tag@mail.example.org",
            "用户@bücher.example",
            "no-one.no-one.x@xn--bcher-kva.example",
        ] {
            assert_eq!(plausible_address(good), Ok(()), "{good}");
        }
        for bad in [
            "a@@b",
            "bob.example.com",
            "@x.com",
            "a@",
            "a b@x.com",
            "a@x..com",
            "a@-x.com",
        ] {
            assert!(plausible_address(bad).is_err(), "{bad}");
        }
    }
}
