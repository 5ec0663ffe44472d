//! Reading tool replies and presenting the answer.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rmcp::model::CallToolResult;
use serde::Serialize;
use serde_json::Value;

use crate::{
    money::{Decimal, MoneyError},
    planner::{AmountLimit, DateFilter, Period, Pick, Selection},
};

/// The answer to one question: for one address, or for each of several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Answer {
    #[serde(rename_all = "camelCase")]
    UserId {
        email: String,
        user_id: String,
        name: Option<String>,
    },
    /// The selected transactions, in the order the selection lists them.
    #[serde(rename_all = "camelCase")]
    Transactions {
        email: String,
        user_id: String,
        /// What was asked for, restated in the header.
        selection: Selection,
        transactions: Vec<TransactionLine>,
    },
    /// What the selected transactions add up to, per currency.
    #[serde(rename_all = "camelCase")]
    Total {
        email: String,
        user_id: String,
        selection: Selection,
        /// One per currency, by ISO code; empty when none was selected.
        totals: Vec<CurrencyTotal>,
    },
    /// How many transactions the selection admits.
    #[serde(rename_all = "camelCase")]
    Count {
        email: String,
        user_id: String,
        selection: Selection,
        count: u32,
    },
    /// The user directory has no such email.
    #[serde(rename_all = "camelCase")]
    UnknownUser { email: String },
    /// A question that named several addresses: one answer for each, in
    /// the order they were named.
    Each { answers: Vec<Answer> },
    /// What a tool the LLM planner called returned, as it returned it: a
    /// tool whose result the orchestrator does not otherwise read.
    #[serde(rename_all = "camelCase")]
    ToolResult {
        /// The question's address the call was about, if it was.
        email: Option<String>,
        server: String,
        tool: String,
        arguments: serde_json::Map<String, Value>,
        /// The result's text, verbatim.
        text: String,
    },
}

/// The sum of one currency's transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrencyTotal {
    /// ISO 4217 code.
    pub currency: String,
    /// Exact decimal in major units, with as many places as the amounts
    /// added ("345.00").
    pub amount: String,
    /// How many transactions were added.
    pub transactions: u32,
}

/// One transaction as the answer shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransactionLine {
    pub description: String,
    /// Exact decimal in major units, e.g. "12.50".
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    pub date: NaiveDate,
}

impl Answer {
    /// The answer for people: a header that restates the question, then
    /// one line per transaction or per currency.
    pub fn render(&self) -> String {
        match self {
            Answer::UserId {
                email,
                user_id,
                name,
            } => match name {
                Some(name) => format!("The user id for {email} ({name}) is {user_id}."),
                None => format!("The user id for {email} is {user_id}."),
            },
            Answer::UnknownUser { email } => format!("No user has the email {email}."),
            Answer::Transactions {
                email,
                selection,
                transactions,
                ..
            } => render_list(email, selection, transactions),
            Answer::Total {
                email,
                selection,
                totals,
                ..
            } => render_total(email, selection, totals),
            Answer::Count {
                email,
                selection,
                count,
                ..
            } => format!(
                "{email} has {count} {}{}.",
                plural(*count, "transaction"),
                filters(selection)
            ),
            Answer::Each { answers } => answers
                .iter()
                .map(Answer::render)
                .collect::<Vec<_>>()
                .join("\n\n"),
            Answer::ToolResult {
                email,
                server,
                tool,
                arguments,
                text,
            } => {
                let about = match email {
                    Some(email) => format!("for {email}"),
                    None => Value::Object(arguments.clone()).to_string(),
                };
                format!("{server}/{tool} {about}:\n{}", text.trim_end())
            }
        }
    }
}

fn render_list(email: &str, selection: &Selection, transactions: &[TransactionLine]) -> String {
    let filters = filters(selection);
    if transactions.is_empty() {
        return format!("No transactions found for {email}{filters}.");
    }
    let mut out = match (selection.pick, filters.is_empty()) {
        (Pick::All, true) => format!("Recent transactions for {email}:"),
        (Pick::All, false) => format!("Transactions for {email}{filters}:"),
        (pick, _) => format!("{} for {email}{filters}:", capitalised(&picked(pick))),
    };
    for t in transactions {
        out.push_str(&format!(
            "\n- {}: {} on {}",
            t.description.replace(['\n', '\r'], " "),
            format_money(&t.amount, &t.currency),
            t.date.format("%-d %B %Y")
        ));
    }
    out
}

fn render_total(email: &str, selection: &Selection, totals: &[CurrencyTotal]) -> String {
    let filters = filters(selection);
    if totals.is_empty() {
        return format!("No transactions found for {email}{filters}.");
    }
    let what = match selection.pick {
        Pick::All => format!("Total spent by {email}{filters}"),
        pick => format!("Total of {} for {email}{filters}", picked(pick)),
    };
    let line = |t: &CurrencyTotal| {
        format!(
            "{} ({} {})",
            format_money(&t.amount, &t.currency),
            t.transactions,
            plural(t.transactions, "transaction")
        )
    };
    match totals {
        [one] => format!("{what}: {}.", line(one)),
        several => {
            let lines: Vec<String> = several.iter().map(|t| format!("\n- {}", line(t))).collect();
            format!("{what}, per currency:{}", lines.concat())
        }
    }
}

/// "the 2 most recent transactions", "the oldest transaction".
fn picked(pick: Pick) -> String {
    match pick {
        Pick::All => "transactions".to_owned(),
        Pick::Newest(1) => "the most recent transaction".to_owned(),
        Pick::Newest(n) => format!("the {n} most recent transactions"),
        Pick::Oldest(1) => "the oldest transaction".to_owned(),
        Pick::Oldest(n) => format!("the {n} oldest transactions"),
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn plural(n: u32, noun: &str) -> String {
    if n == 1 {
        noun.to_owned()
    } else {
        format!("{noun}s")
    }
}

/// The selection's filters as they follow the address: " in March 2023
/// over £50", or nothing.
fn filters(selection: &Selection) -> String {
    let mut parts = Vec::new();
    if let Some(dates) = &selection.dates {
        parts.push(date_phrase(dates));
    }
    let amounts: Vec<String> = [(&selection.above, true), (&selection.below, false)]
        .into_iter()
        .filter_map(|(limit, above)| limit.as_ref().map(|l| amount_phrase(l, above)))
        .collect();
    if !amounts.is_empty() {
        parts.push(amounts.join(" and "));
    }
    parts.iter().map(|p| format!(" {p}")).collect()
}

fn date_phrase(filter: &DateFilter) -> String {
    match filter {
        DateFilter::During(day @ Period::Day(_)) => format!("on {}", period(day)),
        DateFilter::During(p) => format!("in {}", period(p)),
        DateFilter::Since(p) => format!("since {}", period(p)),
        DateFilter::After(p) => format!("after {}", period(p)),
        DateFilter::Before(p) => format!("before {}", period(p)),
        DateFilter::Between(a, b) => format!("between {} and {}", period(a), period(b)),
    }
}

/// "16 January 2023", "March 2023", "2023".
fn period(period: &Period) -> String {
    match period {
        Period::Day(day) => day.format("%-d %B %Y").to_string(),
        Period::Month { year, month } => NaiveDate::from_ymd_opt(*year, *month, 1)
            .map(|d| d.format("%B %Y").to_string())
            .unwrap_or_else(|| format!("{year:04}-{month:02}")),
        Period::Year(year) => format!("{year:04}"),
    }
}

/// "over £50", "of 100 or more", "under $20.50", "of €9.99 or less".
fn amount_phrase(limit: &AmountLimit, above: bool) -> String {
    let amount = match &limit.currency {
        Some(currency) => format_money(&limit.amount, currency),
        None => limit.amount.clone(),
    };
    match (above, limit.inclusive) {
        (true, false) => format!("over {amount}"),
        (true, true) => format!("of {amount} or more"),
        (false, false) => format!("under {amount}"),
        (false, true) => format!("of {amount} or less"),
    }
}

/// The total of each currency in `lines`, by ISO code.
pub(crate) fn totals(lines: &[TransactionLine]) -> Result<Vec<CurrencyTotal>, MoneyError> {
    let mut sums: BTreeMap<&str, (Decimal, u32)> = BTreeMap::new();
    for line in lines {
        let (sum, n) = sums.entry(&line.currency).or_insert((Decimal::ZERO, 0));
        *sum = sum.checked_add(Decimal::parse(&line.amount)?)?;
        *n += 1;
    }
    Ok(sums
        .into_iter()
        .map(|(currency, (sum, transactions))| CurrencyTotal {
            currency: currency.to_owned(),
            amount: sum.to_plain(),
            transactions,
        })
        .collect())
}

/// "£50", "£12.50", "£1,250", "¥500", "CHF 9.99". Zero pence are dropped.
pub(crate) fn format_money(amount: &str, currency: &str) -> String {
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if fraction.chars().any(|c| c != '0') {
        grouped.push('.');
        grouped.push_str(fraction);
        if fraction.len() == 1 {
            grouped.push('0');
        }
    }
    match symbol(currency) {
        Some(symbol) => format!("{symbol}{grouped}"),
        None => format!("{currency} {grouped}"),
    }
}

fn symbol(currency: &str) -> Option<&'static str> {
    Some(match currency {
        "GBP" => "£",
        "USD" => "$",
        "EUR" => "€",
        "JPY" => "¥",
        "INR" => "₹",
        _ => return None,
    })
}

/// A reply that does not have the shape the plan relies on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReplyError(pub(crate) String);

/// The user id from a lookup tool's reply: structured `userId` if present,
/// else the text itself (as the original demo's servers reply).
pub(crate) fn read_user_id(reply: &CallToolResult) -> Result<(String, Option<String>), ReplyError> {
    if let Some(structured) = &reply.structured_content {
        let id = structured
            .get("userId")
            .and_then(Value::as_str)
            .ok_or_else(|| ReplyError("structured content has no string `userId`".into()))?;
        let name = structured
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        return checked_id(id).map(|id| (id, name));
    }
    checked_id(first_text(reply)?.trim()).map(|id| (id, None))
}

fn checked_id(id: &str) -> Result<String, ReplyError> {
    if id.is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
        return Err(ReplyError(format!("{id:?} is not a user id")));
    }
    Ok(id.to_owned())
}

/// The transactions from a listing tool's reply: structured `transactions`
/// if present, else the text as a JSON array. Amounts given as JSON numbers
/// with no currency are pounds, as in the original demo.
pub(crate) fn read_transactions(
    reply: &CallToolResult,
) -> Result<Vec<TransactionLine>, ReplyError> {
    let parsed;
    let items = match reply
        .structured_content
        .as_ref()
        .and_then(|s| s.get("transactions"))
    {
        Some(items) => items,
        None => {
            let text = first_text(reply)?;
            parsed = serde_json::from_str::<Value>(text)
                .map_err(|e| ReplyError(format!("text is not a JSON array: {e}")))?;
            &parsed
        }
    };
    let items = items
        .as_array()
        .ok_or_else(|| ReplyError("transactions are not a JSON array".into()))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            read_transaction(item).map_err(|e| ReplyError(format!("transaction {i}: {e}")))
        })
        .collect()
}

fn read_transaction(item: &Value) -> Result<TransactionLine, String> {
    let text = |field: &str| item.get(field).and_then(Value::as_str);
    let description = text("description")
        .ok_or("no string `description`")?
        .to_owned();
    let amount = match item.get("amount") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("no `amount`".into()),
    };
    let (whole, fraction) = amount.split_once('.').unwrap_or((&amount, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return Err(format!(
            "amount {amount:?} is not an exact non-negative decimal"
        ));
    }
    let currency = text("currency").unwrap_or("GBP");
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("currency {currency:?} is not an ISO 4217 code"));
    }
    let raw_date = text("date").ok_or("no string `date`")?;
    let date = raw_date
        .get(..10)
        .filter(|_| raw_date.len() == 10 || raw_date.as_bytes()[10] == b'T')
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .ok_or_else(|| format!("date {raw_date:?} is not YYYY-MM-DD"))?;
    Ok(TransactionLine {
        description,
        amount,
        currency: currency.to_owned(),
        date,
    })
}

/// How many transactions the user has in all, before the listing's cut,
/// when the reply says (structured `total`).
pub(crate) fn read_total(reply: &CallToolResult) -> Option<u64> {
    reply
        .structured_content
        .as_ref()
        .and_then(|s| s.get("total"))
        .and_then(Value::as_u64)
}

/// The text of a reply's first text block.
pub(crate) fn first_text(reply: &CallToolResult) -> Result<&str, ReplyError> {
    reply
        .content
        .iter()
        .find_map(|block| block.as_text().map(|t| t.text.as_str()))
        .ok_or_else(|| ReplyError("the reply has no text".into()))
}

#[cfg(test)]
mod tests {
    use rmcp::model::ContentBlock;
    use serde_json::json;

    use super::*;

    fn line(description: &str, amount: &str, currency: &str, date: &str) -> TransactionLine {
        TransactionLine {
            description: description.into(),
            amount: amount.into(),
            currency: currency.into(),
            date: NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap(),
        }
    }

    #[test]
    fn renders_the_demo_answer_exactly() {
        let answer = Answer::Transactions {
            email: "bob@example.com".into(),
            user_id: "b1".into(),
            selection: Selection::default(),
            transactions: vec![
                line("Coffee", "50.00", "GBP", "2023-01-16"),
                line("Groceries", "100.00", "GBP", "2023-01-15"),
                line("Dinner", "75.00", "GBP", "2023-01-14"),
                line("Online Course", "120.00", "GBP", "2023-01-12"),
            ],
        };
        assert_eq!(
            answer.render(),
            "Recent transactions for bob@example.com:\n\
             - Coffee: £50 on 16 January 2023\n\
             - Groceries: £100 on 15 January 2023\n\
             - Dinner: £75 on 14 January 2023\n\
             - Online Course: £120 on 12 January 2023"
        );
    }

    fn bob(kind: fn(String, String) -> Answer) -> Answer {
        kind("bob@example.com".into(), "b1".into())
    }

    #[test]
    fn headers_restate_what_was_asked() {
        let march = Selection {
            dates: Some(DateFilter::During(Period::Month {
                year: 2023,
                month: 3,
            })),
            above: Some(AmountLimit {
                amount: "50".into(),
                currency: Some("GBP".into()),
                inclusive: false,
            }),
            ..Selection::default()
        };
        let coffee = vec![line("Coffee", "60.00", "GBP", "2023-03-16")];
        let list = |selection: &Selection, transactions: &[TransactionLine]| Answer::Transactions {
            email: "bob@example.com".into(),
            user_id: "b1".into(),
            selection: selection.clone(),
            transactions: transactions.to_vec(),
        };
        assert_eq!(
            list(&march, &coffee).render(),
            "Transactions for bob@example.com in March 2023 over £50:\n- Coffee: £60 on 16 March 2023"
        );
        assert_eq!(
            list(&march, &[]).render(),
            "No transactions found for bob@example.com in March 2023 over £50."
        );
        let oldest = Selection {
            pick: Pick::Oldest(2),
            dates: Some(DateFilter::Between(
                Period::Day(NaiveDate::from_ymd_opt(2023, 1, 1).unwrap()),
                Period::Year(2024),
            )),
            below: Some(AmountLimit {
                amount: "10".into(),
                currency: None,
                inclusive: true,
            }),
            ..Selection::default()
        };
        assert_eq!(
            list(&oldest, &coffee).render(),
            "The 2 oldest transactions for bob@example.com between 1 January 2023 and 2024 of 10 or less:\n- Coffee: £60 on 16 March 2023"
        );
    }

    #[test]
    fn totals_are_per_currency_and_exact() {
        let lines = [
            line("a", "0.10", "GBP", "2023-01-03"),
            line("b", "20.50", "USD", "2023-01-02"),
            line("c", "0.20", "GBP", "2023-01-01"),
        ];
        let totals = totals(&lines).unwrap();
        let total = |totals: Vec<CurrencyTotal>, pick| Answer::Total {
            email: "bob@example.com".into(),
            user_id: "b1".into(),
            selection: Selection {
                pick,
                ..Selection::default()
            },
            totals,
        };
        assert_eq!(
            total(totals.clone(), Pick::All).render(),
            "Total spent by bob@example.com, per currency:\n- £0.30 (2 transactions)\n- $20.50 (1 transaction)"
        );
        assert_eq!(
            total(totals[..1].to_vec(), Pick::Newest(3)).render(),
            "Total of the 3 most recent transactions for bob@example.com: £0.30 (2 transactions)."
        );
        assert_eq!(
            total(vec![], Pick::All).render(),
            "No transactions found for bob@example.com."
        );
        let count = bob(|email, user_id| Answer::Count {
            email,
            user_id,
            selection: Selection::default(),
            count: 1,
        });
        assert_eq!(count.render(), "bob@example.com has 1 transaction.");
        let each = Answer::Each {
            answers: vec![
                count.clone(),
                Answer::UnknownUser {
                    email: "x@y".into(),
                },
            ],
        };
        assert_eq!(
            each.render(),
            "bob@example.com has 1 transaction.\n\nNo user has the email x@y."
        );
    }

    #[test]
    fn formats_money_exactly() {
        for (amount, currency, shown) in [
            ("12.50", "GBP", "£12.50"),
            ("12.5", "GBP", "£12.50"),
            ("0.05", "USD", "$0.05"),
            ("1234567.00", "EUR", "€1,234,567"),
            ("500", "JPY", "¥500"),
            ("1.250", "KWD", "KWD 1.250"),
            ("9.99", "CHF", "CHF 9.99"),
        ] {
            assert_eq!(format_money(amount, currency), shown);
        }
    }

    #[test]
    fn reads_structured_and_text_only_replies() {
        let mut structured = CallToolResult::success(vec![ContentBlock::text("u1")]);
        structured.structured_content = Some(json!({"userId": "u1", "name": "Bob"}));
        assert_eq!(
            read_user_id(&structured),
            Ok(("u1".into(), Some("Bob".into())))
        );
        let text_only = CallToolResult::success(vec![ContentBlock::text(" u2\n")]);
        assert_eq!(read_user_id(&text_only), Ok(("u2".into(), None)));

        // The original TypeScript demo: a JSON array of numbers in pounds.
        let original = CallToolResult::success(vec![ContentBlock::text(
            r#"[{"id":2,"userId":"u","amount":50,"description":"Coffee","date":"2023-01-16"}]"#,
        )]);
        assert_eq!(
            read_transactions(&original),
            Ok(vec![line("Coffee", "50", "GBP", "2023-01-16")])
        );
    }

    #[test]
    fn refuses_replies_it_cannot_trust() {
        let reply = |text: &str| CallToolResult::success(vec![ContentBlock::text(text)]);
        for (text, problem) in [
            ("{}", "transactions are not a JSON array"),
            (
                r#"[{"description":"x","amount":-5,"date":"2023-01-01"}]"#,
                "transaction 0: amount \"-5\" is not an exact non-negative decimal",
            ),
            (
                r#"[{"description":"x","amount":"1,5","date":"2023-01-01"}]"#,
                "transaction 0: amount \"1,5\" is not an exact non-negative decimal",
            ),
            (
                r#"[{"description":"x","amount":"1","date":"2023-02-30"}]"#,
                "transaction 0: date \"2023-02-30\" is not YYYY-MM-DD",
            ),
            (
                r#"[{"amount":"1","date":"2023-02-01"}]"#,
                "transaction 0: no string `description`",
            ),
        ] {
            assert_eq!(
                read_transactions(&reply(text)).unwrap_err().0,
                problem,
                "{text}"
            );
        }
        assert!(read_user_id(&reply("")).is_err());
    }
}
