//! The binder on hostile or degenerate input: errors, never panics or stack overflows.

use rampart_kql::HuntingCatalog;

fn bind_text(text: &str) -> Result<usize, String> {
    match rampart_kql::check(text, &HuntingCatalog) {
        Ok(bound) => Ok(bound.results.len()),
        Err(error) => Err(error.to_string()),
    }
}

#[test]
fn long_pipelines_are_capped() {
    let fine = format!("DeviceInfo{}", " | where OSBuild > 1".repeat(900));
    assert_eq!(bind_text(&fine), Ok(1));
    let long = format!("DeviceInfo{}", " | where OSBuild > 1".repeat(50_000));
    assert_eq!(
        bind_text(&long),
        Err("line 1, column 1: query has more than 1000 operators in a chain".to_string())
    );
    // Inlining a let does not get around the cap.
    let via_let = format!(
        "let T = DeviceInfo{};\nT{}",
        " | where OSBuild > 1".repeat(600),
        " | take 1".repeat(600)
    );
    assert_eq!(
        bind_text(&via_let),
        Err("line 2, column 1: query has more than 1000 operators in a chain".to_string())
    );
}

#[test]
fn long_let_chains_are_capped() {
    let mut text = String::from("let x0 = 1;\n");
    for i in 1..3000 {
        text.push_str(&format!("let x{i} = x{} + 1;\n", i - 1));
    }
    text.push_str("print x2999");
    let result = bind_text(&text);
    assert!(
        result.as_ref().is_err_and(|e| e.ends_with(
            "query is too large once its let references and function calls are expanded"
        )),
        "{result:?}"
    );
}

#[test]
fn recursive_functions_are_unknown_inside_themselves() {
    // A let is not in scope in its own body, so recursion cannot happen.
    assert_eq!(
        bind_text("let f = (n:long) { f(n - 1) };\nprint f(3)"),
        Err("line 1, column 20: unknown function 'f'".to_string())
    );
}

#[test]
fn deeply_nested_function_calls_are_capped() {
    let mut text = String::from("let f0 = (n:long) { n + 1 };\n");
    for i in 1..80 {
        text.push_str(&format!("let f{i} = (n:long) {{ f{}(n) }};\n", i - 1));
    }
    text.push_str("print f79(1)");
    let result = bind_text(&text);
    assert!(
        result
            .as_ref()
            .is_err_and(|e| e.contains("function calls are nested too deeply")),
        "{result:?}"
    );
}

#[test]
fn every_prefix_of_a_real_query_binds_or_errors() {
    let query = r#"let cutoff = ago(7d);
let Kw = dynamic(["powershell", "encodedcommand"]);
let F = (T:(*), n:long = 5) { T | take n };
DeviceProcessEvents
| where Timestamp > cutoff and (FileName =~ "cmd.exe" or ProcessCommandLine has_any (Kw))
| extend Decoded = base64_decode_tostring(extract(@"-enc\s+(\S+)", 1, ProcessCommandLine)), d = parse_json(AdditionalFields)['x'][0].y
| parse kind=relaxed ProcessCommandLine with * "user=" User:string " port=" Port:long *
| mv-expand with_itemindex=i e = todynamic(Decoded) to typeof(string) limit 10
| join kind=leftouter hint.strategy=broadcast (DeviceNetworkEvents | where RemotePort between (1 .. 1024)) on $left.DeviceId == $right.DeviceId, $left.ProcessId == $right.InitiatingProcessId
| summarize Count = count(), Hosts = make_set(DeviceName) by bin(Timestamp, 1h), AccountName
| invoke F(3)
| top 10 by Count desc nulls last
| project-reorder Count, Host* asc
| render timechart with (title = "x")"#;
    assert_eq!(bind_text(query), Ok(1));
    for (end, _) in query.char_indices() {
        if let Ok(parsed) = rampart_kql::parse(&query[..end]) {
            let _ = rampart_kql::bind(
                &parsed,
                &HuntingCatalog,
                &rampart_kql::QueryParameters::lenient(),
            );
        }
    }
}

/// The deepest `n` for which `build(n)` still parses.
fn deepest(build: impl Fn(usize) -> String) -> String {
    let mut n = 1;
    while rampart_kql::parse(&build(n + 1)).is_ok() {
        n += 1;
        assert!(n < 1000, "the parser accepts any depth");
    }
    build(n)
}

#[test]
fn the_deepest_parseable_nesting_binds() {
    // Whatever the parser's nesting cap lets through, the binder handles within its own.
    let calls = deepest(|n| format!("print x = {}1{}", "abs(".repeat(n), ")".repeat(n)));
    assert_eq!(bind_text(&calls), Ok(1));
    let parens = deepest(|n| format!("print x = {}1{}", "(".repeat(n), " + 1)".repeat(n)));
    assert_eq!(bind_text(&parens), Ok(1));
    let subqueries = deepest(|n| {
        format!(
            "{}DeviceInfo{}",
            "(".repeat(n),
            " | where toscalar((DeviceInfo | count)) > 0)".repeat(n)
        )
    });
    assert_eq!(bind_text(&subqueries), Ok(1));
    let joins = deepest(|n| {
        let mut text = String::from("DeviceInfo");
        for _ in 0..n {
            text = format!("DeviceInfo | join kind=leftsemi ({text}) on DeviceId");
        }
        text
    });
    assert_eq!(bind_text(&joins), Ok(1));
}

/// Every input of the `kql_parse` fuzz corpus (`fuzz/corpus/kql_parse`: the hand-written
/// seeds and what the fuzzer kept) goes through the parser and the binder the way the
/// fuzz target sends it, on a 2 MiB stack like the server's workers: an error or a
/// result, never a panic. Inputs that once crashed are added to the corpus, so this is
/// also their regression test. The seeds are realistic hunting queries: they must bind.
#[test]
fn the_fuzz_corpus_replays_without_panicking() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/kql_parse");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    assert!(paths.len() >= 30, "only {} corpus files", paths.len());
    let mut seeds = 0;
    let mut unbound = Vec::new();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {name}: {e}"));
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let outcome = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || bind_text(&text))
            .expect("spawn")
            .join();
        let Ok(result) = outcome else {
            panic!("corpus input {name} panicked");
        };
        if name.starts_with("seed_") {
            seeds += 1;
            if result != Ok(1) {
                unbound.push(format!("{name}: {result:?}"));
            }
        }
    }
    assert!(seeds >= 30, "only {seeds} seeds");
    assert!(
        unbound.is_empty(),
        "seeds that do not bind:\n{}",
        unbound.join("\n")
    );
}
