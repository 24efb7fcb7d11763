//! The load generator's own open-loop publisher, for external targets (servers that are not
//! `feed-server` and have no generator of their own).
//!
//! Each line's text starts with a marker, `pb:SEQ:TS `, carrying the publisher's sequence
//! number for the topic and the line's *scheduled* publish time (Unix ns). Clients look for
//! the marker in whatever the target sends (see [`find_marker`]), so latency and loss are
//! measured the same way whatever the target's own payload format. Publishing is open loop:
//! line `k` of a topic is due at `start + phase + k / rate`; a slow target delays the POST but
//! not the stamp, so its slowness shows as latency.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pushbench_feed::clock::unix_nanos;
use pushbench_feed::TopicId;
use tokio::time::{sleep_until, Instant};

use crate::control::RunControl;
use crate::http1::HttpConn;
use crate::wire::connect;

/// Where to POST one topic's lines.
#[derive(Clone, Debug)]
pub struct PublishTarget {
    pub topic: TopicId,
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

/// The marker a published line starts with.
pub fn marker(seq: u64, ts_ns: u64) -> String {
    format!("pb:{seq}:{ts_ns} ")
}

/// Finds a `pb:SEQ:TS` marker in received bytes; `(seq, ts)`.
pub fn find_marker(data: &[u8]) -> Option<(u64, u64)> {
    let mut i = 0;
    while i + 3 <= data.len() {
        if &data[i..i + 3] == b"pb:" {
            if let Some(found) = parse_marker_at(&data[i + 3..]) {
                return Some(found);
            }
        }
        i += 1;
    }
    None
}

fn parse_marker_at(rest: &[u8]) -> Option<(u64, u64)> {
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    let n1 = digits(rest);
    if n1 == 0 || rest.get(n1) != Some(&b':') {
        return None;
    }
    let rest2 = &rest[n1 + 1..];
    let n2 = digits(rest2);
    if n2 == 0 {
        return None;
    }
    let seq = std::str::from_utf8(&rest[..n1]).ok()?.parse().ok()?;
    let ts = std::str::from_utf8(&rest2[..n2]).ok()?.parse().ok()?;
    Some((seq, ts))
}

/// Publishes `lines_per_sec` lines of `line_bytes` bytes to every target until `until`;
/// returns how many lines each topic got (its final seq, as the publisher counts).
pub async fn publish(
    targets: Vec<PublishTarget>,
    lines_per_sec: f64,
    line_bytes: usize,
    start: Instant,
    until: Instant,
    control: Arc<RunControl>,
) -> Vec<(TopicId, u64, Option<String>)> {
    let n = targets.len().max(1);
    let tasks: Vec<_> = targets
        .into_iter()
        .enumerate()
        .map(|(i, target)| {
            let control = control.clone();
            let phase = Duration::from_secs_f64(i as f64 / n as f64 / lines_per_sec);
            tokio::spawn(async move {
                let topic = target.topic.clone();
                let (count, error) = publish_topic(
                    target,
                    lines_per_sec,
                    line_bytes,
                    start + phase,
                    until,
                    control,
                )
                .await;
                (topic, count, error)
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        if let Ok(r) = t.await {
            out.push(r);
        }
    }
    out
}

async fn publish_topic(
    target: PublishTarget,
    lines_per_sec: f64,
    line_bytes: usize,
    start: Instant,
    until: Instant,
    control: Arc<RunControl>,
) -> (u64, Option<String>) {
    let period = Duration::from_secs_f64(1.0 / lines_per_sec);
    let unix_start = unix_nanos() as i128 + (start - Instant::now()).as_nanos() as i128;
    let mut conn: Option<HttpConn> = None;
    let mut published = 0u64;
    let mut k: u32 = 0;
    loop {
        let due = start + period * k;
        if due >= until || control.is_stopped() {
            return (published, None);
        }
        sleep_until(due).await;
        let ts = (unix_start + (period * k).as_nanos() as i128).max(0) as u64;
        let mut text = marker(published + 1, ts);
        while text.len() < line_bytes {
            text.push('x');
        }
        let req = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
            target.path,
            target.host,
            text.len()
        );
        if conn.is_none() {
            match connect(target.addr, None).await {
                Ok(s) => conn = Some(HttpConn::new(s)),
                Err(e) => return (published, Some(format!("connect: {e}"))),
            }
        }
        let c = conn.as_mut().expect("connected above");
        let answer = async {
            c.send(req.as_bytes()).await?;
            let head = c.read_head().await?;
            c.read_body(head.framing, 1 << 20).await?;
            Ok::<_, crate::http1::HttpError>(head.status)
        }
        .await;
        match answer {
            Ok(s) if (200..300).contains(&s) => published += 1,
            Ok(s) => return (published, Some(format!("publish answered HTTP {s}"))),
            Err(e) => return (published, Some(format!("publish: {e}"))),
        }
        k += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_inside_any_payload() {
        let m = marker(42, 1_795_920_954_386_136_346);
        assert_eq!(
            find_marker(m.as_bytes()),
            Some((42, 1_795_920_954_386_136_346))
        );
        let json = format!(r#"{{"id":7,"text":"{m}xxxx"}}"#);
        assert_eq!(
            find_marker(json.as_bytes()),
            Some((42, 1_795_920_954_386_136_346))
        );
        assert_eq!(find_marker(b"pb: nope pb:1: pb::2"), None);
        assert_eq!(find_marker(b"x pb:3:4"), Some((3, 4)));
    }
}
