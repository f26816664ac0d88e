//! How a plugin's backend and agent calls cross an isolated run's channel:
//! the child sends each call as a `client-request` line (an id, the client,
//! and the plugin's `{method, path, body}`), the loader makes the HTTP call
//! with its own client and credentials and answers with a `client-answer`
//! line carrying the same id. No credential and no endpoint ever goes to the
//! child; several calls may be under way at once, each waiting for its id.
//!
//! Both kinds of line are one JSON object after a fixed prefix, at most
//! [`MAX_CLIENT_MESSAGE_BYTES`]: a larger request is refused in the child
//! before it is sent, and a larger answer becomes an error answer.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backend::RequestError;

/// What begins a call's line on the channel, child to loader.
pub const REQUEST_PREFIX: &[u8] = b"client-request ";

/// What begins an answer's line on the channel, loader to child.
pub const ANSWER_PREFIX: &[u8] = b"client-answer ";

/// The largest request or answer line (its JSON, without the prefix).
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Which client a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientName {
    Backend,
    Agent,
}

impl ClientName {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientName::Backend => "backend",
            ClientName::Agent => "agent",
        }
    }
}

/// One call, as the child sends it. The id comes first in the line, so
/// that even an oversized line's beginning names the call to refuse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientCall {
    pub id: u64,
    pub client: ClientName,
    /// The plugin's request: `{method, path, body}`.
    pub request: Value,
}

/// The answer to call `id`: the JSON answer, or the error text plugin-api
/// reads as a typed `ClientError` (a [`RequestError`] as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientAnswer {
    pub id: u64,
    pub answer: Result<Value, String>,
}

/// `error` as the text of an error answer.
pub fn error_text(error: &RequestError) -> String {
    serde_json::to_string(error).unwrap_or_else(|_| error.to_string())
}

/// An error answer for a call the loader did not make: `reason` as an
/// invalid request.
pub fn refused(reason: String) -> Result<Value, String> {
    Err(error_text(&RequestError::Invalid { reason }))
}

/// `message` (a call or an answer) as its line: `prefix`, one line of JSON,
/// `\n`; `None` when the JSON is larger than [`MAX_CLIENT_MESSAGE_BYTES`].
pub fn line_of(prefix: &[u8], message: &impl Serialize) -> Option<Vec<u8>> {
    let json = serde_json::to_vec(message).ok()?;
    if json.len() > MAX_CLIENT_MESSAGE_BYTES {
        return None;
    }
    let mut line = Vec::with_capacity(prefix.len() + json.len() + 1);
    line.extend_from_slice(prefix);
    line.extend_from_slice(&json);
    line.push(b'\n');
    Some(line)
}

/// The id at the start of a call's JSON (`{"id":N,...`), read from the
/// kept beginning of a line too large to read whole.
pub fn id_in_prefix(json: &[u8]) -> Option<u64> {
    let rest = json.strip_prefix(b"{\"id\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_call_and_its_answers_read_back_as_they_were_null_included() {
        let call = ClientCall {
            id: 7,
            client: ClientName::Agent,
            request: json!({"method": "GET", "path": "jobs/\n", "body": null}),
        };
        let line = line_of(REQUEST_PREFIX, &call).unwrap();
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        let json = line.strip_prefix(REQUEST_PREFIX).unwrap().strip_suffix(b"\n").unwrap();
        assert_eq!(id_in_prefix(json), Some(7));
        assert_eq!(serde_json::from_slice::<ClientCall>(json).unwrap(), call);
        for answer in [Ok(Value::Null), Ok(json!({"a": 1})), Err("no".to_owned())] {
            let answer = ClientAnswer { id: 7, answer };
            let line = line_of(ANSWER_PREFIX, &answer).unwrap();
            let json = line.strip_prefix(ANSWER_PREFIX).unwrap();
            assert_eq!(serde_json::from_slice::<ClientAnswer>(json).unwrap(), answer);
        }
    }

    #[test]
    fn oversized_messages_have_no_line_and_ids_are_read_only_where_they_belong() {
        let huge = ClientAnswer {
            id: 1,
            answer: Ok(Value::String("x".repeat(MAX_CLIENT_MESSAGE_BYTES))),
        };
        assert!(line_of(ANSWER_PREFIX, &huge).is_none());
        assert_eq!(id_in_prefix(b"{\"id\":12,\"client\""), Some(12));
        for forged in [
            &b"{\"id\":\"12\"}"[..],
            b"{\"client\":1,\"id\":3}",
            b"",
            b"{\"id\":99999999999999999999999}",
        ] {
            assert_eq!(id_in_prefix(forged), None, "{}", String::from_utf8_lossy(forged));
        }
    }
}
