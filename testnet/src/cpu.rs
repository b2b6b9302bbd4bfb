//! CPU time of processes, from /proc: what the nodes spent, summed over their threads.

/// Clock ticks per second of /proc's times (USER_HZ, 100 on Linux's x86-64 and arm64 ABIs).
const TICKS_PER_SECOND: f64 = 100.0;

/// User plus system CPU seconds `pids` have used so far (`None` if one is gone or unreadable).
pub(crate) fn seconds(pids: &[u32]) -> Option<f64> {
    let mut ticks = 0u64;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
        let after_name = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // Fields 14 and 15 of the line (utime, stime) are the 12th and 13th after the name.
        ticks += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    }
    Some(ticks as f64 / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_used_some_cpu() {
        // Spin until the kernel has counted a tick (10 ms) of this process's time.
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while super::seconds(&[std::process::id()]).unwrap() == 0.0 {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_add(i));
            }
            assert!(started.elapsed().as_secs() < 30, "no CPU time counted");
        }
        assert_eq!(super::seconds(&[u32::MAX]), None);
    }
}
