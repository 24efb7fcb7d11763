//! Histogram output: HdrHistogram interval logs (`.hlog`) and percentile distributions (`.hgrm`).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{
    IntervalLogWriterBuilder, IntervalLogWriterError, Tag,
};
use hdrhistogram::serialization::{V2DeflateSerializeError, V2DeflateSerializer};
use hdrhistogram::Histogram;
use thiserror::Error;

use super::interval::IntervalSnapshot;

/// Errors from writing recorded data.
#[derive(Debug, Error)]
pub enum RecordError {
    /// Writing to the output failed.
    #[error("writing histogram output")]
    Io(#[from] io::Error),
    /// Encoding an interval histogram failed.
    #[error("encoding an interval histogram")]
    Encode(#[from] V2DeflateSerializeError),
    /// An interval log tag contained a character the log format reserves.
    #[error("invalid interval log tag {0:?}: it must not contain ',', ' ', CR or LF")]
    InvalidTag(String),
}

impl From<IntervalLogWriterError<V2DeflateSerializeError>> for RecordError {
    fn from(err: IntervalLogWriterError<V2DeflateSerializeError>) -> Self {
        match err {
            IntervalLogWriterError::SerializeError(e) => RecordError::Encode(e),
            IntervalLogWriterError::IoError(e) => RecordError::Io(e),
        }
    }
}

/// Writes interval histograms to an HdrHistogram interval log (`.hlog`, as read by Java's
/// `HistogramLogProcessor`, HdrHistogramVisualizer and the `hdrhistogram` crate's
/// `IntervalLogIterator`), histograms encoded as compressed V2.
///
/// The header records the run's start as both StartTime and BaseTime, so each interval's
/// timestamp is its offset from the start. `Interval_Max` is in µs like the histograms (no max
/// value divisor: the crate would repeat its header comment before every interval).
pub struct IntervalLog<W: Write> {
    out: W,
    serializer: V2DeflateSerializer,
    /// Where the previous [`Self::write`] interval ended, relative to the start time.
    last_end_offset: Duration,
}

impl IntervalLog<BufWriter<File>> {
    /// Creates the log file at `path`, starting now.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = BufWriter::new(File::create(path)?);
        Self::new(
            file,
            SystemTime::now(),
            "pushbench delivery latency, microseconds",
        )
    }
}

impl<W: Write> IntervalLog<W> {
    /// Writes the log header (`comment` may have several lines) and returns the log.
    pub fn new(mut out: W, start_time: SystemTime, comment: &str) -> io::Result<Self> {
        let mut serializer = V2DeflateSerializer::new();
        IntervalLogWriterBuilder::new()
            .add_comment(comment)
            .add_comment("[Histogram log format version 1.3]")
            .with_start_time(start_time)
            .with_base_time(start_time)
            .begin_log_with(&mut out, &mut serializer)?;
        // The legend line Java's writer emits; the readers skip it.
        out.write_all(
            b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
        )?;
        Ok(Self {
            out,
            serializer,
            last_end_offset: Duration::ZERO,
        })
    }

    /// Appends `snapshot`'s latencies as the interval from the end of the previous one (or the
    /// start) to `end_offset` after the start time.
    pub fn write(
        &mut self,
        snapshot: &IntervalSnapshot,
        end_offset: Duration,
    ) -> Result<(), RecordError> {
        let start_offset = self.last_end_offset.min(end_offset);
        self.write_interval(
            &snapshot.latency_us,
            start_offset,
            end_offset - start_offset,
            None,
        )?;
        self.last_end_offset = end_offset;
        Ok(())
    }

    /// Appends one interval: `h` covers `length` starting `start_offset` after the start time.
    /// `tag` (e.g. a transport name) lets one log hold several series.
    pub fn write_interval(
        &mut self,
        h: &Histogram<u64>,
        start_offset: Duration,
        length: Duration,
        tag: Option<&str>,
    ) -> Result<(), RecordError> {
        let tag = match tag {
            Some(s) => Some(Tag::new(s).ok_or_else(|| RecordError::InvalidTag(s.to_owned()))?),
            None => None,
        };
        // The crate's writer borrows the output; a builder with no headers writes nothing, so
        // one is made per interval instead of storing a self-referential writer.
        let mut writer =
            IntervalLogWriterBuilder::new().begin_log_with(&mut self.out, &mut self.serializer)?;
        writer.write_histogram(h, start_offset, length, tag)?;
        Ok(())
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The output, e.g. to finish a file or inspect a buffer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Writes `h` in the classic HdrHistogram percentile distribution text format (`.hgrm`), as
/// Java's `outputPercentileDistribution` prints it and HdrHistogram's `plotFiles.html` plots it.
///
/// Values are divided by `unit_ratio` (1000.0 turns µs into ms) and printed with as many
/// decimals as the histogram has significant digits (3 here). Rows step through quantiles with 5
/// ticks per half distance; like Java's, the last row (quantile 1) has no `1/(1-Percentile)`
/// column, since that would be infinite.
pub fn write_hgrm(h: &Histogram<u64>, out: &mut impl Write, unit_ratio: f64) -> io::Result<()> {
    let decimals = usize::from(h.sigfig());
    writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    let mut total_count = 0u64;
    for v in h.iter_quantiles(5) {
        total_count += v.count_since_last_iteration();
        let value = v.value_iterated_to() as f64 / unit_ratio;
        let quantile = v.quantile_iterated_to();
        if quantile < 1.0 {
            writeln!(
                out,
                "{value:12.decimals$} {quantile:2.12} {total_count:10} {:14.2}",
                1.0 / (1.0 - quantile)
            )?;
        } else {
            writeln!(out, "{value:12.decimals$} {quantile:2.12} {total_count:10}")?;
        }
    }
    let mean = h.mean() / unit_ratio;
    let stdev = h.stdev() / unit_ratio;
    let max = h.max() as f64 / unit_ratio;
    // The crate does not expose the sub-bucket count; Java's layout, which the crate mirrors,
    // has (buckets + 1) * sub_buckets / 2 counters.
    let sub_buckets = 2 * h.distinct_values() / (usize::from(h.buckets()) + 1);
    writeln!(
        out,
        "#[Mean    = {mean:12.decimals$}, StdDeviation   = {stdev:12.decimals$}]"
    )?;
    writeln!(
        out,
        "#[Max     = {max:12.decimals$}, Total count    = {:12}]",
        h.len()
    )?;
    writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {sub_buckets:12}]",
        h.buckets()
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{new_histogram_us, IntervalRecorder};

    #[test]
    fn interval_log_round_trips() {
        use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
        use hdrhistogram::serialization::Deserializer;

        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut log = IntervalLog::new(Vec::new(), start, "pushbench test").unwrap();
        let mut h = new_histogram_us();
        h.record_n(1500, 10).unwrap();
        log.write_interval(
            &h,
            Duration::from_secs(1),
            Duration::from_secs(1),
            Some("sse"),
        )
        .unwrap();
        let mut ir = IntervalRecorder::new();
        for _ in 0..10 {
            ir.record_latency_us(1500);
        }
        ir.record_latency_us(2_500_000);
        let snapshot = ir.take();
        // `write` continues from where the previous `write` ended (here the start).
        log.write(&IntervalSnapshot::new(), Duration::from_secs(2))
            .unwrap();
        log.write(&snapshot, Duration::from_secs(3)).unwrap();
        assert!(matches!(
            log.write_interval(&h, Duration::ZERO, Duration::ZERO, Some("a b")),
            Err(RecordError::InvalidTag(_))
        ));
        let bytes = log.into_inner();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("#pushbench test\n#[Histogram log format version 1.3]\n"));
        assert!(text.contains("#[StartTime: 1700000000.000"));
        assert!(text.contains("\"StartTimestamp\",\"Interval_Length\""));

        let mut intervals = Vec::new();
        for entry in IntervalLogIterator::new(&bytes) {
            if let LogEntry::Interval(ilh) = entry.unwrap() {
                let decoded: Histogram<u64> = Deserializer::new()
                    .deserialize(&mut base64_decode(ilh.encoded_histogram()).as_slice())
                    .unwrap();
                intervals.push((
                    ilh.tag().map(|t| t.as_str().to_owned()),
                    (ilh.start_timestamp(), ilh.duration()),
                    ilh.max(),
                    decoded.len(),
                ));
            }
        }
        assert_eq!(intervals.len(), 3);
        let secs = Duration::from_secs;
        assert_eq!(intervals[0].0.as_deref(), Some("sse"));
        assert_eq!(intervals[0].1, (secs(1), secs(1)));
        assert_eq!(intervals[0].3, 10);
        assert_eq!(intervals[1].0, None);
        assert_eq!(intervals[1].1, (secs(0), secs(2)));
        assert_eq!(intervals[1].3, 0);
        assert_eq!(intervals[2].1, (secs(2), secs(1)));
        assert_eq!(intervals[2].3, 11);
        // Interval_Max is in µs: 2.5 s, within the histogram's precision.
        assert!(
            (intervals[2].2 - 2_500_000.0).abs() < 3000.0,
            "{}",
            intervals[2].2
        );
        // Header comments appear once, not before every interval.
        assert_eq!(text.lines().filter(|l| l.starts_with('#')).count(), 4);
    }

    /// Minimal standard base64 decoder, so the test needs no extra dependency.
    fn base64_decode(s: &str) -> Vec<u8> {
        let value = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 byte {c}"),
        };
        let mut out = Vec::new();
        let mut acc = 0u32;
        let mut bits = 0;
        for &c in s.as_bytes().iter().filter(|&&c| c != b'=') {
            acc = (acc << 6) | u32::from(value(c));
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    }

    #[test]
    fn hgrm_output_structure_and_values() {
        let mut h = new_histogram_us();
        for v in 1..=100u64 {
            h.record(v * 1000).unwrap(); // 1 ms .. 100 ms
        }
        let mut out = Vec::new();
        write_hgrm(&h, &mut out, 1000.0).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        // First row: the smallest value at quantile 0.
        assert_eq!(
            lines[2],
            "       1.000 0.000000000000          1           1.00"
        );
        let rows: Vec<Vec<&str>> = lines[2..]
            .iter()
            .take_while(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().collect())
            .collect();
        // Rows are sorted, the median row is 50 ms, and the last row is the max with no 4th column.
        let median = rows.iter().find(|r| r[1] == "0.500000000000").unwrap();
        assert_eq!(median[0], "50.015", "50 ms as the top of its bucket");
        assert_eq!(median[2], "50");
        assert_eq!(median[3], "2.00");
        let last = rows.last().unwrap();
        assert_eq!(last.len(), 3);
        assert_eq!(last[1], "1.000000000000");
        assert_eq!(last[2], "100");
        assert!(rows[..rows.len() - 1].iter().all(|r| r.len() == 4));
        let values: Vec<f64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
        assert!(values.windows(2).all(|w| w[0] <= w[1]));
        let footer: Vec<&str> = lines.iter().rev().take(3).rev().copied().collect();
        assert_eq!(
            footer[0],
            "#[Mean    =       50.504, StdDeviation   =       28.866]"
        );
        assert!(footer[1].starts_with("#[Max     =      100.031, Total count    =          100]"));
        assert_eq!(
            footer[2],
            "#[Buckets =           22, SubBuckets     =         2048]"
        );

        // An empty histogram prints the header and footer without panicking.
        let mut out = Vec::new();
        write_hgrm(&new_histogram_us(), &mut out, 1.0).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("Total count    =            0"));
    }
}
