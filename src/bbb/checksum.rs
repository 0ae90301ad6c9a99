//! Signing a BBB call: the `checksum` parameter ([`checksum`]) and the percent-encoding
//! of the query it signs ([`url_encode`]). Pure: no HTTP, no secret kept. Not here: which
//! calls are made and when (`client.rs`).

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::config::{ChecksumAlgorithm, Secret};

/// Percent-encodes a query value as BBB expects it signed (RFC 3986 unreserved kept).
pub(super) fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `hex(H(call + query + secret))`, lower-case: the `checksum` parameter of a BBB call.
/// `query` is the query string exactly as sent, without `?` and without `checksum`
/// (BBB hashes the raw string it receives: docs/bbb.md, "Signing a call").
pub fn checksum(algorithm: ChecksumAlgorithm, call: &str, query: &str, secret: &Secret) -> String {
    let parts = [
        call.as_bytes(),
        query.as_bytes(),
        secret.expose().as_bytes(),
    ];
    match algorithm {
        ChecksumAlgorithm::Sha1 => hex_digest::<Sha1>(&parts),
        ChecksumAlgorithm::Sha256 => hex_digest::<Sha256>(&parts),
        ChecksumAlgorithm::Sha384 => hex_digest::<Sha384>(&parts),
        ChecksumAlgorithm::Sha512 => hex_digest::<Sha512>(&parts),
    }
}

fn hex_digest<D: Digest>(parts: &[&[u8]]) -> String {
    let mut hasher = D::new();
    for part in parts {
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bbb::test_support::{SECRET, secret};

    #[test]
    fn checksum_matches_the_spec_vectors() {
        let s = secret();
        assert_eq!(
            checksum(ChecksumAlgorithm::Sha1, "getMeetings", "", &s),
            "2027baa7771026e9e93392f55031535d1444c41f"
        );
        assert_eq!(
            checksum(ChecksumAlgorithm::Sha256, "getMeetings", "", &s),
            "a5370c5f3d97d56d53b435684cdbc429c2898a3bf9f435518b4279e1e0dbfc8c"
        );
        assert_eq!(
            checksum(
                ChecksumAlgorithm::Sha1,
                "isMeetingRunning",
                "meetingID=abc123",
                &s
            ),
            "8478733ccb8695b8aaaff48b3c1e281a75a6f046"
        );
        // BBB api.md, "create" example.
        assert_eq!(
            checksum(
                ChecksumAlgorithm::Sha1,
                "create",
                "name=Test+Meeting&meetingID=abc123&attendeePW=111222&moderatorPW=333444",
                &s
            ),
            "1fcbb0c4fc1f039f73aa6d697d2db9ba7f803f17"
        );
    }

    #[test]
    fn checksum_lengths_follow_the_algorithm_and_are_lower_case_hex() {
        let s = secret();
        for (algorithm, len) in [
            (ChecksumAlgorithm::Sha1, 40),
            (ChecksumAlgorithm::Sha256, 64),
            (ChecksumAlgorithm::Sha384, 96),
            (ChecksumAlgorithm::Sha512, 128),
        ] {
            let hex = checksum(algorithm, "getMeetings", "", &s);
            assert_eq!(hex.len(), len, "{algorithm:?}");
            assert!(hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        }
        // Independent check of sha384/sha512 with the hash of the concatenated string.
        let joined = format!("getMeetings{SECRET}");
        assert_eq!(
            checksum(ChecksumAlgorithm::Sha384, "getMeetings", "", &s),
            hex::encode(Sha384::digest(joined.as_bytes()))
        );
        assert_eq!(
            checksum(ChecksumAlgorithm::Sha512, "getMeetings", "", &s),
            hex::encode(Sha512::digest(joined.as_bytes()))
        );
        assert_ne!(
            checksum(
                ChecksumAlgorithm::Sha1,
                "getMeetings",
                "",
                &Secret::new("other")
            ),
            checksum(ChecksumAlgorithm::Sha1, "getMeetings", "", &s)
        );
    }
}
