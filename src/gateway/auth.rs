//! The bearer token of start, stop and toggle (`Authorization: Bearer <token>`, as Pod
//! sends the LiveGateway's token). Compared in constant time over SHA-256 digests, so
//! that neither the content nor the length of the token leaks through timing.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Secret;

/// The expected token, kept as its digest.
pub struct Token {
    digest: [u8; 32],
}

impl Token {
    pub fn new(secret: &Secret) -> Token {
        Token {
            digest: Sha256::digest(secret.expose().as_bytes()).into(),
        }
    }

    /// Whether the request carries the token. Any other scheme, a missing header or
    /// a header that is not text is a refusal.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return false;
        };
        let Some((scheme, given)) = value.as_bytes().split_first_chunk::<7>() else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case(b"Bearer ") {
            return false;
        }
        let given: [u8; 32] = Sha256::digest(given.trim_ascii()).into();
        given.ct_eq(&self.digest).into()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(value: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = value {
            h.insert(AUTHORIZATION, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn only_the_right_bearer_token_is_admitted() {
        let t = Token::new(&Secret::new("s3cr3t-25"));
        assert!(t.admits(&headers(Some("Bearer s3cr3t-25"))));
        assert!(t.admits(&headers(Some("bearer s3cr3t-25"))));
        for wrong in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer "),
            Some("Bearer s3cr3t-2"),
            Some("Bearer s3cr3t-255"),
            Some("Basic s3cr3t-25"),
            Some("s3cr3t-25"),
        ] {
            assert!(!t.admits(&headers(wrong)), "{wrong:?}");
        }
        let mut h = HeaderMap::new();
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff").expect("opaque header"),
        );
        assert!(!t.admits(&h));
    }
}
