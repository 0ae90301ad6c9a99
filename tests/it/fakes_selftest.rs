//! The fakes checked directly (no bbb-pod-live involved): if a fake drifted from the
//! real service, every test built on it would prove nothing. Plus one smoke test that
//! the real binary starts.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode, redirect};
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::support::*;

fn client() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn auth(token: &str) -> String {
    format!("Token {token}")
}

async fn get_json(c: &Client, url: &str, token: &str) -> (StatusCode, Value) {
    let r = c
        .get(url)
        .header("Authorization", auth(token))
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap())
}

async fn patch_json(c: &Client, url: &str, token: &str, body: Value) -> (StatusCode, String) {
    let r = c
        .patch(url)
        .header("Authorization", auth(token))
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.text().await.unwrap())
}

fn pod_with_lives(version: PodVersion, n: usize) -> (FakePod, Vec<u64>) {
    let pod = FakePod::start(PodOptions {
        version,
        page_size: 12,
    });
    let m = pod.add_meeting("m-1", "abc-1700000000000", "Cours d'amphi");
    let ids = (0..n)
        .map(|i| {
            let mut spec = LiveSpec::waiting(m);
            spec.status = (i % 3) as u8;
            if spec.status == 1 {
                spec.server = Some(format!("{}/1", 1 + i % 2));
            }
            pod.add_live(spec)
        })
        .collect();
    (pod, ids)
}

// ---------------------------------------------------------------------------
// Pod
// ---------------------------------------------------------------------------

#[tokio::test]
async fn pod_paginates_41_lives_over_4_pages_with_absolute_links() {
    let (pod, ids) = pod_with_lives(PodVersion::V3_8, 41);
    let c = client();
    let first = format!("{}/rest/bbb_livestream/?status=0", pod.url());
    let mut url = Some(first.clone());
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut previous = Vec::new();
    while let Some(u) = url {
        let (s, page) = get_json(&c, &u, &pod.token()).await;
        assert_eq!(s, 200);
        assert_eq!(page["count"], 41);
        pages += 1;
        for live in page["results"].as_array().unwrap() {
            seen.push(live["id"].as_u64().unwrap());
        }
        previous.push(page["previous"].clone());
        url = page["next"].as_str().map(str::to_string);
        if let Some(n) = &url {
            // Absolute, from the Host header; the ignored filter is kept, keys sorted.
            assert!(
                n.starts_with(&format!("{}/rest/bbb_livestream/?page=", pod.url())),
                "{n}"
            );
            assert!(n.ends_with("&status=0"), "{n}");
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(
        seen, ids,
        "every live once, ordered by id, filter ignored on 3.x"
    );
    assert_eq!(previous[0], Value::Null);
    assert_eq!(previous[1], json!(first.clone()));
    assert_eq!(
        previous[3],
        json!(format!(
            "{}/rest/bbb_livestream/?page=3&status=0",
            pod.url()
        ))
    );
    let last = format!("{}/rest/bbb_livestream/?page=4", pod.url());
    let (_, page4) = get_json(&c, &last, &pod.token()).await;
    assert_eq!(page4["results"].as_array().unwrap().len(), 5);
    assert_eq!(page4["next"], Value::Null);
    for bad in ["5", "0", "abc", ""] {
        let (s, body) = get_json(
            &c,
            &format!("{}/rest/bbb_livestream/?page={bad}", pod.url()),
            &pod.token(),
        )
        .await;
        assert_eq!(s, 404, "page={bad}");
        assert_eq!(body, json!({"detail": "Page non valide."}));
    }
    // Hyperlinks follow the Host the client used.
    let r = c
        .get(format!("{}/rest/bbb_livestream/1/", pod.url()))
        .header("Authorization", auth(&pod.token()))
        .header("Host", "pod.localhost")
        .send()
        .await
        .unwrap();
    let live: Value = r.json().await.unwrap();
    assert_eq!(live["meeting"], "http://pod.localhost/rest/bbb_meeting/1/");
    assert_eq!(live["user"], "http://pod.localhost/rest/users/1/");
}

#[tokio::test]
async fn pod_lists_lives_by_start_date_answers_page_last_and_restores_a_backup() {
    for version in [PodVersion::V2_8, PodVersion::V3_8] {
        let (pod, ids) = pod_with_lives(version, 26);
        let c = client();
        let list = format!("{}/rest/bbb_livestream/", pod.url());
        let ids_of = |page: &Value| -> Vec<u64> {
            page["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["id"].as_u64().unwrap())
                .collect()
        };
        // `?page=last` is the last page, with DRF's links.
        let (s, last) = get_json(&c, &format!("{list}?page=last"), &pod.token()).await;
        assert_eq!(s, 200);
        assert_eq!(last["count"], 26);
        assert_eq!(ids_of(&last), ids[24..]);
        assert_eq!(last["next"], Value::Null);
        assert_eq!(last["previous"], json!(format!("{list}?page=2")));
        // A row whose start_date an admin moved back sorts by it, not by its id.
        let earlier = pod.live(ids[3])["start_date"].clone();
        pod.set_live(ids[25], json!({ "start_date": earlier }));
        let (_, first) = get_json(&c, &list, &pod.token()).await;
        assert_eq!(
            ids_of(&first)[..5],
            [ids[0], ids[1], ids[2], ids[3], ids[25]]
        );
        let (_, last) = get_json(&c, &format!("{list}?page=last"), &pod.token()).await;
        assert_eq!(ids_of(&last), ids[23..25]);
        // An invalid page: DRF's 404, in the French of that DRF version.
        let (s, body) = get_json(&c, &format!("{list}?page=4"), &pod.token()).await;
        assert_eq!(s, 404);
        let detail = match version {
            PodVersion::V2_8 => "Page invalide.",
            PodVersion::V3_8 => "Page non valide.",
        };
        assert_eq!(body, json!({ "detail": detail }));
        // A backup restored: later rows gone, their ids given again.
        let backup = pod.backup();
        let m = pod.add_meeting("m-2", "def-1700000000000", "Après la sauvegarde");
        let after = pod.add_live(LiveSpec::waiting(m));
        pod.restore(&backup);
        assert_eq!(pod.live_ids().len(), 26);
        let m = pod.add_meeting("m-3", "0af-1700000000000", "Après la restauration");
        assert_eq!(
            pod.add_live(LiveSpec::waiting(m)),
            after,
            "the sequence restored"
        );
    }
}

#[tokio::test]
async fn pod_2_8_filters_lives_and_3_8_ignores_the_filters() {
    let c = client();
    let (pod2, _) = pod_with_lives(PodVersion::V2_8, 30);
    let (s, body) = get_json(
        &c,
        &format!("{}/rest/bbb_livestream/?status=1", pod2.url()),
        &pod2.token(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body["count"], 10);
    assert!(
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["status"] == 1)
    );
    let (_, body) = get_json(
        &c,
        &format!("{}/rest/bbb_livestream/?status=1&server=2/1", pod2.url()),
        &pod2.token(),
    )
    .await;
    assert_eq!(body["count"], 5);
    let (s, body) = get_json(
        &c,
        &format!("{}/rest/bbb_livestream/?status=5", pod2.url()),
        &pod2.token(),
    )
    .await;
    assert_eq!(s, 400);
    assert!(body["status"][0].as_str().unwrap().contains("5"));

    let (pod3, _) = pod_with_lives(PodVersion::V3_8, 30);
    let (s, body) = get_json(
        &c,
        &format!("{}/rest/bbb_livestream/?status=5&server=zz", pod3.url()),
        &pod3.token(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body["count"], 30);
}

#[tokio::test]
async fn pod_4_1_serves_webinar_livestreams_filtered_paginated_and_patched() {
    let c = client();
    let pod = FakePod::start(PodOptions::default());
    let base = pod.url();
    assert_eq!(
        pod.add_webinar_meeting(2, "webinaire-demo"),
        "0002-webinaire-demo"
    );
    let ids: Vec<u64> = (0..14)
        .map(|i| pod.add_webinar_live(2, if i % 2 == 0 { 1 } else { 2 }))
        .collect();
    let list = format!("{base}/rest/meeting_livestream/");
    let (s, body) = get_json(&c, &format!("{list}?status=1"), &pod.token()).await;
    assert_eq!(s, 200);
    assert_eq!(body["count"], 7);
    assert!(body["next"].is_null(), "7 fit in one page of 12");
    let first = &body["results"][0];
    assert_eq!(
        first.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["event", "id", "live_gateway_id", "meeting", "status"]
    );
    assert_eq!(first["id"], ids[0]);
    assert_eq!(
        first["meeting"].as_str().unwrap(),
        format!("{base}/rest/meeting_session/2/")
    );
    assert_eq!(first["live_gateway_id"], 1);
    let (_, all) = get_json(&c, &list, &pod.token()).await;
    assert_eq!(all["count"], 14);
    assert_eq!(
        all["next"].as_str().unwrap(),
        format!("{base}/rest/meeting_livestream/?page=2")
    );
    let (s, bad) = get_json(&c, &format!("{list}?status=7"), &pod.token()).await;
    assert_eq!(s, 400);
    assert!(bad["status"][0].as_str().unwrap().contains('7'));
    let (s, session) = get_json(&c, &format!("{base}/rest/meeting_session/2/"), &pod.token()).await;
    assert_eq!(
        (s.as_u16(), &session["meeting_id"]),
        (200, &json!("0002-webinaire-demo"))
    );

    let one = format!("{list}{}/", ids[0]);
    let (s, text) = patch_json(&c, &one, &pod.token(), json!({ "status": 2 })).await;
    assert_eq!(s, 200);
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (answer["id"].clone(), answer["status"].clone()),
        (json!(ids[0]), json!(2))
    );
    assert_eq!(pod.webinar_live_status(ids[0]), 2);
    let (s, text) = patch_json(&c, &one, &pod.token(), json!({ "status": 5 })).await;
    assert_eq!(s, 400);
    assert!(text.contains("n'est pas un choix valide"), "{text}");
    let (s, _) = patch_json(&c, &one, "wrong", json!({ "status": 1 })).await;
    assert_eq!(s, 401);
    assert_eq!(pod.webinar_live_status(ids[0]), 2);
}

#[tokio::test]
async fn pod_authenticates_like_drf() {
    let pod = FakePod::start(PodOptions::default());
    let c = client();
    let url = format!("{}/rest/bbb_livestream/", pod.url());

    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"api\"");
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"detail":"Informations d'authentification non fournies."}"#
    );

    let r = c
        .get(&url)
        .header("Authorization", "Token nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.text().await.unwrap(), r#"{"detail":"Token non valide."}"#);

    let r = c
        .get(&url)
        .header("Authorization", format!("Bearer {}", pod.token()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "Bearer is not a DRF scheme");

    let (_, user_token) = pod.add_user(false);
    let r = c
        .get(&url)
        .header("Authorization", auth(&user_token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"detail":"Vous n'avez pas la permission d'effectuer cette action."}"#
    );

    let (_, staff_token) = pod.add_user(true);
    let r = c
        .get(&url)
        .header("Authorization", auth(&staff_token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The keyword is case-insensitive in DRF.
    let r = c
        .get(&url)
        .header("Authorization", format!("token {}", pod.token()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let reqs = pod.requests();
    assert_eq!(reqs.len(), 6);
    assert_eq!(reqs[0].authorization, None);
    assert_eq!(reqs[1].authorization.as_deref(), Some("Token nope"));
    assert!(pod.writes().is_empty());
}

#[tokio::test]
async fn pod_3_8_broadcaster_post_validates_and_fails_like_pod() {
    let pod = FakePod::start(PodOptions::default());
    let c = client();
    let url = format!("{}/rest/broadcasters/", pod.url());
    let form = |name: &str, stream: &str| {
        reqwest::multipart::Form::new()
            .text("url", stream.to_string())
            .text("broadcaster_url", stream.to_string())
            .text("building", "/rest/buildings/1/")
            .text("name", name.to_string())
            .text("status", "true")
            .text("is_restricted", "false")
    };
    let post = |f: reqwest::multipart::Form| {
        c.post(&url)
            .header("Authorization", auth(&pod.token()))
            .multipart(f)
            .send()
    };

    let r = post(form(
        "[BBB] Cours d-amphi",
        "https://hls.example/hls/bbb-cours.m3u8",
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let text = r.text().await.unwrap();
    let b: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        location,
        format!("{}/rest/broadcasters/bbb-cours-d-amphi/", pod.url())
    );
    assert_eq!(b["url"], json!(location));
    assert_eq!(b["slug"], "bbb-cours-d-amphi");
    assert_eq!(
        b["broadcaster_url"],
        "https://hls.example/hls/bbb-cours.m3u8"
    );
    assert_eq!(
        b["building"],
        json!(format!("{}/rest/buildings/1/", pod.url()))
    );
    assert_eq!(b["status"], true);
    assert_eq!(b["is_restricted"], false);
    let keys = [
        "id",
        "url",
        "name",
        "slug",
        "building",
        "description",
        "poster",
        "broadcaster_url",
        "status",
        "is_restricted",
        "manage_groups",
        "piloting_implementation",
        "piloting_conf",
    ];
    assert_eq!(b.as_object().unwrap().len(), keys.len());
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| text.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "serializer field order: {text}"
    );

    // Same name: 400 (UniqueValidator), checked before anything else.
    let r = post(form(
        "[BBB] Cours d-amphi",
        "https://hls.example/hls/other.m3u8",
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"name":["Un objet Diffuseur avec ce champ nom existe déjà."]}"#
    );
    // Different name, same slug: the database refuses it → HTML 500.
    let r = post(form(
        "[bbb] COURS D-AMPHI",
        "https://hls.example/hls/other.m3u8",
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 500);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = r.text().await.unwrap();
    assert!(
        page.len() > 12_000 && page.contains("Erreur serveur"),
        "{}",
        page.len()
    );
    // Same stream URL under a new name: 500 too.
    let r = post(form(
        "[BBB] Autre",
        "https://hls.example/hls/bbb-cours.m3u8",
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 500);
    // All non-Latin names slugify to "bbb": the second one collides.
    let r = post(form("[BBB] 会议", "https://hls.example/hls/a.m3u8"))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = post(form("[BBB] 讲座", "https://hls.example/hls/b.m3u8"))
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    // A 200-char name whose NFKD expansion makes the slug too long for the .vtt file name.
    let long: String = "ﬃ".repeat(194);
    let r = post(form(
        &format!("[BBB] {long}"),
        "https://hls.example/hls/c.m3u8",
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 500);
    // 201 characters: 400.
    let r = post(form(&"x".repeat(201), "https://hls.example/hls/d.m3u8"))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"name":["Assurez-vous que ce champ comporte au plus 200 caractères."]}"#
    );
    // The 2.x client sends only `url`: ignored on 3.x, broadcaster_url is required.
    let f = reqwest::multipart::Form::new()
        .text("url", "https://hls.example/hls/e.m3u8")
        .text("building", "https://elsewhere.example/rest/buildings/1/")
        .text("name", "[BBB] PHP");
    let r = post(f).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"broadcaster_url":["Ce champ est obligatoire."]}"#
    );
    // Unknown building.
    let r = post(
        form("[BBB] Nulle part", "https://hls.example/hls/f.m3u8")
            .text("building", "/rest/buildings/99/"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"building":["Lien non valide : l'objet n'existe pas."]}"#
    );
    // JSON is accepted too.
    let r = c
        .post(&url)
        .header("Authorization", auth(&pod.token()))
        .json(&json!({"name": "[BBB] Json", "broadcaster_url": "https://hls.example/hls/g.m3u8", "building": "/rest/buildings/1/", "status": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // Lookup by slug (case-sensitive), never by id; DELETE then 404.
    let detail = format!("{url}bbb-cours-d-amphi/");
    let (s, got) = get_json(&c, &detail, &pod.token()).await;
    assert_eq!((s, got["id"].clone()), (StatusCode::OK, b["id"].clone()));
    let (s, _) = get_json(&c, &format!("{url}BBB-cours-d-amphi/"), &pod.token()).await;
    assert_eq!(s, 404);
    let (s, body) = get_json(&c, &format!("{url}{}/", b["id"]), &pod.token()).await;
    assert_eq!(
        (s, body),
        (StatusCode::NOT_FOUND, json!({"detail": "Pas trouvé."}))
    );
    let del = || {
        c.delete(&detail)
            .header("Authorization", auth(&pod.token()))
            .send()
    };
    let r = del().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.text().await.unwrap().is_empty());
    let r = del().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), r#"{"detail":"Pas trouvé."}"#);

    let names: Vec<String> = pod
        .broadcasters()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["[BBB] Json", "[BBB] 会议"]);
    let posts = pod.writes();
    assert!(
        posts[0]
            .content_type
            .as_deref()
            .unwrap()
            .starts_with("multipart/form-data")
    );
    assert!(
        posts[0]
            .form()
            .contains(&("name".into(), "[BBB] Cours d-amphi".into()))
    );
}

#[tokio::test]
async fn pod_2_8_broadcaster_uses_url_as_stream_url() {
    let pod = FakePod::start(PodOptions {
        version: PodVersion::V2_8,
        page_size: 12,
    });
    let c = client();
    let url = format!("{}/rest/broadcasters/", pod.url());
    let form = |name: &str, stream: &str| {
        reqwest::multipart::Form::new()
            .text("url", stream.to_string())
            .text("broadcaster_url", stream.to_string())
            .text("building", format!("{}/rest/buildings/1/", pod.url()))
            .text("name", name.to_string())
            .text("status", "true")
            .text("is_restricted", "true")
    };
    let post = |f| {
        c.post(&url)
            .header("Authorization", auth(&pod.token()))
            .multipart(f)
            .send()
    };
    let r = post(form(
        "[BBB] Test_ ",
        "https://hls.example/hls/bbb-test.m3u8",
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["location"],
        "https://hls.example/hls/bbb-test.m3u8"
    );
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["url"], "https://hls.example/hls/bbb-test.m3u8");
    assert_eq!(
        b["slug"], "bbb-test_",
        "Django 1.11 keeps the trailing underscore"
    );
    assert_eq!(b["name"], "[BBB] Test_", "DRF trims whitespace");
    assert!(b.get("broadcaster_url").is_none());
    assert_eq!(b.as_object().unwrap().len(), 9);
    let r = post(form("[BBB] Test_", "https://hls.example/hls/bbb-test.m3u8"))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"url":["Un objet Diffuseur avec ce champ URL existe déjà."],"name":["Un objet Diffuseur avec ce champ nom existe déjà."]}"#
    );
    let f = reqwest::multipart::Form::new()
        .text("broadcaster_url", "https://hls.example/hls/x.m3u8")
        .text("building", "/rest/buildings/1/")
        .text("name", "[BBB] New");
    let r = post(f).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"url":["Ce champ est obligatoire."]}"#
    );
}

#[tokio::test]
async fn pod_patch_validates_like_drf() {
    let pod = FakePod::start(PodOptions::default());
    let m = pod.add_meeting(
        "m-1",
        "0123456789abcdef0123456789abcdef01234567-1714639090123",
        "Réunion",
    );
    let live = pod.add_live(LiveSpec::waiting(m));
    let c = client();
    let url = format!("{}/rest/bbb_livestream/{live}/", pod.url());
    let t = pod.token();

    let (s, body) = patch_json(&c, &url, &t, json!({"status": 5})).await;
    assert_eq!(
        (s.as_u16(), body.as_str()),
        (400, r#"{"status":["« 5 » n'est pas un choix valide."]}"#)
    );
    let (s, body) = patch_json(&c, &url, &t, json!({"server": "x".repeat(21)})).await;
    assert_eq!(
        (s.as_u16(), body.as_str()),
        (
            400,
            r#"{"server":["Assurez-vous que ce champ comporte au plus 20 caractères."]}"#
        )
    );
    let (s, body) = patch_json(&c, &url, &t, json!({"redis_port": "abc"})).await;
    assert_eq!(
        (s.as_u16(), body.as_str()),
        (
            400,
            r#"{"redis_port":["Un nombre entier valide est requis."]}"#
        )
    );
    let (s, _) = patch_json(&c, &url, &t, json!({"end_date": "02/05/2024"})).await;
    assert_eq!(s, 400);
    let r = c
        .patch(&url)
        .header("Authorization", auth(&t))
        .header("Content-Type", "application/json")
        .body(r#"{"server":"1/1","status":1,"broadcaster_id":}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error - "),
        "{v}"
    );
    assert_eq!(
        pod.live(live)["status"],
        0,
        "a failed PATCH changes nothing"
    );

    let start = json!({"server": "1/2", "status": 1, "broadcaster_id": 7, "redis_hostname": "live-test.example", "redis_port": 6380, "redis_channel": "chat2"});
    let (s, body) = patch_json(&c, &url, &t, start).await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], 1);
    assert_eq!(v["server"], "1/2");
    assert_eq!(v["redis_port"], 6380);
    assert_eq!(v["broadcaster_id"], 7);
    assert_eq!(v.as_object().unwrap().len(), 15);
    assert!(body.starts_with(r#"{"id":1,"meeting":"#), "{body}");

    let (s, body) = patch_json(
        &c,
        &url,
        &t,
        json!({"end_date": "2024-05-02T10:15:30+02:00", "status": 2}),
    )
    .await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["end_date"], "2024-05-02T08:15:30Z");
    assert_eq!(v["user"], json!(format!("{}/rest/users/1/", pod.url())));
    pod.set_live(live, json!({"end_date": "2024-05-02 11:00:00.25"}));
    assert_eq!(
        pod.live(live)["end_date"],
        "2024-05-02T11:00:00.250000Z",
        "naive = UTC"
    );

    // Meeting: encoded_by must be a staff user; host part ignored.
    let murl = format!("{}/rest/bbb_meeting/{m}/", pod.url());
    let (s, body) = patch_json(
        &c,
        &murl,
        &t,
        json!({"encoded_by": "https://pod.univ.example/rest/users/1/", "encoding_step": 3}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["internal_meeting_id"],
        "0123456789abcdef0123456789abcdef01234567-1714639090123"
    );
    assert_eq!(v["encoding_step"], 3);
    assert_eq!(
        v["encoded_by"],
        json!(format!("{}/rest/users/1/", pod.url()))
    );
    let (plain, _) = pod.add_user(false);
    let (s, body) = patch_json(
        &c,
        &murl,
        &t,
        json!({"encoded_by": format!("/rest/users/{plain}/")}),
    )
    .await;
    assert_eq!(
        (s.as_u16(), body.as_str()),
        (
            400,
            r#"{"encoded_by":["Lien non valide : l'objet n'existe pas."]}"#
        )
    );
    let (s, _) = patch_json(&c, &murl, &t, json!({"encoding_step": 4})).await;
    assert_eq!(s, 400);
    let (s, body) = get_json(&c, &format!("{}/rest/bbb_meeting/999/", pod.url()), &t).await;
    assert_eq!((s.as_u16(), body), (404, json!({"detail": "Pas trouvé."})));
    assert_eq!(pod.meeting(m)["encoding_step"], 3);
}

#[tokio::test]
async fn pod_redirects_without_trailing_slash_and_404s_unknown_routes() {
    let pod = FakePod::start(PodOptions::default());
    let c = client();
    for method in [Method::GET, Method::PATCH, Method::POST] {
        let r = c
            .request(
                method.clone(),
                format!("{}/rest/bbb_livestream?status=0", pod.url()),
            )
            .header("Authorization", auth(&pod.token()))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 301, "{method}");
        assert_eq!(r.headers()["location"], "/rest/bbb_livestream/?status=0");
    }
    let r = c
        .get(format!("{}/rest/broadcasters/bbb-x", pod.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301, "before authentication");
    let r = c
        .get(format!("{}/rest/nothing/", pod.url()))
        .header("Authorization", auth(&pod.token()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("<html"));
}

#[tokio::test]
async fn pod_faults_are_injected_and_requests_recorded() {
    let pod = FakePod::start(PodOptions::default());
    let c = client();
    let list = format!("{}/rest/bbb_livestream/", pod.url());
    let get = || {
        c.get(&list)
            .header("Authorization", auth(&pod.token()))
            .send()
    };

    pod.fail_next(
        "GET",
        "/rest/bbb_livestream/",
        Fault::Status(502, "<html>Bad Gateway</html>".into()),
        2,
    );
    assert_eq!(get().await.unwrap().status(), 502);
    assert_eq!(get().await.unwrap().status(), 502);
    assert_eq!(
        get().await.unwrap().status(),
        200,
        "only `times` requests faulted"
    );

    pod.fail_next("*", "/rest/", Fault::Html500, 1);
    let r = get().await.unwrap();
    assert_eq!(r.status(), 500);
    assert!(r.text().await.unwrap().len() > 12_000);

    pod.fail_next(
        "GET",
        "/rest/bbb_livestream/",
        Fault::Garbage("{\"count\":".into()),
        1,
    );
    let r = get().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.json::<Value>().await.is_err());

    pod.fail_next("GET", "/rest/bbb_livestream/", Fault::Drop, 1);
    let e = get().await.unwrap_err();
    assert!(!e.is_timeout() && e.status().is_none(), "{e:?}");

    pod.fail_next(
        "GET",
        "/rest/bbb_livestream/",
        Fault::Delay(Duration::from_millis(300)),
        1,
    );
    let t = Instant::now();
    assert_eq!(get().await.unwrap().status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(300));

    pod.fail_next("GET", "/rest/bbb_livestream/", Fault::Hang, 1);
    let e = c
        .get(&list)
        .header("Authorization", auth(&pod.token()))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e:?}");

    pod.fail_next(
        "PATCH",
        "/rest/bbb_livestream/",
        Fault::Status(503, "{\"detail\":\"x\"}".into()),
        1,
    );
    let r = c
        .patch(format!("{list}1/"))
        .header("Authorization", auth(&pod.token()))
        .json(&json!({"status": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["content-type"], "application/json");

    pod.set_latency(Duration::from_millis(200));
    let t = Instant::now();
    assert_eq!(get().await.unwrap().status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(200));
    pod.set_latency(Duration::ZERO);

    pod.set_reachable(false);
    // A fresh client: the pooled keep-alive connection is reset, a new one is refused.
    let e = client()
        .get(&list)
        .header("Authorization", auth(&pod.token()))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_connect(), "{e:?}");
    pod.set_reachable(true);
    // Again a fresh client: `c`'s pooled connection died with the server's listener.
    let r = client()
        .get(&list)
        .header("Authorization", auth(&pod.token()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let reqs = pod.requests();
    assert_eq!(reqs.len(), 11, "the refused request never arrived");
    let writes = pod.writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].method, "PATCH");
    assert_eq!(writes[0].path, "/rest/bbb_livestream/1/");
    assert_eq!(writes[0].json(), json!({"status": 1}));
    assert_eq!(writes[0].content_type.as_deref(), Some("application/json"));
}

// ---------------------------------------------------------------------------
// BBB
// ---------------------------------------------------------------------------

fn signed(bbb: &FakeBbb, call: &str, query: &str, hash: &str) -> String {
    let data = format!("{call}{query}{}", bbb.secret());
    let sum = match hash {
        "sha1" => hex::encode(Sha1::digest(data.as_bytes())),
        "sha256" => hex::encode(Sha256::digest(data.as_bytes())),
        "sha384" => hex::encode(Sha384::digest(data.as_bytes())),
        _ => hex::encode(Sha512::digest(data.as_bytes())),
    };
    let sep = if query.is_empty() { "" } else { "&" };
    format!("{}/{call}?{query}{sep}checksum={sum}", bbb.url())
}

#[tokio::test]
async fn bbb_verifies_checksums_like_bbb_2_5() {
    let bbb = FakeBbb::start(BBB_SECRET);
    let c = client();
    for hash in ["sha1", "sha256", "sha384", "sha512"] {
        let body = c
            .get(signed(&bbb, "getMeetings", "", hash))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            body.contains("<returncode>SUCCESS</returncode>"),
            "{hash}: {body}"
        );
        assert!(body.contains("<messageKey>noMeetings</messageKey>"));
        let r = c
            .post(signed(&bbb, "getMeetings", "", hash))
            .send()
            .await
            .unwrap();
        assert!(r.text().await.unwrap().contains("SUCCESS"), "POST {hash}");
    }
    assert_eq!(bbb.bad_checksums(), 0);
    let wrong = format!("{}/getMeetings?checksum={}", bbb.url(), "0".repeat(40));
    let body = c.get(&wrong).send().await.unwrap().text().await.unwrap();
    assert_eq!(
        body,
        "<response>\n<returncode>FAILED</returncode>\n<messageKey>checksumError</messageKey>\n<message>Checksums do not match</message>\n</response>"
    );
    let r = c
        .get(format!("{}/getMeetings", bbb.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("checksumError"));
    // A parameter not covered by the checksum breaks it.
    let tampered = signed(&bbb, "getMeetings", "", "sha1").replace("?", "?x=1&");
    assert!(
        c.get(tampered)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("checksumError")
    );
    assert_eq!(bbb.bad_checksums(), 3);
    // Scalelite refuses sha384.
    bbb.set_algorithms(&["sha1", "sha256", "sha512"]);
    let body = c
        .get(signed(&bbb, "getMeetings", "", "sha384"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("checksumError"));
    // Other calls hash their own name and query.
    bbb.add_meeting("abc", "f00-1700000000000", "x", true);
    let body = c
        .get(signed(&bbb, "isMeetingRunning", "meetingID=abc", "sha256"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("<running>true</running>"), "{body}");
    assert_eq!(bbb.requests(), 13);
}

#[tokio::test]
async fn bbb_lists_meetings_with_full_xml() {
    let bbb = FakeBbb::start(BBB_SECRET);
    let c = client();
    let url = signed(&bbb, "getMeetings", "", "sha1");
    bbb.add_meeting("m-run", "aaa-1714639090123", "Cours <L1> & TD \"A\"", true);
    bbb.add_meeting("m-new", "bbb-1714639090124", "Créée", false);
    bbb.add_meeting("m-end", "ccc-1714639090125", "Finie", true);
    bbb.end_meeting("m-end");
    let xml = c.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(xml.contains("<meetingName>Cours &lt;L1&gt; &amp; TD &quot;A&quot;</meetingName>"));
    for tag in [
        "meetingID",
        "internalMeetingID",
        "createTime",
        "createDate",
        "voiceBridge",
        "dialNumber",
        "attendeePW",
        "moderatorPW",
        "running",
        "duration",
        "hasUserJoined",
        "recording",
        "hasBeenForciblyEnded",
        "startTime",
        "endTime",
        "participantCount",
        "listenerCount",
        "voiceParticipantCount",
        "videoCount",
        "maxUsers",
        "moderatorCount",
        "isBreakout",
    ] {
        assert_eq!(xml.matches(&format!("<{tag}>")).count(), 3, "{tag}");
    }
    assert_eq!(
        xml.matches("<attendee>").count(),
        2,
        "only the running meeting has people"
    );
    assert!(xml.contains("<role>MODERATOR</role>") && xml.contains("<bbb-origin>Pod</bbb-origin>"));
    assert!(xml.contains("<createTime>1714639090123</createTime>"));
    let chunk = |id: &str| {
        let i = xml.find(&format!("<meetingID>{id}</meetingID>")).unwrap();
        xml[i..].split("</meeting>").next().unwrap().to_string()
    };
    assert!(
        chunk("m-new").contains("<running>false</running>")
            && chunk("m-new").contains("<endTime>0</endTime>")
    );
    let ended = chunk("m-end");
    assert!(
        ended.contains("<running>false</running>")
            && ended.contains("<hasUserJoined>true</hasUserJoined>")
    );
    assert!(!ended.contains("<endTime>0</endTime>"));
    assert!(chunk("m-run").contains("<running>true</running>"));

    for id in ["m-run", "m-new", "m-end"] {
        bbb.remove_meeting(id);
    }
    let xml = c.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(xml.find("<meetings/>").unwrap() < xml.find("<messageKey>noMeetings").unwrap());
    bbb.set_scalelite_order(true);
    let xml = c.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(xml.find("<meetings/>").unwrap() > xml.find("<messageKey>noMeetings").unwrap());

    bbb.add_many(5000);
    let big = c.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(big.len() > 20_000_000, "{} bytes", big.len());
    assert_eq!(big.matches("<meeting>").count(), 5000);
    assert!(big.trim_end().ends_with("</response>"));
}

#[tokio::test]
async fn bbb_modes_fail_like_real_endpoints() {
    let bbb = FakeBbb::start(BBB_SECRET);
    bbb.add_meeting("m", "abc-1714639090123", "Cours", true);
    let c = client();
    let url = signed(&bbb, "getMeetings", "", "sha1");
    let get = || c.get(&url).timeout(Duration::from_millis(800)).send();

    bbb.set_mode(BbbMode::ChecksumError);
    assert!(
        get()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("<messageKey>checksumError</messageKey>")
    );
    bbb.set_mode(BbbMode::ScaleliteInternalError);
    let body = get().await.unwrap().text().await.unwrap();
    assert!(
        body.contains("<messageKey>internalError</messageKey>")
            && body.contains("Unable to access server.")
    );
    bbb.set_mode(BbbMode::Garbage);
    let r = get().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().starts_with("<!DOCTYPE html>"));
    bbb.set_mode(BbbMode::Http(502));
    assert_eq!(get().await.unwrap().status(), 502);
    bbb.set_mode(BbbMode::Truncated);
    let body = get().await.unwrap().text().await.unwrap();
    assert!(
        body.starts_with("<response>") && !body.contains("</response>"),
        "{body}"
    );
    bbb.set_mode(BbbMode::EmptyBody);
    let r = get().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().is_empty());
    bbb.set_mode(BbbMode::Hang);
    assert!(get().await.unwrap_err().is_timeout());
    bbb.set_mode(BbbMode::Down);
    assert!(get().await.unwrap_err().is_connect());
    bbb.set_mode(BbbMode::Normal);
    assert!(
        get()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("<meetingID>m</meetingID>")
    );
    bbb.set_latency(Duration::from_millis(200));
    let t = Instant::now();
    get().await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        bbb.requests(),
        9,
        "a refused connection never reaches the server"
    );
}

// ---------------------------------------------------------------------------
// SMTP
// ---------------------------------------------------------------------------

fn message(subject: &str, body: &str) -> lettre::Message {
    lettre::Message::builder()
        .from("bbb-pod-live@live-test.example".parse().unwrap())
        .to("admin@univ.example".parse().unwrap())
        .to("second@univ.example".parse().unwrap())
        .subject(subject)
        .body(body.to_string())
        .unwrap()
}

#[tokio::test]
async fn smtp_sink_receives_and_decodes_lettre_mail() {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let sink = SmtpSink::start();
    let t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(sink.port())
        .build();
    let subject = "[BBB-POD-LIVE] Direct démarré : « Cours d'été » — salle 1";
    let body =
        "Live 42 démarré.\n.une ligne qui commence par un point\n".to_string() + &"é".repeat(200);
    t.send(message(subject, &body)).await.unwrap();
    t.send(message("[BBB-POD-LIVE] ascii", "plain text\n"))
        .await
        .unwrap();
    let mails = sink.wait_for(2, Duration::from_secs(5));
    assert_eq!(mails[0].from, "bbb-pod-live@live-test.example");
    assert_eq!(
        mails[0].to,
        vec!["admin@univ.example", "second@univ.example"]
    );
    assert_eq!(mails[0].subject, subject);
    assert_eq!(mails[0].body.replace("\r\n", "\n"), body);
    assert!(mails[0].data.contains("Subject: "));
    assert_eq!(mails[1].subject, "[BBB-POD-LIVE] ascii");
    assert_eq!(mails[1].body.trim_end(), "plain text");
    assert_eq!(
        mails[0].header("To").unwrap(),
        "admin@univ.example, second@univ.example"
    );

    sink.set_down();
    assert!(t.send(message("x", "y")).await.is_err());
    sink.set_mode(SmtpMode::RejectRecipients);
    assert!(t.send(message("x", "y")).await.is_err());
    sink.set_mode(SmtpMode::TempFail);
    assert!(t.send(message("x", "y")).await.is_err());
    sink.set_up();
    t.send(message("back", "y")).await.unwrap();
    assert_eq!(sink.messages().len(), 3);
}

#[tokio::test]
async fn smtp_sink_requires_auth_when_configured() {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let sink = SmtpSink::start_with(SmtpOptions {
        auth: Some(("relay-user".into(), "relay-pass".into())),
        advertise_starttls: false,
    });
    let build = |creds: Option<Credentials>| {
        let b =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1").port(sink.port());
        match creds {
            Some(c) => b.credentials(c).build(),
            None => b.build(),
        }
    };
    assert!(
        build(None).send(message("x", "y")).await.is_err(),
        "530 without AUTH"
    );
    let bad = Credentials::new("relay-user".into(), "wrong".into());
    assert!(build(Some(bad)).send(message("x", "y")).await.is_err());
    assert_eq!(sink.failed_auths(), 1);
    let good = Credentials::new("relay-user".into(), "relay-pass".into());
    build(Some(good)).send(message("ok", "y")).await.unwrap();
    let mails = sink.messages();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].auth_user.as_deref(), Some("relay-user"));
}

// ---------------------------------------------------------------------------
// docker
// ---------------------------------------------------------------------------

fn slot_with_compose(
    root: &std::path::Path,
    n: u32,
    download: &str,
    meeting_id: &str,
) -> std::path::PathBuf {
    let dir = root.join(format!("bbb-live-streaming{n}"));
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("docker-compose.yml"),
        format!(
            "services:\n  bbb-streamer:\n    environment:\n      BBB_MEETING_ID: {meeting_id}\n      BBB_DOWNLOAD_MEETING: {download}   # set by bbb-pod-live\n      TZ: Europe/Paris\n"
        ),
    )
    .unwrap();
    dir
}

fn docker(d: &FakeDocker, cwd: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(d.program())
        .arg("compose")
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .output()
        .unwrap()
}

#[test]
fn fake_docker_plays_the_streamer() {
    let tmp = tempfile::tempdir().unwrap();
    let d = FakeDocker::install(tmp.path());
    let mode = fs::metadata(d.program()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    let rec = slot_with_compose(tmp.path(), 1, "'true'", "\"abc-123\"");
    let norec = slot_with_compose(tmp.path(), 2, "\"false\"", "def");

    let out = docker(&d, &rec, &["version"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Docker Compose version v2.99.0-fake\n"
    );
    assert!(!d.running(&rec));
    assert!(docker(&d, &rec, &["up", "-d"]).status.success());
    assert!(d.running(&rec));
    let mkvs = FakeDocker::mkv_files(&rec);
    assert_eq!(mkvs.len(), 1);
    let name = mkvs[0].file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("meeting-")
            && name.ends_with(".mkv")
            && name.len() == "meeting-20240502101530.mkv".len(),
        "{name}"
    );
    let mkv = read_mkv(&mkvs[0]);
    assert_eq!(mkv.meeting_id, "abc-123");
    assert_eq!(mkv.cwd, rec.canonicalize().unwrap());
    assert!(!mkv.finalized && mkv.len > 100_000);
    // `up -d` again while running: nothing new.
    assert!(docker(&d, &rec, &["up", "-d"]).status.success());
    assert_eq!(FakeDocker::mkv_files(&rec).len(), 1);
    let ps = docker(
        &d,
        &rec,
        &["ps", "--services", "--filter", "status=running"],
    );
    assert!(String::from_utf8_lossy(&ps.stdout).contains("bbb-streamer"));
    let script = "pkill -INT ffmpeg\nwhile pgrep ffmpeg; do sleep 1; done";
    assert!(
        docker(
            &d,
            &rec,
            &["exec", "-T", "bbb-streamer", "sh", "-c", script]
        )
        .status
        .success()
    );
    assert!(read_mkv(&mkvs[0]).finalized);
    assert!(docker(&d, &rec, &["down"]).status.success());
    assert!(!d.running(&rec));
    assert!(String::from_utf8_lossy(&docker(&d, &rec, &["ps", "--services"]).stdout).is_empty());
    let out = docker(
        &d,
        &rec,
        &["exec", "-T", "bbb-streamer", "sh", "-c", "true"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not running"));

    // Recording off: no mkv; a restart writes a second file (never the same name).
    assert!(docker(&d, &norec, &["up", "-d"]).status.success());
    assert!(FakeDocker::mkv_files(&norec).is_empty());
    assert!(docker(&d, &rec, &["up", "-d"]).status.success());
    assert_eq!(FakeDocker::mkv_files(&rec).len(), 2);

    // Faults.
    d.fail_up(1);
    assert!(docker(&d, &rec, &["down"]).status.success());
    let out = docker(&d, &rec, &["up", "-d"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Error response from daemon: fake failure")
    );
    assert!(!d.running(&rec));
    assert!(
        docker(&d, &rec, &["up", "-d"]).status.success(),
        "only n failures"
    );
    d.fail_down(1);
    assert_eq!(docker(&d, &rec, &["down"]).status.code(), Some(1));
    assert!(d.running(&rec));
    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let out = docker(&d, &empty, &["up", "-d"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no configuration file provided"));

    // Calls log: cwd + args, unambiguous even with newlines.
    let calls = d.calls_in(&rec);
    let exec = calls.iter().find(|c| c.is("exec")).unwrap();
    assert_eq!(
        exec.args,
        vec!["compose", "exec", "-T", "bbb-streamer", "sh", "-c", script]
    );
    assert_eq!(d.subcommands_in(&norec), vec!["up"]);
    assert_eq!(
        d.calls().len(),
        calls.len() + d.calls_in(&norec).len() + d.calls_in(&empty).len()
    );
}

#[test]
fn fake_docker_hangs_and_delays_on_demand() {
    let tmp = tempfile::tempdir().unwrap();
    let d = FakeDocker::install(tmp.path());
    let slot = slot_with_compose(tmp.path(), 1, "false", "m");
    d.delay("up", Duration::from_millis(400));
    let t = Instant::now();
    assert!(docker(&d, &slot, &["up", "-d"]).status.success());
    assert!(t.elapsed() >= Duration::from_millis(400));
    d.delay("up", Duration::ZERO);

    d.hang("down", true);
    let mut child = Command::new(d.program())
        .args(["compose", "down"])
        .current_dir(&slot)
        .spawn()
        .unwrap();
    wait_until("the docker down to hang", Duration::from_secs(30), || {
        d.hung("down") == 1
    });
    assert!(
        d.live_processes()
            .iter()
            .any(|(_, args)| args == "compose down"),
        "a hung docker is registered"
    );
    assert!(child.try_wait().unwrap().is_none(), "hangs");
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until(
        "the killed docker to be gone",
        Duration::from_secs(5),
        || d.live_processes().is_empty(),
    );
    assert!(d.running(&slot), "a killed down did nothing");
    d.hang("down", false);
    assert!(docker(&d, &slot, &["down"]).status.success());
}

// ---------------------------------------------------------------------------
// Harness and binary
// ---------------------------------------------------------------------------

#[test]
fn binary_answers_help() {
    let out = Command::new(BIN)
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["run", "check", "status", "stop", "init"] {
        assert!(text.contains(cmd), "{cmd} missing from --help:\n{text}");
    }
}

#[test]
fn test_env_writes_a_private_config_pointing_at_the_fakes() {
    let env = TestEnv::builder()
        .slots(3)
        .extra_toml("[server]\nlog_retention_days = 3\n")
        .build();
    let meta = fs::metadata(env.config_path()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let cfg: toml::Table = env.config_text().parse().unwrap();
    assert_eq!(cfg["server"]["slots"].as_integer(), Some(3));
    assert_eq!(cfg["server"]["log_retention_days"].as_integer(), Some(3));
    assert_eq!(
        cfg["server"]["hostname"].as_str(),
        Some("live-test.example")
    );
    assert_eq!(cfg["pod"]["url"].as_str(), Some(env.pod.url().as_str()));
    assert_eq!(cfg["pod"]["token"].as_str(), Some(env.pod.token().as_str()));
    assert_eq!(cfg["bbb"]["url"].as_str(), Some(env.bbb.url().as_str()));
    assert_eq!(cfg["bbb"]["end_confirmations"].as_integer(), Some(1));
    assert_eq!(
        cfg["mail"]["smtp_port"].as_integer(),
        Some(i64::from(env.smtp.port()))
    );
    assert_eq!(
        cfg["pod"]["recordings_dir"].as_str(),
        Some(env.recordings_dir().to_str().unwrap())
    );
    let docker_cmd: Vec<&str> = cfg["docker"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(docker_cmd, env.docker.command());
    assert_eq!(env.slot_dir(2), env.base_dir().join("bbb-live-streaming2"));

    let off = TestEnv::builder().recordings_dir(false).admins(&[]).build();
    let cfg: toml::Table = off.config_text().parse().unwrap();
    assert_eq!(cfg["pod"]["recordings_dir"].as_str(), Some(""));
    assert_eq!(cfg["mail"]["admins"].as_array().unwrap().len(), 0);

    let req = env.request_live("Cours d'amphi");
    let live = env.pod.live(req.live);
    assert_eq!(live["status"], 0);
    assert_eq!(
        env.pod.meeting(req.meeting)["meeting_id"],
        json!(req.meeting_id)
    );
    assert!(env.bbb.meeting_ids().contains(&req.meeting_id));
    env.rewrite_config(|t| t.replace("debug = true", "debug = false"));
    assert!(env.config_text().contains("debug = false"));
    env.assert_no_secret_anywhere();
}
