//! `cargo bench --bench serve`: the webinar gateway (`serve`, release binary) against the
//! fakes of the integration tests (tests/it/support), on loopback only:
//!
//! - the time to answer Pod's `start` (what the teacher's page waits on), for each of
//!   [`ROOMS`] webinars on its own gateway path, measured from the client's connect to
//!   the whole answer read, the fake BBB answering `getMeetingInfo` after [`LATENCY`];
//! - the service's memory (VmRSS from /proc) at rest, then under [`RATE`] requests a
//!   second for [`LOAD_SECS`] s (Pod's calls, one connection each as `requests` opens
//!   them: stops of rooms not live, toggles, unknown routes, refused tokens, viewers'
//!   messages), with the answers' latency; VmHWM is the peak over the whole run.
//!
//! Every loop is bounded (a fixed count of requests, each with a read timeout).

// A panic is the failure report, as in the tests.
#![allow(clippy::unwrap_used)]

#[allow(unused_imports)]
#[path = "../it/support/mod.rs"]
mod support;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use support::TestEnv;
use support::gateway::{Gateway, TOKEN};

/// Webinars started, one per gateway path (and slot).
const ROOMS: u32 = 8;
/// Added by the fake BBB before each answer.
const LATENCY: Duration = Duration::from_millis(50);
/// Requests per second of the load, and for how long.
const RATE: u32 = 100;
const LOAD_SECS: u32 = 10;
/// Time left to the service at rest before reading its memory.
const REST: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let env = TestEnv::builder()
        .slots(ROOMS)
        // The longest hold the config takes: the streamers' `up` waits beyond the
        // measured part of the run, so no fake container starts during it.
        .extra_toml("[webinar]\nhold_secs = 60\n")
        .build();
    env.bbb.set_version("3.0");
    for n in 1..=ROOMS {
        env.bbb.add_meeting(
            &format!("000{n}-webinaire"),
            &format!("internal-{n}-1765000000000"),
            "Webinaire",
            false,
        );
    }
    let gw = Gateway::spawn(&env);
    let pid = gw.pid().as_raw();
    std::thread::sleep(REST);
    let rest = memory(pid);

    env.bbb.set_latency(LATENCY);
    let mut starts = Vec::new();
    for n in 1..=ROOMS {
        let path = format!(
            "/gw/{n}/start?room=room{n:06}&domain=pod.test%2Fmeeting%2F000{n}-webinaire%2Fabc\
             &rtmpDst=rtmp%3A%2F%2F127.0.0.1%2Flive%2Fw{n}"
        );
        let t0 = Instant::now();
        let r = gw.get(&path, Some(TOKEN));
        starts.push(t0.elapsed());
        assert_eq!(r.status(), "success", "{r:?}");
    }
    // A start of a webinar already live (no BBB call).
    let t0 = Instant::now();
    let again = gw.get(
        "/gw/1/start?room=room000001&domain=pod.test%2Fmeeting%2F0001-webinaire%2Fabc\
         &rtmpDst=rtmp%3A%2F%2F127.0.0.1%2Flive%2Fw1",
        Some(TOKEN),
    );
    let repeated = t0.elapsed();
    assert_eq!(again.status(), "success", "{again:?}");
    env.bbb.set_latency(Duration::ZERO);
    let after_starts = memory(pid);

    // The load: RATE requests a second, paced, each on its own connection.
    let total = RATE * LOAD_SECS;
    let period = Duration::from_secs(1) / RATE;
    let mut latencies = Vec::with_capacity(total as usize);
    let mut peak_rss = 0;
    let t0 = Instant::now();
    for i in 0..total {
        let due = t0 + period * i;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sent = Instant::now();
        let r = match i % 5 {
            0 => gw.get("/gw/9/stop?room=notlive", Some(TOKEN)),
            1 => gw.get("/gw/1/chat?room=notlive&toggle=True", Some(TOKEN)),
            2 => gw.get("/gw/1/nothing", Some(TOKEN)),
            3 => gw.get("/gw/1/stop?room=room000001", Some("wrong")),
            _ => gw.post_chat("/gw/1/chat", "room000001", "Bonjour à tous"),
        };
        latencies.push(sent.elapsed());
        assert!(r.json["status"].is_string(), "{r:?}");
        if i % RATE == 0 {
            peak_rss = peak_rss.max(memory(pid).rss_kib);
        }
    }
    let load_wall = t0.elapsed();
    let under_load = memory(pid);
    latencies.sort();
    starts.sort();

    println!(
        "serve (release), {ROOMS} webinars, fake BBB latency {} ms",
        LATENCY.as_millis()
    );
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| answer to `start` (getMeetingInfo + reservation), median (min–max) of {ROOMS} | {} ({}–{}) |",
        ms(starts[starts.len() / 2]),
        ms(starts[0]),
        ms(starts[starts.len() - 1])
    );
    println!("| answer to a repeated `start` | {} |", ms(repeated));
    println!("| memory at rest (VmRSS) | {} |", mib(rest.rss_kib));
    println!(
        "| memory with {ROOMS} webinars recorded | {} |",
        mib(after_starts.rss_kib)
    );
    println!(
        "| memory under {RATE} requests/s for {LOAD_SECS} s (VmRSS at the end; highest sampled) | {} ; {} |",
        mib(under_load.rss_kib),
        mib(peak_rss.max(under_load.rss_kib))
    );
    println!(
        "| peak memory over the run (VmHWM) | {} |",
        mib(under_load.hwm_kib)
    );
    println!(
        "| load: {total} requests in {:.1} s; latency median, p99, max | {}, {}, {} |",
        load_wall.as_secs_f64(),
        ms(latencies[latencies.len() / 2]),
        ms(latencies[latencies.len() * 99 / 100]),
        ms(latencies[latencies.len() - 1])
    );
    let out = gw.terminate(&env);
    println!();
    println!("exit after SIGTERM: {:?}", out.code);
    ExitCode::SUCCESS
}

struct Memory {
    rss_kib: u64,
    hwm_kib: u64,
}

/// VmRSS and VmHWM of `pid`, from /proc/<pid>/status.
fn memory(pid: i32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Memory {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
