//! The BigBlueButton / Scalelite API: signing calls (checksum), asking getMeetings,
//! parsing its XML as a stream by element name, and classifying the answer. A
//! failed answer of any kind is an error, never "no meetings" (PHP defect 1).
//! OWNER: helper "bbb". Stub to be replaced.

use std::time::Duration;

use reqwest::Url;

use crate::config::{ChecksumAlgorithm, Secret};
use crate::model::BbbMeeting;

/// Why getMeetings gave no usable list. Every variant means "decide nothing".
#[derive(Debug, thiserror::Error)]
pub enum BbbError {
    #[error("cannot reach BBB at {url}: {reason}")]
    Network { url: String, reason: String },
    #[error("BBB did not answer within {0:?}")]
    Timeout(Duration),
    #[error("BBB answered HTTP {status}")]
    Http { status: u16 },
    #[error("BBB answered FAILED ({message_key}): {message}")]
    Failed {
        message_key: String,
        message: String,
    },
    #[error("BBB answered something that is not a getMeetings answer: {0}")]
    Garbage(String),
}

/// `hex(H(call + query + secret))`.
pub fn checksum(algorithm: ChecksumAlgorithm, call: &str, query: &str, secret: &Secret) -> String {
    let _ = (algorithm, call, query, secret);
    String::new()
}

/// Parses a whole getMeetings answer held in memory.
pub fn parse_meetings(xml: &[u8]) -> Result<Vec<BbbMeeting>, BbbError> {
    let _ = xml;
    Err(BbbError::Garbage("not implemented".into()))
}

/// A getMeetings client.
#[derive(Clone)]
pub struct BbbClient {
    _url: Url,
}

impl BbbClient {
    pub fn new(
        url: &Url,
        secret: &Secret,
        algorithm: ChecksumAlgorithm,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let _ = (secret, algorithm, timeout);
        Ok(BbbClient { _url: url.clone() })
    }

    /// Every meeting BBB lists. `Ok(vec![])` only for a SUCCESS answer (noMeetings included).
    pub async fn meetings(&self) -> Result<Vec<BbbMeeting>, BbbError> {
        Err(BbbError::Garbage("not implemented".into()))
    }
}
