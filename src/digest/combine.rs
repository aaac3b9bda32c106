//! FULL_OBJECT checksums of multipart objects: the CRC of the whole object computed from the
//! parts' CRCs and lengths, without reading the bytes again (CRC combination, as zlib's
//! `crc32_combine`; crc-fast implements it for the three CRCs S3 offers).
//!
//! Invariant: `combine_crcs(algo, parts)` equals the CRC of the parts' bytes concatenated in
//! order, for every split (checked against whole-body CRCs in the tests).

use crate::digest::ChecksumAlgorithm;
use crc_fast::{checksum_combine, CrcAlgorithm};

/// The whole object's CRC (big-endian bytes, as S3 encodes it) from each part's CRC (big-endian
/// bytes) and length, in object order. `None` for a non-CRC algorithm or a malformed part CRC.
pub fn combine_crcs(algorithm: ChecksumAlgorithm, parts: &[(&[u8], u64)]) -> Option<Vec<u8>> {
    let (crc, width_bytes) = match algorithm {
        ChecksumAlgorithm::Crc32 => (CrcAlgorithm::Crc32IsoHdlc, 4),
        ChecksumAlgorithm::Crc32c => (CrcAlgorithm::Crc32Iscsi, 4),
        ChecksumAlgorithm::Crc64Nvme => (CrcAlgorithm::Crc64Nvme, 8),
        ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256 => return None,
    };
    let mut whole: Option<u64> = None;
    for (raw, len) in parts {
        if raw.len() != width_bytes {
            return None;
        }
        let part = raw.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        whole = Some(match whole {
            None => part,
            Some(w) => checksum_combine(crc, w, part, *len),
        });
    }
    // The CRC of no bytes is 0 for all three (init and xorout cancel).
    let value = whole.unwrap_or(0);
    Some(value.to_be_bytes()[8 - width_bytes..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{BodyDigests, Expectations};
    use base64::Engine;

    fn crc_of(algo: ChecksumAlgorithm, bytes: &[u8]) -> Vec<u8> {
        let mut d = BodyDigests::new(Expectations {
            checksum: Some((algo, None)),
            ..Default::default()
        });
        d.update(bytes);
        let b64 = d.finish().unwrap().checksum.unwrap().1;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    }

    #[test]
    fn combined_equals_the_crc_of_the_whole_body_for_every_split() {
        let body: Vec<u8> = (0..10_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for algo in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
        ] {
            let whole = crc_of(algo, &body);
            for cuts in [
                vec![],
                vec![1],
                vec![5000],
                vec![0, 17, 4096, 9999],
                vec![10_000],
            ] {
                let mut bounds = vec![0];
                bounds.extend(cuts.iter().copied());
                bounds.push(body.len());
                let crcs: Vec<(Vec<u8>, u64)> = bounds
                    .windows(2)
                    .map(|w| (crc_of(algo, &body[w[0]..w[1]]), (w[1] - w[0]) as u64))
                    .collect();
                let parts: Vec<(&[u8], u64)> =
                    crcs.iter().map(|(c, n)| (c.as_slice(), *n)).collect();
                assert_eq!(
                    combine_crcs(algo, &parts),
                    Some(whole.clone()),
                    "{algo:?} {cuts:?}"
                );
            }
        }
        // S3's own example (s3-tests): 5 MiB of 'A', 'B', 'C' in three parts, CRC32.
        let mib5 = 5 * 1024 * 1024;
        let parts: Vec<Vec<u8>> = [b'A', b'B', b'C']
            .iter()
            .map(|&c| crc_of(ChecksumAlgorithm::Crc32, &vec![c; mib5]))
            .collect();
        let refs: Vec<(&[u8], u64)> = parts.iter().map(|p| (p.as_slice(), mib5 as u64)).collect();
        let got = combine_crcs(ChecksumAlgorithm::Crc32, &refs).unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(got),
            "WgDhBQ=="
        );
        assert_eq!(combine_crcs(ChecksumAlgorithm::Sha256, &refs), None);
        assert_eq!(
            combine_crcs(ChecksumAlgorithm::Crc64Nvme, &refs),
            None,
            "width"
        );
    }
}
