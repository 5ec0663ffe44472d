//! Reading tool replies and presenting the answer.

use chrono::NaiveDate;
use rmcp::model::CallToolResult;
use serde::Serialize;
use serde_json::Value;

/// The answer to one question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Answer {
    #[serde(rename_all = "camelCase")]
    UserId {
        email: String,
        user_id: String,
        name: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Transactions {
        email: String,
        user_id: String,
        /// The cut the user asked for, if any.
        count: Option<u32>,
        transactions: Vec<TransactionLine>,
    },
    /// The user directory has no such email.
    #[serde(rename_all = "camelCase")]
    UnknownUser { email: String },
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
    /// The answer for people: a header line, then one line per transaction.
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
                transactions,
                count,
                ..
            } => {
                if transactions.is_empty() {
                    return format!("No transactions found for {email}.");
                }
                let mut out = match count {
                    Some(1) => format!("The most recent transaction for {email}:"),
                    Some(n) => format!("The {n} most recent transactions for {email}:"),
                    None => format!("Recent transactions for {email}:"),
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
        }
    }
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
            count: None,
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
