//! The two base URLs a stream key is appended to: `bbb.stream_url`, where a streamer
//! pushes, and `pod.hls_url`, where viewers watch. Both are checked at load and kept as
//! the admin wrote them (a missing trailing `/` added): Pod stores the URLs built from
//! them and they are compared as text with what Pod answers, which a normalising URL
//! type (lower-cased host, dropped default port) would break. The URLs of a key are built
//! here and nowhere else.

use std::fmt;

use super::{BbbConfig, PodConfig};

/// A checked base URL ending with `/`, kept as written. Only `Config::load` makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// `text` must be checked and end with `/`.
    pub(super) fn checked(text: String) -> BaseUrl {
        debug_assert!(text.ends_with('/'), "{text:?}");
        BaseUrl(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<&str> for BaseUrl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl BbbConfig {
    /// Where the streamer of `key` pushes: `<bbb.stream_url><key>`.
    pub fn stream_url_of(&self, key: &str) -> String {
        format!("{}{key}", self.stream_url)
    }
}

impl PodConfig {
    /// Where the viewers of `key` watch: `<pod.hls_url><key>.m3u8`.
    pub fn hls_url_of(&self, key: &str) -> String {
        format!("{}{key}.m3u8", self.hls_url)
    }

    /// The stream key `url` was built from by [`PodConfig::hls_url_of`], if it was.
    pub fn stream_key_in<'u>(&self, url: &'u str) -> Option<&'u str> {
        url.strip_prefix(self.hls_url.as_str())?
            .strip_suffix(".m3u8")
    }
}
