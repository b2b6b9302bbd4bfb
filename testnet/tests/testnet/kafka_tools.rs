//! Apache Kafka's own command-line tools (the jars `make kafka-jars` fetches, run with the
//! machine's Java) against three Pyralog nodes: `kafka-topics` creates, lists and describes a
//! topic, `kafka-console-producer` writes keyed records, `kafka-console-consumer` reads them as a
//! group, and `kafka-consumer-groups` lists the group and shows its committed offsets. Skips,
//! saying why, without Java or the jars.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::support::Cluster;

/// The classpath of Kafka's jars, or why the test cannot run.
fn kafka_classpath() -> Result<String, String> {
    let libs = std::env::var("PYRALOG_KAFKA_LIBS").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/pyralog/kafka-4.1.1/libs")
    });
    if !Command::new("java").arg("-version").output().is_ok_and(|o| o.status.success()) {
        return Err("no java on this machine".into());
    }
    if !libs.join("kafka-tools-4.1.1.jar").exists() {
        return Err(format!("no Kafka jars in {} (make kafka-jars fetches them with Maven)", libs.display()));
    }
    Ok(format!("{}/*", libs.display()))
}

/// Runs Kafka tool `class` with `args` (and `stdin`); its stdout, after checking it exited 0.
fn tool(classpath: &str, class: &str, args: &[&str], stdin: &str) -> String {
    let log_config = concat!(env!("CARGO_MANIFEST_DIR"), "/kafka/log4j2.properties");
    let mut child = Command::new("java")
        .arg(format!("-Dlog4j2.configurationFile={log_config}"))
        .args(["-Xmx256m", "-cp", classpath, class])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{class} {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafkas_own_tools_create_produce_consume_and_describe_groups() {
    let classpath = match kafka_classpath() {
        Ok(classpath) => classpath,
        Err(reason) => {
            println!("SKIPPED: {reason}");
            return;
        }
    };
    let cluster = Cluster::start(3).await;
    let bootstrap = cluster.bootstrap();
    tokio::task::spawn_blocking(move || {
        let server = ["--bootstrap-server", bootstrap.as_str()];
        let topics = "org.apache.kafka.tools.TopicCommand";
        let created = tool(
            &classpath,
            topics,
            &[
                &server[..],
                &["--create", "--topic", "tools", "--partitions", "3", "--replication-factor", "3"],
            ]
            .concat(),
            "",
        );
        assert!(created.contains("Created topic tools."), "{created}");
        let listed = tool(&classpath, topics, &[&server[..], &["--list"]].concat(), "");
        assert_eq!(listed.lines().collect::<Vec<_>>(), ["tools"]);
        let described =
            tool(&classpath, topics, &[&server[..], &["--describe", "--topic", "tools"]].concat(), "");
        assert!(
            described.contains("PartitionCount: 3") && described.contains("ReplicationFactor: 3"),
            "{described}"
        );
        assert!(described.contains("min.insync.replicas=2"), "{described}");

        let input: String = (0..10).map(|i| format!("key{i}:value{i}\n")).collect();
        let produce = [
            &server[..],
            &["--topic", "tools", "--property", "parse.key=true", "--property", "key.separator=:"],
        ]
        .concat();
        tool(&classpath, "org.apache.kafka.tools.ConsoleProducer", &produce, &input);

        let consume = [
            &server[..],
            &["--topic", "tools", "--group", "tool-readers", "--from-beginning", "--max-messages", "10"],
            &["--property", "print.key=true", "--property", "key.separator=:", "--timeout-ms", "60000"],
        ]
        .concat();
        let consumed = tool(&classpath, "org.apache.kafka.tools.consumer.ConsoleConsumer", &consume, "");
        let mut lines: Vec<&str> = consumed.lines().collect();
        lines.sort();
        let mut expected: Vec<&str> = input.lines().collect();
        expected.sort();
        assert_eq!(lines, expected);

        let groups = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";
        let listed = tool(&classpath, groups, &[&server[..], &["--list"]].concat(), "");
        assert_eq!(listed.lines().collect::<Vec<_>>(), ["tool-readers"]);
        // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...: every record committed.
        let described =
            tool(&classpath, groups, &[&server[..], &["--describe", "--group", "tool-readers"]].concat(), "");
        let rows: Vec<Vec<&str>> = described
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|cols| cols.first() == Some(&"tool-readers"))
            .collect();
        assert_eq!(rows.len(), 3, "{described}");
        let committed: u64 = rows.iter().map(|cols| cols[3].parse::<u64>().unwrap()).sum();
        assert_eq!(committed, 10, "{described}");
        assert!(rows.iter().all(|cols| cols[5] == "0"), "no lag: {described}");
    })
    .await
    .unwrap();
}
