//! The HTTP side of BBB: [`BbbClient`] asks getMeetings (its body parsed as it arrives
//! by `meetings.rs`) and isMeetingRunning, bounds each call by the configured timeout and
//! turns transport failures into [`BbbError`]s that never show the secret or the
//! checksum. Not here: the XML of getMeetings (`meetings.rs`) and of the small answers
//! (`info.rs`), signing (`checksum.rs`).

use std::io;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::TryStreamExt;
use reqwest::Url;
use tokio_util::io::StreamReader;

use super::BbbError;
use super::checksum::{checksum, url_encode};
use super::info::{
    MeetingDetails, parse_chat_sent, parse_is_meeting_running, parse_meeting_details,
    parse_meeting_info, parse_version,
};
use super::meetings::{Presence, ReadError, Watch, read_watched};
use crate::config::{ChecksumAlgorithm, Secret};
use crate::model::{BbbMeeting, MeetingId, RoomInfo};
use crate::text::error_chain;

/// A getMeetings client. It keeps the signed URL, not the secret: getMeetings takes no
/// parameter, so its checksum never changes.
#[derive(Clone)]
pub struct BbbClient {
    http: reqwest::Client,
    /// `<url>getMeetings?checksum=<hex>`.
    get_meetings: Url,
    /// The API base (`…/api/`), for calls signed per request.
    api: Url,
    secret: Secret,
    algorithm: ChecksumAlgorithm,
    /// The same URL without query, fragment nor user info: for errors and logs.
    shown_url: String,
    timeout: Duration,
}

impl std::fmt::Debug for BbbClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BbbClient")
            .field("url", &self.shown_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl BbbClient {
    /// `url` is the API base (`…/bigbluebutton/api/`, ending with `/`); `timeout` bounds
    /// a whole call, body included.
    pub fn new(
        url: &Url,
        secret: &Secret,
        algorithm: ChecksumAlgorithm,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let mut endpoint = url.clone();
        endpoint.set_query(None);
        endpoint.set_fragment(None);
        if !endpoint.path().ends_with('/') {
            // Url::join would replace the last segment ("…/api" + "getMeetings").
            bail!("BBB url {endpoint} must end with '/'");
        }
        let api = endpoint.clone();
        let endpoint = endpoint
            .join("getMeetings")
            .with_context(|| format!("building the getMeetings URL from {endpoint}"))?;
        let mut get_meetings = endpoint.clone();
        get_meetings.set_query(Some(&format!(
            "checksum={}",
            checksum(algorithm, "getMeetings", "", secret)
        )));
        let mut shown = endpoint;
        // Only fails for URLs that cannot have credentials, which then have none.
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(concat!("bbb-pod-live/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .context("building the HTTP client for BBB")?;
        Ok(BbbClient {
            http,
            get_meetings,
            api,
            secret: secret.clone(),
            algorithm,
            shown_url: shown.to_string(),
            timeout,
        })
    }

    /// Every meeting BBB lists. `Ok(vec![])` only for a SUCCESS answer (noMeetings included).
    pub async fn meetings(&self) -> Result<Vec<BbbMeeting>, BbbError> {
        self.list(None).await.map(|(meetings, _)| meetings)
    }

    /// [`meetings`](Self::meetings), and which of `watch`'s names are among the
    /// attendees of its meetings (the same single request).
    pub async fn meetings_watching(
        &self,
        watch: Watch,
    ) -> Result<(Vec<BbbMeeting>, Vec<Presence>), BbbError> {
        self.list(Some(watch)).await
    }

    async fn list(
        &self,
        watch: Option<Watch>,
    ) -> Result<(Vec<BbbMeeting>, Vec<Presence>), BbbError> {
        let started = Instant::now();
        tracing::debug!(url = %self.shown_url, "asking BBB for its meetings");
        // reqwest's own timeout covers the body too; this one also bounds our parsing
        // and anything reqwest would not count, so the tick never hangs here.
        let result = tokio::time::timeout(self.timeout, self.fetch(watch))
            .await
            .unwrap_or(Err(BbbError::Timeout(self.timeout)));
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok((meetings, _)) => tracing::debug!(
                url = %self.shown_url,
                meetings = meetings.len(),
                elapsed_ms,
                "BBB listed its meetings"
            ),
            Err(error) => tracing::debug!(
                url = %self.shown_url,
                %error,
                elapsed_ms,
                "BBB gave no usable meeting list"
            ),
        }
        result
    }

    async fn fetch(
        &self,
        watch: Option<Watch>,
    ) -> Result<(Vec<BbbMeeting>, Vec<Presence>), BbbError> {
        let response = self
            .http
            .get(self.get_meetings.clone())
            .send()
            .await
            .map_err(|err| self.request_error(err))?;
        let status = response.status();
        let body = StreamReader::new(Box::pin(response.bytes_stream().map_err(io::Error::other)));
        let parsed = read_watched(body, watch).await;
        if !status.is_success() {
            // Some front ends send their FAILED answer with 401 or 500 (docs/bbb.md): its
            // messageKey says more than the status. Anything else is the HTTP error.
            return Err(match parsed {
                Err(ReadError::Bbb(failed @ BbbError::Failed { .. })) => failed,
                _ => BbbError::Http {
                    status: status.as_u16(),
                },
            });
        }
        parsed.map_err(|err| match err {
            ReadError::Bbb(err) => err,
            ReadError::Io(err) => self.body_error(err),
        })
    }

    /// `isMeetingRunning` for one meeting: asked before a live whose meeting vanished
    /// from getMeetings is stopped (Scalelite leaves out the meetings of a node it finds
    /// offline, while it still routes this call to the node that holds the meeting).
    /// `Ok(false)` also for a meeting BBB does not know.
    pub async fn is_meeting_running(&self, meeting_id: &str) -> Result<bool, BbbError> {
        self.ask("isMeetingRunning", meeting_id, parse_is_meeting_running)
            .await
    }

    /// `getMeetingInfo` for one external meeting id: the session BBB holds for it now
    /// (its `internalMeetingID`, running, `endTime`), or [`RoomInfo::NotFound`]. Asked
    /// before a live whose session vanished from getMeetings is stopped: unlike
    /// isMeetingRunning it tells one session of a recurring room from the next.
    pub async fn meeting_info(&self, meeting_id: &MeetingId) -> Result<RoomInfo, BbbError> {
        self.ask("getMeetingInfo", meeting_id.as_str(), parse_meeting_info)
            .await
    }

    /// getMeetingInfo with the attendee password, for a webinar (`None`: BBB holds no
    /// meeting with that id).
    pub async fn meeting_details(
        &self,
        meeting_id: &MeetingId,
    ) -> Result<Option<MeetingDetails>, BbbError> {
        self.ask("getMeetingInfo", meeting_id.as_str(), parse_meeting_details)
            .await
    }

    /// BBB's version from the API root (`bbbVersion`, BBB 2.6 and later); `None` when
    /// the answer does not say (an older BBB, Scalelite). The root takes no checksum.
    pub async fn version(&self) -> Result<Option<String>, BbbError> {
        let call = async {
            let (status, body) = self.get(self.api.clone()).await?;
            if !status.is_success() {
                return Err(BbbError::Http {
                    status: status.as_u16(),
                });
            }
            parse_version(&body)
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or(Err(BbbError::Timeout(self.timeout)))
    }

    /// BBB 3.0's `sendChatMessage`: `message` posted in the meeting's public chat
    /// under `user_name`. `Ok(false)` when BBB does not know the call (older than 3.0).
    pub async fn send_chat_message(
        &self,
        meeting_id: &MeetingId,
        user_name: &str,
        message: &str,
    ) -> Result<bool, BbbError> {
        let query = format!(
            "meetingID={}&message={}&userName={}",
            url_encode(meeting_id.as_str()),
            url_encode(message),
            url_encode(user_name)
        );
        match self
            .ask_query(
                "sendChatMessage",
                meeting_id.as_str(),
                query,
                parse_chat_sent,
            )
            .await
        {
            // An older BBB may answer an unknown call with its HTML 404 page.
            Err(BbbError::Http { status: 404 }) => Ok(false),
            other => other,
        }
    }

    /// One signed call about one meeting, bounded by the timeout; a `FAILED` answer
    /// wins over the HTTP status (it says more).
    async fn ask<T: std::fmt::Debug>(
        &self,
        call_name: &str,
        meeting_id: &str,
        parse: fn(&[u8]) -> Result<T, BbbError>,
    ) -> Result<T, BbbError> {
        let query = format!("meetingID={}", url_encode(meeting_id));
        self.ask_query(call_name, meeting_id, query, parse).await
    }

    /// One signed call with its whole query (parameters encoded as they are signed).
    async fn ask_query<T: std::fmt::Debug>(
        &self,
        call_name: &str,
        meeting_id: &str,
        query: String,
        parse: fn(&[u8]) -> Result<T, BbbError>,
    ) -> Result<T, BbbError> {
        let sum = checksum(self.algorithm, call_name, &query, &self.secret);
        let mut url = self
            .api
            .join(call_name)
            .map_err(|e| BbbError::Garbage(format!("building the {call_name} URL: {e}")))?;
        url.set_query(Some(&format!("{query}&checksum={sum}")));
        let call = async {
            let (status, body) = self.get(url).await?;
            let answer = parse(&body);
            match answer {
                Err(failed @ BbbError::Failed { .. }) => Err(failed),
                _ if !status.is_success() => Err(BbbError::Http {
                    status: status.as_u16(),
                }),
                other => other,
            }
        };
        let result = tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or(Err(BbbError::Timeout(self.timeout)));
        tracing::debug!(
            meeting_id,
            ?result,
            call = call_name,
            "asked BBB about a meeting"
        );
        result
    }

    /// `GET url`: the answer's status and whole body (not bounded in time here: the
    /// callers bound the whole call).
    async fn get(
        &self,
        url: reqwest::Url,
    ) -> Result<(reqwest::StatusCode, impl std::ops::Deref<Target = [u8]>), BbbError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|err| self.request_error(err))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|err| self.request_error(err))?;
        Ok((status, body))
    }

    fn request_error(&self, err: reqwest::Error) -> BbbError {
        if err.is_timeout() {
            return BbbError::Timeout(self.timeout);
        }
        BbbError::Network {
            url: self.shown_url.clone(),
            // without_url: reqwest's message would repeat the URL with its checksum.
            reason: error_chain(&err.without_url()),
        }
    }

    fn body_error(&self, err: io::Error) -> BbbError {
        let inner = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<reqwest::Error>());
        if err.kind() == io::ErrorKind::TimedOut || inner.is_some_and(reqwest::Error::is_timeout) {
            return BbbError::Timeout(self.timeout);
        }
        let reason = match err.into_inner() {
            Some(inner) => match inner.downcast::<reqwest::Error>() {
                Ok(reqwest_err) => error_chain(&reqwest_err.without_url()),
                Err(other) => error_chain(other.as_ref()),
            },
            None => "the connection failed".to_owned(),
        };
        BbbError::Network {
            url: self.shown_url.clone(),
            reason: format!("reading the answer: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bbb::test_support::{SECRET, failed, fixture, garbage_reason, secret};

    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Body;
    use axum::extract::RawQuery;
    use axum::http::{HeaderMap, StatusCode, Uri};
    use futures_util::{StreamExt, stream};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn is_meeting_running_answers_are_read() {
        let fixture = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/bbb-xml/isMeetingRunning-true.xml"
        ));
        assert!(matches!(parse_is_meeting_running(fixture), Ok(true)));
        let no = b"<response><returncode>SUCCESS</returncode><running>false</running></response>";
        assert!(matches!(parse_is_meeting_running(no), Ok(false)));
        let gone = b"<response><returncode>FAILED</returncode><messageKey>notFound</messageKey><message>x</message></response>";
        assert!(matches!(parse_is_meeting_running(gone), Ok(false)));
        let checksum_error = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/bbb-xml/checksumError.xml"
        ));
        assert!(matches!(
            parse_is_meeting_running(checksum_error),
            Err(BbbError::Failed { message_key, .. }) if message_key == "checksumError"
        ));
        for garbage in [
            &b"<html>502</html>"[..],
            b"",
            b"<response><returncode>SUCCESS",
        ] {
            assert!(parse_is_meeting_running(garbage).is_err(), "{garbage:?}");
        }
        assert_eq!(url_encode("a b/é-1~_."), "a%20b%2F%C3%A9-1~_.");
    }

    async fn serve(router: Router) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        addr
    }

    fn client_for(addr: SocketAddr, algorithm: ChecksumAlgorithm, timeout: Duration) -> BbbClient {
        let url = Url::parse(&format!("http://{addr}/bigbluebutton/api/")).expect("url");
        BbbClient::new(&url, &secret(), algorithm, timeout).expect("client")
    }

    /// A SHA-1 client with a 5 s timeout, asking `router` served on a local port.
    async fn serve_client(router: Router) -> BbbClient {
        client_for(
            serve(router).await,
            ChecksumAlgorithm::Sha1,
            Duration::from_secs(5),
        )
    }

    fn xml_response(status: StatusCode, body: &'static [u8]) -> (StatusCode, HeaderMap, Body) {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            "text/xml;charset=utf-8".parse().expect("header"),
        );
        (status, headers, Body::from(body))
    }

    #[derive(Debug, Default)]
    struct Seen {
        path: String,
        query: Option<String>,
        user_agent: Option<String>,
    }

    #[tokio::test]
    async fn the_client_signs_get_meetings_and_parses_the_answer() {
        for (algorithm, expected) in [
            (
                ChecksumAlgorithm::Sha1,
                "2027baa7771026e9e93392f55031535d1444c41f",
            ),
            (
                ChecksumAlgorithm::Sha256,
                "a5370c5f3d97d56d53b435684cdbc429c2898a3bf9f435518b4279e1e0dbfc8c",
            ),
        ] {
            let seen = Arc::new(Mutex::new(Seen::default()));
            let record = seen.clone();
            let router = Router::new().fallback(
                move |uri: Uri, RawQuery(query): RawQuery, headers: HeaderMap| {
                    let record = record.clone();
                    async move {
                        *record.lock().expect("lock") = Seen {
                            path: uri.path().to_owned(),
                            query,
                            user_agent: headers
                                .get("user-agent")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned),
                        };
                        xml_response(StatusCode::OK, fixture!("getMeetings-several.xml"))
                    }
                },
            );
            let addr = serve(router).await;
            let client = client_for(addr, algorithm, Duration::from_secs(5));
            let meetings = client.meetings().await.expect("meetings");
            assert_eq!(meetings.len(), 3);
            assert!(meetings[2].running);
            let seen = seen.lock().expect("lock");
            assert_eq!(seen.path, "/bigbluebutton/api/getMeetings");
            assert_eq!(
                seen.query.as_deref(),
                Some(format!("checksum={expected}").as_str())
            );
            assert_eq!(
                seen.user_agent.as_deref(),
                Some(concat!("bbb-pod-live/", env!("CARGO_PKG_VERSION")))
            );
        }
    }

    #[tokio::test]
    async fn the_client_reports_failed_answers() {
        let router = Router::new()
            .fallback(|| async { xml_response(StatusCode::OK, fixture!("checksumError.xml")) });
        let client = serve_client(router).await;
        assert_eq!(
            failed(client.meetings().await),
            ("checksumError".into(), "Checksums do not match".into())
        );
        // An empty list is a success, distinct from a failure.
        let router = Router::new().fallback(|| async {
            xml_response(
                StatusCode::OK,
                fixture!("scalelite-getMeetings-noMeetings-DERIVED.xml"),
            )
        });
        let client = serve_client(router).await;
        assert_eq!(client.meetings().await.expect("noMeetings"), vec![]);
    }

    #[tokio::test]
    async fn http_errors_are_http_unless_they_carry_a_failed_answer() {
        let router = Router::new().fallback(|| async {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "<html><body>Internal Server Error</body></html>",
            )
        });
        let client = serve_client(router).await;
        assert!(matches!(
            client.meetings().await,
            Err(BbbError::Http { status: 500 })
        ));
        // Even a SUCCESS body does not make a 503 a success.
        let router = Router::new().fallback(|| async {
            xml_response(
                StatusCode::SERVICE_UNAVAILABLE,
                fixture!("getMeetings-several.xml"),
            )
        });
        let client = serve_client(router).await;
        assert!(matches!(
            client.meetings().await,
            Err(BbbError::Http { status: 503 })
        ));
        // A proxy answering 401 with BBB's FAILED XML: the messageKey is the better news.
        let router = Router::new().fallback(|| async {
            xml_response(StatusCode::UNAUTHORIZED, fixture!("checksumError.xml"))
        });
        let client = serve_client(router).await;
        assert_eq!(failed(client.meetings().await).0, "checksumError");
    }

    #[tokio::test]
    async fn a_slow_server_is_a_timeout() {
        let router = Router::new().fallback(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            xml_response(StatusCode::OK, fixture!("getMeetings-several.xml"))
        });
        let client = client_for(
            serve(router).await,
            ChecksumAlgorithm::Sha1,
            Duration::from_millis(300),
        );
        // Only the client's own timeout gives `Timeout`: no wall-clock bound needed
        // (the server would answer after 30 s, or never).
        let result = client.meetings().await;
        assert!(
            matches!(result, Err(BbbError::Timeout(d)) if d == Duration::from_millis(300)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_body_that_stalls_mid_stream_is_a_timeout() {
        let router = Router::new().fallback(|| async {
            let start = stream::iter([Ok::<_, io::Error>(
                "<response><returncode>SUCCESS</returncode><meetings>",
            )]);
            Body::from_stream(start.chain(stream::pending()))
        });
        let client = client_for(
            serve(router).await,
            ChecksumAlgorithm::Sha1,
            Duration::from_millis(400),
        );
        // Only the client's own timeout gives `Timeout`: no wall-clock bound needed
        // (the server would answer after 30 s, or never).
        let result = client.meetings().await;
        assert!(matches!(result, Err(BbbError::Timeout(_))), "{result:?}");
    }

    #[tokio::test]
    async fn a_closed_port_is_a_network_error_without_the_secret() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        drop(listener);
        let url = Url::parse(&format!(
            "http://admin:hunter2@{addr}/bigbluebutton/api/?x=1"
        ))
        .expect("url");
        let client = BbbClient::new(
            &url,
            &secret(),
            ChecksumAlgorithm::Sha1,
            Duration::from_secs(5),
        )
        .expect("client");
        let error = client.meetings().await.expect_err("nobody listens");
        let BbbError::Network { url, reason } = &error else {
            panic!("expected Network, got {error:?}");
        };
        assert_eq!(url, &format!("http://{addr}/bigbluebutton/api/getMeetings"));
        assert!(!reason.is_empty());
        let shown = format!("{error} {error:?} {client:?}");
        for hidden in [
            SECRET,
            "hunter2",
            "2027baa7771026e9e93392f55031535d1444c41f",
        ] {
            assert!(!shown.contains(hidden), "{hidden} leaked in {shown}");
        }
    }

    #[test]
    fn the_url_must_end_with_a_slash() {
        let url = Url::parse("http://bbb.univ.fr/bigbluebutton/api").expect("url");
        let err = BbbClient::new(
            &url,
            &secret(),
            ChecksumAlgorithm::Sha1,
            Duration::from_secs(1),
        )
        .expect_err("refused");
        assert!(err.to_string().contains("must end with '/'"), "{err}");
    }

    /// A server speaking raw HTTP/1.1, to cut a body exactly where a test wants.
    async fn raw_server(response: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(response).await;
                let _ = socket.shutdown().await;
            }
        });
        addr
    }

    /// A body cut before its announced end (Content-Length or chunked) is a transport
    /// failure: Network. A body whose end is the connection's close cannot be told from
    /// a complete one by HTTP; the parser sees the XML is unfinished: Garbage.
    #[tokio::test]
    async fn a_body_cut_mid_stream_is_network_or_garbage() {
        let with_length = raw_server(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5000\r\n\r\n\
              <response><returncode>SUCCESS</returncode><meetings><meeting><meetingID>a",
        )
        .await;
        let client = client_for(with_length, ChecksumAlgorithm::Sha1, Duration::from_secs(5));
        let result = client.meetings().await;
        assert!(
            matches!(&result, Err(BbbError::Network { reason, .. }) if reason.starts_with("reading the answer")),
            "{result:?}"
        );

        let chunked = raw_server(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n\
              20\r\n<response><returncode>SUCCESS</r\r\n",
        )
        .await;
        let client = client_for(chunked, ChecksumAlgorithm::Sha1, Duration::from_secs(5));
        let result = client.meetings().await;
        assert!(
            matches!(result, Err(BbbError::Network { .. })),
            "{result:?}"
        );

        let close_delimited = raw_server(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nConnection: close\r\n\r\n\
              <response><returncode>SUCCESS</returncode><meetings><meeting><meetingID>a",
        )
        .await;
        let client = client_for(
            close_delimited,
            ChecksumAlgorithm::Sha1,
            Duration::from_secs(5),
        );
        let reason = garbage_reason(client.meetings().await);
        assert!(reason.contains("truncated"), "{reason}");
    }
}
