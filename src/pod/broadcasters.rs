//! Pod's broadcasters (`/rest/broadcasters/`): creating one (and telling a taken name
//! from a taken URL), reading, listing, repointing and deleting them, the building
//! they are created in, and the parsing of a broadcaster row in both of Pod's shapes.
//! Not here: choosing which broadcaster a live uses (`tick::broadcaster`).

use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

use crate::model::Broadcaster;

use super::errors::{field_errors, is_object_not_found};
use super::pages::Row;
use super::rows::{kind, object_with_id, optional_string, required_string};
use super::{Payload, PodClient, PodError, shown};

/// A broadcaster to create (`POST /rest/broadcasters/`).
#[derive(Debug, Clone)]
pub struct NewBroadcaster {
    pub name: String,
    /// `<hls_url><key>.m3u8`, sent as both `url` and `broadcaster_url`.
    pub stream_url: String,
    pub building_id: u64,
    pub is_restricted: bool,
}

/// Outcome of a broadcaster POST.
#[derive(Debug)]
pub enum CreateBroadcaster {
    Created(Broadcaster),
    /// 400 with an error on `name` (with or without one on `url`/`broadcaster_url`): a
    /// broadcaster already has this name. Recognised by status + field, not by the
    /// message text (French by default).
    NameTaken,
    /// 400 with an error on `url` or `broadcaster_url` but none on `name`: on Pod ≤ 2.9.2
    /// another broadcaster already streams from this URL (Pod 3.x answers a 500 HTML
    /// page instead: docs/pod-api.md, "Broadcasters"). `detail` is the readable field
    /// errors, so an "Enter a valid URL." is not mistaken for a duplicate by whoever
    /// reports it.
    UrlTaken {
        detail: String,
    },
}

impl PodClient {
    /// POST a broadcaster (multipart, like Pod's own forms). Sends the stream URL as
    /// both `url` (Pod ≤ 2.9.2) and `broadcaster_url` (Pod ≥ 2.9.3): each version
    /// ignores the other name (docs/pod-api.md, "Broadcasters").
    pub async fn create_broadcaster(
        &self,
        new: &NewBroadcaster,
    ) -> Result<CreateBroadcaster, PodError> {
        let url = self.endpoint(&["rest", "broadcasters"]);
        let building = self.endpoint(&["rest", "buildings", &new.building_id.to_string()]);
        let form = reqwest::multipart::Form::new()
            .text("name", new.name.clone())
            .text("url", new.stream_url.clone())
            .text("broadcaster_url", new.stream_url.clone())
            .text("building", building.to_string())
            .text("status", "true")
            .text("is_restricted", new.is_restricted.to_string());
        let answer = self.call(Method::POST, &url, Payload::Form(form)).await?;
        if answer.status == StatusCode::BAD_REQUEST
            && let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&answer.body)
        {
            let detail = field_errors(&fields);
            if fields.contains_key("name") {
                tracing::debug!(name = %new.name, %detail, "pod refused the broadcaster name");
                return Ok(CreateBroadcaster::NameTaken);
            }
            if fields.contains_key("url") || fields.contains_key("broadcaster_url") {
                return Ok(CreateBroadcaster::UrlTaken { detail });
            }
        }
        self.object(
            Method::POST,
            &url,
            &answer,
            StatusCode::CREATED,
            parse_broadcaster,
        )
        .map(CreateBroadcaster::Created)
    }

    /// `GET /rest/broadcasters/<slug>/`; `Ok(None)` on Pod's (JSON) 404.
    pub async fn broadcaster(&self, slug: &str) -> Result<Option<Broadcaster>, PodError> {
        let url = self.broadcaster_url(slug)?;
        let answer = self.call(Method::GET, &url, Payload::Empty).await?;
        if is_object_not_found(&answer) {
            return Ok(None);
        }
        self.object(
            Method::GET,
            &url,
            &answer,
            StatusCode::OK,
            parse_broadcaster,
        )
        .map(Some)
    }

    /// `GET /rest/buildings/<id>/`: the building's name; `Ok(None)` on Pod's (JSON) 404.
    /// For `check`: broadcasters are created in `pod.building_id`.
    pub async fn building(&self, id: u64) -> Result<Option<String>, PodError> {
        let url = self.endpoint(&["rest", "buildings", &id.to_string()]);
        let answer = self.call(Method::GET, &url, Payload::Empty).await?;
        if is_object_not_found(&answer) {
            return Ok(None);
        }
        self.object(Method::GET, &url, &answer, StatusCode::OK, |value| {
            value
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("expected a building with a name, found {}", kind(value)))
        })
        .map(Some)
    }

    /// Every broadcaster, all pages, sorted by id.
    pub async fn broadcasters(&self) -> Result<Vec<Broadcaster>, PodError> {
        self.list(self.endpoint(&["rest", "broadcasters"])).await
    }

    /// PATCH a broadcaster's stream URL (both field names) and restriction.
    pub async fn repoint_broadcaster(
        &self,
        slug: &str,
        stream_url: &str,
        is_restricted: bool,
    ) -> Result<Broadcaster, PodError> {
        let url = self.broadcaster_url(slug)?;
        let body = json!({
            "url": stream_url,
            "broadcaster_url": stream_url,
            "is_restricted": is_restricted,
        });
        let answer = self.call(Method::PATCH, &url, Payload::Json(body)).await?;
        self.object(
            Method::PATCH,
            &url,
            &answer,
            StatusCode::OK,
            parse_broadcaster,
        )
    }

    /// `DELETE /rest/broadcasters/<slug>/`; a (JSON) 404 is success (already gone).
    pub async fn delete_broadcaster(&self, slug: &str) -> Result<(), PodError> {
        let url = self.broadcaster_url(slug)?;
        let answer = self.call(Method::DELETE, &url, Payload::Empty).await?;
        if is_object_not_found(&answer) {
            return Ok(());
        }
        if answer.status.is_success() {
            // DRF answers 204 and no body; a body that does not parse (a proxy cutting
            // the answer, a page of its own) says nothing about the deletion.
            let body = String::from_utf8_lossy(&answer.body);
            if body.trim().is_empty() || serde_json::from_slice::<Value>(&answer.body).is_ok() {
                return Ok(());
            }
            return Err(PodError::Unconfirmed {
                method: Method::DELETE.to_string(),
                url: super::shown(&url),
                reason: "an answer that does not parse".into(),
            });
        }
        Err(self.status_error(&Method::DELETE, &url, &answer))
    }

    fn broadcaster_url(&self, slug: &str) -> Result<Url, PodError> {
        // `url` drops "." and ".." segments: they would address the collection itself.
        if slug.is_empty() || slug == "." || slug == ".." {
            return Err(PodError::Garbage {
                url: shown(&self.endpoint(&["rest", "broadcasters"])),
                reason: format!("{slug:?} is not a broadcaster slug"),
            });
        }
        Ok(self.endpoint(&["rest", "broadcasters", slug]))
    }
}

impl Row for Broadcaster {
    fn parse(value: &Value) -> Result<Self, String> {
        parse_broadcaster(value)
    }
    fn id(&self) -> u64 {
        self.id
    }
}

/// A broadcaster of either shape: Pod 2.8–2.9.2 `url` = stream URL; Pod 2.9.3+
/// `url` = the API identity link and `broadcaster_url` = stream URL (PR #639).
pub(super) fn parse_broadcaster(value: &Value) -> Result<Broadcaster, String> {
    object_with_id(value, "broadcaster", |map, id| {
        let stream_url = if map.contains_key("broadcaster_url") {
            optional_string(map, "broadcaster_url")?
        } else {
            optional_string(map, "url")?
        };
        Ok(Broadcaster {
            id,
            slug: required_string(map, "slug")?,
            name: required_string(map, "name")?,
            stream_url,
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;
    use crate::pod::test_support::hostile::*;
    use crate::pod::test_support::*;
    use proptest::prelude::*;

    #[tokio::test]
    async fn both_broadcaster_shapes_give_the_stream_url() {
        let (base, _fake) = serve(|seen, _| {
            let origin = seen.origin();
            match seen.path.as_str() {
                "/rest/broadcasters/bbb-cours/" => Reply::json(200, broadcaster_2_8(&origin)),
                "/rest/broadcasters/bbb-td/" => Reply::json(200, broadcaster_3_x(&origin)),
                "/rest/broadcasters/" => {
                    let mut rows: Vec<Value> = (10..=30)
                        .map(|id| {
                            let mut b = broadcaster_3_x(&origin);
                            b["id"] = json!(id);
                            b["slug"] = json!(format!("bbb-{id}"));
                            b
                        })
                        .collect();
                    rows.push(broadcaster_2_8(&origin));
                    drf_page(&rows, seen, &origin)
                }
                _ => Reply::json(404, json!({"detail": "Not found."})),
            }
        })
        .await;
        let pod = client(&base);
        let old = pod.broadcaster("bbb-cours").await.unwrap().unwrap();
        assert_eq!(
            old,
            Broadcaster {
                id: 3,
                slug: "bbb-cours".into(),
                name: "[BBB] Cours".into(),
                stream_url: Some("https://hls.example/live/bbb-cours.m3u8".into()),
            }
        );
        let new = pod.broadcaster("bbb-td").await.unwrap().unwrap();
        assert_eq!(
            new.stream_url.as_deref(),
            Some("https://hls.example/live/bbb-td.m3u8")
        );
        assert_eq!((new.id, new.slug.as_str()), (4, "bbb-td"));
        assert_eq!(pod.broadcaster("bbb-gone").await.unwrap(), None);
        let all = pod.broadcasters().await.unwrap();
        assert_eq!(all.len(), 22);
        assert_eq!(all[0].id, 3);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    }

    #[tokio::test]
    async fn create_broadcaster_posts_both_url_fields_and_reads_the_outcome() {
        let (base, fake) = serve(|seen, n| {
            let origin = seen.origin();
            match n {
                0 => Reply::json(201, broadcaster_3_x(&origin)),
                1 => Reply::json(201, broadcaster_2_8(&origin)),
                2 => Reply::json(
                    400,
                    json!({"url": ["Un objet Diffuseur avec ce champ URL existe déjà."],
                           "name": ["Un objet Diffuseur avec ce champ nom existe déjà."]}),
                ),
                3 => Reply::json(
                    400,
                    json!({"name": ["Broadcaster with this name already exists."]}),
                ),
                4 => Reply::json(
                    400,
                    json!({"url": ["Broadcaster with this URL already exists."]}),
                ),
                5 => Reply::json(
                    400,
                    json!({"building": ["Invalid hyperlink - Object does not exist."]}),
                ),
                _ => Reply::html(
                    500,
                    "<html><head><title>IntegrityError</title></head></html>",
                ),
            }
        })
        .await;
        let pod = client(&base);
        let new = NewBroadcaster {
            name: "[BBB] TD".into(),
            stream_url: "https://hls.example/live/bbb-td.m3u8".into(),
            building_id: 7,
            is_restricted: true,
        };
        match pod.create_broadcaster(&new).await.unwrap() {
            CreateBroadcaster::Created(b) => {
                assert_eq!(
                    (b.id, b.slug.as_str(), b.name.as_str()),
                    (4, "bbb-td", "[BBB] TD")
                );
                assert_eq!(
                    b.stream_url.as_deref(),
                    Some("https://hls.example/live/bbb-td.m3u8")
                );
            }
            other => panic!("{other:?}"),
        }
        match pod.create_broadcaster(&new).await.unwrap() {
            CreateBroadcaster::Created(b) => assert_eq!((b.id, b.slug.as_str()), (3, "bbb-cours")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            pod.create_broadcaster(&new).await.unwrap(),
            CreateBroadcaster::NameTaken
        ));
        assert!(matches!(
            pod.create_broadcaster(&new).await.unwrap(),
            CreateBroadcaster::NameTaken
        ));
        match pod.create_broadcaster(&new).await.unwrap() {
            CreateBroadcaster::UrlTaken { detail } => {
                assert_eq!(detail, "url: Broadcaster with this URL already exists.")
            }
            other => panic!("{other:?}"),
        }
        let e = pod.create_broadcaster(&new).await.unwrap_err();
        assert_eq!(e.status(), Some(400));
        assert_eq!(
            status_detail(&e),
            "building: Invalid hyperlink - Object does not exist."
        );
        let e = pod.create_broadcaster(&new).await.unwrap_err();
        assert_eq!(e.status(), Some(500));
        assert!(
            status_detail(&e).contains("see Pod's logs; title: \"IntegrityError\""),
            "{e}"
        );

        let seen = fake.seen();
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].path, "/rest/broadcasters/");
        let mut form = seen[0].form.clone();
        form.sort();
        let expected: Vec<(String, String)> = [
            (
                "broadcaster_url",
                "https://hls.example/live/bbb-td.m3u8".to_owned(),
            ),
            ("building", format!("{base}rest/buildings/7/")),
            ("is_restricted", "true".to_owned()),
            ("name", "[BBB] TD".to_owned()),
            ("status", "true".to_owned()),
            ("url", "https://hls.example/live/bbb-td.m3u8".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(form, expected);
    }

    #[tokio::test]
    async fn delete_broadcaster_accepts_204_and_404_and_encodes_the_slug() {
        let (base, fake) = serve(|seen, _| match seen.path.as_str() {
            "/rest/broadcasters/bbb-td/" => Reply::empty(204),
            "/rest/broadcasters/bbb-gone/" => Reply::json(404, json!({"detail": "Not found."})),
            "/rest/broadcasters/locked/" => Reply::json(403, json!({"detail": "Forbidden."})),
            _ => Reply::empty(404),
        })
        .await;
        let pod = client(&base);
        pod.delete_broadcaster("bbb-td").await.unwrap();
        pod.delete_broadcaster("bbb-gone").await.unwrap();
        pod.delete_broadcaster("a/b?c#d%e f").await.unwrap();
        let e = pod.delete_broadcaster("locked").await.unwrap_err();
        assert_eq!(e.status(), Some(403));
        for slug in ["", ".", ".."] {
            assert!(matches!(
                pod.delete_broadcaster(slug).await,
                Err(PodError::Garbage { .. })
            ));
        }
        let seen = fake.seen();
        assert_eq!(seen.len(), 4);
        assert!(seen.iter().all(|s| s.method == "DELETE"));
        assert_eq!(seen[2].path, "/rest/broadcasters/a%2Fb%3Fc%23d%25e%20f/");
        assert_eq!(seen[2].query, None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn a_broadcaster_field_of_any_wrong_kind_is_refused_by_name(
            (row, new_shape) in arb_broadcaster_row(),
            field in 0usize..4,
            value in proptest::option::weighted(0.9, wrong_value()),
        ) {
            let fields = if new_shape { BROADCASTER_FIELDS } else { OLD_BROADCASTER_FIELDS };
            check(parse_broadcaster, "broadcaster", &row, fields[field], value.as_ref())?;
        }
    }
}
