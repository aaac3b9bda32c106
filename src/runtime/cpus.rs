//! Which CPUs the executors are pinned to: the process's own CPU affinity (what `taskset` and
//! cgroup cpusets allow) by default, or an explicit `--cpus` list.
//!
//! Invariant: an executor is never pinned to a CPU outside the process's affinity (glommio's
//! `CpuSet::online()` would: it lists every online CPU, so a server started under
//! `taskset -c 1` put its executor on CPU 0).

/// Most CPUs a `--cpus` list may name.
pub const CPU_LIST_MAX: usize = 1024;

/// Parses a Linux CPU list (`0-3,6,8-9`) into ascending, distinct CPU numbers.
pub fn parse_cpu_list(list: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for item in list.trim().split(',') {
        let item = item.trim();
        let (first, last) = match item.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (item, item),
        };
        let num = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| format!("{item:?} is not a CPU number or range"))
        };
        let (first, last) = (num(first)?, num(last)?);
        if first > last || last >= CPU_LIST_MAX {
            return Err(format!(
                "{item:?}: a range goes low-high, below {CPU_LIST_MAX}"
            ));
        }
        cpus.extend(first..=last);
    }
    cpus.sort_unstable();
    cpus.dedup();
    assert!(!cpus.is_empty());
    Ok(cpus)
}

/// The CPUs this process may run on (`Cpus_allowed_list` of /proc/self/status), or `None` where
/// that cannot be read.
pub fn allowed_cpus() -> Option<Vec<usize>> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    parse_cpu_list(list).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,6").unwrap(), vec![0, 1, 2, 3, 6]);
        assert_eq!(parse_cpu_list(" 5 ").unwrap(), vec![5]);
        assert_eq!(parse_cpu_list("2,1,2,0-1").unwrap(), vec![0, 1, 2]);
        for bad in ["", "a", "3-1", "1,,2", "-1", "0-5000", "1.5"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn this_process_has_an_affinity() {
        let cpus = allowed_cpus().expect("Cpus_allowed_list on Linux");
        assert!(!cpus.is_empty());
        let online = std::thread::available_parallelism().unwrap().get();
        assert_eq!(
            cpus.len(),
            online,
            "available_parallelism follows the affinity too"
        );
    }
}
