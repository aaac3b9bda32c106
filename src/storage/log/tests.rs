//! Log tests: group commit, rolling, resuming, and recovery over cut, torn, garbled, stale and
//! corrupt segments (the scan must yield exactly a prefix of whole batches, or refuse).

use super::appender::{Appender, LogConfig, LogCounters};
use super::format::{SegmentHeader, SECTOR_BYTES};
use super::reader::SegmentReaders;
use super::scan::{scan_segment, SegmentScan};
use super::segment::list_segments;
use super::{LogError, RecordLocation};
use crate::storage::unit_temp_dir as temp_dir;
use std::path::{Path, PathBuf};

const SMALL_SEGMENT_BYTES: u64 = 256 * 1024;

fn run<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(f)
        .expect("executor")
        .join()
        .expect("test body");
}

fn config(dir: &Path, segment_size_bytes: u64) -> LogConfig {
    LogConfig {
        dir: dir.to_path_buf(),
        segment_size_bytes,
        fsync: true,
        keep_reserve: false,
    }
}

/// A log on a fresh directory `d` with segments of `segment_size_bytes`.
async fn fresh_log(d: &Path, segment_size_bytes: u64) -> Appender {
    let counters = LogCounters::new(1, 1, Default::default());
    Appender::open(
        config(d, segment_size_bytes),
        0,
        counters,
        None,
        Default::default(),
    )
    .await
    .unwrap()
}

/// A payload that names its record, so a scan can be checked against what was written.
fn payload(i: u64) -> Vec<u8> {
    let mut p = format!("record-{i}-").into_bytes();
    p.resize(40 + (i as usize * 37) % 900, (i % 251) as u8 + 1);
    p
}

/// Every record of every segment in `dir`: (seq, kind, payload, location).
type Found = Vec<(u64, u8, Vec<u8>, RecordLocation)>;

fn scan_all(dir: &Path) -> Result<Found, LogError> {
    let mut found = Vec::new();
    for (_, path) in list_segments(dir).expect("list") {
        scan_segment(&path, |at, r| {
            found.push((r.seq, r.kind, r.payload.to_vec(), at));
        })?;
    }
    Ok(found)
}

#[test]
fn concurrent_appends_share_flushes_and_read_back() {
    let dir = temp_dir();
    let d = dir.path().to_path_buf();
    run(move || async move {
        let log = fresh_log(&d, 4 << 20).await;
        let mut tasks = Vec::new();
        for i in 0..200u64 {
            let log = log.clone();
            tasks.push(glommio::spawn_local(async move {
                let p = payload(i);
                (i, log.append(7, &[&p[..10], &p[10..]]).await.unwrap())
            }));
        }
        let mut appended = Vec::new();
        for t in tasks {
            appended.push(t.await);
        }
        let stats = log.stats();
        assert_eq!(stats.records, 200);
        assert!(
            stats.batches < 100,
            "group commit: {} batches for 200 concurrent records",
            stats.batches
        );
        let found = scan_all(&d).unwrap();
        assert_eq!(found.len(), 200);
        let readers = SegmentReaders::new(d.clone());
        for (i, a) in &appended {
            let (_, kind, p, at) = found.iter().find(|f| f.0 == a.seq).expect("scanned");
            assert_eq!((*kind, p, *at), (7, &payload(*i), a.location));
            let r = readers.read(a.location, a.seq).await.unwrap();
            assert_eq!((r.kind(), r.payload()), (7, &payload(*i)[..]));
            assert!(
                readers.read(a.location, a.seq + 1).await.is_err(),
                "seq checked"
            );
        }
        let seqs: Vec<u64> = found.iter().map(|f| f.0).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "log order is seq order"
        );
    });
}

#[test]
fn segments_roll_and_a_restart_resumes_after_the_last_batch() {
    let dir = temp_dir();
    let d = dir.path().to_path_buf();
    run(move || async move {
        let log = fresh_log(&d, SMALL_SEGMENT_BYTES).await;
        for i in 0..300 {
            log.append(1, &[&payload(i)]).await.unwrap();
        }
        assert!(log.stats().segments_created >= 2, "{:?}", log.stats());
        drop(log);
        // Restart: resume the last segment where its last batch ended.
        let segments = list_segments(&d).unwrap();
        let (last_id, last) = segments.last().unwrap().clone();
        let end = match scan_segment(&last, |_, _| {}).unwrap() {
            SegmentScan::Live(end) => end,
            SegmentScan::Unused => panic!("last segment unused"),
        };
        assert!(!end.torn_tail);
        let counters = LogCounters::new(last_id + 1, 1000, Default::default());
        let log = Appender::open(
            config(&d, SMALL_SEGMENT_BYTES),
            0,
            counters,
            Some(end),
            Default::default(),
        )
        .await
        .unwrap();
        for i in 300..320 {
            let a = log.append(1, &[&payload(i)]).await.unwrap();
            assert!(a.seq >= 1000);
        }
        let found = scan_all(&d).unwrap();
        assert_eq!(found.len(), 320, "every record of both runs");
        for (n, f) in found.iter().enumerate() {
            assert_eq!(f.2, payload(n as u64), "record {n} in order");
        }
    });
}

/// Writes a segment of `batches` sequential appends (one record per batch, sizes varied) and
/// returns its path and, per batch, (start offset, end of its payload, seq).
fn write_segment(dir: &Path, batches: u64) -> (PathBuf, Vec<(u64, u64, u64)>) {
    let d = dir.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    run(move || async move {
        let log = fresh_log(&d, 1 << 20).await;
        for i in 0..batches {
            let a = log.append(2, &[&payload(i)]).await.unwrap();
            let start = a.location.offset - super::format::BATCH_HEADER_BYTES as u64;
            tx.send((start, a.location.offset + u64::from(a.location.len), a.seq))
                .unwrap();
        }
        assert_eq!(log.stats().batches, batches);
    });
    let spans: Vec<_> = rx.iter().collect();
    let path = list_segments(dir).unwrap().pop().unwrap().1;
    (path, spans)
}

/// The seqs a scan of `image` yields, or its error.
fn scan_image(path: &Path, image: &[u8]) -> Result<Vec<u64>, LogError> {
    std::fs::write(path, image).unwrap();
    let mut seqs = Vec::new();
    scan_segment(path, |_, r| seqs.push(r.seq))?;
    Ok(seqs)
}

#[test]
fn a_cut_anywhere_yields_exactly_the_whole_batches_before_it() {
    let dir = temp_dir();
    let (path, spans) = write_segment(dir.path(), 24);
    let image = std::fs::read(&path).unwrap();
    let log_end = spans.last().unwrap().1 as usize;
    let mut cuts: Vec<usize> = spans
        .iter()
        .flat_map(|&(s, e, _)| [s as usize, s as usize + 1, e as usize - 1, e as usize])
        .collect();
    // The header was synced at creation: cuts fall in the data area.
    cuts.extend((spans[0].0 as usize..log_end).step_by(SECTOR_BYTES as usize / 2));
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..64 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        cuts.push(spans[0].0 as usize + (rng as usize) % (log_end - spans[0].0 as usize));
    }
    for cut in cuts {
        let expected: Vec<u64> = spans
            .iter()
            .filter(|&&(_, end, _)| end as usize <= cut)
            .map(|s| s.2)
            .collect();
        // Never written after the cut (zeros), garbled, and a torn sector (old bytes kept).
        let mut zeroed = image.clone();
        zeroed[cut..].fill(0);
        let mut garbled = image.clone();
        for (i, b) in garbled[cut..].iter_mut().enumerate() {
            *b ^= (i as u8).wrapping_mul(31) | 1; // always changes the byte
        }
        let mut torn = zeroed.clone();
        let sector_end = (cut.div_ceil(512) * 512 + 256).min(image.len());
        torn[cut..sector_end].copy_from_slice(&image[cut..sector_end]);
        for (what, img) in [("zeroed", &zeroed), ("garbled", &garbled)] {
            let got = scan_image(&path, img).unwrap_or_else(|e| panic!("{what} @{cut}: {e}"));
            assert_eq!(got, expected, "{what} cut at {cut}");
        }
        let got = scan_image(&path, &torn).unwrap_or_else(|e| panic!("torn @{cut}: {e}"));
        assert!(
            got.len() >= expected.len() && got[..expected.len()] == expected[..],
            "torn at {cut}: a prefix of the log"
        );
    }
    // A cut after the last flush loses nothing.
    assert_eq!(scan_image(&path, &image).unwrap().len(), 24);
}

#[test]
fn damage_before_later_flushed_batches_is_corruption_not_a_tail() {
    let dir = temp_dir();
    let (path, spans) = write_segment(dir.path(), 5);
    let image = std::fs::read(&path).unwrap();
    for target in [
        spans[1].0 as usize,
        spans[1].0 as usize + 70,
        spans[2].1 as usize - 1,
    ] {
        let mut bad = image.clone();
        bad[target] ^= 0x40;
        match scan_image(&path, &bad) {
            Err(LogError::Corrupt {
                path: p, offset, ..
            }) => {
                assert_eq!(p, path);
                let batch = spans
                    .iter()
                    .find(|s| s.0 as usize <= target && target < s.1 as usize);
                assert_eq!(offset, batch.unwrap().0, "names the damaged batch");
            }
            other => panic!("damage at {target} gave {other:?}"),
        }
    }
    // The same damage in the last batch is a torn tail: the earlier batches survive.
    let mut last = image.clone();
    last[spans[4].0 as usize + 80] ^= 0x40;
    assert_eq!(scan_image(&path, &last).unwrap().len(), 4);
    // The error message names the segment and offset, and says what to do.
    let mut bad = image.clone();
    bad[spans[0].0 as usize + 70] ^= 1;
    let msg = scan_image(&path, &bad).unwrap_err().to_string();
    assert!(msg.contains("seg-") && msg.contains("offset") && msg.contains("refusing"));
}

#[test]
fn stale_unused_and_foreign_segments() {
    let dir = temp_dir();
    let (path, _) = write_segment(dir.path(), 5);
    let image = std::fs::read(&path).unwrap();
    // Reused (a new generation and nonce over old batches): nothing old replays.
    let mut h = SegmentHeader::decode(&image).unwrap();
    h.generation += 1;
    h.nonce ^= 0x5555;
    let mut reused = image.clone();
    reused[..512].copy_from_slice(&h.encode());
    match scan_segment(
        &{
            std::fs::write(&path, &reused).unwrap();
            path.clone()
        },
        |_, r| panic!("stale record {} replayed", r.seq),
    )
    .unwrap()
    {
        SegmentScan::Live(end) => assert_eq!((end.records, end.next_batch), (0, 1)),
        SegmentScan::Unused => panic!("reused segment is live"),
    }
    // A creation cut off before its header reached the disk: unused.
    let mut unused = vec![0u8; image.len()];
    unused[..8].copy_from_slice(b"RSLOGSEG");
    std::fs::write(&path, &unused).unwrap();
    assert_eq!(scan_segment(&path, |_, _| {}).unwrap(), SegmentScan::Unused);
    // A damaged header over written batches, or a truncated file: refused.
    let mut damaged = image.clone();
    damaged[20] ^= 1;
    assert!(matches!(
        scan_image(&path, &damaged),
        Err(LogError::Corrupt { offset: 0, .. })
    ));
    assert!(matches!(
        scan_image(&path, &image[..image.len() / 2]),
        Err(LogError::Corrupt { offset: 0, .. })
    ));
}

#[test]
fn a_record_damaged_after_it_was_written_fails_its_read() {
    let dir = temp_dir();
    let d = dir.path().to_path_buf();
    run(move || async move {
        let log = fresh_log(&d, 1 << 20).await;
        let a = log.append(3, &[b"hello"]).await.unwrap();
        let path = list_segments(&d).unwrap().pop().unwrap().1;
        let mut image = std::fs::read(&path).unwrap();
        image[a.location.offset as usize + a.location.len as usize - 1] ^= 1;
        std::fs::write(&path, &image).unwrap();
        let err = SegmentReaders::new(d.clone())
            .read(a.location, a.seq)
            .await
            .err()
            .expect("damaged record refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("checksum"), "{err}");
    });
}

#[test]
fn a_renewed_segment_replays_nothing_old_and_a_torn_renewal_falls_back_to_the_old_header() {
    use super::format::HEADER_SLOT_STRIDE_BYTES;
    use super::segment::renew_segment;
    let dir = temp_dir();
    let (path, spans) = write_segment(dir.path(), 4);
    let old_image = std::fs::read(&path).unwrap();
    let old = SegmentHeader::decode_area(&old_image).unwrap();
    let (d, p) = (dir.path().to_path_buf(), path.clone());
    run(move || async move {
        let next = renew_segment(&d, old, true)
            .await
            .unwrap()
            .expect("renewed");
        assert_eq!((next.id, next.generation), (old.id, old.generation + 1));
        assert_ne!(next.nonce, old.nonce);
        let image = std::fs::read(&p).unwrap();
        assert_eq!(SegmentHeader::decode_area(&image).unwrap(), next);
        // Generation 2 went into the second slot: the first still holds generation 1.
        assert_eq!(SegmentHeader::decode(&image).unwrap(), old);
        // A second renewal overwrites the first slot with generation 3.
        let third = renew_segment(&d, next, true).await.unwrap().unwrap();
        let image = std::fs::read(&p).unwrap();
        assert_eq!(SegmentHeader::decode(&image).unwrap(), third);
        assert_eq!(SegmentHeader::decode_area(&image).unwrap(), third);
    });
    // Renewed: live, empty, nothing of the old generation replays.
    match scan_segment(&path, |_, r| panic!("stale record {} replayed", r.seq)).unwrap() {
        SegmentScan::Live(end) => assert_eq!((end.records, end.next_batch), (0, 1)),
        SegmentScan::Unused => panic!("a renewed segment is live"),
    }
    // A renewal torn mid-sector (power cut during the slot write): the old header and all
    // its batches are still what the segment holds.
    let stride = HEADER_SLOT_STRIDE_BYTES as usize;
    let mut renewed = old;
    renewed.generation += 1;
    renewed.nonce ^= 0x5a5a;
    let sector = renewed.encode();
    let old_seqs: Vec<u64> = spans.iter().map(|s| s.2).collect();
    for tear in [1usize, 13, 40, 63, 64, 300, 512] {
        let mut torn = old_image.clone();
        torn[stride..stride + tear].copy_from_slice(&sector[..tear]);
        let seqs = scan_image(&path, &torn).unwrap();
        // The header proper is its first 64 bytes (checksum last): shorter is torn.
        let want = if tear < 64 {
            old_seqs.clone()
        } else {
            Vec::new()
        };
        assert_eq!(seqs, want, "renewal torn after {tear} bytes");
    }
    // Both slots garbled over written batches: refused, not silently emptied.
    let mut both = old_image.clone();
    both[20] ^= 1;
    both[stride..stride + 8].copy_from_slice(b"RSLOGSEG");
    both[stride + 20] ^= 1;
    assert!(matches!(
        scan_image(&path, &both),
        Err(LogError::Corrupt { offset: 0, .. })
    ));
}
